//! What is in each stage's dead-letter queue, and why: decoded messages, depths, counts by
//! error code; and purging a DLQ.
//!
//! A DLQ holds two kinds of messages:
//!
//! - **poison**: the runtime moved the message itself because it can never succeed (a body
//!   that is not JSON, a key that does not decode, a stage's permanent error). It carries
//!   the attributes `intake-error-code`, `intake-error-reason` and `intake-source-queue`.
//! - **redrive**: SQS's redrive policy moved it after `max_receive_count` deliveries that
//!   each ended in a retryable failure. SQS adds no attributes, so the reason is read from
//!   the ledger: the body is decoded to the upload version it names, and that version's
//!   `retry` transitions for the stage carry the code and detail of each failure.
//!
//! **SQS has no true peek.** [`peek`] receives messages with a short visibility timeout
//! ([`PEEK_VISIBILITY`], 30 s) and then at once sets each one's visibility back to 0, so
//! they are visible again as soon as the peek has read them. A peek that crashes in between
//! delays those messages by at most the 30 s; nothing is deleted. Each receive counts as a
//! delivery, so a message's `ApproximateReceiveCount` grows by one per peek (and per
//! [`list`]), and two peeks running at the same time each see only part of the queue.
//!
//! One module per concern, imports flowing one way (`peek` uses `queue` and `message`,
//! `purge` uses `queue`; all use `error`):
//!
//! - `error`: [`DlqError`].
//! - `queue`: SQS calls shared by the others: queue URLs and depths, receiving, and
//!   making peeked messages visible again.
//! - `message`: decoding one received message into a [`DlqMessage`], reading the ledger
//!   for the reason a redriven message failed.
//! - `peek`: [`peek`] and [`list`].
//! - `purge`: [`purge`].

mod error;
mod message;
mod peek;
mod purge;
mod queue;

use intake_core::state_machine::StageKind;

pub use error::DlqError;
pub(crate) use message::decode;
pub use message::{DlqMessage, DlqObject, Source, UNKNOWN_CODE};
pub use peek::{DlqSummary, LIST_PEEK_CAP, list, peek};
pub use purge::{Purged, purge};
pub use queue::{PEEK_VISIBILITY, QueueDepth, queue_depth, queue_url};

/// The stage with a queue called `name` (`validate`, ..., `delete`).
pub fn parse_stage(name: &str) -> Result<StageKind, DlqError> {
    StageKind::WITH_QUEUES
        .into_iter()
        .find(|k| k.name() == name)
        .ok_or_else(|| DlqError::UnknownStage {
            given: name.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_parse_by_name_and_unknown_ones_list_the_valid_ones() {
        assert_eq!(parse_stage("scan").unwrap(), StageKind::Scan);
        assert_eq!(parse_stage("delete").unwrap(), StageKind::Delete);
        let err = parse_stage("scna").unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown stage \"scna\": the stages with a queue and a DLQ are validate, scan, \
             thumbnail, catalog, archive, delete"
        );
    }
}
