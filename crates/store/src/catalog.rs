//! The catalog: one record per promoted object version, what applications read. The
//! catalog stage inserts it (once: a re-delivery finds it there and changes nothing), the
//! archive stage records the storage class, a deletion removes it. Reads join the
//! object's ledger state and the completion time of every stage.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::StoreError;
use crate::ledger::Ledger;
use crate::types::VersionKey;

/// Everything the pipeline learned about one object version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogRecord {
    /// `ObjectRef::object_id` of the upload: 32 hex digits, stable across retries.
    pub object_id: String,
    /// The upload version this record is about (the ledger's key).
    pub upload: VersionKey,
    pub tenant: Option<String>,
    pub user: Option<String>,
    /// The name the user gave the file, read from the key template.
    pub filename: Option<String>,
    /// Where the promoted bytes are now.
    pub store: StoredAt,
    pub size: u64,
    /// Detected from the content (magic bytes), never the declared type.
    pub content_type: Option<String>,
    pub class: Option<String>,
    /// Lowercase hex SHA-256 of the stored bytes.
    pub sha256: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub renditions: Vec<RenditionRecord>,
    pub scan: Option<ScanRecord>,
    /// `STANDARD` until the archive stage moves the object.
    pub storage_class: String,
    /// What the archive stage decided, e.g. `kept: below_minimum_size (...)`.
    pub archive_note: Option<String>,
    pub cataloged_ms: i64,
    pub updated_ms: i64,
}

/// A location in S3: bucket, key and (in versioned buckets) version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAt {
    pub bucket: String,
    pub key: String,
    pub version: Option<String>,
}

/// One derivative written by the thumbnail stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenditionRecord {
    pub name: String,
    pub bucket: String,
    pub key: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    pub content_type: String,
}

/// The scan stage's verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRecord {
    /// `clean`, or `unscanned` when the scanner is `none`.
    pub verdict: String,
    pub engine: Option<String>,
    pub scanned_at: Option<String>,
}

/// A record with where its object is in the state machine and when each stage finished.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    #[serde(flatten)]
    pub record: CatalogRecord,
    /// The ledger state of the upload version: the next stage, or `done`.
    pub state: String,
    /// Completed stages, in the order they completed.
    pub stages: Vec<StageTime>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageTime {
    pub stage: String,
    pub outcome: String,
    pub started_ms: i64,
    pub finished_ms: i64,
}

/// Which records [`Ledger::catalog_list`] returns, newest first.
#[derive(Clone, Debug, Default)]
pub struct CatalogFilter {
    pub tenant: Option<String>,
    /// Ledger state (`done`, `archive`, ...).
    pub state: Option<String>,
    /// At most this many (default 100).
    pub limit: Option<u32>,
    /// Records cataloged strictly before this one (a page cursor: the last object id of
    /// the previous page).
    pub before: Option<String>,
}

const COLUMNS: &str = "c.object_id, c.upload_bucket, c.upload_key, c.upload_version, c.tenant,
    c.user_id, c.filename, c.store_bucket, c.store_key, c.store_version, c.size_bytes,
    c.content_type, c.class, c.sha256, c.width, c.height, c.renditions_json, c.scan_verdict,
    c.scan_engine, c.scanned_at, c.storage_class, c.archive_note, c.cataloged_ms,
    c.updated_ms, COALESCE(o.state, 'unknown') AS state";

const FROM: &str = "FROM catalog c LEFT JOIN objects o
    ON o.bucket = c.upload_bucket AND o.object_key = c.upload_key
   AND o.version = c.upload_version";

