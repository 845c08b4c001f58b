//! `intake delete`: queue the deletion of files for the deletion worker. A target is an
//! object id (from `intake catalog list`) or `s3://BUCKET/KEY` in any of the pipeline's
//! buckets; every upload version it names is queued once. The worker (in `intake run`)
//! removes the stored versions, derivatives and catalog record and publishes `deleted`.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use intake_aws::AwsClients;
use intake_core::clock::now_ms;
use intake_core::names::BucketRole;
use intake_core::state_machine::DELETED_STATE;
use intake_core::{ObjectRef, PipelineConfig, ResourceNames};
use intake_store::{Ledger, VersionKey};

use std::path::Path;

use crate::common::{Failure, LedgerLocation, parse_uri, requester};

/// An upload version to delete, and the tenant when the catalog knows it.
struct Target {
    version: VersionKey,
    tenant: Option<String>,
    state: String,
}

pub async fn run(
    config: &PipelineConfig,
    config_path: &Path,
    targets: &[String],
    only_version: Option<&str>,
    requested_by: Option<String>,
) -> Result<(), Failure> {
    let names = ResourceNames::of(config);
    let ledger = LedgerLocation::of(config, config_path).open().await?;

    let mut found: BTreeMap<VersionKey, Target> = BTreeMap::new();
    for target in targets {
        let matched = resolve(&ledger, &names, target, only_version).await?;
        if matched.is_empty() {
            let version = only_version
                .map(|v| format!(" with version {v}"))
                .unwrap_or_default();
            return Err(anyhow::anyhow!(
                "{target}{version}: nothing in the ledger or the catalog matches; check the id with `intake catalog list` or the key with `intake status s3://{}/KEY`",
                names.bucket(BucketRole::Uploads)
            )
            .into());
        }
        for t in matched {
            found.entry(t.version.clone()).or_insert(t);
        }
    }

    let aws = AwsClients::load(&config.aws).await;
    let requested_by = requester(requested_by);
    let now_ms = now_ms();
    for target in found.values() {
        let object = ObjectRef {
            bucket: target.version.bucket.clone(),
            key: target.version.key.clone(),
            version_id: Some(target.version.version.clone()),
            etag: None,
            size: 0,
            tenant: target.tenant.clone(),
            user: None,
            sequencer: None,
        };
        if target.state == DELETED_STATE {
            println!(
                "{} (version {}): already deleted",
                object.uri(),
                target.version.version
            );
            continue;
        }
        intake_ops::deletion::queue_deletion(&aws, &names, object.clone(), &requested_by, now_ms)
            .await
            .context("queueing a deletion; run `intake provision` first if the queue is missing")?;
        println!(
            "queued deletion of {} (version {}, object id {}); follow it with `intake status {}`",
            object.uri(),
            target.version.version,
            object.object_id(),
            object.uri()
        );
    }
    ledger.close().await;
    Ok(())
}

/// The upload versions `target` names.
async fn resolve(
    ledger: &Ledger,
    names: &ResourceNames,
    target: &str,
    only_version: Option<&str>,
) -> anyhow::Result<Vec<Target>> {
    let mut out = Vec::new();
    if target.starts_with("s3://") {
        let (bucket, key) = parse_uri(target)?;
        for entry in ledger.catalog_find(bucket, key).await? {
            let record = entry.record;
            if only_version.is_none_or(|v| {
                v == record.upload.version || Some(v) == record.store.version.as_deref()
            }) {
                out.push(Target {
                    version: record.upload,
                    tenant: record.tenant,
                    state: entry.state,
                });
            }
        }
        // Versions that never reached the catalog (quarantined, failed, in flight) are known
        // to the ledger under the uploads bucket; stages keep the key when they move a file.
        let uploads = names.bucket(BucketRole::Uploads);
        for history in ledger.history(uploads, key).await? {
            if only_version.is_none_or(|v| v == history.version) {
                out.push(Target {
                    version: VersionKey::new(uploads, key, &history.version),
                    tenant: None,
                    state: history.state,
                });
            }
        }
    } else if target.len() == 32 && target.bytes().all(|b| b.is_ascii_hexdigit()) {
        if let Some(entry) = ledger.catalog_get(&target.to_ascii_lowercase()).await? {
            out.push(Target {
                version: entry.record.upload,
                tenant: entry.record.tenant,
                state: entry.state,
            });
        }
    } else {
        bail!(
            "\"{target}\" is neither an object id (32 hex digits, from `intake catalog list`) nor s3://BUCKET/KEY"
        );
    }
    Ok(out)
}
