//! [`peek`]: decoded messages of one DLQ, left in the queue; [`list`]: every DLQ's depth,
//! oldest message age and counts by error code.

use std::collections::BTreeMap;

use intake_aws::AwsClients;
use intake_core::ResourceNames;
use intake_core::clock::now_ms;
use intake_core::state_machine::StageKind;
use intake_store::Ledger;
use serde::Serialize;

use super::error::DlqError;
use super::message::{DlqMessage, decode};
use super::queue::{QueueDepth, queue_depth, queue_url, receive_and_release};

/// How many messages [`list`] reads from each DLQ to find the oldest one and count codes.
pub const LIST_PEEK_CAP: usize = 1000;

/// One DLQ at a glance, for `intake dlq list`.
#[derive(Clone, Debug, Serialize)]
pub struct DlqSummary {
    pub stage: StageKind,
    pub dlq: String,
    /// Visible plus in flight.
    pub depth: u64,
    pub depth_detail: QueueDepth,
    /// Milliseconds since the oldest `SentTimestamp` among the messages read; `None` for
    /// an empty queue.
    pub oldest_age_ms: Option<i64>,
    /// Messages per error code among the messages read.
    pub codes: BTreeMap<String, u64>,
    /// How many messages were read for `oldest_age_ms` and `codes`: all visible ones, up
    /// to [`LIST_PEEK_CAP`].
    pub examined: usize,
}

/// Up to `n` decoded messages of `stage`'s DLQ, left in the queue and visible again (see
/// the module docs for why this is not a true peek). Receives 10 at a time until `n` or
/// until the queue has nothing more to give.
pub async fn peek(
    aws: &AwsClients,
    names: &ResourceNames,
    ledger: &Ledger,
    stage: StageKind,
    n: usize,
) -> Result<Vec<DlqMessage>, DlqError> {
    let dlq = &names.stage(stage).dlq;
    let url = queue_url(aws, dlq).await?;
    let received = receive_and_release(aws, dlq, &url, n).await?;
    let mut out = Vec::with_capacity(received.len());
    for message in &received {
        out.push(decode(ledger, stage, dlq, message).await?);
    }
    Ok(out)
}

/// Every DLQ of `kinds` (usually `PipelineConfig::queue_kinds()`): depth, oldest message
/// age and counts by code, from a peek of up to [`LIST_PEEK_CAP`] messages each.
pub async fn list(
    aws: &AwsClients,
    names: &ResourceNames,
    ledger: &Ledger,
    kinds: &[StageKind],
) -> Result<Vec<DlqSummary>, DlqError> {
    let mut out = Vec::with_capacity(kinds.len());
    for &stage in kinds {
        let dlq = names.stage(stage).dlq.clone();
        let depth = queue_depth(aws, &dlq).await?;
        let messages = if depth.total() == 0 {
            Vec::new()
        } else {
            peek(aws, names, ledger, stage, LIST_PEEK_CAP).await?
        };
        let mut codes = BTreeMap::new();
        for m in &messages {
            *codes.entry(m.code.clone()).or_insert(0) += 1;
        }
        let now = now_ms();
        out.push(DlqSummary {
            stage,
            depth: depth.total(),
            depth_detail: depth,
            oldest_age_ms: messages
                .iter()
                .filter_map(|m| m.sent_ms)
                .min()
                .map(|sent| (now - sent).max(0)),
            codes,
            examined: messages.len(),
            dlq,
        });
    }
    Ok(out)
}
