//! One message, end to end. The order is what makes the effect exactly-once:
//! [`decode`] the body → [`claim`] the stage in the ledger → [`work`]: run the stage
//! (idempotent, deterministic keys) under a heartbeat → [`record`] the result and its
//! outcome in one ledger transaction → [`deliver`]: publish, mark published, acknowledge.
//! A crash anywhere leaves the message on the queue; its redelivery either takes the claim
//! over, or finds the stage done and only publishes an outcome that never went out.
//!
//! Every call to the queue, the topic and the outbox mark goes through a batcher
//! ([`Io`]): the message waits for its own entry's result, so the order above holds per
//! message while the calls go out ten at a time.

pub mod claim;
pub mod decode;
pub mod deliver;
pub mod record;
pub mod work;

use std::sync::Arc;
use std::time::Duration;

use intake_store::{Ledger, VersionKey};

use crate::backoff::Backoff;
use crate::batch::{BatchLost, Batcher, FlushFn};
use crate::metrics::Metrics;
use crate::queue::{Delivery, Queue, QueueError, VisibilityChange};
use crate::stage::{Stage, StageCx};
use crate::topic::{Outbound, OutcomeTopic, PublishError};

/// Everything a message handler needs, shared by every task of one worker.
pub struct Shared<S> {
    pub stage: Arc<S>,
    pub cx: StageCx,
    pub ledger: Arc<Ledger>,
    pub queue: Arc<dyn Queue>,
    pub io: Io,
    pub worker_id: String,
    pub metrics: Metrics,
    pub visibility: Duration,
    pub backoff: Backoff,
}

/// The batched calls of one worker: acknowledgements and visibility changes on its queue,
/// and (through its [`Publisher`], which several workers may share) outcome publishes and
/// outbox marks.
#[derive(Clone)]
pub struct Io {
    pub acks: Batcher<String, QueueError>,
    pub visibility: Batcher<VisibilityChange, QueueError>,
    pub publisher: Publisher,
}

impl Io {
    /// Starts the queue's two batchers; `window` is how long the first entry of a batch
    /// waits for company.
    pub fn start(queue: Arc<dyn Queue>, publisher: Publisher, window: Duration) -> Io {
        let acks_queue = queue.clone();
        let acks: FlushFn<String, QueueError> = Arc::new(move |receipts| {
            let queue = acks_queue.clone();
            Box::pin(async move { queue.acknowledge(receipts).await })
        });
        let visibility: FlushFn<VisibilityChange, QueueError> = Arc::new(move |changes| {
            let queue = queue.clone();
            Box::pin(async move { queue.change_visibility(changes).await })
        });
        Io {
            acks: Batcher::start("DeleteMessageBatch", window, acks),
            visibility: Batcher::start("ChangeMessageVisibilityBatch", window, visibility),
            publisher,
        }
    }
}

/// Outcome publishes to one topic and their outbox marks in one ledger, batched. Every
/// stage worker of a process publishes to the same events topic, so sharing one publisher
/// between them fills batches five times as fast.
#[derive(Clone)]
pub struct Publisher {
    pub publishes: Batcher<Outbound, PublishError>,
    pub marks: Batcher<(VersionKey, &'static str), MarkError>,
}

impl Publisher {
    pub fn start(topic: Arc<dyn OutcomeTopic>, ledger: Arc<Ledger>, window: Duration) -> Publisher {
        let publishes: FlushFn<Outbound, PublishError> = Arc::new(move |batch| {
            let topic = topic.clone();
            Box::pin(async move { topic.publish(batch).await })
        });
        let marks: FlushFn<(VersionKey, &'static str), MarkError> = Arc::new(move |entries| {
            let ledger = ledger.clone();
            Box::pin(async move {
                let n = entries.len();
                match ledger.mark_published_batch(&entries).await {
                    Ok(()) => vec![Ok(()); n],
                    Err(e) => vec![Err(MarkError::Store(e.to_string())); n],
                }
            })
        });
        Publisher {
            publishes: Batcher::start("PublishBatch", window, publishes),
            marks: Batcher::start("marking outcomes published", window, marks),
        }
    }
}

/// Why an outbox mark did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarkError {
    #[error("{0}")]
    Store(String),
    #[error("{0}: the worker is shutting down")]
    Lost(&'static str),
}

impl BatchLost for MarkError {
    fn lost(what: &'static str) -> Self {
        MarkError::Lost(what)
    }
}

/// What became of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Work done (or found done) and the message acknowledged.
    Deleted,
    /// A retryable failure: the message comes back after a backoff.
    Retried,
    /// Not an event Intake understands: moved to the DLQ.
    Poisoned,
}

/// Why an object's processing stopped short.
#[derive(Debug)]
pub enum Failure {
    Retry { code: String, detail: String },
    Poison { code: String, reason: String },
}

impl Failure {
    pub(crate) fn retry(code: impl Into<String>, detail: impl Into<String>) -> Failure {
        Failure::Retry {
            code: code.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn store(e: intake_store::StoreError) -> Failure {
        Failure::retry(e.code(), e.to_string())
    }
}

/// Handles one delivery: every object it names, then acknowledges, delays or
/// dead-letters it.
pub async fn handle<S: Stage>(shared: &Shared<S>, delivery: &Delivery) -> Disposition {
    let inputs = match decode::inputs::<S>(shared, delivery) {
        decode::Decoded::Inputs(inputs) => inputs,
        decode::Decoded::TestEvent => {
            tracing::info!(queue = %shared.queue.name(), "s3:TestEvent acknowledged");
            return deliver::acknowledge(shared, delivery).await;
        }
        decode::Decoded::Poison { code, reason } => {
            return deliver::poison(shared, delivery, code, &reason).await;
        }
    };
    // Unique per receive, not per message: a message whose visibility ran out while this
    // worker still held it can come back to this same worker, and the two deliveries must
    // not be able to complete each other's claim.
    let claimant = format!(
        "{}/{}/{}",
        shared.worker_id, delivery.message_id, delivery.receive_count
    );
    let mut retry = None;
    for input in inputs {
        match process_one(shared, delivery, &claimant, input).await {
            Ok(()) => {}
            Err(Failure::Poison { code, reason }) => {
                return deliver::poison(shared, delivery, &code, &reason).await;
            }
            Err(Failure::Retry { code, detail }) => retry = Some((code, detail)),
        }
    }
    match retry {
        None => deliver::acknowledge(shared, delivery).await,
        Some((code, detail)) => deliver::retry_later(shared, delivery, code, detail).await,
    }
}

/// One object of a delivery through the protocol's steps.
async fn process_one<S: Stage>(
    shared: &Shared<S>,
    delivery: &Delivery,
    claimant: &str,
    mut input: crate::stage::StageInput,
) -> Result<(), Failure> {
    let version = VersionKey::new(
        &input.object.bucket,
        &input.object.key,
        input.object.version_token(),
    );
    match claim::claim(shared, &version, claimant).await? {
        claim::Claimed::Work(attempt) => input.attempt = attempt,
        claim::Claimed::AlreadySettled => return Ok(()),
    }
    let started_ms = shared.ledger.now_ms();
    let started = tokio::time::Instant::now();
    let output = work::run(shared, delivery, &version, claimant, &input).await?;
    let recorded = record::record(shared, &version, claimant, &input, output, started_ms).await?;
    deliver::publish(shared, &version, &recorded.outbound).await?;
    recorded.report(shared, &version, started.elapsed());
    Ok(())
}
