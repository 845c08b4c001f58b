//! What each stage did in a time window, for `intake stats`: completions, failures,
//! retries, and how long completions took, read from the append-only `transitions` table.
//!
//! A transition belongs to the window when it finished at or after `since_ms`. Stale
//! events (kind `stale`) are not stage work and are left out. Percentiles are computed by
//! the database one row at a time (`ORDER BY ... LIMIT 1 OFFSET k`), so a busy window
//! costs two small answers per stage rather than every duration over the wire; neither
//! backend shares a percentile function with the other.

use std::collections::BTreeMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::StoreError;
use crate::ledger::Ledger;

/// One stage's activity in a window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StageActivity {
    /// The stage name as workers record it (`scan`, `delete`, ...).
    pub stage: String,
    /// Completions (transition kind `completed`), whatever their outcome.
    pub completed: u64,
    /// Completions whose outcome is `failed`.
    pub failed: u64,
    /// Retryable failures: released claims, outcome `retry`.
    pub retried: u64,
    /// Median of `finished_ms - started_ms` over the completions (nearest rank); `None`
    /// without completions.
    pub p50_ms: Option<i64>,
    /// 99th percentile of the same (nearest rank).
    pub p99_ms: Option<i64>,
}

impl Ledger {
    /// Every stage that recorded a completion or a retry finishing at or after
    /// `since_ms`, by stage name. Stages with nothing in the window are absent.
    pub async fn stage_activity(&self, since_ms: i64) -> Result<Vec<StageActivity>, StoreError> {
        let target = format!("transitions finished since {since_ms} ms");
        let rows = sqlx::query(
            "SELECT stage, kind, outcome, COUNT(*) AS n FROM transitions
             WHERE finished_ms >= $1 AND kind IN ('completed', 'released')
             GROUP BY stage, kind, outcome",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(|source| StoreError::Query {
            action: "counting transitions per stage",
            target: target.clone(),
            source,
        })?;
        let mut by_stage: BTreeMap<String, StageActivity> = BTreeMap::new();
        for row in &rows {
            let stage: String = column(row, "stage", &target)?;
            let kind: String = column(row, "kind", &target)?;
            let outcome: String = column(row, "outcome", &target)?;
            let n: i64 = column(row, "n", &target)?;
            let n = u64::try_from(n).map_err(|_| StoreError::Corrupt {
                target: target.clone(),
                column: "count",
                value: n,
            })?;
            let entry = by_stage
                .entry(stage.clone())
                .or_insert_with(|| StageActivity {
                    stage,
                    ..StageActivity::default()
                });
            match (kind.as_str(), outcome.as_str()) {
                ("completed", "failed") => {
                    entry.completed += n;
                    entry.failed += n;
                }
                ("completed", _) => entry.completed += n,
                (_, "retry") => entry.retried += n,
                // A release always records `retry`; anything else was not written by
                // Intake and is not counted.
                _ => {}
            }
        }
        for activity in by_stage.values_mut() {
            if activity.completed == 0 {
                continue;
            }
            activity.p50_ms = self
                .completion_duration_at(&activity.stage, since_ms, rank(activity.completed, 50))
                .await?;
            activity.p99_ms = self
                .completion_duration_at(&activity.stage, since_ms, rank(activity.completed, 99))
                .await?;
        }
        Ok(by_stage.into_values().collect())
    }

    /// The duration of the `offset`-th shortest completion (0-based) of `stage` in the
    /// window.
    async fn completion_duration_at(
        &self,
        stage: &str,
        since_ms: i64,
        offset: u64,
    ) -> Result<Option<i64>, StoreError> {
        let target = format!("{stage} completions finished since {since_ms} ms");
        let row = sqlx::query(
            "SELECT finished_ms - started_ms AS duration_ms FROM transitions
             WHERE stage = $1 AND kind = 'completed' AND finished_ms >= $2
             ORDER BY duration_ms
             LIMIT 1 OFFSET $3",
        )
        .bind(stage)
        .bind(since_ms)
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_optional(&self.pool)
        .await
        .map_err(|source| StoreError::Query {
            action: "reading a completion duration percentile",
            target: target.clone(),
            source,
        })?;
        row.map(|row| column(&row, "duration_ms", &target))
            .transpose()
    }
}

/// The 0-based position of the `percent`-th percentile among `n` sorted values, by the
/// nearest-rank method: the smallest value with at least `percent`% of values at or
/// below it.
fn rank(n: u64, percent: u64) -> u64 {
    (n * percent).div_ceil(100).max(1) - 1
}

fn column<'r, T>(row: &'r AnyRow, name: &'static str, target: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(name).map_err(|source| StoreError::Query {
        action: "reading a transitions row",
        target: target.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::rank;

    #[test]
    fn nearest_rank_positions() {
        assert_eq!(rank(1, 50), 0);
        assert_eq!(rank(1, 99), 0);
        assert_eq!(rank(2, 50), 0);
        assert_eq!(rank(10, 50), 4);
        assert_eq!(rank(10, 99), 9);
        assert_eq!(rank(100, 99), 98);
        assert_eq!(rank(200, 99), 197);
    }
}
