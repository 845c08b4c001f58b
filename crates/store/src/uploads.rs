//! Uploads the HTTP API issued: the owner (tenant, user) of every key it signed, under
//! the file id it gave the client, joined with the ledger's state of the version that is
//! the file ([`crate::files`]). The API reads files only through here, so a tenant sees its own.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::StoreError;
use crate::ledger::Ledger;

/// What the API signed for a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    /// The UUID in the key, which the client names the file by.
    pub file_id: String,
    pub tenant: String,
    pub user: String,
    pub bucket: String,
    pub key: String,
    /// The sanitised name, as it is in the key.
    pub filename: String,
    /// The type the client declared (and the signature enforces).
    pub content_type: String,
    pub size: u64,
    /// `put`, `post` or `multipart`.
    pub method: String,
    pub multipart_upload_id: Option<String>,
    pub created_ms: i64,
}

/// An upload with where it is now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadEntry {
    pub record: UploadRecord,
    pub completed_ms: Option<i64>,
    pub deletion_requested_ms: Option<i64>,
    /// The version that is the file (the first one the pipeline accepted for the key) and
    /// its state (the next stage, or a terminal state); `None` until the upload lands.
    pub version: Option<String>,
    pub ledger_state: Option<String>,
    /// The catalog record of that version, once the catalog stage wrote it: the
    /// file is promoted (scanned clean) and can be downloaded.
    pub catalog_object_id: Option<String>,
    /// What the API shows: `awaiting_upload`, `processing`, `done`, `quarantined`,
    /// `failed`, `deleting` or `deleted` (see [`FILE_STATE_SQL`]).
    pub file_state: String,
}

/// Which uploads [`Ledger::uploads_list`] returns, newest first.
#[derive(Clone, Debug, Default)]
pub struct UploadFilter {
    pub tenant: String,
    /// A file state (`processing`, `done`, ...).
    pub state: Option<String>,
    /// At most this many.
    pub limit: u32,
    /// Uploads created strictly before this one (the last file id of the previous page).
    pub before: Option<String>,
}

/// The file states, one place: the ledger state of the file's version mapped for clients.
/// A requested deletion shows until the deletion worker records `deleted`; a stage's name
/// (the next stage to run) is `processing`.
pub const FILE_STATE_SQL: &str = "CASE
        WHEN s.ledger_state = 'deleted' THEN 'deleted'
        WHEN s.deletion_requested_ms IS NOT NULL THEN 'deleting'
        WHEN s.ledger_state IS NULL THEN 'awaiting_upload'
        WHEN s.ledger_state IN ('done', 'quarantined', 'failed') THEN s.ledger_state
        WHEN s.ledger_state = 'delete_failed' THEN 'failed'
        ELSE 'processing'
    END";

/// Every file state [`FILE_STATE_SQL`] yields.
pub const FILE_STATES: [&str; 7] = [
    "awaiting_upload",
    "processing",
    "done",
    "quarantined",
    "failed",
    "deleting",
    "deleted",
];

/// The uploads with the version that is the file ([`crate::files`]: the first one accepted,
/// never a later one), its ledger state and its catalog record; `s` in [`FILE_STATE_SQL`].
const WITH_STATE: &str = "SELECT u.*, f.version AS ledger_version,
        (SELECT o.state FROM objects o WHERE o.bucket = u.bucket
            AND o.object_key = u.object_key AND o.version = f.version) AS ledger_state,
        (SELECT c.object_id FROM catalog c WHERE c.upload_bucket = u.bucket
            AND c.upload_key = u.object_key AND c.upload_version = f.version)
            AS catalog_object_id
    FROM uploads u
    LEFT JOIN file_versions f ON f.bucket = u.bucket AND f.object_key = u.object_key";

impl Ledger {
    /// Records an upload the API signed. The file id is a fresh UUID, so a conflict is a
    /// bug, reported as an error rather than overwriting someone's file.
    pub async fn upload_insert(&self, upload: &UploadRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO uploads (file_id, tenant, user_id, bucket, object_key, filename,
                 content_type, size_bytes, method, multipart_upload_id, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&upload.file_id)
        .bind(&upload.tenant)
        .bind(&upload.user)
        .bind(&upload.bucket)
        .bind(&upload.key)
        .bind(&upload.filename)
        .bind(&upload.content_type)
        .bind(i64::try_from(upload.size).unwrap_or(i64::MAX))
        .bind(&upload.method)
        .bind(&upload.multipart_upload_id)
        .bind(upload.created_ms)
        .execute(&self.pool)
        .await
        .map_err(failed("recording an upload", &upload.file_id))?;
        Ok(())
    }

