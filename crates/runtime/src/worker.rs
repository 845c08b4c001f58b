//! The receive loop of one stage: long-poll batches, one task per message under a
//! concurrency bound, panics contained and counted, and a graceful shutdown that stops
//! receiving, lets in-flight work finish within a grace period and releases the rest
//! (visibility 0) so another worker takes it at once. With a [`Health`] in its settings the
//! loop reports each phase (receiving, pausing, full, draining) for `/healthz` and records
//! its Prometheus series.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::backoff::Backoff;
use crate::batch::MAX_BATCH;
use crate::health::Health;
use crate::health::liveness::LoopProbe;
use crate::metrics::{MetricEvent, Metrics};
use crate::protocol::{Disposition, Io, Publisher, Shared, handle};
use crate::queue::sqs::SqsQueue;
use crate::queue::{Delivery, Queue, QueueError, VisibilityChange};
use crate::stage::{Stage, StageCx};
use crate::topic::SnsTopic;

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Messages processed at once.
    pub concurrency: usize,
    /// How long in-flight work may run on after shutdown is asked for.
    pub shutdown_grace: Duration,
    pub backoff: Backoff,
    /// Send metrics to CloudWatch.
    pub metrics: bool,
    /// Identifies this worker in the ledger and in outcomes.
    pub worker_id: String,
    /// How long the first acknowledgement, visibility change or publish of a batch waits
    /// for others to join it (`[workers] batch_window_ms`).
    pub batch_window: Duration,
    /// The process's worker health ([`crate::health`]): the worker registers its receive
    /// loop, queue and ledger there when it is built. `None`: no health reporting.
    pub health: Option<Health>,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            concurrency: 8,
            shutdown_grace: Duration::from_secs(25),
            backoff: Backoff::default(),
            metrics: true,
            worker_id: format!("{}-{}", hostname(), uuid::Uuid::now_v7().simple()),
            batch_window: Duration::from_millis(u64::from(
                intake_core::config::defaults::batch_window_ms(),
            )),
            health: None,
        }
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into())
}

/// What a worker did, returned when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerStats {
    pub received: u64,
    pub deleted: u64,
    pub retried: u64,
    pub poisoned: u64,
    pub panicked: u64,
    /// In flight at shutdown past the grace period, handed back to the queue.
    pub released: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("stage {stage}: {source}")]
    Aws {
        stage: &'static str,
        source: intake_aws::AwsError,
    },
}

pub struct Worker<S: Stage> {
    shared: Arc<Shared<S>>,
    settings: WorkerSettings,
    probe: LoopProbe,
}

impl<S: Stage> Worker<S> {
    /// A worker on the stage's SQS queue and the pipeline's SNS events topic. Fails if they
    /// do not exist (run `intake provision` first).
    pub async fn new(stage: S, cx: StageCx, settings: WorkerSettings) -> Result<Self, WorkerError> {
        let publisher = sns_publisher(&cx, settings.batch_window)
            .await
            .map_err(|source| WorkerError::Aws {
                stage: S::KIND.name(),
                source,
            })?;
        Self::with_publisher(stage, cx, settings, publisher).await
    }

    /// [`Worker::new`] publishing through `publisher`, which other workers of the process
    /// share ([`sns_publisher`]).
    pub async fn with_publisher(
        stage: S,
        cx: StageCx,
        settings: WorkerSettings,
        publisher: Publisher,
    ) -> Result<Self, WorkerError> {
        let queues = cx.names.stage(S::KIND).clone();
        let queue = SqsQueue::resolve(&cx.aws, &queues.queue, &queues.dlq)
            .await
            .map_err(|source| WorkerError::Aws {
                stage: S::KIND.name(),
                source,
            })?;
        Ok(Self::with_transport(
            stage,
            cx,
            settings,
            Arc::new(queue),
            publisher,
        ))
    }

    /// A worker on any [`Queue`] and [`Publisher`]: the in-memory ones in tests.
    pub fn with_transport(
        stage: S,
        cx: StageCx,
        settings: WorkerSettings,
        queue: Arc<dyn Queue>,
        publisher: Publisher,
    ) -> Self {
        let kind = S::KIND;
        let visibility = Duration::from_secs(
            u64::from(cx.config.queue_settings(kind).visibility_timeout_secs).max(1),
        );
        let probe = match &settings.health {
            Some(health) => health.register_loop(
                kind.name(),
                &settings.worker_id,
                queue.clone(),
                cx.ledger.clone(),
                long_poll(&cx, kind) + settings.batch_window,
            ),
            None => LoopProbe::default(),
        };
        let metrics = if settings.metrics {
            Metrics::start(cx.aws.clone(), &cx.names.prefix, kind.name())
        } else {
            Metrics::disabled(&cx.names.prefix, kind.name())
        }
        .with_prometheus(probe.metrics().cloned());
        let io = Io::start(queue.clone(), publisher, settings.batch_window);
        Worker {
            shared: Arc::new(Shared {
                stage: Arc::new(stage),
                ledger: cx.ledger.clone(),
                queue,
                io,
                worker_id: settings.worker_id.clone(),
                metrics,
                visibility,
                backoff: settings.backoff,
                cx,
            }),
            settings,
            probe,
        }
    }

