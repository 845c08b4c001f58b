//! Per-IP and per-tenant rate limits: token buckets from `[api.rate_limits]`, answered
//! with `429 rate_limited` and a `Retry-After` that says when to come back.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::error::ApiError;

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