    /// The upload with this file id, whoever owns it (the caller checks the tenant).
    pub async fn upload_get(&self, file_id: &str) -> Result<Option<UploadEntry>, StoreError> {
        let sql = format!(
            "SELECT s.*, {FILE_STATE_SQL} AS file_state FROM ({WITH_STATE}) s WHERE s.file_id = $1"
        );
        let row = sqlx::query(&sql)
            .bind(file_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(failed("reading an upload", file_id))?;
        row.map(|row| entry(&row, file_id)).transpose()
    }

    /// One tenant's uploads matching `filter`, newest first.
    pub async fn uploads_list(
        &self,
        filter: &UploadFilter,
    ) -> Result<Vec<UploadEntry>, StoreError> {
        let target = format!("the uploads of tenant {}", filter.tenant);
        let cursor = match &filter.before {
            Some(id) => {
                let row = sqlx::query(
                    "SELECT created_ms FROM uploads WHERE file_id = $1 AND tenant = $2",
                )
                .bind(id)
                .bind(&filter.tenant)
                .fetch_optional(&self.pool)
                .await
                .map_err(failed("reading a page cursor", id))?;
                match row {
                    Some(row) => Some((
                        row.try_get::<i64, _>("created_ms")
                            .map_err(failed("reading a page cursor", id))?,
                        id.clone(),
                    )),
                    None => return Ok(Vec::new()),
                }
            }
            None => None,
        };
        let sql = format!(
            "SELECT * FROM (SELECT s.*, {FILE_STATE_SQL} AS file_state FROM ({WITH_STATE}) s
                 WHERE s.tenant = $1) f
             WHERE ($2 IS NULL OR f.file_state = $2)
               AND ($3 IS NULL OR f.created_ms < $3
                    OR (f.created_ms = $3 AND f.file_id < $4))
             ORDER BY f.created_ms DESC, f.file_id DESC
             LIMIT $5"
        );
        let rows = sqlx::query(&sql)
            .bind(&filter.tenant)
            .bind(&filter.state)
            .bind(cursor.as_ref().map(|(ms, _)| *ms))
            .bind(cursor.as_ref().map(|(_, id)| id.clone()))
            .bind(i64::from(filter.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(failed("listing uploads", &target))?;
        rows.iter().map(|row| entry(row, &target)).collect()
    }

    /// Marks a multipart upload completed (the client sent the last part).
    pub async fn upload_completed(&self, file_id: &str, at_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE uploads SET completed_ms = COALESCE(completed_ms, $2) WHERE file_id = $1",
        )
        .bind(file_id)
        .bind(at_ms)
        .execute(&self.pool)
        .await
        .map_err(failed("marking an upload completed", file_id))?;
        Ok(())
    }

    /// Notes that the owner asked for the file's deletion (kept from the first request).
    pub async fn upload_deletion_requested(
        &self,
        file_id: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE uploads SET deletion_requested_ms = COALESCE(deletion_requested_ms, $2)
             WHERE file_id = $1",
        )
        .bind(file_id)
        .bind(at_ms)
        .execute(&self.pool)
        .await
        .map_err(failed("recording a deletion request", file_id))?;
        Ok(())
    }
}

fn entry(row: &AnyRow, target: &str) -> Result<UploadEntry, StoreError> {
    let read = |source| StoreError::Query {
        action: "reading an upload",
        target: target.to_owned(),
        source,
    };
    Ok(UploadEntry {
        record: UploadRecord {
            file_id: row.try_get("file_id").map_err(read)?,
            tenant: row.try_get("tenant").map_err(read)?,
            user: row.try_get("user_id").map_err(read)?,
            bucket: row.try_get("bucket").map_err(read)?,
            key: row.try_get("object_key").map_err(read)?,
            filename: row.try_get("filename").map_err(read)?,
            content_type: row.try_get("content_type").map_err(read)?,
            size: row.try_get::<i64, _>("size_bytes").map_err(read)?.max(0) as u64,
            method: row.try_get("method").map_err(read)?,
            multipart_upload_id: row.try_get("multipart_upload_id").map_err(read)?,
            created_ms: row.try_get("created_ms").map_err(read)?,
        },
        completed_ms: row.try_get("completed_ms").map_err(read)?,
        deletion_requested_ms: row.try_get("deletion_requested_ms").map_err(read)?,
        version: row.try_get("ledger_version").map_err(read)?,
        ledger_state: row.try_get("ledger_state").map_err(read)?,
        catalog_object_id: row.try_get("catalog_object_id").map_err(read)?,
        file_state: row.try_get("file_state").map_err(read)?,
    })
}

fn failed<'a>(
    action: &'static str,
    target: &'a str,
) -> impl FnOnce(sqlx::Error) -> StoreError + 'a {
    move |source| StoreError::Query {
        action,
        target: target.to_owned(),
        source,
    }
}
