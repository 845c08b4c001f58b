//! The worker runtime: everything between the queue and a [`Stage`]. A stage sees an object
//! and a context, never the queue.
//!
//! - [`stage`]: the [`Stage`] trait, its input and output.
//! - [`worker`]: the receive loop, bounded concurrency, panic containment, graceful shutdown.
//! - [`protocol`]: one message end to end, as named steps: decode, claim (ledger), work
//!   (heartbeat), record, deliver (publish, mark, acknowledge) — in that order, so nothing
//!   is acknowledged before it is durable.
//! - [`queue`]: the [`queue::Queue`] seam, on SQS and in memory.
//! - [`topic`]: the [`topic::OutcomeTopic`] seam, on SNS and in memory.
//! - [`batch`]: single calls gathered into batch calls, each caller answered for its entry.
//! - [`backoff`]: exponential backoff with jitter for retryable failures.
//! - [`metrics`]: batched CloudWatch metrics that never block processing.
//! - [`health`]: `/healthz` (every receive loop within its long poll), `/readyz` (ledger,
//!   queues, extra checks such as clamd) and `/metrics` (Prometheus) over HTTP.

pub mod backoff;
pub mod batch;
pub mod health;
pub mod metrics;
pub mod protocol;
pub mod queue;
pub mod stage;
pub mod topic;
pub mod worker;

pub use health::{Health, HealthSettings};
pub use stage::{
    Stage, StageCx, StageInput, StageOutput, body_failure, get_object, require_promoted,
    s3_failure, s3_not_found,
};
pub use worker::{Worker, WorkerError, WorkerSettings, WorkerStats};
