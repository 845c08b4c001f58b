//! `intake run`: the stage workers of this process, until SIGINT or SIGTERM; then a
//! graceful shutdown (stop receiving, finish or release in-flight work) and exit 0.
//! Workers are started by the stage registry (`intake_stages`), as `intake up` and the
//! testkit start them.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use intake_aws::AwsClients;
use intake_core::state_machine::StageKind;
use intake_core::{PipelineConfig, ResourceNames};
use intake_runtime::{StageCx, WorkerSettings};
use intake_stages::{StageWorkers, configured_settings};

use crate::common::{Failure, LedgerLocation, metrics_enabled, shutdown_signal};

pub async fn run(
    config: PipelineConfig,
    config_path: &Path,
    stages: Option<Vec<String>>,
    concurrency: Option<u32>,
) -> Result<(), Failure> {
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

    let metrics = metrics_enabled();
    let workers = StageWorkers::start_on_aws(&cx, &selected, |_| WorkerSettings {
        concurrency,
        metrics,
        ..configured_settings(&cx.config)
    })
    .await
    .map_err(anyhow::Error::from)?;
    for kind in &selected {
        eprintln!("intake: {kind} worker running (concurrency {concurrency})");
    }
    shutdown_signal().await?;
    eprintln!("intake: shutting down: finishing in-flight work");
    for (kind, stats) in workers.stop().await.map_err(anyhow::Error::from)? {
        eprintln!("intake: {kind} worker stopped: {stats:?}");
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
