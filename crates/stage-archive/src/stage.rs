//! The archive stage on S3: decide (see [`crate::policy`]), then copy the exact promoted
//! version in place in its new class or tag it for lifecycle, record the result in the
//! catalog, and only then delete the version a copy replaced, so the catalog never names a
//! deleted version.
//!
//! Retries are safe: a copy keeps the source's tags, among them the promotion tag
//! [`SOURCE_VERSION_TAG`] naming the upload version. A retry lists the key's versions and
//! takes a newer version in the target class carrying this upload's tag as its own earlier
//! copy: it does not copy again, only finishes the delete. A later upload of the same key
//! carries another upload version, so its versions are never mistaken for this one's.

use intake_aws::AwsError;
use intake_aws::objects::{self, CopyLimits, StoredVersion};
use intake_core::config::{ARCHIVE_TAG, ArchiveApply, ArchivePolicy, ArchiveRule};
use intake_core::state_machine::StageKind;
use intake_core::{ByteSize, ObjectRef, PipelineConfig, StageError};
use intake_runtime::{Stage, StageCx, StageInput, StageOutput, require_promoted, s3_failure};
use serde_json::json;

use crate::policy::{Decision, Facts, decide};

/// Tag of every promoted version (set by the scan stage, kept by archive copies): the
/// upload version whose bytes it holds.
pub const SOURCE_VERSION_TAG: &str = "intake-source-version";

/// Where promoted objects start, and kept ones stay.
const STANDARD: &str = "STANDARD";

pub struct Archive {
    policy: ArchivePolicy,
    limits: CopyLimits,
}

impl Archive {
    pub fn from_config(config: &PipelineConfig) -> Self {
        Archive {
            policy: config.archive_policy(),
            limits: CopyLimits::default(),
        }
    }

    /// When a copy goes in parts, and how large they are (tests scale them down so a few
    /// MiB take the path a 6 GB object would).
    pub fn with_copy_limits(mut self, limits: CopyLimits) -> Self {
        self.limits = limits;
        self
    }
}

/// Where the stage left an object: its outcome, what the catalog records, and the version
/// a copy replaced (deleted after the catalog names the new one).
struct Placement {
    output: StageOutput,
    version: Option<String>,
    storage_class: String,
    note: String,
    replaced: Option<ObjectRef>,
}

impl Stage for Archive {
    const KIND: StageKind = StageKind::Archive;

    async fn process(&self, cx: &StageCx, input: &StageInput) -> Result<StageOutput, StageError> {
        // Rewriting an unscanned upload in place would promote nothing and hide it from the
        // scan: only promoted versions are archived.
        let source = require_promoted(cx, input, "are archived")?;
        let facts = Facts {
            class: input.upstream.as_ref().and_then(|u| u.class.as_deref()),
            tenant: input.object.tenant.as_deref(),
            key: &source.key,
            size: source.size,
        };
        let placement = match decide(&self.policy, &facts) {
            Decision::NoRule => kept(
                source,
                "no_rule".into(),
                format!(
                    "{source}: no archive rule matches its class ({}), tenant ({}) or key; it stays {STANDARD}",
                    facts.class.unwrap_or("unknown"),
                    facts.tenant.unwrap_or("none")
                ),
                json!({"decision": "kept", "reason": "no_rule", "storage_class": STANDARD}),
            ),
            Decision::BelowMinimumSize { rule, min_size } => {
                let (size, min) = (ByteSize(source.size), ByteSize(min_size));
                kept(
                    source,
                    format!("below_minimum_size ({size} < min_size {min})"),
                    format!(
                        "{source} is {size}, under the archive min_size of {min}: moving it to {} would not pay (S3 bills the IA and Glacier classes at least 128 KiB per object), so rule {} leaves it {STANDARD}; lower min_size in [stages.archive.policy] to move such objects",
                        rule.storage_class, rule.id
                    ),
                    json!({
                        "decision": "kept",
                        "reason": "below_minimum_size",
                        "rule": rule.id,
                        "storage_class": STANDARD,
                        "size": source.size,
                        "min_size": min_size,
                    }),
                )
            }
            Decision::Archive(rule) => match rule.apply {
                ArchiveApply::Now => self.move_now(cx, input, rule).await?,
                ArchiveApply::Lifecycle => tag_for_lifecycle(cx, source, rule).await?,
            },
        };

        let object_id = input.object.object_id();
        let recorded = cx
            .ledger
            .catalog_set_storage(
                &object_id,
                placement.version.as_deref(),
                &placement.storage_class,
                &placement.note,
            )
            .await
            .map_err(|e| {
                StageError::retryable(
                    e.code(),
                    format!(
                        "{source}: recording its storage class in the catalog failed: {e}; the message will be retried"
                    ),
                )
            })?;
        if !recorded {
            tracing::debug!(%source, object_id, "no catalog record to update");
        }
        if let Some(old) = &placement.replaced {
            objects::delete_version(&cx.aws, old)
                .await
                .map_err(s3_failure)?;
        }
        Ok(placement.output)
    }
}

