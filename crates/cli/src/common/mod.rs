//! What every subcommand shares, and the only thing they share besides library crates:
//! the `--config` argument and loading it, the failure type that picks the exit code,
//! where the ledger is (the one place `INTAKE_DATABASE_URL` is read), object URIs, the
//! shutdown signal, and output helpers ([`format`], [`progress`]).
//!
//! Subcommands never import each other or `main.rs`; what two of them need lives here
//! (or, for the local LocalStack/clamd stack of `up` and `bench`, in `crate::devstack`).

pub mod format;
pub mod progress;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use intake_core::{ConfigError, PipelineConfig};
use intake_store::Ledger;

/// The environment variable that overrides `[ledger] database_url`.
pub const DATABASE_URL_VAR: &str = "INTAKE_DATABASE_URL";

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

#[derive(clap::Args, Clone)]
pub struct ConfigArg {
    /// Pipeline configuration file.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "INTAKE_CONFIG",
        default_value = "pipeline.toml"
    )]
    pub config: PathBuf,
}

impl ConfigArg {
    /// The validated `pipeline.toml`, or the problems found in it (exit code 2).
    pub fn load(&self) -> Result<PipelineConfig, Failure> {
        PipelineConfig::load(&self.config).map_err(Failure::Config)
    }
}

/// Which ledger a command uses and how the user chose it. Messages name the choice, not
/// the URL: a PostgreSQL URL may hold a password.
#[derive(Debug, Clone)]
pub struct LedgerLocation {
    pub url: String,
    pub named_by: String,
}

impl LedgerLocation {
    /// `INTAKE_DATABASE_URL` when set, else `[ledger] database_url` of the config.
    pub fn of(config: &PipelineConfig, config_path: &Path) -> LedgerLocation {
        Self::from_env().unwrap_or_else(|| LedgerLocation {
            url: config.ledger.database_url.clone(),
            named_by: format!("[ledger] database_url in {}", config_path.display()),
        })
    }

    /// `INTAKE_DATABASE_URL` when set, else `fallback` (a ledger the command makes itself,
    /// as `intake up` and the benchmarks do), described as `fallback_named_by`.
    pub fn or_else(fallback: impl FnOnce() -> anyhow::Result<String>) -> anyhow::Result<Self> {
        match Self::from_env() {
            Some(location) => Ok(location),
            None => {
                let url = fallback()?;
                Ok(LedgerLocation {
                    named_by: url.clone(),
                    url,
                })
            }
        }
    }

    /// Whether `INTAKE_DATABASE_URL` chose it (so commands run later find it too).
    pub fn is_from_env(&self) -> bool {
        self.named_by == DATABASE_URL_VAR
    }

    fn from_env() -> Option<LedgerLocation> {
        std::env::var(DATABASE_URL_VAR)
            .ok()
            .filter(|url| !url.is_empty())
            .map(|url| LedgerLocation {
                url,
                named_by: DATABASE_URL_VAR.to_owned(),
            })
    }

    /// Connects (and migrates) the ledger.
    pub async fn open(&self) -> anyhow::Result<Arc<Ledger>> {
        let ledger = Ledger::connect(&self.url)
            .await
            .with_context(|| format!("opening the ledger named by {}", self.named_by))?;
        Ok(Arc::new(ledger))
    }
}

/// `s3://BUCKET/KEY` as (bucket, key).
pub fn parse_uri(uri: &str) -> anyhow::Result<(&str, &str)> {
    uri.strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .filter(|(bucket, key)| !bucket.is_empty() && !key.is_empty())
        .with_context(|| format!("\"{uri}\" is not an object URI; write s3://BUCKET/KEY"))
}

/// Who asks for an operation, for the ledger: the flag, else `$USER`.
pub fn requester(given: Option<String>) -> String {
    given
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "intake-cli".into())
}

/// CloudWatch metrics are on unless `INTAKE_METRICS` is `0` or `false`.
pub fn metrics_enabled() -> bool {
    std::env::var("INTAKE_METRICS")
        .map(|v| v != "0" && v != "false")
        .unwrap_or(true)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_uris_split_into_bucket_and_key() {
        assert_eq!(parse_uri("s3://b/a/b c.jpg").unwrap(), ("b", "a/b c.jpg"));
        for bad in ["b/key", "s3://b", "s3:///key", "s3://b/"] {
            let e = parse_uri(bad).unwrap_err().to_string();
            assert!(e.contains("s3://BUCKET/KEY"), "{bad}: {e}");
        }
    }
}
