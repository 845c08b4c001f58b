//! The validate stage on S3: HEAD and a ranged GET of the first bytes of the exact uploaded
//! version, [`judge`](crate::judge::judge) them, and move rejected objects to the quarantine
//! bucket (version-pinned copy that keeps the metadata, tagged with the reason; then the
//! version is deleted from uploads). Passed objects stay where they are for the scan stage.
//!
//! One file, one version: before judging, the version must be the file of its key
//! ([`intake_store::Ledger::accept_file_version`]); any later version of the key (a reused
//! upload URL, a duplicate PUT, a PUT after deletion) is quarantined as `upload_reused`.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use intake_aws::objects;
use intake_core::names::BucketRole;
use intake_core::state_machine::StageKind;
use intake_core::{ObjectRef, PipelineConfig, StageError};
use intake_runtime::{Stage, StageCx, StageInput, StageOutput, s3_failure};
use intake_store::{FileVersion, VersionKey};

use crate::judge::{HEAD_BYTES, RejectCode, Rules, Upload, Verdict, judge};

/// Tags on a quarantined object: why, which stage, and which upload version it was.
pub const REASON_TAG: &str = "intake-reason";
pub const STAGE_TAG: &str = "intake-stage";
pub const SOURCE_VERSION_TAG: &str = "intake-source-version";

pub struct Validate {
    rules: Rules,
}

impl Validate {
    pub fn new(config: &PipelineConfig) -> Self {
        Validate {
            rules: Rules::from_config(config),
        }
    }

    /// The upload version is gone. If this stage quarantined it, report that again. If
    /// another version is the file, this one was refused anyway (the file's deletion removes
    /// every version of its key, this one included). Otherwise it vanished before
    /// validation.
    async fn gone(&self, cx: &StageCx, object: &ObjectRef) -> Result<StageOutput, StageError> {
        if let Some(output) = already_quarantined(cx, object).await {
            return Ok(output);
        }
        let file_version = cx
            .ledger
            .file_version(&object.bucket, &object.key)
            .await
            .map_err(|e| StageError::retryable(e.code(), e.to_string()))?;
        if let Some(file_version) = file_version
            && file_version != object.version_token()
        {
            let parts = intake_core::key_template::parse_key(&self.rules.key_template, &object.key);
            return Ok(StageOutput {
                outcome: "rejected".into(),
                code: Some(RejectCode::UploadReused.as_str().into()),
                detail: Some(format!(
                    "{object}: version {file_version} of this key is the file, and this later \
                     version was already removed from uploads"
                )),
                tenant: parts.as_ref().map(|p| p.tenant.clone()),
                user: parts.and_then(|p| p.user),
                ..Default::default()
            });
        }
        Err(StageError::permanent(
            "object_gone",
            format!(
                "{object} no longer exists in the uploads bucket (deleted before validation); nothing to validate"
            ),
        ))
    }
}

/// What validate reads of an upload: its size, declared type and first bytes.
struct FirstBytes {
    size: u64,
    content_type: Option<String>,
    bytes: Vec<u8>,
}

/// One ranged GET of exactly this version: the first [`HEAD_BYTES`], with the total size
/// from `Content-Range` and the declared type, so no HEAD is needed. `None` when the
/// version no longer exists. An empty object has no byte range to ask for (S3 answers
/// 416), so it alone is asked with a HEAD.
async fn first_bytes(cx: &StageCx, object: &ObjectRef) -> Result<Option<FirstBytes>, StageError> {
    let got = cx
        .aws
        .s3
        .get_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .set_version_id(object.version_id.clone())
        .range(format!("bytes=0-{}", HEAD_BYTES - 1))
        .send()
        .await;
    let got = match got {
        Ok(got) => got,
        Err(e) if intake_runtime::s3_not_found(&e) => return Ok(None),
        Err(e) if e.code() == Some("InvalidRange") => return empty_object(cx, object).await,
        Err(e) => return Err(s3_error(cx, "GetObject", object, e)),
    };
    let size = got
        .content_range()
        .and_then(total_of_content_range)
        .or_else(|| got.content_length().map(|n| n.max(0) as u64))
        .unwrap_or(0);
    let content_type = got.content_type().map(str::to_owned);
    let mut bytes = got
        .body
        .collect()
        .await
        .map_err(|e| {
            StageError::retryable(
                "s3_unavailable",
                format!("{object}: reading the first bytes failed: {e}"),
            )
        })?
        .to_vec();
    bytes.truncate(HEAD_BYTES);
    Ok(Some(FirstBytes {
        size,
        content_type,
        bytes,
    }))
}