    /// Process messages until `shutdown` completes, then drain and return what was done.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> WorkerStats {
        let shared = self.shared;
        let kind = S::KIND;
        let wait = long_poll(&shared.cx, kind);
        let probe = self.probe;
        // Marks the loop `gone` if this future is dropped before it returns.
        let guard = probe.run_guard();
        let permits = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let mut tasks: JoinSet<Disposition> = JoinSet::new();
        let mut in_flight: HashMap<tokio::task::Id, Delivery> = HashMap::new();
        let mut stats = WorkerStats::default();
        let mut receive_errors = 0u32;
        tokio::pin!(shutdown);
        tracing::info!(stage = %kind, queue = %shared.queue.name(), concurrency = self.settings.concurrency, worker = %shared.worker_id, "worker started");

        // A receive in flight is never dropped: SQS may already have handed it messages,
        // which would then stay invisible for a whole visibility timeout. So the pending
        // receive lives across loop turns and is awaited even during shutdown.
        let mut pending: Option<Pin<Box<dyn Future<Output = Received> + Send>>> = None;
        loop {
            if pending.is_none() && permits.available_permits() > 0 {
                let want = self.settings.concurrency.clamp(1, MAX_BATCH);
                probe.receiving();
                pending = Some(Box::pin(receive(
                    shared.clone(),
                    permits.clone(),
                    want,
                    self.settings.batch_window,
                    wait,
                )));
            }
            if pending.is_none() {
                // Every permit is taken: no receive until work in flight returns one.
                probe.full();
            }
            tokio::select! {
                _ = &mut shutdown => break,
                Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    settle(joined, &mut in_flight, &mut stats, &shared.metrics, &probe);
                }
                received = async { pending.as_mut().expect("guarded").await }, if pending.is_some() => {
                    pending = None;
                    probe.received(received.as_ref().map(Vec::len));
                    match received {
                        Ok(messages) => {
                            receive_errors = 0;
                            for message in messages {
                                stats.received += 1;
                                let permit = permits.clone().acquire_owned().await.expect("semaphore is never closed");
                                let (task_shared, task_message) = (shared.clone(), message.clone());
                                let series = probe.metrics().cloned();
                                let handle = tasks.spawn(async move {
                                    let _permit = permit;
                                    let started = tokio::time::Instant::now();
                                    let disposition = handle(task_shared.as_ref(), &task_message).await;
                                    if let Some(series) = series {
                                        series.handled(started.elapsed());
                                    }
                                    disposition
                                });
                                in_flight.insert(handle.id(), message);
                                if let Some(series) = probe.metrics() {
                                    series.in_flight(1);
                                }
                            }
                        }
                        Err(e) => {
                            receive_errors += 1;
                            let pause = shared.backoff.delay_random(receive_errors.min(5));
                            probe.pausing(pause);
                            tracing::warn!(stage = %kind, error = %e, pause_secs = pause.as_secs(), "receive failed; retrying");
                            tokio::select! {
                                _ = &mut shutdown => break,
                                _ = tokio::time::sleep(pause) => {}
                            }
                        }
                    }
                }
            }
        }

        probe.draining();
        tracing::info!(stage = %kind, in_flight = tasks.len(), "shutting down: no more receives, finishing in-flight work");
        let grace = tokio::time::sleep(self.settings.shutdown_grace);
        tokio::pin!(grace);
        loop {
            if tasks.is_empty() && pending.is_none() {
                break;
            }
            tokio::select! {
                _ = &mut grace => break,
                Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    settle(joined, &mut in_flight, &mut stats, &shared.metrics, &probe);
                }
                received = async { pending.as_mut().expect("guarded").await }, if pending.is_some() => {
                    pending = None;
                    probe.received(received.as_ref().map(Vec::len));
                    // Received after shutdown began: hand straight back to the queue.
                    let received = received.unwrap_or_default();
                    stats.received += received.len() as u64;
                    let released = release(shared.queue.as_ref(), received.iter()).await;
                    stats.released += released;
                    count_messages(&probe, "released", released);
                }
            }
        }
        if let Some(pending) = pending.take() {
            // The grace ran out with a receive still pending. Dropping it would not cancel
            // it on the SQS side: a message handed to the abandoned poll would stay invisible
            // for a whole visibility timeout. So it is awaited (at most the long-poll wait)
            // and whatever it brings is released at once.
            let longest = wait + Duration::from_secs(5);
            if let Ok(received) = tokio::time::timeout(longest, pending).await {
                probe.received(received.as_ref().map(Vec::len));
                let received = received.unwrap_or_default();
                stats.received += received.len() as u64;
                let released = release(shared.queue.as_ref(), received.iter()).await;
                stats.released += released;
                count_messages(&probe, "released", released);
            }
        }
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        let released = release(shared.queue.as_ref(), in_flight.values()).await;
        stats.released += released;
        count_messages(&probe, "released", released);
        if let Some(series) = probe.metrics() {
            series.in_flight(-(in_flight.len() as i64));
        }
        tracing::info!(stage = %kind, ?stats, "worker stopped");
        guard.stopped();
        stats
    }
}

