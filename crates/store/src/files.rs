//! One file, one version: which version of an uploads key *is* the file. The first version
//! the entry stage accepts wins by a conditional insert; every later version of the key is
//! refused, whatever state the file is in (processing, done, quarantined, deleted). This is
//! the one place the rule lives: the validate stage asks [`Ledger::accept_file_version`]
//! before it judges a version, and the API's file state, `intake status` and `intake
//! reprocess` read the same table (see `uploads::WITH_STATE` and `history`).

use crate::error::StoreError;
use crate::error::query_failed;
use crate::ledger::{Ledger, get};
use crate::types::VersionKey;

/// The answer to [`Ledger::accept_file_version`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileVersion {
    /// This version is the file (now, or since an earlier delivery of the same event).
    Accepted,
    /// Another version of the key is the file; this one never becomes it.
    /// `file_state` is where that version is now (a stage, `done`, `deleted`, ...), or
    /// `None` if the ledger has no state for it yet.
    Refused {
        file_version: String,
        file_state: Option<String>,
    },
}

impl Ledger {
    /// Makes `v` the file of its key unless another version already is. Exactly one of
    /// any number of concurrent callers for different versions of one key is accepted; a
    /// repeated call for the accepted version is accepted again (redeliveries).
    pub async fn accept_file_version(&self, v: &VersionKey) -> Result<FileVersion, StoreError> {
        let failed = |action| query_failed(action, v);
        sqlx::query(
            "INSERT INTO file_versions (bucket, object_key, version, accepted_ms)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (bucket, object_key) DO NOTHING",
        )
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(&v.version)
        .bind(self.clock.now_ms())
        .execute(&self.pool)
        .await
        .map_err(failed("accepting a file version"))?;
        let row = sqlx::query(
            "SELECT f.version, o.state FROM file_versions f
             LEFT JOIN objects o ON o.bucket = f.bucket AND o.object_key = f.object_key
                 AND o.version = f.version
             WHERE f.bucket = $1 AND f.object_key = $2",
        )
        .bind(&v.bucket)
        .bind(&v.key)
        .fetch_one(&self.pool)
        .await
        .map_err(failed("reading a file version"))?;
        let file_version: String = get(&row, "version", v)?;
        if file_version == v.version {
            return Ok(FileVersion::Accepted);
        }
        Ok(FileVersion::Refused {
            file_version,
            file_state: get(&row, "state", v)?,
        })
    }

    /// The version that is the file of bucket/key, if one was accepted.
    pub async fn file_version(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        let target = VersionKey::new(bucket, key, "*");
        let row =
            sqlx::query("SELECT version FROM file_versions WHERE bucket = $1 AND object_key = $2")
                .bind(bucket)
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(query_failed("reading a file version", &target))?;
        row.map(|row| get(&row, "version", &target)).transpose()
    }
}
