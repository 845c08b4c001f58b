//! `intake run`: the stage workers of this process, until SIGINT or SIGTERM; then a
//! graceful shutdown (stop receiving, finish or release in-flight work) and exit 0.
//! Workers are started by the stage registry (`intake_stages`), as `intake up` and the
//! testkit start them. With `[workers] health_bind` (or `--health-bind`) the process also
//! serves `/healthz`, `/readyz` and `/metrics` there (`intake_runtime::health`), until the
//! workers have stopped.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use intake_aws::AwsClients;
use intake_clamd::ClamdAddress;
use intake_core::config::ScannerConfig;
use intake_core::state_machine::StageKind;
use intake_core::{PipelineConfig, ResourceNames};
use intake_runtime::health::{Health, HealthSettings, serve};
use intake_runtime::{StageCx, WorkerSettings};
use intake_stages::{StageWorkers, configured_settings};

use crate::common::{Failure, LedgerLocation, metrics_enabled, shutdown_signal};

pub async fn run(
    config: PipelineConfig,
    config_path: &Path,
    stages: Option<Vec<String>>,
    concurrency: Option<u32>,
    health_bind: Option<SocketAddr>,
) -> Result<(), Failure> {
    let health_addr = health_bind.or_else(|| config.workers.health_addr());
    let concurrency = concurrency.unwrap_or(config.workers.concurrency) as usize;
    let selected = select(&config, stages)?;
    let ledger = LedgerLocation::of(&config, config_path).open().await?;
    let aws = AwsClients::load(&config.aws).await;
    let names = Arc::new(ResourceNames::of(&config));
    let cx = StageCx {
        aws,
        config: Arc::new(config),
        names,
        ledger,
    };

    let health = health_addr.map(|_| health_of(&cx, &selected));
    let metrics = metrics_enabled();
    let workers = StageWorkers::start_on_aws(&cx, &selected, |_| WorkerSettings {
        concurrency,
        metrics,
        health: health.clone(),
        ..configured_settings(&cx.config)
    })
    .await
    .map_err(anyhow::Error::from)?;
    // The server outlives the drain: `/healthz` keeps answering while in-flight work
    // finishes, where a closed port would fail the container's check and get it killed.
    let (served, server) = match (health_addr, health) {
        (Some(addr), Some(health)) => {
            let (done, stopped) = tokio::sync::oneshot::channel::<()>();
            let server = serve(addr, health, async {
                let _ = stopped.await;
            })
            .await
            .map_err(|e| {
                anyhow::anyhow!("{e}; set [workers] health_bind or --health-bind to a free address")
            })?;
            eprintln!(
                "intake: health endpoints on http://{}/healthz, /readyz, /metrics",
                server.local_addr()
            );
            (Some(done), Some(server))
        }
        _ => (None, None),
    };
    for kind in &selected {
        eprintln!("intake: {kind} worker running (concurrency {concurrency})");
    }
    shutdown_signal().await?;
    eprintln!("intake: shutting down: finishing in-flight work");
    for (kind, stats) in workers.stop().await.map_err(anyhow::Error::from)? {
        eprintln!("intake: {kind} worker stopped: {stats:?}");
    }
    if let (Some(done), Some(server)) = (served, server) {
        let _ = done.send(());
        server
            .stopped()
            .await
            .context("stopping the health endpoints")?;
    }
    cx.ledger.close().await;
    write_call_counts(&cx.aws)?;
    Ok(())
}

/// The stages `--stages` names (each configured), or every configured stage and the
/// deletion worker.
fn select(config: &PipelineConfig, names: Option<Vec<String>>) -> Result<Vec<StageKind>, Failure> {
    let Some(names) = names else {
        return Ok(config.queue_kinds());
    };
    let mut kinds = Vec::new();
    for name in names {
        let kind = StageKind::WITH_QUEUES
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| anyhow::anyhow!("unknown stage \"{name}\"; stages are validate, scan, thumbnail, catalog, archive and delete (the deletion worker)"))?;
        if !config.queue_kinds().contains(&kind) {
            return Err(anyhow::anyhow!(
                "stage {kind} is not configured in pipeline.toml; add [stages.{kind}] or leave it out of --stages"
            )
            .into());
        }
        kinds.push(kind);
    }
    Ok(kinds)
}

/// The health of this process's workers, with clamd's PING as a readiness check when a
/// scan stage runs here with a clamd scanner.
fn health_of(cx: &StageCx, kinds: &[StageKind]) -> Health {
    let health = Health::new(HealthSettings::default());
    if kinds.contains(&StageKind::Scan)
        && let Some(ScannerConfig::Clamd {
            address,
            timeout_secs,
        }) = cx.config.scanner()
    {
        let address = ClamdAddress::from_config(&address);
        // PING answers at once; the scan timeout is for scans, far longer than a probe.
        let timeout = Duration::from_secs(u64::from(timeout_secs).clamp(1, 2));
        health.add_check("clamd", move || {
            let address = address.clone();
            async move { intake_clamd::ping(&address, timeout).await }
        });
    }
    health
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
