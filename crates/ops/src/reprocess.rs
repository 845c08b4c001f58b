//! Re-running an object, or every object under a prefix, from a stage: after a fix (a
//! limit raised, a bug deployed) a `failed` version goes through its failed stage again,
//! or a `done` one through the later stages (new archive rules).
//!
//! Only stages after promotion can be re-run: validate and scan read the upload version,
//! which promotion removes (upload the file again instead). For each version the ledger
//! forgets the stages from `from` on (their claims and recorded outcomes, and the catalog
//! record when the catalog is re-run), records the reprocess in the version's history, and
//! the outcome that fed `from` the first time is sent to its queue again, pointing at where
//! the stored object is now (the archive stage may have moved it).

use std::collections::HashMap;

use aws_sdk_sqs::types::MessageAttributeValue;
use intake_aws::AwsClients;
use intake_aws::error::{AwsError, classify};
use intake_core::names::BucketRole;
use intake_core::state_machine::{StageKind, Terminal};
use intake_core::{ObjectRef, OutcomeMessage, PipelineConfig, ResourceNames};
use intake_store::{Ledger, StoreError, VersionKey};

#[derive(Debug, thiserror::Error)]
pub enum ReprocessError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{object}: {reason}")]
    Refused { object: String, reason: String },
}

/// What to reprocess: one key (the version that is its file), or every key under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Key(String),
    Prefix(String),
}

/// One version and the stage it will be re-run from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub version: VersionKey,
    pub state: String,
    pub from: StageKind,
}

/// The versions `selection` names in the uploads bucket and the stage each re-runs from;
/// versions that cannot be reprocessed come back as errors beside them (a bulk reprocess
/// goes on with the rest).
pub async fn plan(
    ledger: &Ledger,
    config: &PipelineConfig,
    names: &ResourceNames,
    selection: &Selection,
    from: Option<StageKind>,
) -> Result<Vec<Result<Planned, ReprocessError>>, StoreError> {
    let uploads = names.bucket(BucketRole::Uploads);
    let versions = match selection {
        // The version that is the file (one file, one version), as for a prefix.
        Selection::Key(key) => ledger
            .latest_versions(uploads, key)
            .await?
            .into_iter()
            .filter(|(k, _, _)| k == key)
            .collect(),
        Selection::Prefix(prefix) => ledger.latest_versions(uploads, prefix).await?,
    };
    let mut out = Vec::with_capacity(versions.len());
    for (key, version, state) in versions {
        let version = VersionKey::new(uploads, key, version);
        out.push(
            choose_stage(ledger, config, &version, &state, from)
                .await
                .map(|from| Planned {
                    version,
                    state,
                    from,
                }),
        );
    }
    Ok(out)
}

async fn choose_stage(
    ledger: &Ledger,
    config: &PipelineConfig,
    version: &VersionKey,
    state: &str,
    from: Option<StageKind>,
) -> Result<StageKind, ReprocessError> {
    let refused = |reason: String| ReprocessError::Refused {
        object: version.to_string(),
        reason,
    };
    if state.parse::<StageKind>().is_ok() {
        return Err(refused(format!(
            "still in the pipeline (at {state}); wait for it, or replay that stage's DLQ with `intake dlq replay {state}`"
        )));
    }
    let from = match from {
        Some(stage) => stage,
        None if state == Terminal::Failed.name() => {
            let history = ledger.history(&version.bucket, &version.key).await?;
            history
                .iter()
                .find(|h| h.version == version.version)
                .and_then(|h| {
                    h.transitions
                        .iter()
                        .rev()
                        .find(|t| t.outcome == "failed")
                        .and_then(|t| t.stage.parse::<StageKind>().ok())
                })
                .ok_or_else(|| refused("failed, but no stage recorded a failure".into()))?
        }
        None => {
            return Err(refused(format!(
                "is {state}; name the stage to re-run with --from (thumbnail, catalog or archive)"
            )));
        }
    };
    if matches!(
        from,
        StageKind::Validate | StageKind::Scan | StageKind::Delete
    ) {
        return Err(refused(format!(
            "{from} cannot be re-run: it reads the upload version, which promotion removed; upload the file again instead"
        )));
    }
    if !config.has_stage(from) {
        return Err(refused(format!(
            "stage {from} is not configured in pipeline.toml"
        )));
    }
    Ok(from)
}

/// Re-runs one planned version: resets the ledger from its stage on, then sends the
/// outcome that fed that stage to its queue again.
pub async fn reprocess(
    aws: &AwsClients,
    config: &PipelineConfig,
    names: &ResourceNames,
    ledger: &Ledger,
    planned: &Planned,
    requested_by: &str,
) -> Result<(), ReprocessError> {
    let version = &planned.version;
    let from = planned.from;
    let refused = |reason: String| ReprocessError::Refused {
        object: version.to_string(),
        reason,
    };
    let outcomes: Vec<OutcomeMessage> = ledger
        .recorded_outcomes(version)
        .await?
        .iter()
        .filter_map(|json| serde_json::from_str(json).ok())
        .collect();
    let mut feeding = outcomes
        .iter()
        .rev()
        .find(|o| {
            o.stage
                .parse::<StageKind>()
                .ok()
                .and_then(|stage| config.route(stage, &o.outcome))
                .as_deref()
                == Some(from.name())
        })
        .cloned()
        .ok_or_else(|| {
            refused(format!(
                "no recorded outcome leads to {from} (it never got that far); re-run an earlier stage"
            ))
        })?;
    let object_id = feeding.object.object_id();
    if let Some(entry) = ledger.catalog_get(&object_id).await? {
        let store = entry.record.store;
        feeding.location = Some(ObjectRef {
            bucket: store.bucket,
            key: store.key,
            version_id: store.version,
            etag: None,
            size: entry.record.size,
            tenant: entry.record.tenant,
            user: entry.record.user,
            sequencer: None,
        });
    }

    let stages: Vec<&str> = StageKind::ALL
        .iter()
        .skip_while(|k| **k != from)
        .map(|k| k.name())
        .collect();
    if stages.contains(&StageKind::Catalog.name()) {
        ledger.catalog_delete(&object_id).await?;
    }
    let detail = format!("reprocess from {from} requested by {requested_by}");
    ledger
        .reset_stages(version, &stages, from.name(), requested_by, &detail)
        .await?;

    let queue = &names.stage(from).queue;
    let url = aws
        .sqs
        .get_queue_url()
        .queue_name(queue)
        .send()
        .await
        .map_err(|e| classify(&aws.endpoint, "GetQueueUrl", queue, e))?
        .queue_url
        .unwrap_or_default();
    let attributes: HashMap<String, MessageAttributeValue> = feeding
        .attributes()
        .into_iter()
        .map(|(k, v)| {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .expect("data type is set");
            (k.to_owned(), value)
        })
        .collect();
    let body = serde_json::to_string(&feeding).expect("an outcome serialises");
    aws.sqs
        .send_message()
        .queue_url(&url)
        .message_body(body)
        .set_message_attributes(Some(attributes))
        .send()
        .await
        .map_err(|e| classify(&aws.endpoint, "SendMessage", queue, e))?;
    Ok(())
}
