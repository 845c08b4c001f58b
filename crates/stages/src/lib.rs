//! The stage registry: the one place where a [`StageKind`] becomes a running worker.
//!
//! `intake run`, `intake up` and the testkit's in-process stack all start their workers
//! through [`StageWorkers::start`], so a stage added to the build (or a change in how one is
//! built from `pipeline.toml`) is made here once and every way of running Intake gets it.
//! Stage crates never depend on each other; this crate is the only one that knows them all.

use std::time::Duration;

use intake_core::PipelineConfig;
use intake_core::state_machine::StageKind;
use intake_runtime::protocol::Publisher;
use intake_runtime::worker::sns_publisher;
use intake_runtime::{Stage, StageCx, Worker, WorkerError, WorkerSettings, WorkerStats};
use intake_stage_archive::Archive;
use intake_stage_catalog::Catalog;
use intake_stage_delete::Delete;
use intake_stage_scan::Scan;
use intake_stage_thumbnail::Thumbnail;
use intake_stage_validate::Validate;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Why workers could not be started or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum StagesError {
    /// A worker could not find its queue or topic (run `intake provision` first).
    #[error(
        "starting the {stage} worker: {source} (run `intake provision` first if the pipeline's queues or topics do not exist)"
    )]
    Start {
        stage: StageKind,
        source: WorkerError,
    },
    /// The events topic every stage publishes to could not be found.
    #[error(
        "finding the events topic {topic}: {source} (run `intake provision` first if it does not exist)"
    )]
    Topic {
        topic: String,
        source: intake_aws::AwsError,
    },
    /// A worker's task ended in a panic instead of returning its statistics.
    #[error(
        "a stage worker's task failed while stopping: {0}; its in-flight messages return to the queue after their visibility timeout"
    )]
    Join(#[from] tokio::task::JoinError),
}

impl StagesError {
    pub fn code(&self) -> &'static str {
        match self {
            StagesError::Start { .. } => "worker_start",
            StagesError::Topic { .. } => "events_topic",
            StagesError::Join(_) => "worker_task",
        }
    }
}

/// Workers running in this process, one per started stage, and the switch that stops
/// them. Dropping it aborts whatever still runs (their messages come back after the
/// visibility timeout).
pub struct StageWorkers {
    tasks: JoinSet<(StageKind, WorkerStats)>,
    stop: watch::Sender<bool>,
}

/// A worker's settings as `[workers]` of `pipeline.toml` gives them (concurrency, shutdown
/// grace, batch window); a new worker id on every call.
pub fn configured_settings(config: &PipelineConfig) -> WorkerSettings {
    let workers = &config.workers;
    WorkerSettings {
        concurrency: workers.concurrency as usize,
        shutdown_grace: Duration::from_secs(u64::from(workers.shutdown_grace_secs)),
        batch_window: Duration::from_millis(u64::from(workers.batch_window_ms)),
        ..WorkerSettings::default()
    }
}

impl StageWorkers {
    /// [`StageWorkers::start`] with one publisher to the pipeline's SNS events topic for
    /// all of them (their outcomes share `PublishBatch` calls), batching within
    /// `[workers] batch_window_ms`.
    pub async fn start_on_aws(
        cx: &StageCx,
        kinds: &[StageKind],
        settings: impl Fn(StageKind) -> WorkerSettings,
    ) -> Result<StageWorkers, StagesError> {
        let window = Duration::from_millis(u64::from(cx.config.workers.batch_window_ms));
        let publisher = sns_publisher(cx, window)
            .await
            .map_err(|source| StagesError::Topic {
                topic: cx.names.events_topic.clone(),
                source,
            })?;
        Self::start(cx, kinds, &publisher, settings).await
    }

    /// Starts one worker per kind in `kinds`, all publishing through `publisher`, each
    /// with the settings `settings` gives for its kind (called once per kind, so every
    /// worker can have its own id). If any worker cannot start, the ones already started
    /// are stopped and the error names the stage.
    pub async fn start(
        cx: &StageCx,
        kinds: &[StageKind],
        publisher: &Publisher,
        settings: impl Fn(StageKind) -> WorkerSettings,
    ) -> Result<StageWorkers, StagesError> {
        let (stop, stopped) = watch::channel(false);
        let mut workers = StageWorkers {
            tasks: JoinSet::new(),
            stop,
        };
        for &kind in kinds {
            let settings = settings(kind);
            let started = match kind {
                StageKind::Validate => {
                    let stage = Validate::new(&cx.config);
                    workers
                        .spawn(stage, cx, settings, publisher, &stopped)
                        .await
                }
                StageKind::Scan => {
                    let stage = Scan::from_config(&cx.config);
                    workers
                        .spawn(stage, cx, settings, publisher, &stopped)
                        .await
                }
                StageKind::Thumbnail => {
                    let stage = Thumbnail::from_config(&cx.config);
                    workers
                        .spawn(stage, cx, settings, publisher, &stopped)
                        .await
                }
                StageKind::Catalog => {
                    let stage = Catalog::new();
                    workers
                        .spawn(stage, cx, settings, publisher, &stopped)
                        .await
                }
                StageKind::Archive => {
                    let stage = Archive::from_config(&cx.config);
                    workers
                        .spawn(stage, cx, settings, publisher, &stopped)
                        .await
                }
                StageKind::Delete => {
                    let stage = Delete::from_config(&cx.config);
                    workers
                        .spawn(stage, cx, settings, publisher, &stopped)
                        .await
                }
            };
            if let Err(source) = started {
                workers.abort();
                return Err(StagesError::Start {
                    stage: kind,
                    source,
                });
            }
        }
        Ok(workers)
    }

    async fn spawn<S: Stage>(
        &mut self,
        stage: S,
        cx: &StageCx,
        settings: WorkerSettings,
        publisher: &Publisher,
        stopped: &watch::Receiver<bool>,
    ) -> Result<(), WorkerError> {
        let worker = Worker::with_publisher(stage, cx.clone(), settings, publisher.clone()).await?;
        let stopped = stop_asked(stopped.clone());
        self.tasks
            .spawn(async move { (S::KIND, worker.run(stopped).await) });
        Ok(())
    }

    /// How many workers were started.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Graceful shutdown: every worker stops receiving and finishes or releases what it
    /// holds within its settings' grace; returns what each did, once all have stopped.
    pub async fn stop(mut self) -> Result<Vec<(StageKind, WorkerStats)>, StagesError> {
        let _ = self.stop.send(true);
        let mut stats = Vec::new();
        while let Some(done) = self.tasks.join_next().await {
            stats.push(done?);
        }
        Ok(stats)
    }

    /// [`StageWorkers::stop`], but whatever has not stopped after `limit` is aborted.
    pub async fn stop_within(mut self, limit: Duration) {
        let _ = self.stop.send(true);
        let drained = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(limit, drained).await.is_err() {
            self.tasks.abort_all();
        }
    }

    /// Stop at once: the worker tasks are aborted and their messages come back after the
    /// visibility timeout.
    pub fn abort(&mut self) {
        let _ = self.stop.send(true);
        self.tasks.abort_all();
    }
}

impl Drop for StageWorkers {
    fn drop(&mut self) {
        self.abort();
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stop_asked(mut stop: watch::Receiver<bool>) {
    while stop.changed().await.is_ok() && !*stop.borrow() {}
}