async fn empty_object(cx: &StageCx, object: &ObjectRef) -> Result<Option<FirstBytes>, StageError> {
    let head = cx
        .aws
        .s3
        .head_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .set_version_id(object.version_id.clone())
        .send()
        .await;
    match head {
        Ok(head) => Ok(Some(FirstBytes {
            size: head.content_length().unwrap_or(0).max(0) as u64,
            content_type: head.content_type().map(str::to_owned),
            bytes: Vec::new(),
        })),
        Err(e) if intake_runtime::s3_not_found(&e) => Ok(None),
        Err(e) => Err(s3_error(cx, "HeadObject", object, e)),
    }
}

/// The total length in a `Content-Range` answer (`bytes 0-8191/1048576`).
fn total_of_content_range(range: &str) -> Option<u64> {
    range.rsplit_once('/')?.1.trim().parse().ok()
}

fn s3_error<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    cx: &StageCx,
    operation: &'static str,
    object: &ObjectRef,
    e: SdkError<E, R>,
) -> StageError {
    s3_failure(intake_aws::error::classify(
        &cx.aws.endpoint,
        operation,
        &object.to_string(),
        e,
    ))
}

impl Stage for Validate {
    const KIND: StageKind = StageKind::Validate;

    async fn process(&self, cx: &StageCx, input: &StageInput) -> Result<StageOutput, StageError> {
        let object = &input.location;
        let uploads = cx.names.bucket(BucketRole::Uploads);
        if object.bucket != uploads {
            // Validate deletes what it rejects: never act on a bucket that is not ours.
            return Err(StageError::poison(
                "foreign_bucket",
                format!(
                    "{object}: event from bucket {}, but this pipeline's uploads bucket is {uploads}; \
                     check which buckets notify this queue",
                    object.bucket
                ),
            ));
        }
        let first = match first_bytes(cx, object).await? {
            Some(first) => first,
            None => return self.gone(cx, object).await,
        };
        let size = first.size;
        let version = VersionKey::new(&object.bucket, &object.key, object.version_token());
        let accepted = cx
            .ledger
            .accept_file_version(&version)
            .await
            .map_err(|e| StageError::retryable(e.code(), e.to_string()))?;
        if let FileVersion::Refused {
            file_version,
            file_state,
        } = accepted
        {
            let code = RejectCode::UploadReused;
            let location = quarantine(
                cx,
                &ObjectRef {
                    size,
                    ..object.clone()
                },
                code.as_str(),
            )
            .await?;
            let parts = intake_core::key_template::parse_key(&self.rules.key_template, &object.key);
            return Ok(StageOutput {
                outcome: "rejected".into(),
                code: Some(code.as_str().into()),
                detail: Some(format!(
                    "{object}: version {file_version} of this key is already the file ({}); \
                     an upload URL makes one file: ask for a new upload instead of reusing one",
                    file_state.as_deref().unwrap_or("accepted")
                )),
                tenant: parts.as_ref().map(|p| p.tenant.clone()),
                user: parts.and_then(|p| p.user),
                location: Some(location),
                bytes: size,
                ..Default::default()
            });
        }
        let upload = Upload {
            key: &object.key,
            size,
            declared_type: first.content_type.as_deref(),
            head: &first.bytes,
        };
        match judge(&self.rules, &upload) {
            Verdict::Passed {
                detected_type,
                class,
                tenant,
                user,
                ..
            } => Ok(StageOutput {
                outcome: "passed".into(),
                detected_type: Some(detected_type),
                class: Some(class),
                tenant: Some(tenant),
                user,
                bytes: size,
                ..Default::default()
            }),
            Verdict::Rejected {
                code,
                detail,
                detected_type,
            } => {
                let location = quarantine(
                    cx,
                    &ObjectRef {
                        size,
                        ..object.clone()
                    },
                    code.as_str(),
                )
                .await?;
                let parts =
                    intake_core::key_template::parse_key(&self.rules.key_template, &object.key);
                Ok(StageOutput {
                    outcome: "rejected".into(),
                    code: Some(code.as_str().into()),
                    detail: Some(detail),
                    detected_type,
                    tenant: parts.as_ref().map(|p| p.tenant.clone()),
                    user: parts.and_then(|p| p.user),
                    location: Some(location),
                    bytes: size,
                    ..Default::default()
                })
            }
        }
    }
}

