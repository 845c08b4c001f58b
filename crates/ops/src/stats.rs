//! Per-stage statistics for `intake stats`: what each stage did since a time, from the
//! ledger's transitions (completions, `failed` completions, retries, p50/p99 of completion
//! durations), and how much waits in its queue and its DLQ right now, from SQS.
//!
//! Counts are of transitions, not messages: a message that failed three times and then
//! passed is one completion and three retries. Percentiles are nearest-rank over the
//! completions in the window ([`intake_store::Ledger::stage_activity`]).

use intake_aws::AwsClients;
use intake_core::ResourceNames;
use intake_core::state_machine::StageKind;
use intake_store::{Ledger, StoreError};
use serde::Serialize;

use crate::dlq::{DlqError, QueueDepth, queue_depth};

/// What went wrong gathering statistics.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error(
        "reading stage activity from the ledger: {0}. Check that INTAKE_DATABASE_URL or \
         [ledger] database_url names the ledger the workers use"
    )]
    Ledger(#[source] StoreError),

    #[error("reading the depth of the {stage} queues: {source}")]
    Queue {
        stage: StageKind,
        #[source]
        source: DlqError,
    },
}

/// Every stage's figures, and the window they cover.
#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    /// Transitions that finished at or after this time (epoch ms) are counted.
    pub since_ms: i64,
    pub stages: Vec<StageStats>,
}

/// One stage (or the deletion worker).
#[derive(Clone, Debug, Serialize)]
pub struct StageStats {
    pub stage: StageKind,
    /// Completions, whatever the outcome.
    pub processed: u64,
    /// Completions with outcome `failed`.
    pub failed: u64,
    /// Retryable failures (outcome `retry`).
    pub retried: u64,
    /// Median completion duration (`finished_ms - started_ms`); `None` without
    /// completions.
    pub p50_ms: Option<i64>,
    pub p99_ms: Option<i64>,
    pub queue: String,
    /// Visible plus in flight.
    pub queue_depth: u64,
    pub queue_depth_detail: QueueDepth,
    pub dlq: String,
    pub dlq_depth: u64,
    pub dlq_depth_detail: QueueDepth,
}

/// Figures for each of `kinds` (usually `PipelineConfig::queue_kinds()`), in that order,
/// counting what finished at or after `since_ms`. Stages without activity have zeros.
pub async fn stats(
    ledger: &Ledger,
    aws: &AwsClients,
    names: &ResourceNames,
    kinds: &[StageKind],
    since_ms: i64,
) -> Result<Stats, StatsError> {
    let activity = ledger
        .stage_activity(since_ms)
        .await
        .map_err(StatsError::Ledger)?;
    let mut stages = Vec::with_capacity(kinds.len());
    for &stage in kinds {
        let queues = names.stage(stage);
        let depth = |queue: String| async move {
            queue_depth(aws, &queue)
                .await
                .map_err(|source| StatsError::Queue { stage, source })
        };
        let queue_depth = depth(queues.queue.clone()).await?;
        let dlq_depth = depth(queues.dlq.clone()).await?;
        let seen = activity.iter().find(|a| a.stage == stage.name());
        stages.push(StageStats {
            stage,
            processed: seen.map_or(0, |a| a.completed),
            failed: seen.map_or(0, |a| a.failed),
            retried: seen.map_or(0, |a| a.retried),
            p50_ms: seen.and_then(|a| a.p50_ms),
            p99_ms: seen.and_then(|a| a.p99_ms),
            queue: queues.queue.clone(),
            queue_depth: queue_depth.total(),
            queue_depth_detail: queue_depth,
            dlq: queues.dlq.clone(),
            dlq_depth: dlq_depth.total(),
            dlq_depth_detail: dlq_depth,
        });
    }
    Ok(Stats { since_ms, stages })
}
