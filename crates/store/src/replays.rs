//! The record of DLQ replays: an operator's replay is an intervention in the pipeline, so
//! the ledger keeps who ran it, when, on which stage, with which filter, and its result.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::error::StoreError;
use crate::ledger::Ledger;

/// One replay, as recorded when it finished (or was interrupted and reported).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayRecord {
    pub stage: String,
    pub requested_by: String,
    /// The filter as the operator wrote it (`tenant=a,code=b`), empty for none.
    pub filter: String,
    /// `move_task` (SQS StartMessageMoveTask) or `receive_send_delete`.
    pub method: String,
    pub dry_run: bool,
    /// Messages that matched the filter.
    pub matched: u64,
    /// Messages sent back to the stage queue (0 in a dry run).
    pub moved: u64,
    pub started_ms: i64,
    pub finished_ms: i64,
}

impl Ledger {
    pub async fn record_replay(&self, replay: &ReplayRecord) -> Result<(), StoreError> {
        let target = format!("a replay of the {} DLQ", replay.stage);
        sqlx::query(
            "INSERT INTO replays (stage, requested_by, filter, method, dry_run, matched, moved,
                 started_ms, finished_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&replay.stage)
        .bind(&replay.requested_by)
        .bind(&replay.filter)
        .bind(&replay.method)
        .bind(i64::from(replay.dry_run))
        .bind(i64::try_from(replay.matched).unwrap_or(i64::MAX))
        .bind(i64::try_from(replay.moved).unwrap_or(i64::MAX))
        .bind(replay.started_ms)
        .bind(replay.finished_ms)
        .execute(&self.pool)
        .await
        .map_err(|source| StoreError::Query {
            action: "recording a replay",
            target,
            source,
        })?;
        Ok(())
    }

    /// Replays of `stage` (every stage when `None`), newest first.
    pub async fn replays(&self, stage: Option<&str>) -> Result<Vec<ReplayRecord>, StoreError> {
        let failed = |source| StoreError::Query {
            action: "reading replays",
            target: "the replay record".into(),
            source,
        };
        let rows = sqlx::query(
            "SELECT stage, requested_by, filter, method, dry_run, matched, moved, started_ms,
                 finished_ms
             FROM replays WHERE ($1 IS NULL OR stage = $1) ORDER BY id DESC",
        )
        .bind(stage)
        .fetch_all(&self.pool)
        .await
        .map_err(failed)?;
        rows.iter()
            .map(|row| {
                let count = |name| row.try_get::<i64, _>(name).map(|n| n.max(0) as u64);
                Ok(ReplayRecord {
                    stage: row.try_get("stage")?,
                    requested_by: row.try_get("requested_by")?,
                    filter: row.try_get("filter")?,
                    method: row.try_get("method")?,
                    dry_run: row.try_get::<i64, _>("dry_run")? != 0,
                    matched: count("matched")?,
                    moved: count("moved")?,
                    started_ms: row.try_get("started_ms")?,
                    finished_ms: row.try_get("finished_ms")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(failed)
    }
}