impl Archive {
    /// Copy the version in place in the rule's class, unless an earlier attempt did.
    async fn move_now(
        &self,
        cx: &StageCx,
        input: &StageInput,
        rule: &ArchiveRule,
    ) -> Result<Placement, StageError> {
        let source = &input.location;
        let target = rule.storage_class.as_str();
        let versions = objects::versions_of(&cx.aws, &source.bucket, &source.key)
            .await
            .map_err(s3_failure)?;
        // S3 lists a never-versioned object as version "null".
        let source_id = source.version_id.as_deref().unwrap_or("null");
        let position = versions.iter().position(|v| v.version_id == source_id);
        // Listed newest first: only versions before the source can be copies of it.
        let newer = &versions[..position.unwrap_or(versions.len())];
        let (current, how) = if let Some(copy) = earlier_copy(cx, input, newer, target).await? {
            tracing::debug!(%source, version = ?copy.version_id, "found the copy of an earlier attempt");
            (copy, "copied in place by an earlier attempt")
        } else if position.is_none() {
            return Err(gone(source));
        } else {
            match storage_class(cx, source).await? {
                None => return Err(gone(source)),
                // S3 refuses a copy onto itself that changes nothing.
                Some(class) if class == target => (source.clone(), "already in that class"),
                Some(_) => {
                    let copy = objects::change_storage_class(&cx.aws, source, target, self.limits)
                        .await
                        .map_err(s3_failure)?;
                    (copy, "copied in place")
                }
            }
        };
        // Without versioning the copy overwrote the source: there is nothing left to delete.
        let replaced = (position.is_some()
            && source.version_id.is_some()
            && current.version_id != source.version_id)
            .then(|| source.clone());
        let previous = (current.version_id != source.version_id)
            .then(|| source.version_id.clone())
            .flatten();

        let mut output = StageOutput::outcome("archived");
        output.detail = Some(format!(
            "{source} is now {target} (rule {}, {how})",
            rule.id
        ));
        output.bytes = source.size;
        output.extra.insert(
            "archive".into(),
            json!({
                "decision": "archived",
                "mode": ArchiveApply::Now.name(),
                "rule": rule.id,
                "storage_class": target,
                "previous_version": previous,
            }),
        );
        output.location = Some(current.clone());
        Ok(Placement {
            output,
            version: current.version_id,
            storage_class: target.to_owned(),
            note: format!("archived: rule {} moved it to {target}", rule.id),
            replaced,
        })
    }
}

