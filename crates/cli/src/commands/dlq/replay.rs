//! `intake dlq replay`: moving a stage's dead letters back to its queue after the cause
//! of their failure is fixed, with a filter, a limit and a rate; recorded in the ledger.

use std::path::Path;

use intake_aws::AwsClients;
use intake_core::state_machine::StageKind;
use intake_core::{PipelineConfig, ResourceNames};
use intake_ops::replay::{Progress, ReplayFilter, ReplayOptions, replay};
use intake_store::ReplayRecord;

use crate::common::progress::Reporter;
use crate::common::{Failure, LedgerLocation, requester};

/// `intake dlq replay`'s options.
pub struct ReplayArgs {
    pub filter: Option<String>,
    pub limit: Option<u64>,
    pub rate: Option<f64>,
    pub dry_run: bool,
    pub requested_by: Option<String>,
}

pub async fn run(
    config: &PipelineConfig,
    config_path: &Path,
    stage: StageKind,
    args: ReplayArgs,
) -> Result<(), Failure> {
    let ReplayArgs {
        filter,
        limit,
        rate,
        dry_run,
        requested_by,
    } = args;
    let filter: ReplayFilter = filter
        .as_deref()
        .unwrap_or("")
        .parse()
        .map_err(anyhow::Error::from)?;
    if rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
        return Err(
            anyhow::anyhow!("--rate must be a positive number of messages per second").into(),
        );
    }
    let ledger = LedgerLocation::of(config, config_path).open().await?;
    let aws = AwsClients::load(&config.aws).await;
    let names = ResourceNames::of(config);
    let options = ReplayOptions {
        filter,
        limit,
        rate_per_sec: rate,
        dry_run,
        requested_by: requester(requested_by),
        key_template: config.uploads.key_template.clone(),
        ..ReplayOptions::default()
    };
    let mut reporter: Option<Reporter> = None;
    let mut on_progress = |p: &Progress| {
        let r = reporter.get_or_insert_with(|| Reporter::new(p.total));
        r.update(
            p.seen,
            p.total,
            format!(
                "matched {} moved {} ({:.1}/s)",
                p.matched,
                p.moved,
                p.rate()
            ),
        );
    };
    let record = replay(&aws, &names, &ledger, stage, &options, &mut on_progress)
        .await
        .map_err(anyhow::Error::from)?;
    if let Some(r) = &reporter {
        r.finish();
    }
    print_summary(&record, &names.stage(stage).dlq, &names.stage(stage).queue);
    ledger.close().await;
    Ok(())
}

fn print_summary(record: &ReplayRecord, dlq: &str, queue: &str) {
    let filter = if record.filter.is_empty() {
        "no filter".to_owned()
    } else {
        format!("filter {}", record.filter)
    };
    let seconds = (record.finished_ms - record.started_ms) as f64 / 1000.0;
    if record.dry_run {
        println!(
            "dry run: {} message(s) in {dlq} match ({filter}); nothing was moved. Run again without --dry-run to move them to {queue}.",
            record.matched
        );
    } else {
        println!(
            "replayed {} message(s) from {dlq} to {queue} ({filter}, {}, {seconds:.1} s); recorded in the ledger",
            record.moved, record.method
        );
    }
}
