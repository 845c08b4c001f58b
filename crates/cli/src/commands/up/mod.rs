//! `intake up`: Intake end to end on one machine with one command. It starts what is
//! missing (LocalStack as a container or on the host, a clamd with the project's test
//! signatures: [`crate::devstack`]), provisions, runs every stage in this process, uploads
//! the sample files and shows each one moving through the stages until all have ended
//! ([`follow`], [`report`]). Then it keeps serving uploads until Ctrl-C (or exits, with
//! `--exit-when-done`), and stops exactly what it started.

mod follow;
mod report;
mod web;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use intake_aws::provision::{apply, plan};
use intake_core::config::ScannerConfig;
use intake_core::names::BucketRole;
use intake_core::state_machine::StageKind;
use intake_core::{PipelineConfig, ResourceNames};
use intake_runtime::{StageCx, WorkerSettings};
use intake_stages::{StageWorkers, configured_settings};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::common::{DATABASE_URL_VAR, Failure, LedgerLocation, metrics_enabled};
use crate::devstack::{DevStack, clamd, samples};

pub struct Options {
    pub exit_when_done: bool,
    pub keep_running: bool,
}

/// States after which nothing more happens to an upload.
const TERMINAL: [&str; 3] = ["done", "quarantined", "failed"];
/// How often the ledger is read while following the samples.
const POLL: Duration = Duration::from_millis(500);
/// Longer than any sample needs (seconds on LocalStack), short enough that a stuck sample
/// (e.g. retried into its DLQ) is reported rather than waited on forever.
const FOLLOW_DEADLINE: Duration = Duration::from_secs(300);
/// Messages each stage works on at once; the samples need no more.
const CONCURRENCY: usize = 4;
const TENANT: &str = "demo";
const USER: &str = "sample";

/// SIGINT and SIGTERM, listened to from the first moment: until tokio's handlers are in
/// place a Ctrl-C would kill the process and leave a container running.
struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// The pipeline, running.
struct Running {
    cx: StageCx,
    workers: StageWorkers,
    ledger: LedgerLocation,
    /// False when the scan stage runs with `kind = "none"`.
    scanning: bool,
    endpoint: String,
    /// The endpoint is a LocalStack started here (so its credentials are `test`).
    own_localstack: bool,
    /// The API and web page.
    web: web::Web,
}

pub async fn run(
    config_path: &Path,
    mut config: PipelineConfig,
    options: Options,
) -> Result<(), Failure> {
    let mut signals = Signals::install()?;
    let mut started = DevStack::new("intake up");

    let setup = tokio::select! {
        result = setup(config_path, &mut config, &mut started) => Some(result),
        () = signals.recv() => None,
    };
    let running = match setup {
        Some(Ok(running)) => running,
        Some(Err(e)) => {
            started.stop();
            return Err(e.into());
        }
        None => {
            eprintln!("intake up: interrupted during startup; stopping what was started");
            started.stop();
            return Ok(());
        }
    };

    let samples = samples::all(running.scanning);
    let followed = tokio::select! {
        result = follow::follow(&running, &samples) => Some(result),
        () = signals.recv() => None,
    };
    let verdict = match followed {
        Some(Ok(rows)) => Some(report::report(&running, config_path, &rows, &options)),
        Some(Err(e)) => {
            shut_down(running, &mut started, &mut signals).await?;
            return Err(e.into());
        }
        None => None,
    };
    // Serve on unless interrupted, told to exit, or a sample went wrong and not told to
    // keep going regardless.
    let serve = match &verdict {
        None => false,
        Some(_) if options.exit_when_done => false,
        Some(Ok(())) => true,
        Some(Err(_)) => options.keep_running,
    };
    if serve {
        println!(
            "\nServing: the workers process every new upload to s3://{}; drop files on {} to upload through the API. Ctrl-C stops everything intake up started.",
            running.cx.names.bucket(BucketRole::Uploads),
            running.web.url,
        );
        signals.recv().await;
    }
    shut_down(running, &mut started, &mut signals).await?;
    match verdict {
        Some(Err(e)) => Err(e.into()),
        _ => Ok(()),
    }
}

/// Stops the workers gracefully (a second signal aborts them), then what was started.
async fn shut_down(
    running: Running,
    started: &mut DevStack,
    signals: &mut Signals,
) -> anyhow::Result<()> {
    let Running {
        cx, workers, web, ..
    } = running;
    web.stop().await;
    eprintln!(
        "intake up: stopping the workers (they finish or release in-flight work, up to ~20 s; Ctrl-C again to abort)"
    );
    let stopped = tokio::select! {
        result = workers.stop() => result.map(drop).map_err(anyhow::Error::from),
        () = signals.recv() => {
            eprintln!("intake up: workers aborted; their messages return to the queues");
            Ok(())
        }
    };
    cx.ledger.close().await;
    started.stop();
    stopped
}

