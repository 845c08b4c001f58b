//! [`Queue`] on Amazon SQS: long-poll receives of up to 10, `DeleteMessageBatch` and
//! `ChangeMessageVisibilityBatch` answered per entry, `SendMessage` to the DLQ, and
//! `GetQueueAttributes` (`ApproximateNumberOfMessages`) as the readiness probe.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, ChangeMessageVisibilityBatchRequestEntry,
    DeleteMessageBatchRequestEntry, Message, MessageAttributeValue, MessageSystemAttributeName,
    QueueAttributeName,
};
use intake_aws::AwsClients;

use super::{
    Attribute, AttributeValue, Delivery, Queue, QueueError, VisibilityChange,
    dead_letter_attributes, dead_letter_body,
};
use crate::backoff::MAX_VISIBILITY;
use crate::batch::BoxFuture;

/// A stage's SQS queue and its dead-letter queue.
pub struct SqsQueue {
    aws: AwsClients,
    name: String,
    url: String,
    dlq_url: String,
}

impl SqsQueue {
    /// Looks both queues up by name; fails (run `intake provision`) if either is missing.
    pub async fn resolve(
        aws: &AwsClients,
        name: &str,
        dlq_name: &str,
    ) -> Result<SqsQueue, intake_aws::AwsError> {
        Ok(SqsQueue {
            url: queue_url_of(aws, name).await?,
            dlq_url: queue_url_of(aws, dlq_name).await?,
            aws: aws.clone(),
            name: name.to_owned(),
        })
    }

    fn call_failed(&self, operation: &'static str, detail: String) -> QueueError {
        QueueError::Call {
            operation,
            queue: self.name.clone(),
            detail,
        }
    }

    /// One result per entry id `0..n` from a batch answer's failed entries.
    fn per_entry(
        &self,
        operation: &'static str,
        n: usize,
        failed: &[BatchResultErrorEntry],
    ) -> Vec<Result<(), QueueError>> {
        let failed: HashMap<&str, &BatchResultErrorEntry> =
            failed.iter().map(|f| (f.id(), f)).collect();
        (0..n)
            .map(|i| match failed.get(i.to_string().as_str()) {
                None => Ok(()),
                Some(f) => {
                    let detail = format!("{}: {}", f.code(), f.message().unwrap_or_default());
                    Err(if f.code() == "ReceiptHandleIsInvalid" {
                        QueueError::StaleReceipt {
                            operation,
                            queue: self.name.clone(),
                            detail,
                        }
                    } else {
                        self.call_failed(operation, detail)
                    })
                }
            })
            .collect()
    }
}

impl Queue for SqsQueue {
    fn name(&self) -> &str {
        &self.name
    }

    fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<Delivery>, QueueError>> {
        Box::pin(async move {
            let out = self
                .aws
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(max.clamp(1, 10) as i32)
                .wait_time_seconds(wait.as_secs().min(20) as i32)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|e| {
                    self.call_failed("ReceiveMessage", DisplayErrorContext(&e).to_string())
                })?;
            Ok(out
                .messages
                .unwrap_or_default()
                .into_iter()
                .map(delivery)
                .collect())
        })
    }

    fn acknowledge(&self, receipts: Vec<String>) -> BoxFuture<'_, Vec<Result<(), QueueError>>> {
        Box::pin(async move {
            let n = receipts.len();
            let entries = receipts
                .into_iter()
                .enumerate()
                .map(|(i, receipt)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .build()
                        .expect("id and receipt are set")
                })
                .collect();
            match self
                .aws
                .sqs
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => self.per_entry("DeleteMessageBatch", n, out.failed()),
                Err(e) => {
                    let error =
                        self.call_failed("DeleteMessageBatch", DisplayErrorContext(&e).to_string());
                    vec![Err(error); n]
                }
            }
        })
    }

    fn change_visibility(
        &self,
        changes: Vec<VisibilityChange>,
    ) -> BoxFuture<'_, Vec<Result<(), QueueError>>> {
        Box::pin(async move {
            let n = changes.len();
            let entries = changes
                .into_iter()
                .enumerate()
                .map(|(i, change)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(change.receipt)
                        .visibility_timeout(change.timeout.min(MAX_VISIBILITY).as_secs() as i32)
                        .build()
                        .expect("id and receipt are set")
                })
                .collect();
            match self
                .aws
                .sqs
                .change_message_visibility_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => self.per_entry("ChangeMessageVisibilityBatch", n, out.failed()),
                Err(e) => {
                    let error = self.call_failed(
                        "ChangeMessageVisibilityBatch",
                        DisplayErrorContext(&e).to_string(),
                    );
                    vec![Err(error); n]
                }
            }
        })
    }

    fn probe(&self) -> BoxFuture<'_, Result<u64, QueueError>> {
        Box::pin(async move {
            let out = self
                .aws
                .sqs
                .get_queue_attributes()
                .queue_url(&self.url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .send()
                .await
                .map_err(|e| {
                    self.call_failed("GetQueueAttributes", DisplayErrorContext(&e).to_string())
                })?;
            Ok(out
                .attributes()
                .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0))
        })
    }

    fn dead_letter<'a>(
        &'a self,
        delivery: &'a Delivery,
        code: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            let attributes: HashMap<String, MessageAttributeValue> =
                dead_letter_attributes(delivery, &self.name, code, reason)
                    .into_iter()
                    .map(|(name, attribute)| (name, to_sqs(attribute)))
                    .collect();
            self.aws
                .sqs
                .send_message()
                .queue_url(&self.dlq_url)
                .message_body(dead_letter_body(delivery))
                .set_message_attributes(Some(attributes))
                .send()
                .await
                .map_err(|e| {
                    let detail = format!(
                        "{} (DLQ {})",
                        e.message()
                            .map_or_else(|| DisplayErrorContext(&e).to_string(), str::to_owned),
                        self.dlq_url
                    );
                    self.call_failed("SendMessage", detail)
                })?;
            Ok(())
        })
    }
}

fn delivery(message: Message) -> Delivery {
    let receive_count = message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|c| c.parse().ok())
        .unwrap_or(1u32);
    let attributes: BTreeMap<String, Attribute> = message
        .message_attributes()
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            let data_type = value.data_type().to_owned();
            let value = match (value.string_value(), value.binary_value()) {
                (Some(text), _) => AttributeValue::Text(text.to_owned()),
                (None, Some(bytes)) => AttributeValue::Binary(bytes.as_ref().to_vec()),
                (None, None) => AttributeValue::Text(String::new()),
            };
            (name.clone(), Attribute { data_type, value })
        })
        .collect();
    Delivery {
        message_id: message.message_id.unwrap_or_default(),
        receipt: message.receipt_handle.unwrap_or_default(),
        body: message.body.unwrap_or_default(),
        receive_count,
        attributes,
    }
}

fn to_sqs(attribute: Attribute) -> MessageAttributeValue {
    let builder = MessageAttributeValue::builder().data_type(attribute.data_type);
    match attribute.value {
        AttributeValue::Text(text) => builder.string_value(text),
        AttributeValue::Binary(bytes) => builder.binary_value(Blob::new(bytes)),
    }
    .build()
    .expect("data type is set")
}

async fn queue_url_of(aws: &AwsClients, name: &str) -> Result<String, intake_aws::AwsError> {
    let out = aws
        .sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| {
            intake_aws::error::classify(
                &aws.endpoint,
                "GetQueueUrl",
                &format!("queue {name} (run `intake provision` first)"),
                e,
            )
        })?;
    Ok(out.queue_url.unwrap_or_default())
}
