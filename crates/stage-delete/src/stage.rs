//! One deletion, step by step. Each step lists what is there now and deletes it, so it is
//! idempotent; the catalog record is removed last, because it is how a retry (or an
//! operator) finds the stored version after an archive moved it. A version still moving
//! through the pipeline is not deleted under a running stage: the request is retried until
//! the object reaches a terminal state.

use std::collections::BTreeSet;
use std::sync::Arc;

use intake_aws::purge::{VersionEntry, delete_versions, list_versions, versions_of_key};
use intake_core::config::DeleteVersions;
use intake_core::key_template::parse_key;
use intake_core::names::BucketRole;
use intake_core::object::derivatives_prefix;
use intake_core::state_machine::StageKind;
use intake_core::{ObjectRef, OutcomeMessage, PipelineConfig, StageError};
use intake_runtime::{Stage, StageCx, StageInput, StageOutput, s3_failure};
use intake_store::{StoreError, VersionKey};

/// The steps of a deletion, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletionStep {
    /// Every version under the upload's derivatives prefix.
    Derivatives,
    /// The stored, uploaded and quarantined versions.
    Stored,
    /// The catalog record.
    Record,
}

/// Called after each step; an error ends the attempt there, as a crash or an S3 failure at
/// that point would. Tests use it to prove that a retry finishes an interrupted deletion.
pub type StepHook = Arc<dyn Fn(DeletionStep) -> Result<(), StageError> + Send + Sync>;

pub struct Delete {
    versions: DeleteVersions,
    after_step: Option<StepHook>,
}

impl Delete {
    pub fn from_config(config: &PipelineConfig) -> Self {
        Delete {
            versions: config.deletion.versions,
            after_step: None,
        }
    }

    /// The same worker calling `hook` after every step (fault injection for tests).
    pub fn with_step_hook(mut self, hook: StepHook) -> Self {
        self.after_step = Some(hook);
        self
    }

    fn step_done(&self, step: DeletionStep) -> Result<(), StageError> {
        match &self.after_step {
            Some(hook) => hook(step),
            None => Ok(()),
        }
    }
}

impl Stage for Delete {
    const KIND: StageKind = StageKind::Delete;

    async fn process(&self, cx: &StageCx, input: &StageInput) -> Result<StageOutput, StageError> {
        let object = &input.object;
        let version = VersionKey::new(&object.bucket, &object.key, object.version_token());
        if let Some(state) = cx.ledger.state(&version).await.map_err(ledger)?
            && state
                .parse::<StageKind>()
                .is_ok_and(|stage| stage != StageKind::Delete)
        {
            return Err(StageError::retryable(
                "still_processing",
                format!(
                    "{version} is still in the pipeline (at {state}); the deletion waits until it reaches a terminal state"
                ),
            ));
        }
        let object_id = object.object_id();
        let record = cx
            .ledger
            .catalog_get(&object_id)
            .await
            .map_err(ledger)?
            .map(|entry| entry.record);
        let outcomes: Vec<OutcomeMessage> = cx
            .ledger
            .recorded_outcomes(&version)
            .await
            .map_err(ledger)?
            .iter()
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect();

        let tenant = object
            .tenant
            .clone()
            .or_else(|| record.as_ref().and_then(|r| r.tenant.clone()))
            .or_else(|| outcomes.iter().find_map(|o| o.object.tenant.clone()))
            .or_else(|| parse_key(&cx.config.uploads.key_template, &object.key).map(|p| p.tenant));
        let derivatives_bucket = cx.names.bucket(BucketRole::Derivatives);
        let derivatives = list_versions(
            &cx.aws,
            derivatives_bucket,
            &derivatives_prefix(tenant.as_deref(), &object_id),
        )
        .await
        .map_err(s3_failure)?;
        let derivatives_deleted = delete_versions(&cx.aws, derivatives_bucket, &derivatives)
            .await
            .map_err(s3_failure)?;
        self.step_done(DeletionStep::Derivatives)?;

        // The versions this upload produced: the upload itself, every place a stage moved it
        // (promotion, quarantine), and where the catalog says it is now (after archive).
        let mut targets: BTreeSet<(String, String, Option<String>)> = BTreeSet::new();
        let mut add = |o: &ObjectRef| {
            targets.insert((o.bucket.clone(), o.key.clone(), o.version_id.clone()));
        };
        add(object);
        for outcome in &outcomes {
            if let Some(location) = &outcome.location {
                add(location);
            }
        }
        if let Some(record) = &record {
            targets.insert((
                record.store.bucket.clone(),
                record.store.key.clone(),
                record.store.version.clone(),
            ));
        }
        if self.versions == DeleteVersions::All {
            let keys: BTreeSet<(String, String)> = targets
                .iter()
                .map(|(bucket, key, _)| (bucket.clone(), key.clone()))
                .chain(
                    [
                        BucketRole::Uploads,
                        BucketRole::Store,
                        BucketRole::Quarantine,
                    ]
                    .map(|role| (cx.names.bucket(role).to_owned(), object.key.clone())),
                )
                .collect();
            for (bucket, key) in keys {
                for entry in versions_of_key(&cx.aws, &bucket, &key)
                    .await
                    .map_err(s3_failure)?
                {
                    targets.insert((bucket.clone(), entry.key, entry.version_id));
                }
            }
        }
        let mut stored_deleted = 0;
        let buckets: BTreeSet<&String> = targets.iter().map(|(bucket, _, _)| bucket).collect();
        for bucket in buckets {
            let entries: Vec<VersionEntry> = targets
                .iter()
                .filter(|(b, _, _)| b == bucket)
                // Without a version id, DeleteObjects would only add a delete marker.
                .filter(|(_, _, v)| v.is_some())
                .map(|(_, key, version_id)| VersionEntry {
                    key: key.clone(),
                    version_id: version_id.clone(),
                })
                .collect();
            stored_deleted += delete_versions(&cx.aws, bucket, &entries)
                .await
                .map_err(s3_failure)?;
        }
        self.step_done(DeletionStep::Stored)?;

        let record_deleted = cx.ledger.catalog_delete(&object_id).await.map_err(ledger)?;
        self.step_done(DeletionStep::Record)?;

        tracing::info!(object = %version, derivatives_deleted, stored_deleted, record_deleted, "deleted");
        let mut output = StageOutput::outcome("deleted");
        output.tenant = tenant;
        output.extra.insert(
            "deleted".into(),
            serde_json::json!({
                "object_id": object_id,
                "versions": match self.versions {
                    DeleteVersions::All => "all",
                    DeleteVersions::Current => "current",
                },
                "derivatives": derivatives_deleted,
                "stored_versions": stored_deleted,
                "catalog_record": record_deleted,
            }),
        );
        Ok(output)
    }
}

fn ledger(e: StoreError) -> StageError {
    StageError::retryable(e.code(), e.to_string())
}
