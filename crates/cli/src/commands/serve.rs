//! `intake serve`: the HTTP API and web page on `[api] bind` (or `--bind`), until SIGINT or
//! SIGTERM; then requests in flight finish and event streams end.

use anyhow::Context;
use intake_aws::AwsClients;
use std::path::Path;

use intake_core::PipelineConfig;

use crate::common::{Failure, LedgerLocation, shutdown_signal};

pub async fn run(
    config: PipelineConfig,
    config_path: &Path,
    bind: Option<String>,
) -> Result<(), Failure> {
    let bind = bind.unwrap_or_else(|| config.api.bind.clone());
    let ledger = LedgerLocation::of(&config, config_path).open().await?;
    let aws = AwsClients::load(&config.aws).await;
    let dev_tokens = config.api.dev_tokens;
    let api = intake_api::Api::new(config, aws, (*ledger).clone())
        .await
        .context("setting up the API from [api]")?;
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .with_context(|| {
            format!(
                "listening on {bind}; is another process using the port? (set [api] bind or --bind)"
            )
        })?;
    let address = listener.local_addr().context("reading the bound address")?;
    eprintln!(
        "intake serve: the API and web page at http://{address}/ (OpenAPI at /v1/openapi.json); Ctrl-C stops"
    );
    if dev_tokens {
        eprintln!(
            "warning: [api] dev_tokens = true: anyone who reaches this address can get a token for any tenant; never enable it outside development"
        );
    }
    intake_api::serve(listener, api, async {
        if let Err(e) = shutdown_signal().await {
            tracing::error!(error = %e, "signal handling failed; stopping");
        }
    })
    .await
    .context("serving HTTP")?;
    ledger.close().await;
    Ok(())
}