/// Copy the exact version into quarantine with the reason in tags, then delete that version
/// from uploads. A retry after a crash between the two finds its copy (by the source-version
/// tag) instead of making a second one, then finishes the delete.
async fn quarantine(cx: &StageCx, object: &ObjectRef, code: &str) -> Result<ObjectRef, StageError> {
    let quarantine_bucket = cx.names.bucket(BucketRole::Quarantine);
    let tags = [
        (REASON_TAG, code),
        (STAGE_TAG, "validate"),
        (SOURCE_VERSION_TAG, object.version_token()),
    ];
    let (moved, _) = objects::copy_version_once(
        &cx.aws,
        object,
        quarantine_bucket,
        &tags,
        SOURCE_VERSION_TAG,
    )
    .await
    .map_err(s3_failure)?;
    objects::delete_version(&cx.aws, object)
        .await
        .map_err(s3_failure)?;
    Ok(ObjectRef {
        tenant: None,
        user: None,
        ..moved
    })
}

/// Where this stage already moved the upload version to quarantine (a crash after the
/// delete, before the ledger recorded it): that outcome again.
async fn already_quarantined(cx: &StageCx, object: &ObjectRef) -> Option<StageOutput> {
    let quarantine_bucket = cx.names.bucket(BucketRole::Quarantine);
    let tags = cx
        .aws
        .s3
        .get_object_tagging()
        .bucket(quarantine_bucket)
        .key(&object.key)
        .send()
        .await
        .ok()?;
    let tag = |name: &str| {
        tags.tag_set()
            .iter()
            .find(|t| t.key() == name)
            .map(|t| t.value().to_owned())
    };
    if tag(SOURCE_VERSION_TAG).as_deref() != Some(object.version_token()) {
        return None;
    }
    let code = tag(REASON_TAG)?;
    Some(StageOutput {
        outcome: "rejected".into(),
        code: Some(code),
        detail: Some(format!(
            "{object} was already moved to quarantine by an earlier attempt"
        )),
        location: Some(ObjectRef {
            bucket: quarantine_bucket.to_owned(),
            key: object.key.clone(),
            version_id: tags.version_id().map(str::to_owned),
            etag: None,
            size: object.size,
            tenant: None,
            user: None,
            sequencer: None,
        }),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::total_of_content_range;

    #[test]
    fn the_total_size_comes_from_the_content_range() {
        assert_eq!(
            total_of_content_range("bytes 0-8191/1048576"),
            Some(1_048_576)
        );
        assert_eq!(total_of_content_range("bytes 0-11/12"), Some(12));
        // An unknown total (`*`) or a malformed header gives no size.
        assert_eq!(total_of_content_range("bytes 0-8191/*"), None);
        assert_eq!(total_of_content_range("garbage"), None);
    }
}