/// A version among `newer` whose promotion tag names this upload and that is in the target
/// class: the copy an earlier attempt made before it crashed or timed out.
async fn earlier_copy(
    cx: &StageCx,
    input: &StageInput,
    newer: &[StoredVersion],
    target: &str,
) -> Result<Option<ObjectRef>, StageError> {
    let upload_version = input.object.version_token();
    for version in newer {
        let candidate = ObjectRef {
            version_id: Some(version.version_id.clone()),
            etag: version.etag.clone(),
            sequencer: None,
            ..input.location.clone()
        };
        let tags = match objects::version_tags(&cx.aws, &candidate).await {
            Ok(tags) => tags,
            // Deleted since the listing: not a copy to report.
            Err(e) if is_gone(&e) => continue,
            Err(e) => return Err(s3_failure(e)),
        };
        let ours = tags
            .iter()
            .any(|(k, v)| k == SOURCE_VERSION_TAG && v == upload_version);
        if ours && storage_class(cx, &candidate).await?.as_deref() == Some(target) {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

/// The version's storage class, or `None` if it is gone.
async fn storage_class(cx: &StageCx, object: &ObjectRef) -> Result<Option<String>, StageError> {
    match objects::storage_class_of(&cx.aws, object).await {
        Ok(class) => Ok(Some(class)),
        Err(e) if is_gone(&e) => Ok(None),
        Err(e) => Err(s3_failure(e)),
    }
}

/// Tag the version for the store bucket's lifecycle rule of `rule`; S3 moves it later.
async fn tag_for_lifecycle(
    cx: &StageCx,
    source: &ObjectRef,
    rule: &ArchiveRule,
) -> Result<Placement, StageError> {
    objects::add_tag(&cx.aws, source, ARCHIVE_TAG, &rule.id)
        .await
        .map_err(|e| match e {
            AwsError::Conflict { .. } => StageError::permanent(
                "too_many_tags",
                format!(
                    "{e}; until then lifecycle rule {} cannot select it",
                    rule.lifecycle_rule_id()
                ),
            ),
            e if is_gone(&e) => gone(source),
            e => s3_failure(e),
        })?;
    let after_days = rule
        .after_days
        .expect("validated: lifecycle rules have after_days");
    let lifecycle_rule = rule.lifecycle_rule_id();
    let mut output = StageOutput::outcome("archived");
    output.detail = Some(format!(
        "{source} tagged {ARCHIVE_TAG}={}: the store bucket's lifecycle rule {lifecycle_rule} moves it to {} {after_days} days after promotion",
        rule.id, rule.storage_class
    ));
    output.bytes = source.size;
    output.extra.insert(
        "archive".into(),
        json!({
            "decision": "archived",
            "mode": ArchiveApply::Lifecycle.name(),
            "rule": rule.id,
            "storage_class": STANDARD,
            "target_storage_class": rule.storage_class,
            "after_days": after_days,
            "lifecycle_rule": lifecycle_rule,
        }),
    );
    Ok(Placement {
        output,
        version: source.version_id.clone(),
        storage_class: STANDARD.to_owned(),
        note: format!(
            "archived: rule {}; lifecycle moves it to {} after {after_days} days",
            rule.id, rule.storage_class
        ),
        replaced: None,
    })
}

fn kept(source: &ObjectRef, reason: String, detail: String, extra: serde_json::Value) -> Placement {
    let mut output = StageOutput::outcome("kept");
    output.detail = Some(detail);
    output.bytes = source.size;
    output.extra.insert("archive".into(), extra);
    Placement {
        output,
        version: source.version_id.clone(),
        storage_class: STANDARD.to_owned(),
        note: format!("kept: {reason}"),
        replaced: None,
    }
}

fn is_gone(e: &AwsError) -> bool {
    matches!(
        e,
        AwsError::Call { code: Some(code), .. }
            if matches!(code.as_str(), "NoSuchKey" | "NoSuchVersion" | "NotFound")
    )
}

fn gone(source: &ObjectRef) -> StageError {
    StageError::permanent(
        "object_gone",
        format!(
            "{source} no longer exists and no archived copy of it was found (deleted while waiting?); nothing to archive"
        ),
    )
}
