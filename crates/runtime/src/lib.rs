//! The worker runtime: everything between SQS and a [`Stage`]. A stage sees an object and a
//! context, never the queue.
//!
//! - [`stage`]: the [`Stage`] trait, its input and output.
//! - [`worker`]: the receive loop, bounded concurrency, panic containment, graceful shutdown.
//! - [`message`]: one message end to end: parse, dedupe (ledger), heartbeat, process,
//!   record, publish, delete — in that order, so nothing is deleted before it is durable.
//! - [`backoff`]: exponential backoff with jitter for retryable failures.
//! - [`publish`]: outcome messages to the events topic, poison messages to the DLQ.
//! - [`metrics`]: batched CloudWatch metrics that never block processing.

pub mod backoff;
pub mod message;
pub mod metrics;
pub mod publish;
pub mod stage;
pub mod worker;

pub use stage::{
    Stage, StageCx, StageInput, StageOutput, body_failure, get_object, require_promoted, s3_failure,
};
pub use worker::{Worker, WorkerError, WorkerSettings, WorkerStats};