impl Ledger {
    /// Inserts `record` unless one with its object id exists. Returns whether it was
    /// inserted: `false` means a previous delivery already cataloged this version and
    /// nothing was changed.
    pub async fn catalog_insert(&self, record: &CatalogRecord) -> Result<bool, StoreError> {
        let target = record.object_id.as_str();
        let renditions =
            serde_json::to_string(&record.renditions).map_err(|e| StoreError::Encode {
                target: target.to_owned(),
                reason: e.to_string(),
            })?;
        let inserted = sqlx::query(
            "INSERT INTO catalog (object_id, upload_bucket, upload_key, upload_version, tenant,
                 user_id, filename, store_bucket, store_key, store_version, size_bytes,
                 content_type, class, sha256, width, height, renditions_json, scan_verdict,
                 scan_engine, scanned_at, storage_class, archive_note, cataloged_ms, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                 $17, $18, $19, $20, $21, $22, $23, $24)
             ON CONFLICT (object_id) DO NOTHING",
        )
        .bind(&record.object_id)
        .bind(&record.upload.bucket)
        .bind(&record.upload.key)
        .bind(&record.upload.version)
        .bind(&record.tenant)
        .bind(&record.user)
        .bind(&record.filename)
        .bind(&record.store.bucket)
        .bind(&record.store.key)
        .bind(&record.store.version)
        .bind(to_i64(record.size))
        .bind(&record.content_type)
        .bind(&record.class)
        .bind(&record.sha256)
        .bind(record.width.map(i64::from))
        .bind(record.height.map(i64::from))
        .bind(renditions)
        .bind(record.scan.as_ref().map(|s| s.verdict.clone()))
        .bind(record.scan.as_ref().and_then(|s| s.engine.clone()))
        .bind(record.scan.as_ref().and_then(|s| s.scanned_at.clone()))
        .bind(&record.storage_class)
        .bind(&record.archive_note)
        .bind(record.cataloged_ms)
        .bind(record.updated_ms)
        .execute(&self.pool)
        .await
        .map_err(failed("inserting a catalog record", target))?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Records where the archive stage left the object: its storage class, the store
    /// version now current, and why. Returns `false` when there is no such record.
    pub async fn catalog_set_storage(
        &self,
        object_id: &str,
        store_version: Option<&str>,
        storage_class: &str,
        note: &str,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE catalog SET store_version = $2, storage_class = $3, archive_note = $4,
                 updated_ms = $5
             WHERE object_id = $1",
        )
        .bind(object_id)
        .bind(store_version)
        .bind(storage_class)
        .bind(note)
        .bind(self.clock.now_ms())
        .execute(&self.pool)
        .await
        .map_err(failed("recording a storage class", object_id))?;
        Ok(updated.rows_affected() == 1)
    }

    /// Removes the record. Returns whether there was one (a retried deletion finds none).
    pub async fn catalog_delete(&self, object_id: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM catalog WHERE object_id = $1")
            .bind(object_id)
            .execute(&self.pool)
            .await
            .map_err(failed("deleting a catalog record", object_id))?;
        Ok(deleted.rows_affected() == 1)
    }

    /// The record with this object id.
    pub async fn catalog_get(&self, object_id: &str) -> Result<Option<CatalogEntry>, StoreError> {
        let sql = format!("SELECT {COLUMNS} {FROM} WHERE c.object_id = $1");
        let row = sqlx::query(&sql)
            .bind(object_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(failed("reading a catalog record", object_id))?;
        match row {
            Some(row) => Ok(Some(self.entry(&row).await?)),
            None => Ok(None),
        }
    }

    /// Records whose upload or stored object is `bucket`/`key` (any version), newest first.
    pub async fn catalog_find(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Vec<CatalogEntry>, StoreError> {
        let target = format!("s3://{bucket}/{key}");
        let sql = format!(
            "SELECT {COLUMNS} {FROM}
             WHERE (c.upload_bucket = $1 AND c.upload_key = $2)
                OR (c.store_bucket = $1 AND c.store_key = $2)
             ORDER BY c.cataloged_ms DESC, c.object_id DESC"
        );
        let rows = sqlx::query(&sql)
            .bind(bucket)
            .bind(key)
            .fetch_all(&self.pool)
            .await
            .map_err(failed("finding catalog records", &target))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(self.entry(row).await?);
        }
        Ok(out)
    }

    /// Records matching `filter`, newest first.
    pub async fn catalog_list(
        &self,
        filter: &CatalogFilter,
    ) -> Result<Vec<CatalogEntry>, StoreError> {
        let target = "the catalog";
        let cursor = match &filter.before {
            Some(id) => {
                let row = sqlx::query("SELECT cataloged_ms FROM catalog WHERE object_id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(failed("reading a page cursor", id))?;
                match row {
                    Some(row) => Some((column::<i64>(&row, "cataloged_ms", id)?, id.clone())),
                    None => return Ok(Vec::new()),
                }
            }
            None => None,
        };
        // Unused filters compare a parameter with itself, so one statement serves all.
        let sql = format!(
            "SELECT {COLUMNS} {FROM}
             WHERE ($1 IS NULL OR c.tenant = $1)
               AND ($2 IS NULL OR COALESCE(o.state, 'unknown') = $2)
               AND ($3 IS NULL OR c.cataloged_ms < $3
                    OR (c.cataloged_ms = $3 AND c.object_id < $4))
             ORDER BY c.cataloged_ms DESC, c.object_id DESC
             LIMIT $5"
        );
        let rows = sqlx::query(&sql)
            .bind(&filter.tenant)
            .bind(&filter.state)
            .bind(cursor.as_ref().map(|(ms, _)| *ms))
            .bind(cursor.as_ref().map(|(_, id)| id.clone()))
            .bind(i64::from(filter.limit.unwrap_or(100)))
            .fetch_all(&self.pool)
            .await
            .map_err(failed("listing the catalog", target))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(self.entry(row).await?);
        }
        Ok(out)
    }

    /// Every outcome recorded for this version, in the order the stages completed: what
    /// each stage published (the outbox keeps them after publishing).
    pub async fn recorded_outcomes(&self, v: &VersionKey) -> Result<Vec<String>, StoreError> {
        let target = v.to_string();
        // Ordered by the completion's transition (written in the same transaction as the
        // outbox row), not by created_ms: stages finishing in the same millisecond, or on
        // workers whose clocks disagree, would otherwise come back by stage name. A row
        // without its transition (never written by Intake) is kept, last.
        let rows = sqlx::query(
            "SELECT o.outcome_json FROM outbox o
             LEFT JOIN transitions t ON t.bucket = o.bucket AND t.object_key = o.object_key
                 AND t.version = o.version AND t.stage = o.stage AND t.kind = 'completed'
             WHERE o.bucket = $1 AND o.object_key = $2 AND o.version = $3
             ORDER BY t.id IS NULL, t.id, o.created_ms, o.stage",
        )
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(&v.version)
        .fetch_all(&self.pool)
        .await
        .map_err(failed("reading recorded outcomes", &target))?;
        rows.iter()
            .map(|row| column(row, "outcome_json", &target))
            .collect()
    }

    async fn entry(&self, row: &AnyRow) -> Result<CatalogEntry, StoreError> {
        let id: String = column(row, "object_id", "a catalog record")?;
        let id = id.as_str();
        let renditions_json: String = column(row, "renditions_json", id)?;
        let renditions =
            serde_json::from_str(&renditions_json).map_err(|e| StoreError::Decode {
                target: id.to_owned(),
                column: "renditions_json",
                reason: e.to_string(),
            })?;
        let upload = VersionKey::new(
            column::<String>(row, "upload_bucket", id)?,
            column::<String>(row, "upload_key", id)?,
            column::<String>(row, "upload_version", id)?,
        );
        // An unreadable engine or scan time is an error like any other column, not a
        // silently missing value.
        let scan = match column::<Option<String>>(row, "scan_verdict", id)? {
            Some(verdict) => Some(ScanRecord {
                verdict,
                engine: column(row, "scan_engine", id)?,
                scanned_at: column(row, "scanned_at", id)?,
            }),
            None => None,
        };
        let record = CatalogRecord {
            object_id: id.to_owned(),
            tenant: column(row, "tenant", id)?,
            user: column(row, "user_id", id)?,
            filename: column(row, "filename", id)?,
            store: StoredAt {
                bucket: column(row, "store_bucket", id)?,
                key: column(row, "store_key", id)?,
                version: column(row, "store_version", id)?,
            },
            size: non_negative(id, "size_bytes", column(row, "size_bytes", id)?)?,
            content_type: column(row, "content_type", id)?,
            class: column(row, "class", id)?,
            sha256: column(row, "sha256", id)?,
            width: dimension(id, "width", column(row, "width", id)?)?,
            height: dimension(id, "height", column(row, "height", id)?)?,
            renditions,
            scan,
            storage_class: column(row, "storage_class", id)?,
            archive_note: column(row, "archive_note", id)?,
            cataloged_ms: column(row, "cataloged_ms", id)?,
            updated_ms: column(row, "updated_ms", id)?,
            upload,
        };
        let stages = self.stage_times(&record.upload).await?;
        Ok(CatalogEntry {
            state: column(row, "state", id)?,
            stages,
            record,
        })
    }

    async fn stage_times(&self, v: &VersionKey) -> Result<Vec<StageTime>, StoreError> {
        let target = v.to_string();
        let rows = sqlx::query(
            "SELECT stage, outcome, started_ms, finished_ms FROM transitions
             WHERE bucket = $1 AND object_key = $2 AND version = $3 AND kind = 'completed'
             ORDER BY id",
        )
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(&v.version)
        .fetch_all(&self.pool)
        .await
        .map_err(failed("reading stage times", &target))?;
        rows.iter()
            .map(|row| {
                Ok(StageTime {
                    stage: column(row, "stage", &target)?,
                    outcome: column(row, "outcome", &target)?,
                    started_ms: column(row, "started_ms", &target)?,
                    finished_ms: column(row, "finished_ms", &target)?,
                })
            })
            .collect()
    }
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

fn column<'r, T>(row: &'r AnyRow, name: &'static str, target: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(name)
        .map_err(failed("reading a catalog row", target))
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn non_negative(target: &str, column: &'static str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        target: target.to_owned(),
        column,
        value,
    })
}

fn dimension(
    target: &str,
    column: &'static str,
    value: Option<i64>,
) -> Result<Option<u32>, StoreError> {
    value
        .map(|v| {
            u32::try_from(v).map_err(|_| StoreError::Corrupt {
                target: target.to_owned(),
                column,
                value: v,
            })
        })
        .transpose()
}
