//! `intake run`: the stage workers of this process, until SIGINT or SIGTERM; then a
//! graceful shutdown (stop receiving, finish or release in-flight work) and exit 0.
//!
//! Starting and stopping the workers is shared with `intake up` ([`start_all`],
//! [`Workers::stop`]), so both commands run the stages the same way.

use std::sync::Arc;

use anyhow::Context;
use intake_aws::AwsClients;
use intake_core::state_machine::StageKind;
use intake_core::{PipelineConfig, ResourceNames};
use intake_runtime::protocol::Publisher;
use intake_runtime::{Stage, StageCx, Worker, WorkerSettings, WorkerStats};
use intake_stage_archive::Archive;
use intake_stage_catalog::Catalog;
use intake_stage_delete::Delete;
use intake_stage_scan::Scan;
use intake_stage_thumbnail::Thumbnail;
use intake_stage_validate::Validate;
use intake_store::Ledger;
use tokio::sync::watch;

use crate::Failure;

pub async fn run(
    config: PipelineConfig,
    stages: Option<Vec<String>>,
    concurrency: Option<u32>,
) -> Result<(), Failure> {
    let concurrency = concurrency.unwrap_or(config.workers.concurrency) as usize;
    let selected: Vec<StageKind> = match stages {
        None => config.queue_kinds(),
        Some(names) => {
            let mut kinds = Vec::new();
            for name in names {
                let kind = StageKind::WITH_QUEUES
                    .into_iter()
                    .find(|k| k.name() == name)
                    .ok_or_else(|| anyhow::anyhow!("unknown stage \"{name}\"; stages are validate, scan, thumbnail, catalog, archive and delete (the deletion worker)"))?;
                if kind != StageKind::Delete && !config.stages.contains_key(kind.name()) {
                    return Err(
                        anyhow::anyhow!("stage {kind} is not configured in pipeline.toml").into(),
                    );
                }
                kinds.push(kind);
            }
            kinds
        }
    };

    let ledger = open_ledger(&database_url(&config)).await?;
    let aws = AwsClients::load(&config.aws).await;
    let names = Arc::new(ResourceNames::of(&config));
    let cx = StageCx {
        aws,
        config: Arc::new(config),
        names,
        ledger,
    };

    let workers = start_all(&cx, &selected, concurrency, metrics_enabled()).await?;
    shutdown_signal().await?;
    eprintln!("intake: shutting down: finishing in-flight work");
    workers.stop().await?;
    cx.ledger.close().await;
    write_call_counts(&cx.aws)?;
    Ok(())
}

/// With `INTAKE_CALL_COUNTS=FILE`, the AWS requests this process made, by operation, as
/// a JSON object (`intake bench pipeline` reads them to report calls per object).
fn write_call_counts(aws: &AwsClients) -> anyhow::Result<()> {
    let Some(path) = std::env::var_os("INTAKE_CALL_COUNTS").filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let counts = serde_json::to_string_pretty(&aws.calls.snapshot())?;
    std::fs::write(&path, counts)
        .with_context(|| format!("writing the call counts to {}", path.to_string_lossy()))?;
    Ok(())
}

/// The ledger's URL: `INTAKE_DATABASE_URL`, else `[ledger] database_url`.
pub fn database_url(config: &PipelineConfig) -> String {
    std::env::var("INTAKE_DATABASE_URL").unwrap_or_else(|_| config.ledger.database_url.clone())
}

pub async fn open_ledger(database_url: &str) -> anyhow::Result<Arc<Ledger>> {
    let ledger = Ledger::connect(database_url)
        .await
        .with_context(|| format!("opening the ledger at {database_url}"))?;
    Ok(Arc::new(ledger))
}

/// CloudWatch metrics are on unless `INTAKE_METRICS` is `0` or `false`.
pub fn metrics_enabled() -> bool {
    std::env::var("INTAKE_METRICS")
        .map(|v| v != "0" && v != "false")
        .unwrap_or(true)
}

/// Workers running in this process, and the switch that stops them.
pub struct Workers {
    tasks: tokio::task::JoinSet<WorkerStats>,
    stop: watch::Sender<bool>,
}

impl Workers {
    /// Graceful shutdown: every worker stops receiving, finishes or releases what it holds;
    /// returns once all have stopped. Dropping the future instead aborts the workers
    /// (their messages come back after the visibility timeout).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        while let Some(stats) = self.tasks.join_next().await {
            let stats = stats.context("a worker task failed")?;
            eprintln!("intake: worker stopped: {stats:?}");
        }
        Ok(())
    }
}

/// Starts one worker per stage in `kinds`, each with its own worker id, `concurrency`
/// messages at once, and CloudWatch metrics if `metrics`.
pub async fn start_all(
    cx: &StageCx,
    kinds: &[StageKind],
    concurrency: usize,
    metrics: bool,
) -> anyhow::Result<Workers> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut workers = tokio::task::JoinSet::new();
    // One publisher for every stage: they all publish to the events topic, so their
    // outcomes share PublishBatch calls.
    let window = std::time::Duration::from_millis(u64::from(cx.config.workers.batch_window_ms));
    let publisher = intake_runtime::worker::sns_publisher(cx, window)
        .await
        .context("finding the events topic (run `intake provision` first)")?;
    for &kind in kinds {
        // Built per stage, not cloned: the default gives every worker its own id.
        let settings = WorkerSettings {
            concurrency,
            metrics,
            shutdown_grace: std::time::Duration::from_secs(u64::from(
                cx.config.workers.shutdown_grace_secs,
            )),
            batch_window: window,
            ..WorkerSettings::default()
        };
        let mut stop = stop_rx.clone();
        let stopped = async move { while stop.changed().await.is_ok() && !*stop.borrow() {} };
        match kind {
            StageKind::Validate => {
                let stage = Validate::new(&cx.config);
                start_worker(stage, cx, settings, &publisher, stopped, &mut workers).await?
            }
            StageKind::Scan => {
                let stage = Scan::from_config(&cx.config);
                start_worker(stage, cx, settings, &publisher, stopped, &mut workers).await?
            }
            StageKind::Thumbnail => {
                let stage = Thumbnail::from_config(&cx.config);
                start_worker(stage, cx, settings, &publisher, stopped, &mut workers).await?
            }
            StageKind::Catalog => {
                start_worker(
                    Catalog::new(),
                    cx,
                    settings,
                    &publisher,
                    stopped,
                    &mut workers,
                )
                .await?
            }
            StageKind::Archive => {
                let stage = Archive::from_config(&cx.config);
                start_worker(stage, cx, settings, &publisher, stopped, &mut workers).await?
            }
            StageKind::Delete => {
                let stage = Delete::from_config(&cx.config);
                start_worker(stage, cx, settings, &publisher, stopped, &mut workers).await?
            }
        }
        eprintln!("intake: {kind} worker running (concurrency {concurrency})");
    }
    Ok(Workers {
        tasks: workers,
        stop: stop_tx,
    })
}

/// Starts a worker for `stage` in `workers`; it runs until `stopped` resolves.
async fn start_worker<S: Stage>(
    stage: S,
    cx: &StageCx,
    settings: WorkerSettings,
    publisher: &Publisher,
    stopped: impl Future<Output = ()> + Send + 'static,
    workers: &mut tokio::task::JoinSet<WorkerStats>,
) -> anyhow::Result<()> {
    let worker = Worker::with_publisher(stage, cx.clone(), settings, publisher.clone()).await?;
    workers.spawn(worker.run(stopped));
    Ok(())
}

pub async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