/// Steps 1–4: endpoint, scanner, ledger, provisioning, workers.
async fn setup(
    config_path: &Path,
    config: &mut PipelineConfig,
    started: &mut DevStack,
) -> anyhow::Result<Running> {
    println!(
        "intake up: pipeline \"{}\" from {}",
        config.pipeline.name,
        config_path.display()
    );

    // 1. An endpoint that answers, or a LocalStack of our own.
    let configured = config.aws.endpoint_url.clone().or_else(|| {
        std::env::var("AWS_ENDPOINT_URL")
            .ok()
            .filter(|e| !e.is_empty())
    });
    let say = |line: String| println!("  {line}");
    let found = started
        .endpoint(configured.as_deref(), &config.aws, config_path, &say)
        .await?;
    let aws = found.aws;
    if found.started_here {
        config.aws.endpoint_url = Some(aws.endpoint.clone());
    }
    let endpoint = aws.endpoint.clone();
    let own_localstack = found.started_here;

    // 2. The scanner.
    let scanning = start_scanner(config, started).await?;

    // 3. The ledger.
    let ledger_location = LedgerLocation::or_else(|| {
        let dir = std::path::absolute(config_path)
            .context("resolving the config file's directory")?
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
            .join(".intake");
        std::fs::create_dir_all(&dir).with_context(|| {
            format!(
                "creating {} for the ledger (or set {DATABASE_URL_VAR})",
                dir.display()
            )
        })?;
        Ok(format!("sqlite://{}", dir.join("ledger.db").display()))
    })?;
    let ledger = ledger_location.open().await?;
    println!("  ledger:    {}", ledger_location.named_by);

    // 4. Resources (with the page's origin in the bucket's CORS), then the workers and
    // the API.
    let listener = web::prepare(config).await?;
    let plan = plan(&aws, config)
        .await
        .context("planning the pipeline's resources")?;
    if plan.is_converged() {
        println!("  provision: nothing to do ({})", plan.summary());
    } else {
        apply(&aws, &plan)
            .await
            .context("provisioning the pipeline's resources")?;
        println!("  provision: applied: {}", plan.summary());
    }
    let cx = StageCx {
        aws,
        names: Arc::new(ResourceNames::of(config)),
        config: Arc::new(config.clone()),
        ledger,
    };
    let kinds = cx.config.queue_kinds();
    let metrics = metrics_enabled();
    let workers = StageWorkers::start_on_aws(&cx, &kinds, |_| WorkerSettings {
        concurrency: CONCURRENCY,
        metrics,
        ..configured_settings(&cx.config)
    })
    .await?;
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    println!(
        "  workers:   {} ({CONCURRENCY} messages at once each)",
        names.join(", ")
    );
    let web = web::start(listener, config, &cx).await?;
    println!(
        "  web page:  {}{}",
        web.url,
        if config.api.dev_tokens {
            " (sign in with a dev token as any tenant)"
        } else {
            ""
        }
    );
    Ok(Running {
        web,
        cx,
        workers,
        ledger: ledger_location,
        scanning,
        endpoint,
        own_localstack,
    })
}

/// Points the scan stage at a clamd of our own, or at `none` with a loud warning. A
/// config that already says `none` is left alone. Returns whether uploads are scanned.
async fn start_scanner(
    config: &mut PipelineConfig,
    started: &mut DevStack,
) -> anyhow::Result<bool> {
    let Some(scan) = config.stage_mut(StageKind::Scan) else {
        println!("  scanner:   no scan stage in this pipeline");
        return Ok(false);
    };
    if matches!(scan.scanner, Some(ScannerConfig::None)) {
        warn_unscanned("the config sets [stages.scan.scanner] kind = \"none\"");
        return Ok(false);
    }
    let timeout_secs = match &scan.scanner {
        Some(
            ScannerConfig::Clamd { timeout_secs, .. } | ScannerConfig::Command { timeout_secs, .. },
        ) => *timeout_secs,
        _ => intake_core::config::defaults::clamd_timeout_secs(),
    };
    let Some(clamd) = started.start_clamd().await? else {
        scan.scanner = Some(ScannerConfig::None);
        warn_unscanned("clamd is not installed");
        return Ok(false);
    };
    println!(
        "  started:   clamd ({}, pid {}) on {}, test signatures only (EICAR), StreamMaxLength {}",
        clamd.binary.display(),
        clamd.pid.unwrap_or_default(),
        clamd.address,
        clamd::STREAM_MAX
    );
    scan.scanner = Some(ScannerConfig::Clamd {
        address: format!("tcp://{}", clamd.address),
        timeout_secs,
    });
    Ok(true)
}

fn warn_unscanned(why: &str) {
    let bar = "!".repeat(78);
    eprintln!(
        "{bar}\n\
         !! WARNING: NOTHING IS SCANNED FOR MALWARE ({why}).\n\
         !! The scan stage runs with kind = \"none\": every upload is promoted as `unscanned`,\n\
         !! including the infected sample eicar.txt, which will end `done` instead of\n\
         !! `quarantined`. Install clamd (Debian: sudo apt-get install clamav-daemon) and run\n\
         !! `intake up` again; it starts its own clamd, no definitions needed.\n\
         {bar}"
    );
}
