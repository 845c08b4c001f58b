//! What wraps every request once it has an id ([`crate::request_id`]): the span that every
//! log line of the request is in, the access log line (`handled`, with status and
//! milliseconds), the per-IP rate limit and the request metrics.
//!
//! The span and the access log are tower-http's `TraceLayer` with Intake's span fields
//! (`id`, `method`, `route`, `tenant`) and one `info` line per response; their target is
//! this module, which `intake serve` turns on (`intake_api=info`, docs/configuration.md).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::trace::{HttpMakeClassifier, MakeSpan, OnResponse, TraceLayer};
use tracing::Span;

use crate::request_id::request_id_of;
use crate::state::AppState;

/// The route template a request matched (`/v1/files/{file_id}`), never the raw path: it
/// goes into metrics labels and log fields, whose cardinality must stay bounded.
fn route_of<B>(request: &axum::http::Request<B>) -> String {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned())
}

/// The `request` span: `id`, `method`, `route`, and `tenant` once the caller is known
/// (recorded by the `Caller` extractor).
#[derive(Debug, Clone, Copy)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &axum::http::Request<B>) -> Span {
        tracing::info_span!(
            "request",
            id = %request_id_of(request),
            method = %request.method(),
            route = %route_of(request),
            tenant = tracing::field::Empty
        )
    }
}

/// The access log: one `handled` line per response, inside the request's span.
#[derive(Debug, Clone, Copy)]
pub struct AccessLog;

impl<B> OnResponse<B> for AccessLog {
    fn on_response(self, response: &axum::http::Response<B>, latency: Duration, _: &Span) {
        tracing::info!(
            status = response.status().as_u16(),
            ms = latency.as_millis() as u64,
            "handled"
        );
    }
}

/// The span and the access log. Nothing else is logged here: failures are logged by
/// `ApiError` with their code, which a status classifier would only repeat.
pub type RequestTrace = TraceLayer<HttpMakeClassifier, RequestSpan, (), AccessLog, (), (), ()>;

pub fn trace_layer() -> RequestTrace {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_request(())
        .on_response(AccessLog)
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

/// Inside the span: the per-IP limit and the request metrics.
pub async fn around_request(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let route = route_of(&request);
    let method = request.method().clone();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let started = Instant::now();
    // Liveness and metrics scrapes are never limited: a busy server must still answer its
    // orchestrator.
    let exempt = matches!(route.as_str(), "/healthz" | "/metrics");
    let response = match peer.filter(|_| !exempt).map(|ip| state.limits.check_ip(ip)) {
        Some(Err(e)) => {
            state.metrics.rate_limited("ip");
            e.into_response()
        }
        _ => next.run(request).await,
    };
    state.metrics.observe(
        method.as_str(),
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