/// A publisher to the pipeline's SNS events topic, for the workers of one process to share.
pub async fn sns_publisher(
    cx: &StageCx,
    window: Duration,
) -> Result<Publisher, intake_aws::AwsError> {
    let account = cx.aws.account_id().await?;
    let arn =
        intake_aws::arn::Arns::new(account, cx.aws.region.clone()).topic(&cx.names.events_topic);
    let topic = SnsTopic::new(cx.aws.clone(), arn);
    Ok(Publisher::start(Arc::new(topic), cx.ledger.clone(), window))
}

type Received = Result<Vec<Delivery>, QueueError>;

/// The stage queue's long poll (`wait_time_secs`).
fn long_poll(cx: &StageCx, kind: intake_core::state_machine::StageKind) -> Duration {
    Duration::from_secs(u64::from(cx.config.queue_settings(kind).wait_time_secs))
}

fn count_messages(probe: &LoopProbe, outcome: &str, n: u64) {
    if let Some(series) = probe.metrics() {
        series.messages(outcome, n);
    }
}

/// One receive for as many messages as there is room for. With only a little room while
/// work is in flight (a backlog), it first waits one batch window for more room, so that
/// a busy worker asks for several messages per call instead of one at a time.
async fn receive<S: Stage>(
    shared: Arc<Shared<S>>,
    permits: Arc<Semaphore>,
    want: usize,
    coalesce: Duration,
    wait: Duration,
) -> Received {
    if permits.available_permits() < want && !coalesce.is_zero() {
        tokio::time::sleep(coalesce).await;
    }
    // Room only grows meanwhile: permits are taken for what this receive brings.
    let room = permits.available_permits().clamp(1, MAX_BATCH);
    shared.queue.receive(room, wait).await
}

/// Hands deliveries back to the queue at once (visibility 0), ten per call, so another
/// worker takes them without waiting out a visibility timeout. Returns how many.
async fn release<'a>(queue: &dyn Queue, deliveries: impl Iterator<Item = &'a Delivery>) -> u64 {
    let changes: Vec<VisibilityChange> = deliveries
        .map(|d| VisibilityChange {
            receipt: d.receipt.clone(),
            timeout: Duration::ZERO,
        })
        .collect();
    let mut released = 0;
    for chunk in changes.chunks(MAX_BATCH) {
        for result in queue.change_visibility(chunk.to_vec()).await {
            match result {
                Ok(()) => released += 1,
                Err(e) => {
                    tracing::warn!(error = %e, "could not hand a message back; it returns after its visibility timeout")
                }
            }
        }
    }
    released
}

fn settle(
    joined: Result<(tokio::task::Id, Disposition), tokio::task::JoinError>,
    in_flight: &mut HashMap<tokio::task::Id, Delivery>,
    stats: &mut WorkerStats,
    metrics: &Metrics,
    probe: &LoopProbe,
) {
    let id = match &joined {
        Ok((id, _)) => *id,
        Err(e) => e.id(),
    };
    if in_flight.remove(&id).is_some()
        && let Some(series) = probe.metrics()
    {
        series.in_flight(-1);
    }
    match joined {
        Ok((_, disposition)) => {
            let outcome = match disposition {
                Disposition::Deleted => {
                    stats.deleted += 1;
                    "deleted"
                }
                Disposition::Retried => {
                    stats.retried += 1;
                    "retried"
                }
                Disposition::Poisoned => {
                    stats.poisoned += 1;
                    "poisoned"
                }
            };
            count_messages(probe, outcome, 1);
        }
        Err(e) => {
            if e.is_panic() {
                // The message stays invisible until its timeout, then returns; after
                // max_receive_count panics the redrive policy moves it to the DLQ.
                stats.panicked += 1;
                count_messages(probe, "panicked", 1);
                metrics.record(MetricEvent::Panicked);
                tracing::error!(error = %e, "a message handler panicked; the message will be redelivered");
            }
        }
    }
}
