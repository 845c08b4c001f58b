//! The HTTP server of [`super::Health`]: `/healthz`, `/readyz` and `/metrics` on one
//! address, JSON bodies for the first two.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::Health;

#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error(
        "cannot listen on {addr} for the worker health endpoints ([workers] health_bind): \
         {source}; choose a free port or another address"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The running server.
#[derive(Debug)]
pub struct HealthServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl HealthServer {
    /// The address it listens on (the actual port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until the server has stopped (after its shutdown future completed and the
    /// requests in flight were answered).
    pub async fn stopped(self) -> std::io::Result<()> {
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

/// The three routes on `health`, to serve or to merge into another router.
pub fn router(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health)
}

/// Listens on `addr` and serves [`router`] in a background task until `shutdown`
/// completes. Returns once listening, with the bound address.
///
/// Let `shutdown` complete when the workers have stopped, not when the shutdown signal
/// arrives: during the drain `/healthz` keeps answering (`draining` reads as healthy),
/// where a closed port would fail the container's check.
pub async fn serve(
    addr: SocketAddr,
    health: Health,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<HealthServer, HealthError> {
    let bind_error = |source| HealthError::Bind { addr, source };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    let app = router(health);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    tracing::info!(addr = %local, "worker health endpoints: /healthz, /readyz, /metrics");
    Ok(HealthServer { addr: local, task })
}

fn json(status: StatusCode, body: serde_json::Value) -> impl IntoResponse {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

async fn healthz(State(health): State<Health>) -> impl IntoResponse {
    let liveness = health.liveness();
    let status = if liveness.healthy() {
        StatusCode::OK
    } else {
        for problem in liveness.problems() {
            tracing::warn!(%problem, "worker stuck");
        }
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(status, liveness.to_json())
}

async fn readyz(State(health): State<Health>) -> impl IntoResponse {
    let readiness = health.readiness().await;
    let status = if readiness.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(status, readiness.to_json())
}

async fn metrics(State(health): State<Health>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        health.render_metrics(),
    )
}
