//! The contract between the runtime and a stage. The runtime owns receive, delete,
//! visibility, the ledger and the DLQ; the stage only turns an object into an outcome.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use intake_aws::AwsClients;
use intake_core::state_machine::StageKind;
use intake_core::{ObjectRef, OutcomeMessage, PipelineConfig, ResourceNames, StageError};
use intake_store::Ledger;

/// What a stage may use: AWS clients, the validated config, resource names, and the
/// ledger (which holds the catalog). Stages never claim or complete through the ledger:
/// the runtime does that around `process`.
#[derive(Clone)]
pub struct StageCx {
    pub aws: AwsClients,
    pub config: Arc<PipelineConfig>,
    pub names: Arc<ResourceNames>,
    pub ledger: Arc<Ledger>,
}

/// The object to work on. `object` is the upload's identity (the ledger's key); `location`
/// is where its bytes are now (the same, until a stage moves it).
#[derive(Debug, Clone)]
pub struct StageInput {
    pub object: ObjectRef,
    pub location: ObjectRef,
    /// The previous stage's outcome, when this stage is fed by SNS.
    pub upstream: Option<OutcomeMessage>,
    /// The ledger claim's attempt number for this stage: 1 when no delivery ever claimed
    /// it before, so no earlier attempt can have left a partial effect behind (a stage may
    /// skip looking for one, e.g. a copy made before a crash).
    pub attempt: u32,
}

/// A stage's result; the runtime wraps it into an [`OutcomeMessage`].
#[derive(Debug, Clone, Default)]
pub struct StageOutput {
    pub outcome: String,
    pub code: Option<String>,
    pub detail: Option<String>,
    pub detected_type: Option<String>,
    pub class: Option<String>,
    /// Tenant and user read from the key, when the stage learned them.
    pub tenant: Option<String>,
    pub user: Option<String>,
    /// Where the object is after this stage, if the stage moved it.
    pub location: Option<ObjectRef>,
    pub bytes: u64,
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl StageOutput {
    pub fn outcome(outcome: &str) -> Self {
        StageOutput {
            outcome: outcome.to_owned(),
            ..Default::default()
        }
    }
}

/// How a stage reports an S3 failure: an object too large to move is permanent
/// (`too_large_to_move`); anything else (unreachable, throttled, 5xx) is retried.
pub fn s3_failure(e: intake_aws::AwsError) -> StageError {
    match e {
        intake_aws::AwsError::Conflict { .. } => {
            StageError::permanent("too_large_to_move", e.to_string())
        }
        e => StageError::retryable(
            "s3_unavailable",
            format!("{e}; the message will be retried"),
        ),
    }
}

/// GETs exactly `object` (its version) for a stage that is about to `purpose` it. A version
/// that no longer exists is permanent (`object_gone`): it was deleted while its message
/// waited, and retrying cannot bring it back. Any other failure is retried.
pub async fn get_object(
    cx: &StageCx,
    object: &ObjectRef,
    purpose: &str,
) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, StageError> {
    let out = cx
        .aws
        .s3
        .get_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .set_version_id(object.version_id.clone())
        .send()
        .await;
    match out {
        Ok(out) => Ok(out),
        Err(e) if s3_not_found(&e) => Err(StageError::permanent(
            "object_gone",
            format!("{object} no longer exists (deleted while waiting?); nothing to {purpose}"),
        )),
        Err(e) => Err(s3_failure(intake_aws::error::classify(
            &cx.aws.endpoint,
            "GetObject",
            &object.to_string(),
            e,
        ))),
    }
}

/// Whether an S3 call failed because the object or version does not exist. HEAD answers
/// carry no body, so a missing object is known by its status alone there.
pub fn s3_not_found<E: aws_sdk_s3::error::ProvideErrorMetadata>(
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    use aws_sdk_s3::error::ProvideErrorMetadata;
    matches!(e.code(), Some("NotFound" | "NoSuchKey" | "NoSuchVersion"))
        || e.raw_response().is_some_and(|r| r.status().as_u16() == 404)
}

/// Fails closed (permanent `not_promoted`) unless `input.location` is in the store bucket:
/// stages after scan act only on scanned, promoted versions, whatever `pipeline.toml` routes
/// to them. `work` says what the stage would have done ("get renditions", ...).
pub fn require_promoted<'a>(
    cx: &StageCx,
    input: &'a StageInput,
    work: &str,
) -> Result<&'a ObjectRef, StageError> {
    let store = cx.names.bucket(intake_core::names::BucketRole::Store);
    let location = &input.location;
    if location.bucket == store {
        return Ok(location);
    }
    Err(StageError::permanent(
        "not_promoted",
        format!(
            "{location} is not in the store bucket {store}: only scanned, promoted versions {work}; route this stage after scan's `clean` outcome in pipeline.toml"
        ),
    ))
}

/// How a stage reports that reading a body it already opened broke off midway.
pub fn body_failure(object: &ObjectRef, e: impl std::fmt::Display) -> StageError {
    StageError::retryable(
        "s3_unavailable",
        format!("{object}: reading the body failed ({e}); the message will be retried"),
    )
}

pub trait Stage: Send + Sync + 'static {
    const KIND: StageKind;

    /// Do the stage's work on one object version. Effects must be idempotent (deterministic
    /// output keys): after a crash the same input may be processed again.
    fn process(
        &self,
        cx: &StageCx,
        input: &StageInput,
    ) -> impl Future<Output = Result<StageOutput, StageError>> + Send;
}
