//! Intake's operator tools, the library behind `intake dlq`, `intake reprocess`,
//! `intake stats` and `intake delete`. The CLI only parses arguments and prints.
//!
//! - [`deletion`]: queueing a file's deletion for the deletion worker.
//! - [`dlq`]: what is in each stage's dead-letter queue and why (decoded messages, error
//!   codes from the message or the ledger), without consuming it; purging.
//! - [`replay`]: moving DLQ messages back to their stage queue, all of them or a filtered
//!   selection, recorded in the ledger.
//! - [`reprocess`]: re-running an object or a prefix from a stage after a fix.
//! - [`stats`]: per-stage counts and durations from the ledger, and queue depths.

pub mod deletion;
pub mod dlq;
pub mod replay;
pub mod reprocess;
pub mod stats;
