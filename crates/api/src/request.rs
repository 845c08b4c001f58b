//! What wraps every request: its id (taken from a sane `x-request-id` or made fresh, set on
//! the response, in every log line through the span and in every error body through a
//! task-local), the per-IP rate limit, and the request metrics.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use tracing::Instrument;

use crate::error::ApiError;
use crate::state::AppState;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled, when called inside one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A client's own id is kept when it is short and plain, so ids can be followed across
/// services; anything else is replaced rather than copied into logs.
fn request_id_from(request: &Request) -> String {
    request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// Token buckets keyed by client IP and by tenant.
pub struct RateLimits {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_tenant: DefaultKeyedRateLimiter<String>,
    checks: AtomicU64,
}

impl RateLimits {
    pub fn new(config: &intake_core::config::ApiRateLimits) -> Self {
        let quota = |per_minute: u32| {
            let rate = std::num::NonZeroU32::new(per_minute).unwrap_or(std::num::NonZeroU32::MIN);
            let burst =
                std::num::NonZeroU32::new(config.burst).unwrap_or(std::num::NonZeroU32::MIN);
            Quota::per_minute(rate).allow_burst(burst)
        };
        RateLimits {
            per_ip: DefaultKeyedRateLimiter::keyed(quota(config.per_ip_per_minute)),
            per_tenant: DefaultKeyedRateLimiter::keyed(quota(config.per_tenant_per_minute)),
            checks: AtomicU64::new(0),
        }
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.forget_idle_keys();
        self.per_ip.check_key(&ip).map_err(|wait| {
            limited(
                "this address",
                wait.wait_time_from(DefaultClock::default().now()),
            )
        })
    }

    pub fn check_tenant(&self, tenant: &str) -> Result<(), ApiError> {
        self.per_tenant
            .check_key(&tenant.to_owned())
            .map_err(|wait| {
                limited(
                    "this tenant",
                    wait.wait_time_from(DefaultClock::default().now()),
                )
            })
    }

    /// Keys whose buckets are full again carry no information; dropping them now and then
    /// keeps memory bounded by the clients of the last minute.
    fn forget_idle_keys(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            self.per_ip.retain_recent();
            self.per_tenant.retain_recent();
        }
    }
}

fn limited(who: &str, wait: std::time::Duration) -> ApiError {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError {
        status: StatusCode::TOO_MANY_REQUESTS,
        code: "rate_limited",
        message: format!("too many requests from {who}; retry after {secs} s"),
        retry_after: Some(secs.max(1)),
    }
}

/// The outermost layer: id, span, per-IP limit, metrics, access log.
pub async fn around_request(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let id = request_id_from(&request);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().clone();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %method,
        route = %route,
        tenant = tracing::field::Empty
    );
    let started = Instant::now();
    let state_for_call = state.clone();
    let route_label = route.clone();
    let mut response = REQUEST_ID
        .scope(
            id.clone(),
            async move {
                // Liveness and metrics scrapes are never limited: a busy server must still
                // answer its orchestrator.
                let exempt = matches!(route.as_str(), "/healthz" | "/metrics");
                if !exempt
                    && let Some(ip) = peer
                    && let Err(e) = state_for_call.limits.check_ip(ip)
                {
                    state_for_call.metrics.rate_limited("ip");
                    return e.into_response();
                }
                let response = next.run(request).await;
                tracing::info!(
                    status = response.status().as_u16(),
                    ms = started.elapsed().as_millis() as u64,
                    "handled"
                );
                response
            }
            .instrument(span),
        )
        .await;
    state.metrics.observe(
        method.as_str(),
        &route_label,
        response.status().as_u16(),
        started.elapsed(),
    );
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}
