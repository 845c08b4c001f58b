//! The API and web page of `intake up`: served beside the workers on `[api] bind` (or a
//! free loopback port when that is taken), with development tokens, so the page can be
//! opened and files dropped on it at once. Its origin is added to the uploads bucket's CORS
//! before provisioning, so the browser may PUT to the bucket.

use anyhow::Context;
use intake_core::PipelineConfig;

/// A listener for the page, and the config changes it needs: its origin in
/// `[uploads] cors_origins` and development tokens, which are only turned on for a
/// loopback address (nobody else can reach them there).
pub async fn prepare(config: &mut PipelineConfig) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = match tokio::net::TcpListener::bind(&config.api.bind).await {
        Ok(listener) => listener,
        Err(e) => {
            println!(
                "  web page:  {} is taken ({e}); using a free port on 127.0.0.1",
                config.api.bind
            );
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .context("binding a port for the API")?
        }
    };
    let address = listener.local_addr().context("reading the API's address")?;
    let origin = format!("http://{address}");
    if !config.uploads.cors_origins.contains(&origin) {
        config.uploads.cors_origins.push(origin);
    }
    if address.ip().is_loopback() {
        config.api.dev_tokens = true;
    }
    // No secret in the environment: development tokens (random secret) are enough here.
    if let Some(var) = &config.api.auth.hs256_secret_env
        && std::env::var_os(var).is_none()
    {
        config.api.auth.hs256_secret_env = None;
    }
    Ok(listener)
}

/// The running API; stopping it ends event streams and finishes requests in flight.
pub struct Web {
    pub url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub async fn start(
    listener: tokio::net::TcpListener,
    config: &PipelineConfig,
    cx: &intake_runtime::StageCx,
) -> anyhow::Result<Web> {
    let url = format!("http://{}/", listener.local_addr()?);
    let api = intake_api::Api::new(config.clone(), cx.aws.clone(), (*cx.ledger).clone())
        .await
        .context("setting up the API from [api]")?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(intake_api::serve(listener, api, async move {
        let _ = stopped.await;
    }));
    Ok(Web { url, stop, task })
}

impl Web {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Err(e)) => eprintln!("intake up: the API stopped with an error: {e}"),
            Err(e) => eprintln!("intake up: the API task failed: {e}"),
            Ok(Ok(())) => {}
        }
    }
}
