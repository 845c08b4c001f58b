//! The seam between the delivery protocol and the queue service: what a worker needs from
//! a queue (receive, acknowledge, change visibility, dead-letter, probe), with the SQS
//! implementation ([`sqs::SqsQueue`]) and an in-memory one ([`memory::MemoryQueue`]) that
//! honours visibility timeouts, receive counts and a redrive policy, for tests and tools.
//!
//! Acknowledgements and visibility changes are batch calls (at most
//! [`crate::batch::MAX_BATCH`] entries) answered per entry; the worker's batchers turn
//! single messages into those calls.

pub mod memory;
pub mod sqs;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::batch::{BatchLost, BoxFuture};

/// Attribute names a poison message carries into the DLQ.
pub const POISON_CODE_ATTRIBUTE: &str = "intake-error-code";
pub const POISON_REASON_ATTRIBUTE: &str = "intake-error-reason";
pub const POISON_SOURCE_ATTRIBUTE: &str = "intake-source-queue";

/// One received message: what the protocol reads, and the receipt that acknowledges or
/// delays this receive of it (a later receive of the same message has another receipt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub message_id: String,
    pub receipt: String,
    pub body: String,
    /// 1 on the first receive; the backoff and the redrive policy count with it.
    pub receive_count: u32,
    /// The message attributes, carried into the DLQ with a poison message.
    pub attributes: BTreeMap<String, Attribute>,
}

/// A message attribute as SQS keeps it: a data type (`String`, `Number`, `Binary`, with
/// an optional custom suffix) and a text or binary value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub data_type: String,
    pub value: AttributeValue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    Text(String),
    Binary(Vec<u8>),
}

impl Attribute {
    pub fn text(value: impl Into<String>) -> Attribute {
        Attribute {
            data_type: "String".into(),
            value: AttributeValue::Text(value.into()),
        }
    }
}

/// A visibility change for one receive of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisibilityChange {
    pub receipt: String,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error(
        "{operation} on queue {queue} failed: {detail}. The message stays on the queue and \
         comes back when its visibility timeout ends"
    )]
    Call {
        operation: &'static str,
        queue: String,
        detail: String,
    },
    #[error(
        "{operation} on queue {queue}: the receipt is no longer valid ({detail}); the message \
         was received again since, and that receive decides its fate"
    )]
    StaleReceipt {
        operation: &'static str,
        queue: String,
        detail: String,
    },
    #[error(
        "{operation}: the worker is shutting down and the batch call was not made; the \
         message comes back when its visibility timeout ends"
    )]
    Lost { operation: &'static str },
}

impl QueueError {
    pub fn code(&self) -> &'static str {
        match self {
            QueueError::Call { .. } => "queue_unavailable",
            QueueError::StaleReceipt { .. } => "stale_receipt",
            QueueError::Lost { .. } => "batch_lost",
        }
    }
}

impl BatchLost for QueueError {
    fn lost(operation: &'static str) -> Self {
        QueueError::Lost { operation }
    }
}

/// A queue a stage worker consumes. Implementations answer batch calls per entry, in order.
pub trait Queue: Send + Sync + 'static {
    /// The queue's name, for logs and DLQ attributes.
    fn name(&self) -> &str;

    /// Up to `max` (≤ 10) messages, waiting up to `wait` for the first one. Each becomes
    /// invisible for the queue's visibility timeout and its receive count goes up by one.
    fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<Delivery>, QueueError>>;

    /// Deletes the received messages (≤ 10 receipts); one result per receipt.
    fn acknowledge(&self, receipts: Vec<String>) -> BoxFuture<'_, Vec<Result<(), QueueError>>>;

    /// Sets when the received messages become visible again (≤ 10); one result each.
    fn change_visibility(
        &self,
        changes: Vec<VisibilityChange>,
    ) -> BoxFuture<'_, Vec<Result<(), QueueError>>>;

    /// A cheap call that proves the queue answers (readiness): about how many messages
    /// are waiting (visible), as the service counts them.
    fn probe(&self) -> BoxFuture<'_, Result<u64, QueueError>>;

    /// Copies a message to the dead-letter queue with `code` and `reason` as attributes
    /// (the original attributes kept as far as the limit of 10 allows). The caller
    /// acknowledges the original afterwards.
    fn dead_letter<'a>(
        &'a self,
        delivery: &'a Delivery,
        code: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), QueueError>>;
}

/// The attributes a poison message carries into the DLQ: its own (trimmed so that ours
/// fit SQS's 10), and the code, reason and source queue.
pub fn dead_letter_attributes(
    delivery: &Delivery,
    source_queue: &str,
    code: &str,
    reason: &str,
) -> BTreeMap<String, Attribute> {
    let mut attributes = delivery.attributes.clone();
    for name in [
        POISON_CODE_ATTRIBUTE,
        POISON_REASON_ATTRIBUTE,
        POISON_SOURCE_ATTRIBUTE,
    ] {
        attributes.remove(name);
    }
    while attributes.len() > 7 {
        attributes.pop_last();
    }
    attributes.insert(POISON_CODE_ATTRIBUTE.into(), Attribute::text(code));
    // Attribute values are limited in size; a reason is a sentence, not a dump.
    attributes.insert(
        POISON_REASON_ATTRIBUTE.into(),
        Attribute::text(reason.chars().take(1000).collect::<String>()),
    );
    attributes.insert(
        POISON_SOURCE_ATTRIBUTE.into(),
        Attribute::text(source_queue),
    );
    attributes
}

/// SQS refuses an empty body; a poison message with none still goes to the DLQ.
pub(crate) fn dead_letter_body(delivery: &Delivery) -> &str {
    if delivery.body.is_empty() {
        "(empty body)"
    } else {
        &delivery.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poison_attributes_keep_room_for_the_reason_and_replace_stale_ones() {
        let mut delivery = Delivery {
            message_id: "m".into(),
            receipt: "r".into(),
            body: String::new(),
            receive_count: 1,
            attributes: BTreeMap::new(),
        };
        for i in 0..10 {
            delivery
                .attributes
                .insert(format!("a{i}"), Attribute::text("x"));
        }
        delivery
            .attributes
            .insert(POISON_CODE_ATTRIBUTE.into(), Attribute::text("old"));
        let reason = "r".repeat(5000);
        let out = dead_letter_attributes(&delivery, "q", "bad_json", &reason);
        assert_eq!(out.len(), 10);
        assert_eq!(out[POISON_CODE_ATTRIBUTE], Attribute::text("bad_json"));
        assert_eq!(out[POISON_SOURCE_ATTRIBUTE], Attribute::text("q"));
        let AttributeValue::Text(kept) = &out[POISON_REASON_ATTRIBUTE].value else {
            panic!("text")
        };
        assert_eq!(kept.len(), 1000);
        assert_eq!(dead_letter_body(&delivery), "(empty body)");
    }
}
