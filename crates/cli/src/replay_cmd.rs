//! `intake dlq replay` and `intake reprocess`: putting work back into the pipeline after
//! the cause of its failure is fixed. Both show a progress bar on a terminal and plain
//! lines otherwise, and end with a summary; both are recorded in the ledger.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use intake_aws::AwsClients;
use intake_core::state_machine::StageKind;
use intake_core::{PipelineConfig, ResourceNames};
use intake_ops::replay::{Progress, ReplayFilter, ReplayOptions, replay};
use intake_ops::reprocess::{Selection, plan, reprocess};
use intake_store::{Ledger, ReplayRecord};

use crate::Failure;

async fn open(config: &PipelineConfig) -> anyhow::Result<Ledger> {
    let url =
        std::env::var("INTAKE_DATABASE_URL").unwrap_or_else(|_| config.ledger.database_url.clone());
    Ledger::connect(&url)
        .await
        .with_context(|| format!("opening the ledger at {url}"))
}

fn requester(given: Option<String>) -> String {
    given
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "intake-cli".into())
}

/// A bar on a terminal, plain lines (at most one a second) otherwise.
struct Reporter {
    bar: Option<ProgressBar>,
    last_line: std::time::Instant,
}

impl Reporter {
    fn new(total: u64) -> Reporter {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg} (ETA {eta})",
                )
                .expect("a valid template"),
            );
            bar
        });
        Reporter {
            bar,
            last_line: std::time::Instant::now(),
        }
    }

    fn update(&mut self, done: u64, total: u64, message: String) {
        match &self.bar {
            Some(bar) => {
                bar.set_length(total.max(done));
                bar.set_position(done);
                bar.set_message(message);
            }
            None if self.last_line.elapsed() >= Duration::from_secs(1) => {
                eprintln!("intake: {done}/{total} {message}");
                self.last_line = std::time::Instant::now();
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `intake dlq replay`'s options.
pub struct ReplayArgs {
    pub filter: Option<String>,
    pub limit: Option<u64>,
    pub rate: Option<f64>,
    pub dry_run: bool,
    pub requested_by: Option<String>,
}

pub async fn dlq_replay(
    config: &PipelineConfig,
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
    let ledger = open(config).await?;
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

pub async fn reprocess_cmd(
    config: &PipelineConfig,
    target: Option<&str>,
    prefix: Option<&str>,
    from: Option<&str>,
    dry_run: bool,
    requested_by: Option<String>,
) -> Result<(), Failure> {
    let names = ResourceNames::of(config);
    let selection = match (target, prefix) {
        (Some(uri), None) => {
            let (_, key) = crate::status_cmd::parse_uri(uri)?;
            Selection::Key(key.to_owned())
        }
        (None, Some(prefix)) => Selection::Prefix(prefix.to_owned()),
        _ => {
            return Err(anyhow::anyhow!(
                "name one object (s3://BUCKET/KEY) or one --prefix, not both and not neither"
            )
            .into());
        }
    };
    let from = from
        .map(intake_ops::dlq::parse_stage)
        .transpose()
        .map_err(anyhow::Error::from)?;
    let ledger = open(config).await?;
    let planned = plan(&ledger, config, &names, &selection, from)
        .await
        .context("reading the ledger")?;
    if planned.is_empty() {
        return Err(anyhow::anyhow!(
            "nothing in the ledger under {selection:?}; keys are those of the uploads bucket ({})",
            names.bucket(intake_core::names::BucketRole::Uploads)
        )
        .into());
    }
    let aws = AwsClients::load(&config.aws).await;
    let requested_by = requester(requested_by);
    let started_ms = now_ms();
    let mut reporter = Reporter::new(planned.len() as u64);
    let (mut done, mut refused) = (0u64, 0u64);
    for (i, one) in planned.iter().enumerate() {
        match one {
            Ok(p) if dry_run => {
                println!("would re-run {} from {}", p.version, p.from);
                done += 1;
            }
            Ok(p) => {
                reprocess(&aws, config, &names, &ledger, p, &requested_by)
                    .await
                    .map_err(anyhow::Error::from)?;
                done += 1;
                if reporter.bar.is_none() && planned.len() == 1 {
                    println!("re-running {} from {}", p.version, p.from);
                }
            }
            Err(e) => {
                eprintln!("intake: skipped: {e}");
                refused += 1;
            }
        }
        reporter.update(
            i as u64 + 1,
            planned.len() as u64,
            format!("{done} sent, {refused} skipped"),
        );
    }
    reporter.finish();
    let verb = if dry_run {
        "would re-run"
    } else {
        "re-running"
    };
    println!(
        "{verb} {done} version(s), {refused} skipped; follow with `intake status s3://{}/KEY`",
        names.bucket(intake_core::names::BucketRole::Uploads)
    );
    if !dry_run && done > 0 {
        ledger
            .record_replay(&ReplayRecord {
                stage: from.map_or("failed stage", |f| f.name()).to_owned(),
                requested_by,
                filter: match &selection {
                    Selection::Key(k) => format!("key={k}"),
                    Selection::Prefix(p) => format!("key-prefix={p}"),
                },
                method: "reprocess".into(),
                dry_run,
                matched: done + refused,
                moved: done,
                started_ms,
                finished_ms: now_ms(),
            })
            .await
            .context("recording the reprocess")?;
    }
    ledger.close().await;
    if refused > 0 && done == 0 {
        return Err(anyhow::anyhow!("no version could be reprocessed (see above)").into());
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
