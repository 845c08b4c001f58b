//! Intake's HTTP API and web page (`intake serve`): tenant-scoped presigned uploads
//! (PUT with signed length and type, POST with a policy, multipart), the state of every
//! file, server-sent events of its progress, downloads of promoted versions only, and
//! deletes through the deletion worker.
//!
//! - [`auth`]: bearer JWTs (HS256, RS256, ES256 from a JWKS) and service API keys.
//! - [`uploads`]: signing uploads after checking them against the content classes;
//!   [`multipart`]: part URLs, completion and abort.
//! - [`files`]: listing, detail and deletes, one tenant at a time; [`events`] (server-sent
//!   state changes, capped by [`streams`]) and [`downloads`] (presigned GETs of promoted
//!   files).
//! - [`web`]: the embedded page, client settings and development tokens.
//! - [`health`]: liveness, readiness of every dependency, Prometheus metrics.
//! - [`openapi`]: the OpenAPI document generated from the handlers.
//! - [`request_id`]: every request's id (a client's plain `x-request-id` or a fresh UUID),
//!   echoed on the response and in error bodies; [`request`]: the request span, the access
//!   log and the per-IP limit around each request; [`limits`]: per-IP and per-tenant rate
//!   limits.
//! - [`error`]: the one error shape, `{"error": {"code", "message", "request_id"}}`.
//!
//! Imports inside the crate flow one way: `request_id` ← `error` ← `limits` ← `state` ←
//! `request` and the handlers.
//!
//! ```no_run
//! # async fn run(config: intake_core::PipelineConfig, aws: intake_aws::AwsClients, ledger: intake_store::Ledger) -> Result<(), Box<dyn std::error::Error>> {
//! let api = intake_api::Api::new(config, aws, ledger).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! intake_api::serve(listener, api, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod downloads;
pub mod error;
pub mod events;
mod extract;
pub mod files;
pub mod health;
pub mod limits;
mod metrics;
pub mod multipart;
pub mod openapi;
pub mod request;
pub mod request_id;
mod state;
pub mod streams;
pub mod uploads;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::routing::{delete, get, post};
use intake_aws::AwsClients;
use intake_core::{PipelineConfig, ResourceNames};
use intake_store::Ledger;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::OpenApi;

use crate::error::ApiError;
pub use crate::state::AppState;

/// Why the API cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ApiSetupError {
    #[error(transparent)]
    Auth(#[from] auth::AuthSetupError),
    #[error(
        "uploads.cors_origins[{index}]: {origin:?} is not an origin; use scheme://host[:port], e.g. \"https://app.example.com\""
    )]
    CorsOrigin { index: usize, origin: String },
}

/// A configured API, ready to serve.
#[derive(Clone)]
pub struct Api {
    state: Arc<AppState>,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl Api {
    /// Sets up authentication (reads secrets, JWKS) from `config`, which must be validated.
    pub async fn new(
        config: PipelineConfig,
        aws: AwsClients,
        ledger: Ledger,
    ) -> Result<Api, ApiSetupError> {
        let auth = auth::Authenticator::from_config(&config.api).await?;
        for (index, origin) in config.uploads.cors_origins.iter().enumerate() {
            let plain = origin.starts_with("http://") || origin.starts_with("https://");
            if !plain || origin.ends_with('/') || HeaderValue::from_str(origin).is_err() {
                return Err(ApiSetupError::CorsOrigin {
                    index,
                    origin: origin.clone(),
                });
            }
        }
        let (shutdown, _) = tokio::sync::watch::channel(false);
        let state = AppState {
            names: ResourceNames::of(&config),
            limits: limits::RateLimits::new(&config.api.rate_limits),
            metrics: metrics::ApiMetrics::new(),
            streams: streams::StreamSlots::new(
                config.api.max_event_streams,
                config.api.max_event_streams_per_tenant,
            ),
            account: tokio::sync::OnceCell::new(),
            shutting_down: shutdown.subscribe(),
            config,
            aws,
            ledger,
            auth,
        };
        Ok(Api {
            state: Arc::new(state),
            shutdown,
        })
    }

    /// Every route, with request ids, the access log, rate limits, metrics, CORS and the body
    /// limit.
    pub fn router(&self) -> Router {
        let state = self.state.clone();
        let body_limit = usize::try_from(state.config.api.body_limit.0).unwrap_or(usize::MAX);
        let mut router = Router::new()
            .route("/", get(web::index))
            .route("/app.js", get(web::app_js))
            .route("/app.css", get(web::app_css))
            .route("/healthz", get(health::healthz))
            .route("/readyz", get(health::readyz))
            .route("/metrics", get(health::metrics))
            .route("/v1/openapi.json", get(openapi_json))
            .route("/v1/client-config", get(web::client_config))
            .route("/v1/dev/token", post(web::dev_token))
            .route("/v1/uploads", post(uploads::create_upload))
            .route("/v1/uploads/{file_id}", delete(multipart::abort_upload))
            .route("/v1/uploads/{file_id}/parts", post(multipart::sign_parts))
            .route(
                "/v1/uploads/{file_id}/complete",
                post(multipart::complete_upload),
            )
            .route("/v1/files", get(files::list_files))
            .route(
                "/v1/files/{file_id}",
                get(files::get_file).delete(files::delete_file),
            )
            .route("/v1/files/{file_id}/events", get(events::file_events))
            .route("/v1/files/{file_id}/download", get(downloads::download))
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(DefaultBodyLimit::max(body_limit))
            .layer(middleware::from_fn_with_state(
                state.clone(),
                request::around_request,
            ))
            .layer(request::trace_layer());
        // Outside the span and the limits, so both have the id and a 429 carries it too.
        router = request_id::with_request_ids(router);
        if let Some(cors) = cors(&state.config) {
            router = router.layer(cors);
        }
        router.with_state(state)
    }

    /// Ends every event stream, so a graceful shutdown does not wait for them.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}

/// Serves `api` on `listener` until `shutdown` completes, then finishes the requests in
/// flight (event streams end at once).
pub async fn serve(
    listener: tokio::net::TcpListener,
    api: Api,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = api
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    let stopping = api.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing requests in flight");
            stopping.begin_shutdown();
        })
        .await
}

/// The API's origins are the uploads bucket's (`[uploads] cors_origins`): a page that may
/// PUT to the bucket may call the API. Bearer tokens travel in a header, never in cookies,
/// so credentials are not allowed and no origin is a wildcard.
fn cors(config: &PipelineConfig) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = config
        .uploads
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-api-key"),
                HeaderName::from_static("x-intake-user"),
                HeaderName::from_static(request_id::REQUEST_ID_HEADER),
            ])
            .expose_headers([
                HeaderName::from_static(request_id::REQUEST_ID_HEADER),
                header::RETRY_AFTER,
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(openapi::ApiDoc::openapi())
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; the API is described at /v1/openapi.json",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method; see /v1/openapi.json",
    )
}
