//! The thumbnail stage on S3. One GET of the exact promoted version, one decode for all
//! renditions (on a blocking thread, bounded in number and by the memory budget), one
//! conditional PUT per rendition: a rendition's key is a function of the upload version,
//! so a retry after a crash finds its earlier PUTs in place instead of writing second
//! copies.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use intake_core::config::ImageLimits;
use intake_core::names::BucketRole;
use intake_core::state_machine::StageKind;
use intake_core::{ObjectRef, PipelineConfig, StageError};
use intake_imaging::{ImageError, Rendered, Rendition};
use intake_runtime::{
    Stage, StageCx, StageInput, StageOutput, body_failure, get_object, require_promoted, s3_failure,
};
use tokio::sync::Semaphore;

use crate::budget::MemoryBudget;

/// Metadata on every rendition, pointing back at what it was made from.
pub const SOURCE_BUCKET_METADATA: &str = "intake-source-bucket";
pub const SOURCE_KEY_METADATA: &str = "intake-source-key";
pub const SOURCE_VERSION_METADATA: &str = "intake-source-version";
pub const OBJECT_ID_METADATA: &str = "intake-object-id";
pub const RENDITION_METADATA: &str = "intake-rendition";

/// `{tenant}/{object id}/{rendition}.{ext}`; objects without a tenant go under `_`.
pub fn rendition_key(tenant: Option<&str>, object_id: &str, rendered: &Rendered) -> String {
    format!(
        "{}{}.{}",
        intake_core::object::derivatives_prefix(tenant, object_id),
        rendered.name,
        rendered.format.extension()
    )
}

pub struct Thumbnail {
    limits: ImageLimits,
    budget: MemoryBudget,
    /// Decodes running at once: at most one per core, whatever the worker's concurrency,
    /// so downloads and uploads overlap with decoding without oversubscribing the CPU.
    decoders: Arc<Semaphore>,
}

impl Thumbnail {
    pub fn from_config(config: &PipelineConfig) -> Self {
        let limits = config.image_limits();
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Thumbnail {
            budget: MemoryBudget::new(limits.memory_budget.bytes()),
            limits,
            decoders: Arc::new(Semaphore::new(cores)),
        }
    }

    pub fn budget(&self) -> &MemoryBudget {
        &self.budget
    }
}

impl Stage for Thumbnail {
    const KIND: StageKind = StageKind::Thumbnail;

    async fn process(&self, cx: &StageCx, input: &StageInput) -> Result<StageOutput, StageError> {
        let upstream = input.upstream.as_ref();
        let class_name = upstream.and_then(|u| u.class.clone()).or_else(|| {
            let detected = upstream.and_then(|u| u.detected_type.as_deref())?;
            cx.config
                .classes
                .iter()
                .find(|(_, c)| c.types.iter().any(|t| t == detected))
                .map(|(name, _)| name.clone())
        });
        let renditions: &[Rendition] = class_name
            .as_deref()
            .and_then(|name| cx.config.classes.get(name))
            .map_or(&[], |class| &class.renditions);
        if renditions.is_empty() {
            return Ok(StageOutput {
                outcome: "skipped".into(),
                detail: Some(format!(
                    "class {} has no renditions",
                    class_name.as_deref().unwrap_or("(unknown)")
                )),
                ..Default::default()
            });
        }
        // Renditions are public-facing: never of an unscanned version.
        let source = require_promoted(cx, input, "get renditions")?;
        let bytes = read_object(cx, source).await?;

        let failed = |e: ImageError| StageError::permanent(e.code(), format!("{source}: {e}"));
        let probe = intake_imaging::probe(&bytes, &self.limits).map_err(failed)?;
        // Room for the decode and the resampled full-frame images made from it.
        let memory = self
            .budget
            .reserve(probe.decode_bytes + probe.decode_bytes / 2)
            .await;
        let decoder = self
            .decoders
            .acquire()
            .await
            .expect("the decoder semaphore is never closed");
        let renditions = renditions.to_vec();
        let limits = self.limits.clone();
        let render = tokio::task::spawn_blocking(move || {
            intake_imaging::render(&bytes, &renditions, &limits)
        })
        .await
        .map_err(|e| {
            StageError::permanent(
                "corrupt_image",
                format!("{source}: the decoder crashed on this image ({e})"),
            )
        })?
        .map_err(failed)?;
        drop(decoder);
        drop(memory);

        let tenant = input.object.tenant.as_deref();
        let object_id = input.object.object_id();
        let bucket = cx.names.bucket(BucketRole::Derivatives);
        let cache_control = &self.limits.cache_control;
        let mut listed = Vec::new();
        for rendered in &render.renditions {
            let key = rendition_key(tenant, &object_id, rendered);
            let metadata = BTreeMap::from([
                (SOURCE_BUCKET_METADATA, source.bucket.clone()),
                (SOURCE_KEY_METADATA, source.key.clone()),
                (SOURCE_VERSION_METADATA, source.version_token().to_owned()),
                (OBJECT_ID_METADATA, object_id.clone()),
                (RENDITION_METADATA, rendered.name.clone()),
            ]);
            put_once(cx, bucket, &key, rendered, cache_control, metadata).await?;
            listed.push(serde_json::json!({
                "name": rendered.name,
                "bucket": bucket,
                "key": key,
                "width": rendered.width,
                "height": rendered.height,
                "bytes": rendered.bytes.len(),
                "format": rendered.format.name(),
                "content_type": rendered.format.content_type(),
            }));
        }
        let mut output = StageOutput::outcome("thumbnailed");
        output.bytes = source.size;
        output.extra.insert("renditions".into(), listed.into());
        output.extra.insert(
            "image".into(),
            serde_json::json!({
                "format": render.probe.format.name(),
                "width": render.width,
                "height": render.height,
                "orientation": render.orientation,
                "has_alpha": render.has_alpha,
                "converted_to_srgb": render.converted_to_srgb,
                "frames": render.probe.frames,
            }),
        );
        Ok(output)
    }
}

/// The whole object, read once (renditions need random access to the compressed bytes;
/// their size is bounded by the class's `max_size`).
async fn read_object(cx: &StageCx, object: &ObjectRef) -> Result<Vec<u8>, StageError> {
    let out = get_object(cx, object, "render").await?;
    let body = out
        .body
        .collect()
        .await
        .map_err(|e| body_failure(object, e))?;
    Ok(body.into_bytes().to_vec())
}

/// PUT unless the key already exists. Keys are derived from the upload version and the
/// renderer is deterministic, so an existing object is this same rendition from an
/// earlier attempt; `If-None-Match: *` keeps a retry from adding a second version.
async fn put_once(
    cx: &StageCx,
    bucket: &str,
    key: &str,
    rendered: &Rendered,
    cache_control: &str,
    metadata: BTreeMap<&str, String>,
) -> Result<(), StageError> {
    let mut put = cx
        .aws
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type(rendered.format.content_type())
        .cache_control(cache_control)
        .if_none_match("*")
        .body(ByteStream::from(rendered.bytes.clone()));
    for (name, value) in metadata {
        put = put.metadata(name, value);
    }
    match put.send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.code() == Some("PreconditionFailed")
                || e.raw_response().is_some_and(|r| r.status().as_u16() == 412) =>
        {
            tracing::debug!(
                bucket,
                key,
                "rendition already written by an earlier attempt"
            );
            Ok(())
        }
        Err(e) => Err(s3_failure(intake_aws::error::classify(
            &cx.aws.endpoint,
            "PutObject",
            &format!("s3://{bucket}/{key}"),
            e,
        ))),
    }
}
