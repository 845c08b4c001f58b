//! The `intake` command line.
//!
//! Exit codes: 0 success, 1 a failure while running (AWS unreachable, a call refused),
//! 2 a bad invocation or an invalid `pipeline.toml`.

//! Layout: `commands/` has one module per subcommand; they share only [`common`] (config,
//! ledger location, failure type, output helpers) and, for `up` and `bench pipeline`, the
//! local stack in [`devstack`]. No subcommand imports another or this file.

mod commands;
mod common;
mod devstack;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use intake_core::ConfigError;

use commands::{bench, catalog, delete, dlq, provision, reprocess, run, serve, stats, status, up};
use common::{ConfigArg, Failure};

#[derive(Parser)]
#[command(
    name = "intake",
    version,
    about = "Process every file users upload to S3, automatically and safely"
)]
struct Cli {
    #[command(flatten)]
    config: ConfigArg,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Intake end to end on this machine: start what is missing (LocalStack, clamd),
    /// provision, run every stage, upload the sample files and follow them to the end;
    /// then serve uploads until Ctrl-C, which stops everything it started.
    Up {
        /// Stop once every sample has ended, instead of serving further uploads.
        #[arg(long)]
        exit_when_done: bool,
        /// Serve further uploads even when a sample did not end as expected (by default
        /// `up` then stops and exits 1).
        #[arg(long, conflicts_with = "exit_when_done")]
        keep_running: bool,
    },
    /// Validate pipeline.toml without touching AWS.
    Check,
    /// Create or converge the pipeline's AWS resources: buckets, queues, topics,
    /// subscriptions, the uploads notification and alarms.
    Provision {
        /// Print the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print least-privilege IAM policies for the worker and API roles instead.
        #[arg(long)]
        iam: bool,
    },
    /// Run stage workers until SIGINT/SIGTERM, then shut down gracefully.
    Run {
        /// Stages to run (comma-separated); default: every configured stage this build has.
        #[arg(long, value_delimiter = ',')]
        stages: Option<Vec<String>>,
        /// Messages processed at once, per stage (default: [workers] concurrency, 8).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
        concurrency: Option<u32>,
        /// Serve /healthz, /readyz and /metrics on this address, overriding [workers]
        /// health_bind (e.g. 0.0.0.0:9464).
        #[arg(long, env = "INTAKE_HEALTH_BIND")]
        health_bind: Option<std::net::SocketAddr>,
    },
    /// Serve the HTTP API and web page ([api] in pipeline.toml) until SIGINT/SIGTERM:
    /// presigned uploads per tenant, file state and events, downloads and deletes.
    Serve {
        /// Address to listen on, overriding [api] bind (e.g. 0.0.0.0:8080).
        #[arg(long)]
        bind: Option<String>,
    },
    /// Show an object's state and history from the ledger.
    Status {
        /// The object, as s3://BUCKET/KEY.
        uri: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Queue the deletion of files: stored versions, derivatives and catalog record. The
    /// deletion worker (in `intake run`) does it, with retries; follow with `intake status`.
    Delete {
        /// Object ids (from `intake catalog list`) or s3://BUCKET/KEY in any pipeline bucket.
        #[arg(required = true)]
        targets: Vec<String>,
        /// Only this version (an upload or stored version id).
        #[arg(long)]
        version: Option<String>,
        /// Who asks, recorded with the request (default: $USER).
        #[arg(long)]
        requested_by: Option<String>,
    },
    /// Read the catalog: what the pipeline recorded about each promoted object version.
    Catalog {
        #[command(subcommand)]
        command: catalog::CatalogCommand,
    },
    /// Dead-letter queues: what is in them and why (`list`, `peek`), and emptying one
    /// (`purge`).
    Dlq {
        #[command(subcommand)]
        command: dlq::DlqCommand,
    },
    /// Re-run an object, or every object under a prefix, from a stage after a fix: by
    /// default from the stage it failed at; `--from thumbnail|catalog|archive` otherwise.
    Reprocess {
        /// The object, as s3://BUCKET/KEY (its newest upload version).
        #[arg(conflicts_with = "prefix", required_unless_present = "prefix")]
        target: Option<String>,
        /// Every key of the uploads bucket under this prefix.
        #[arg(long)]
        prefix: Option<String>,
        /// The stage to re-run from.
        #[arg(long)]
        from: Option<String>,
        /// List what would be re-run; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Who asks, for the ledger (default: $USER).
        #[arg(long)]
        requested_by: Option<String>,
    },
    /// Per stage: processed, failed and retried since a time, p50/p99 durations, and the
    /// depths of its queue and DLQ now.
    Stats {
        /// How far back to count: a number and a unit, s, m, h, d or w (30m, 1h, 2d).
        #[arg(long, default_value = "1h", value_parser = stats::parse_since)]
        since: std::time::Duration,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks (run from the workspace; see docs/benchmarks.md).
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

fn main() -> ExitCode {
    // The SDK warns about every source it probes for a region or credentials (IMDS,
    // profiles); those are noise unless asked for with INTAKE_LOG.
    let cli = Cli::parse();
    // A server's access log (one line per request, with its id) is its operators' main
    // record, so `serve` logs requests by default.
    let default_filter = match cli.command {
        Command::Serve { .. } => "warn,intake_api=info,aws_config=error",
        _ => "warn,aws_config=error",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("INTAKE_LOG")
        .unwrap_or_else(|_| default_filter.into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    // Benchmarks are synchronous: no runtime threads in the measured worker processes.
    let command = match cli.command {
        Command::Bench { command } => return exit_code(bench::run(&cli.config, command)),
        command => command,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    exit_code(runtime.block_on(run(cli.config, command)))
}

/// The exit code of a command's result, printing the error.
fn exit_code(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(e @ ConfigError::Read { .. })) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Config(e)) => {
            let n = e.problems().len();
            eprintln!(
                "error: invalid pipeline config ({n} problem{})\n{e}",
                if n == 1 { "" } else { "s" }
            );
            ExitCode::from(2)
        }
        Err(Failure::Run(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: ConfigArg, command: Command) -> Result<(), Failure> {
    let path = config.config.as_path();
    match command {
        Command::Check => {
            let pipeline = config.load()?;
            println!(
                "{}: ok ({} stages, {} content classes)",
                path.display(),
                pipeline.stages.len(),
                pipeline.classes.len()
            );
            Ok(())
        }
        Command::Provision { dry_run, iam } => {
            let pipeline = config.load()?;
            if iam {
                provision::print_iam_policies(&pipeline).await
            } else {
                provision::run(&pipeline, dry_run).await
            }
        }
        Command::Up {
            exit_when_done,
            keep_running,
        } => {
            let options = up::Options {
                exit_when_done,
                keep_running,
            };
            up::run(path, config.load()?, options).await
        }
        Command::Run {
            stages,
            concurrency,
            health_bind,
        } => run::run(config.load()?, path, stages, concurrency, health_bind).await,
        Command::Serve { bind } => serve::run(config.load()?, path, bind).await,
        Command::Status { uri, json } => status::run(&config.load()?, path, &uri, json).await,
        Command::Catalog { command } => catalog::run(&config.load()?, path, command).await,
        Command::Delete {
            targets,
            version,
            requested_by,
        } => {
            delete::run(
                &config.load()?,
                path,
                &targets,
                version.as_deref(),
                requested_by,
            )
            .await
        }
        Command::Reprocess {
            target,
            prefix,
            from,
            dry_run,
            requested_by,
        } => {
            reprocess::run(
                &config.load()?,
                path,
                target.as_deref(),
                prefix.as_deref(),
                from.as_deref(),
                dry_run,
                requested_by,
            )
            .await
        }
        Command::Dlq { command } => dlq::run(&config.load()?, path, command).await,
        Command::Stats { since, json } => stats::run(&config.load()?, path, since, json).await,
        Command::Bench { command } => bench::run(&config, command),
    }
}
