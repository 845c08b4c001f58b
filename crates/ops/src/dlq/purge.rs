//! [`purge`]: deleting every message of a DLQ by receive-and-delete, with an exact count.

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use intake_aws::AwsClients;
use intake_aws::error::{AwsError, classify};
use intake_core::ResourceNames;
use intake_core::state_machine::StageKind;
use serde::Serialize;

use super::error::DlqError;
use super::queue::{BATCH, PEEK_VISIBILITY, queue_depth, queue_url, receive};

/// What [`purge`] did.
#[derive(Clone, Debug, Serialize)]
pub struct Purged {
    pub stage: StageKind,
    pub dlq: String,
    /// Messages deleted: exactly those received and deleted.
    pub removed: u64,
    /// Messages left because they were in flight (invisible: being peeked or replayed by
    /// someone else) when the purge ended, as SQS approximates it right after.
    pub left_in_flight: u64,
}

/// Deletes every message in `stage`'s DLQ and says how many.
///
/// This receives and deletes (`DeleteMessageBatch`, 10 at a time) rather than calling
/// `PurgeQueue`: the count is exact (only deleted messages are counted, not an estimate
/// taken before), it is done when it returns (`PurgeQueue` may take up to 60 s and may be
/// called once a minute), and a purge interrupted half way has deleted only what it
/// counted. Messages in flight (invisible because someone else is peeking or replaying
/// them) are not removed; [`Purged::left_in_flight`] says how many there were.
pub async fn purge(
    aws: &AwsClients,
    names: &ResourceNames,
    stage: StageKind,
) -> Result<Purged, DlqError> {
    let dlq = names.stage(stage).dlq.clone();
    let url = queue_url(aws, &dlq).await?;
    let mut removed = 0u64;
    loop {
        let batch = receive(aws, &dlq, &url, BATCH, PEEK_VISIBILITY).await?;
        if batch.is_empty() {
            break;
        }
        let entries: Vec<_> = batch
            .iter()
            .enumerate()
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()
                    .expect("id and receipt handle are set")
            })
            .collect();
        let answer = aws
            .sqs
            .delete_message_batch()
            .queue_url(&url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| classify(&aws.endpoint, "DeleteMessageBatch", &dlq, e))?;
        removed += answer.successful().len() as u64;
        if let Some(failed) = answer.failed().first() {
            // Not deleted: the message becomes visible again after PEEK_VISIBILITY and a
            // later receive of this loop would only find it once that has passed.
            return Err(DlqError::Aws(AwsError::Call {
                operation: "DeleteMessageBatch",
                resource: dlq.clone(),
                code: Some(failed.code().to_owned()),
                message: format!(
                    "{} of {} deletions refused ({}); {removed} messages were removed before. \
                     Run the purge again",
                    answer.failed().len(),
                    batch.len(),
                    failed.message().unwrap_or("no message")
                ),
            }));
        }
    }
    let left = queue_depth(aws, &dlq).await?;
    Ok(Purged {
        stage,
        dlq,
        removed,
        left_in_flight: left.in_flight,
    })
}
