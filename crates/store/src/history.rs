//! Reading back what happened to an object: every version's current state and its
//! transitions in the order they were recorded, for `intake status`.

use std::collections::HashMap;

use crate::error::{StoreError, query_failed};
use crate::ledger::{Ledger, attempt, get};
use crate::types::VersionKey;

/// One version of an object, where it is now and how it got there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionHistory {
    pub version: String,
    /// The next stage to run, or a terminal state; the first stage while it is running,
    /// `stale` for a version only ever seen through an overtaken event (ledgers of
    /// earlier releases, which dropped late S3 events).
    pub state: String,
    pub updated_ms: i64,
    /// Oldest first.
    pub transitions: Vec<Transition>,
}

/// One recorded step: a completion, a retryable failure ("retry") or a stale event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub stage: String,
    pub outcome: String,
    pub code: Option<String>,
    pub detail: Option<String>,
    /// The claim's attempt number; 0 for a stale event, which had no claim.
    pub attempt: u32,
    /// Empty for a stale event.
    pub worker: String,
    pub started_ms: i64,
    pub finished_ms: i64,
}

impl Ledger {
    /// The version of every key in `bucket` that starts with `prefix` that is the file
    /// ([`crate::files`]; the newest the ledger saw for a key with none), with its state:
    /// (key, version, state), keys in order.
    pub async fn latest_versions(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let target = VersionKey::new(bucket, format!("{prefix}*"), "*");
        // substr/length rather than LIKE: keys may hold % and _, which LIKE would treat as
        // wildcards.
        let rows = sqlx::query(
            "SELECT o.object_key, o.version, o.state FROM objects o
             LEFT JOIN file_versions f ON f.bucket = o.bucket AND f.object_key = o.object_key
             WHERE o.bucket = $1 AND substr(o.object_key, 1, length($2)) = $2
             ORDER BY o.object_key, CASE WHEN o.version = f.version THEN 0 ELSE 1 END, o.id DESC",
        )
        .bind(bucket)
        .bind(prefix)
        .fetch_all(&self.pool)
        .await
        .map_err(query_failed("listing versions under a prefix", &target))?;
        let mut out: Vec<(String, String, String)> = Vec::new();
        for row in &rows {
            let key: String = get(row, "object_key", &target)?;
            if out.last().is_some_and(|(last, _, _)| *last == key) {
                continue;
            }
            out.push((
                key,
                get(row, "version", &target)?,
                get(row, "state", &target)?,
            ));
        }
        Ok(out)
    }

    /// The current state of one version, or `None` if the ledger has never seen it.
    pub async fn state(&self, v: &VersionKey) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT state FROM objects WHERE bucket = $1 AND object_key = $2 AND version = $3",
        )
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(&v.version)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_failed("reading an object's state", v))?;
        row.map(|row| get(&row, "state", v)).transpose()
    }

    /// Current state and full transition history of every version of bucket/key, newest
    /// version first. "Newest" is the order the ledger first saw the versions: S3
    /// version ids carry no order of their own.
    pub async fn history(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Vec<VersionHistory>, StoreError> {
        // Errors name the object, not one version of it.
        let target = VersionKey::new(bucket, key, "*");
        let failed = |action| query_failed(action, &target);
        let versions = sqlx::query(
            "SELECT version, state, updated_ms FROM objects
             WHERE bucket = $1 AND object_key = $2
             ORDER BY id DESC",
        )
        .bind(bucket)
        .bind(key)
        .fetch_all(&self.pool)
        .await
        .map_err(failed("reading object versions"))?;
        let mut out = Vec::with_capacity(versions.len());
        let mut index = HashMap::with_capacity(versions.len());
        for row in &versions {
            let version: String = get(row, "version", &target)?;
            index.insert(version.clone(), out.len());
            out.push(VersionHistory {
                version,
                state: get(row, "state", &target)?,
                updated_ms: get(row, "updated_ms", &target)?,
                transitions: Vec::new(),
            });
        }

        let transitions = sqlx::query(
            "SELECT version, stage, outcome, code, detail, attempt, worker, started_ms, finished_ms
             FROM transitions
             WHERE bucket = $1 AND object_key = $2
             ORDER BY id",
        )
        .bind(bucket)
        .bind(key)
        .fetch_all(&self.pool)
        .await
        .map_err(failed("reading transitions"))?;
        for row in &transitions {
            let version: String = get(row, "version", &target)?;
            // Every writer of a transition creates its objects row first, in the same
            // transaction or before; a missing one would be a transition of a version
            // we cannot show, so it is skipped rather than invented.
            let Some(&i) = index.get(&version) else {
                continue;
            };
            out[i].transitions.push(Transition {
                stage: get(row, "stage", &target)?,
                outcome: get(row, "outcome", &target)?,
                code: get(row, "code", &target)?,
                detail: get(row, "detail", &target)?,
                attempt: attempt(&target, get(row, "attempt", &target)?)?,
                worker: get(row, "worker", &target)?,
                started_ms: get(row, "started_ms", &target)?,
                finished_ms: get(row, "finished_ms", &target)?,
            });
        }
        Ok(out)
    }
}
