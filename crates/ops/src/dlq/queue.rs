//! The SQS calls the DLQ tools share: a queue's URL and depth, receiving up to 10
//! messages at a time, and the peek's receive-then-release (hide briefly, read, make
//! visible again at once) that stands in for the peek SQS does not have.

use std::collections::HashMap;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName,
    QueueAttributeName,
};
use intake_aws::AwsClients;
use intake_aws::error::classify;
use serde::Serialize;

use super::error::DlqError;

/// How long a peeked message stays hidden if the peek dies before making it visible again.
pub const PEEK_VISIBILITY: i32 = 30;

/// SQS's limit on messages per receive and entries per batch call.
pub(super) const BATCH: usize = 10;

/// How long each receive waits for messages. Long polling (any value above 0) asks every
/// SQS server, so an empty answer means the queue has no visible message; a short poll
/// samples a few servers and can come back empty while messages are there.
const RECEIVE_WAIT_SECS: i32 = 1;

/// How many messages a queue holds, as SQS approximates it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    /// `ApproximateNumberOfMessages`: ready to be received.
    pub visible: u64,
    /// `ApproximateNumberOfMessagesNotVisible`: received and not yet deleted (in flight,
    /// backing off, or being peeked).
    pub in_flight: u64,
    /// `ApproximateNumberOfMessagesDelayed`.
    pub delayed: u64,
}

impl QueueDepth {
    /// Visible plus in flight: what the queue holds that is not delayed.
    pub fn total(self) -> u64 {
        self.visible + self.in_flight
    }
}

/// The depth of the queue called `queue`.
pub async fn queue_depth(aws: &AwsClients, queue: &str) -> Result<QueueDepth, DlqError> {
    let url = queue_url(aws, queue).await?;
    let answer = aws
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error()
                .is_some_and(|s| s.is_queue_does_not_exist())
            {
                missing(aws, queue)
            } else {
                classify(&aws.endpoint, "GetQueueAttributes", queue, e).into()
            }
        })?;
    let count = |name: QueueAttributeName| {
        answer
            .attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(QueueDepth {
        visible: count(QueueAttributeName::ApproximateNumberOfMessages),
        in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        delayed: count(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
    })
}

/// The URL of the queue called `queue`.
pub async fn queue_url(aws: &AwsClients, queue: &str) -> Result<String, DlqError> {
    let answer = aws
        .sqs
        .get_queue_url()
        .queue_name(queue)
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error()
                .is_some_and(|s| s.is_queue_does_not_exist())
            {
                missing(aws, queue)
            } else {
                classify(&aws.endpoint, "GetQueueUrl", queue, e).into()
            }
        })?;
    answer.queue_url.ok_or_else(|| missing(aws, queue))
}

fn missing(aws: &AwsClients, queue: &str) -> DlqError {
    DlqError::QueueMissing {
        queue: queue.to_owned(),
        endpoint: aws.endpoint.clone(),
    }
}

/// Receives up to `n` distinct messages, then makes them all visible again.
pub(super) async fn receive_and_release(
    aws: &AwsClients,
    dlq: &str,
    url: &str,
    n: usize,
) -> Result<Vec<Message>, DlqError> {
    let mut received: Vec<Message> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut outcome = Ok(());
    while received.len() < n {
        let batch = match receive(
            aws,
            dlq,
            url,
            (n - received.len()).min(BATCH),
            PEEK_VISIBILITY,
        )
        .await
        {
            Ok(batch) => batch,
            Err(e) => {
                outcome = Err(e);
                break;
            }
        };
        let mut new = 0;
        for message in batch {
            let id = message.message_id().unwrap_or_default().to_owned();
            match index.get(&id) {
                // Seen before: its first hiding lapsed during a long peek. Keep the newest
                // receipt handle, the only one that can release it now.
                Some(&i) => received[i] = message,
                None => {
                    index.insert(id, received.len());
                    received.push(message);
                    new += 1;
                }
            }
        }
        if new == 0 {
            break;
        }
    }
    // Released even when a receive failed, so what was hidden does not wait 30 s.
    release(aws, dlq, url, &received).await;
    outcome.map(|()| received)
}

pub(super) async fn receive(
    aws: &AwsClients,
    queue: &str,
    url: &str,
    max: usize,
    visibility: i32,
) -> Result<Vec<Message>, DlqError> {
    let answer = aws
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(max.clamp(1, BATCH) as i32)
        .visibility_timeout(visibility)
        .wait_time_seconds(RECEIVE_WAIT_SECS)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .map_err(|e| classify(&aws.endpoint, "ReceiveMessage", queue, e))?;
    Ok(answer.messages.unwrap_or_default())
}

/// Visibility 0 for every message, 10 per call. A failure is logged, not returned: those
/// messages only come back after [`PEEK_VISIBILITY`], which loses nothing.
async fn release(aws: &AwsClients, dlq: &str, url: &str, messages: &[Message]) {
    for chunk in messages.chunks(BATCH) {
        let entries: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .visibility_timeout(0)
                    .build()
                    .expect("id and receipt handle are set")
            })
            .collect();
        match aws
            .sqs
            .change_message_visibility_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(answer) => {
                for failed in answer.failed() {
                    tracing::warn!(
                        dlq,
                        code = failed.code(),
                        reason = failed.message().unwrap_or_default(),
                        "a peeked message could not be made visible again; it will be after {PEEK_VISIBILITY} s"
                    );
                }
            }
            Err(e) => {
                let e = classify(&aws.endpoint, "ChangeMessageVisibilityBatch", dlq, e);
                tracing::warn!(
                    dlq,
                    "peeked messages could not be made visible again ({e}); they will be after {PEEK_VISIBILITY} s"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_visible_and_in_flight() {
        let d = QueueDepth {
            visible: 2,
            in_flight: 3,
            delayed: 7,
        };
        assert_eq!(d.total(), 5);
    }
}
