//! The `intake` command line.
//!
//! Exit codes: 0 success, 1 a failure while running (AWS unreachable, a call refused),
//! 2 a bad invocation or an invalid `pipeline.toml`.

mod bench_cmd;
mod catalog_cmd;
mod delete_cmd;
mod iam_cmd;
mod provision_cmd;
mod run_cmd;
mod status_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use intake_core::{ConfigError, PipelineConfig};

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

#[derive(clap::Args, Clone)]
struct ConfigArg {
    /// Pipeline configuration file.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "INTAKE_CONFIG",
        default_value = "pipeline.toml"
    )]
    config: PathBuf,
}

#[derive(Subcommand)]
enum Command {
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
        /// Messages processed at once, per stage.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
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
        command: catalog_cmd::CatalogCommand,
    },
    /// Benchmarks (run from the workspace; see docs/benchmarks.md).
    Bench {
        #[command(subcommand)]
        command: bench_cmd::BenchCommand,
    },
}

/// How a command failed, which decides the exit code.
pub enum Failure {
    Config(ConfigError),
    Run(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Run(e)
    }
}

impl From<intake_aws::AwsError> for Failure {
    fn from(e: intake_aws::AwsError) -> Self {
        Failure::Run(e.into())
    }
}

fn main() -> ExitCode {
    // The SDK warns about every source it probes for a region or credentials (IMDS,
    // profiles); those are noise unless asked for with INTAKE_LOG.
    let filter = tracing_subscriber::EnvFilter::try_from_env("INTAKE_LOG")
        .unwrap_or_else(|_| "warn,aws_config=error".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // Benchmarks are synchronous: no runtime threads in the measured worker processes.
    let command = match cli.command {
        Command::Bench { command } => return exit_code(bench_cmd::run(&cli.config, command)),
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

fn load(config: &ConfigArg) -> Result<PipelineConfig, Failure> {
    PipelineConfig::load(&config.config).map_err(Failure::Config)
}

async fn run(config: ConfigArg, command: Command) -> Result<(), Failure> {
    match command {
        Command::Check => {
            let pipeline = load(&config)?;
            println!(
                "{}: ok ({} stages, {} content classes)",
                config.config.display(),
                pipeline.stages.len(),
                pipeline.classes.len()
            );
            Ok(())
        }
        Command::Provision { dry_run, iam } => {
            let pipeline = load(&config)?;
            if iam {
                iam_cmd::run(&pipeline).await
            } else {
                provision_cmd::run(&pipeline, dry_run).await
            }
        }
        Command::Run {
            stages,
            concurrency,
        } => run_cmd::run(load(&config)?, stages, concurrency).await,
        Command::Status { uri, json } => status_cmd::run(&load(&config)?, &uri, json).await,
        Command::Catalog { command } => {
            catalog_cmd::run(&load(&config)?, &config.config, command).await
        }
        Command::Delete {
            targets,
            version,
            requested_by,
        } => delete_cmd::run(&load(&config)?, &targets, version.as_deref(), requested_by).await,
        Command::Bench { command } => bench_cmd::run(&config, command),
    }
}
