//! `/readyz`: every dependency of this process's workers answers, each check named, timed
//! and bounded by [`super::HealthSettings::check_timeout`], all at once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::liveness::secs;
use crate::batch::BoxFuture;

/// A readiness check: `Ok` with an optional detail ("3 messages waiting"), or what failed.
pub(crate) type CheckFn =
    Arc<dyn Fn() -> BoxFuture<'static, Result<Option<String>, String>> + Send + Sync>;

pub(crate) fn check_fn<F, Fut>(check: F) -> CheckFn
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<String>, String>> + Send + 'static,
{
    Arc::new(move || Box::pin(check()))
}

/// One check's answer.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// `ledger`, `queue/<stage>`, `loop/<stage>`, or the name an extra check was added with.
    pub name: String,
    pub ok: bool,
    pub latency: Duration,
    pub detail: Option<String>,
    /// What failed, when it did.
    pub error: Option<String>,
}

impl CheckReport {
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "ok": self.ok,
            "latency_ms": self.latency.as_millis() as u64,
            "detail": self.detail,
            "error": self.error,
        })
    }

    pub(crate) fn immediate(name: String, result: Result<Option<String>, String>) -> CheckReport {
        CheckReport {
            name,
            ok: result.is_ok(),
            latency: Duration::ZERO,
            detail: result.clone().ok().flatten(),
            error: result.err(),
        }
    }
}

/// Runs every check concurrently, each for at most `timeout`; answers in `checks`' order.
pub(crate) async fn run_all(checks: Vec<(String, CheckFn)>, timeout: Duration) -> Vec<CheckReport> {
    let mut set = JoinSet::new();
    let names: Vec<String> = checks.iter().map(|(name, _)| name.clone()).collect();
    for (index, (name, check)) in checks.into_iter().enumerate() {
        set.spawn(async move {
            let started = Instant::now();
            let result = match tokio::time::timeout(timeout, check()).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {:.1} s", secs(timeout))),
            };
            let report = CheckReport {
                name,
                ok: result.is_ok(),
                latency: started.elapsed(),
                detail: result.clone().ok().flatten(),
                error: result.err(),
            };
            (index, report)
        });
    }
    let mut answers: Vec<Option<CheckReport>> = vec![None; names.len()];
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((index, report)) => answers[index] = Some(report),
            Err(e) => tracing::warn!(error = %e, "a readiness check panicked"),
        }
    }
    answers
        .into_iter()
        .zip(names)
        .map(|(answer, name)| {
            answer.unwrap_or_else(|| CheckReport {
                name,
                ok: false,
                latency: Duration::ZERO,
                detail: None,
                error: Some("the check panicked".into()),
            })
        })
        .collect()
}
