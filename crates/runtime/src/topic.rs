//! The seam between the delivery protocol and the events topic: outcomes go out in
//! batches ([`OutcomeTopic::publish`]), answered per entry. [`SnsTopic`] uses SNS
//! `PublishBatch` (≤ 10 entries and 256 KiB per call); [`MemoryTopic`] records what was
//! published, for tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use intake_aws::AwsClients;

use crate::batch::{BatchLost, BoxFuture};

/// One outcome message and the attributes the stage queues' filter policies match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    pub json: String,
    pub attributes: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error(
        "publishing an outcome to {topic} failed: {detail}. The outcome is recorded in the \
         ledger's outbox and is published again when the message comes back"
    )]
    Call { topic: String, detail: String },
    #[error(
        "{operation}: the worker is shutting down and the outcome was not published; it is \
         in the ledger's outbox and goes out when the message comes back"
    )]
    Lost { operation: &'static str },
}

impl PublishError {
    pub fn code(&self) -> &'static str {
        match self {
            PublishError::Call { .. } => "publish_failed",
            PublishError::Lost { .. } => "batch_lost",
        }
    }
}

impl BatchLost for PublishError {
    fn lost(operation: &'static str) -> Self {
        PublishError::Lost { operation }
    }
}

/// Where stage outcomes go.
pub trait OutcomeTopic: Send + Sync + 'static {
    /// Publishes up to 10 outcomes; one result per outcome, in order.
    fn publish(&self, batch: Vec<Outbound>) -> BoxFuture<'_, Vec<Result<(), PublishError>>>;
}

/// SNS allows 256 KiB per `PublishBatch` request, bodies and attributes together.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// The pipeline's SNS events topic.
pub struct SnsTopic {
    aws: AwsClients,
    arn: String,
}

impl SnsTopic {
    pub fn new(aws: AwsClients, arn: String) -> SnsTopic {
        SnsTopic { aws, arn }
    }

    async fn publish_chunk(&self, chunk: Vec<Outbound>) -> Vec<Result<(), PublishError>> {
        let n = chunk.len();
        let entries = chunk
            .into_iter()
            .enumerate()
            .map(|(i, outbound)| {
                let attributes: HashMap<String, MessageAttributeValue> = outbound
                    .attributes
                    .into_iter()
                    .map(|(name, value)| {
                        let value = MessageAttributeValue::builder()
                            .data_type("String")
                            .string_value(value)
                            .build()
                            .expect("data type is set");
                        (name, value)
                    })
                    .collect();
                PublishBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message(outbound.json)
                    .set_message_attributes(Some(attributes))
                    .build()
                    .expect("id and message are set")
            })
            .collect();
        let failed = |detail: String| PublishError::Call {
            topic: self.arn.clone(),
            detail,
        };
        match self
            .aws
            .sns
            .publish_batch()
            .topic_arn(&self.arn)
            .set_publish_batch_request_entries(Some(entries))
            .send()
            .await
        {
            Ok(out) => {
                let errors: HashMap<&str, String> = out
                    .failed()
                    .iter()
                    .map(|f| {
                        let detail = format!("{}: {}", f.code(), f.message().unwrap_or_default());
                        (f.id(), detail)
                    })
                    .collect();
                (0..n)
                    .map(|i| match errors.get(i.to_string().as_str()) {
                        None => Ok(()),
                        Some(detail) => Err(failed(detail.clone())),
                    })
                    .collect()
            }
            Err(e) => {
                let error = failed(DisplayErrorContext(&e).to_string());
                vec![Err(error); n]
            }
        }
    }
}

impl OutcomeTopic for SnsTopic {
    fn publish(&self, batch: Vec<Outbound>) -> BoxFuture<'_, Vec<Result<(), PublishError>>> {
        Box::pin(async move {
            let mut results = Vec::with_capacity(batch.len());
            for chunk in size_limited(batch, MAX_BATCH_BYTES) {
                results.extend(self.publish_chunk(chunk).await);
            }
            results
        })
    }
}

/// Splits a batch, in order, into runs whose bodies and attributes fit `limit` bytes.
fn size_limited(batch: Vec<Outbound>, limit: usize) -> Vec<Vec<Outbound>> {
    let size = |o: &Outbound| {
        o.json.len()
            + o.attributes
                .iter()
                .map(|(k, v)| k.len() + v.len() + "String".len())
                .sum::<usize>()
    };
    let mut chunks: Vec<Vec<Outbound>> = Vec::new();
    let mut used = 0;
    for outbound in batch {
        let bytes = size(&outbound);
        match chunks.last_mut() {
            Some(chunk) if used + bytes <= limit => chunk.push(outbound),
            _ => {
                chunks.push(vec![outbound]);
                used = 0;
            }
        }
        used += bytes;
    }
    chunks
}

/// Records every outcome published to it, in order; can be told to fail calls.
#[derive(Clone, Default)]
pub struct MemoryTopic {
    published: Arc<Mutex<Vec<Outbound>>>,
    failing_calls: Arc<AtomicU32>,
    calls: Arc<AtomicU32>,
}

impl MemoryTopic {
    pub fn published(&self) -> Vec<Outbound> {
        self.published.lock().expect("topic lock").clone()
    }

    /// The next `n` publish calls fail for every entry, as an unreachable SNS would.
    pub fn fail_next(&self, n: u32) {
        self.failing_calls.store(n, Ordering::SeqCst);
    }

    /// How many publish calls were made (each a batch).
    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

impl OutcomeTopic for MemoryTopic {
    fn publish(&self, batch: Vec<Outbound>) -> BoxFuture<'_, Vec<Result<(), PublishError>>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let failing = self
                .failing_calls
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if failing {
                let error = PublishError::Call {
                    topic: "memory".into(),
                    detail: "injected failure".into(),
                };
                return vec![Err(error); batch.len()];
            }
            let n = batch.len();
            self.published.lock().expect("topic lock").extend(batch);
            vec![Ok(()); n]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbound(bytes: usize) -> Outbound {
        Outbound {
            json: "x".repeat(bytes),
            attributes: vec![("stage".into(), "scan".into())],
        }
    }

    #[test]
    fn batches_are_split_in_order_to_fit_the_request_limit() {
        let batch: Vec<_> = [100, 200, 300, 50, 10].into_iter().map(outbound).collect();
        let chunks = size_limited(batch.clone(), 330);
        let lens: Vec<Vec<usize>> = chunks
            .iter()
            .map(|c| c.iter().map(|o| o.json.len()).collect())
            .collect();
        assert_eq!(lens, vec![vec![100, 200], vec![300], vec![50, 10]]);
        assert_eq!(chunks.concat(), batch);
        // One outcome larger than the limit still goes out (alone), for SNS to judge.
        assert_eq!(size_limited(vec![outbound(500)], 330).len(), 1);
    }

    #[tokio::test]
    async fn the_memory_topic_records_and_fails_on_request() {
        let topic = MemoryTopic::default();
        topic.fail_next(1);
        let failed = topic.publish(vec![outbound(1), outbound(2)]).await;
        assert!(
            failed
                .iter()
                .all(|r| r.as_ref().unwrap_err().code() == "publish_failed")
        );
        assert!(topic.published().is_empty());
        let ok = topic.publish(vec![outbound(1)]).await;
        assert_eq!(ok, vec![Ok(())]);
        assert_eq!(topic.published(), vec![outbound(1)]);
        assert_eq!(topic.calls(), 2);
    }
}
