//! `upload-app`: serve the example photo service on 127.0.0.1:3000 against the pipeline
//! described by `pipeline.toml` (argument 1, default `pipeline.toml`), using its AWS
//! settings and its ledger. Run `intake up` (or `intake provision` and `intake run`) first.

use std::sync::Arc;

use intake_aws::AwsClients;
use intake_core::PipelineConfig;
use intake_store::Ledger;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "pipeline.toml".into());
    let config = PipelineConfig::load(&path)?;
    let aws = AwsClients::load(&config.aws).await;
    let ledger = Arc::new(Ledger::connect(&config.ledger.database_url).await?);
    let app = upload_app::App::new(aws, &config, ledger, "photos");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    eprintln!("upload-app: listening on http://{}", listener.local_addr()?);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    upload_app::serve(listener, app, shutdown).await?;
    Ok(())
}
