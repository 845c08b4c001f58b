//! The health of the stage workers of one process, served over HTTP ([`serve`]):
//!
//! - `GET /healthz` (liveness): 200 while every registered receive loop is within its
//!   phase's bound: a receive returns within the queue's long poll (`wait_time_secs`,
//!   ≤ 20 s) plus the batch window, a pause after a failed receive ends with its backoff,
//!   each plus [`HealthSettings::margin`] (10 s by default). Otherwise 503, naming each
//!   stuck stage (worker and queue), what it is stuck in, for how long, its limit, and
//!   when its last receive returned. A loop whose every permit is taken by work in flight
//!   (`full`) is not polling on purpose and has no bound; neither has one that is
//!   `draining` or `stopped` after a shutdown was asked for: the process is exiting anyway,
//!   and a failing check would only get it killed before its grace period ends. A loop
//!   whose task ended without a shutdown is `gone`: unhealthy. See [`liveness`].
//! - `GET /readyz` (readiness): 200 when the ledger answers a `SELECT 1`, each stage's queue
//!   answers [`crate::queue::Queue::probe`], every extra check added with
//!   [`Health::add_check`] passes (e.g. clamd's PING, which the caller adds when a scan
//!   stage runs here; the runtime does not know scanners), and every loop still takes
//!   work (not draining). Checks run concurrently, each bounded by
//!   [`HealthSettings::check_timeout`]. 503 otherwise, each check named with its error.
//! - `GET /metrics`: Prometheus (OpenMetrics text) series by stage, outcome and code; see
//!   [`prometheus`].
//!
//! A worker joins a [`Health`] through [`crate::WorkerSettings::health`]: it registers its
//! loop, queue and ledger when it is built.

pub mod liveness;
pub mod prometheus;
pub mod readiness;
pub mod server;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use intake_store::Ledger;
use tokio::time::Instant;

use crate::queue::Queue;
use liveness::{LoopProbe, LoopReport, LoopState, secs};
use prometheus::Exposition;
use readiness::{CheckFn, CheckReport, check_fn};

pub use server::{HealthError, HealthServer, router, serve};

/// How strict the checks are.
#[derive(Debug, Clone, Copy)]
pub struct HealthSettings {
    /// Slack beyond a phase's own bound (a receive's long poll and batch window, a pause's
    /// backoff) before a loop reads as stuck: network latency, SDK retries, a busy runtime.
    pub margin: Duration,
    /// Longest one readiness check may take.
    pub check_timeout: Duration,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            margin: Duration::from_secs(10),
            check_timeout: Duration::from_secs(2),
        }
    }
}

/// The shared health of a process's workers: cheap to clone, one per process (or per test).
#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

struct Inner {
    settings: HealthSettings,
    started: Instant,
    exposition: Exposition,
    loops: Mutex<Vec<Arc<LoopState>>>,
    ledgers: Mutex<Vec<Arc<Ledger>>>,
    queues: Mutex<Vec<(&'static str, Arc<dyn Queue>)>>,
    checks: Mutex<Vec<(String, CheckFn)>>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("settings", &self.inner.settings)
            .field("loops", &lock(&self.inner.loops).len())
            .finish_non_exhaustive()
    }
}

impl Default for Health {
    fn default() -> Self {
        Health::new(HealthSettings::default())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Health {
    pub fn new(settings: HealthSettings) -> Health {
        Health {
            inner: Arc::new(Inner {
                settings,
                started: Instant::now(),
                exposition: Exposition::new(),
                loops: Mutex::default(),
                ledgers: Mutex::default(),
                queues: Mutex::default(),
                checks: Mutex::default(),
            }),
        }
    }

    pub fn settings(&self) -> HealthSettings {
        self.inner.settings
    }

    /// Adds a readiness check named `name` (e.g. `clamd`): `Ok(())` when the dependency
    /// answers, else what failed. It runs on every `/readyz`, bounded by
    /// [`HealthSettings::check_timeout`], so it should be cheap (a PING, not a scan).
    pub fn add_check<F, Fut, E>(&self, name: impl Into<String>, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display + 'static,
    {
        let check = check_fn(move || {
            let answer = check();
            async move { answer.await.map(|()| None).map_err(|e| e.to_string()) }
        });
        lock(&self.inner.checks).push((name.into(), check));
    }

    /// Registers one worker's receive loop, with its queue and ledger for `/readyz`.
    /// `receive_bound` is how long one receive may take (long poll and batch window).
    pub(crate) fn register_loop(
        &self,
        stage: &'static str,
        worker: &str,
        queue: Arc<dyn Queue>,
        ledger: Arc<Ledger>,
        receive_bound: Duration,
    ) -> LoopProbe {
        let state = Arc::new(LoopState::new(
            stage,
            worker,
            queue.name(),
            receive_bound,
            self.inner.settings.margin,
        ));
        lock(&self.inner.loops).push(state.clone());
        {
            let mut ledgers = lock(&self.inner.ledgers);
            if !ledgers.iter().any(|l| Arc::ptr_eq(l, &ledger)) {
                ledgers.push(ledger);
            }
        }
        {
            let mut queues = lock(&self.inner.queues);
            if !queues
                .iter()
                .any(|(s, q)| *s == stage && q.name() == queue.name())
            {
                queues.push((stage, queue));
            }
        }
        LoopProbe::attached(state, self.inner.exposition.stage(stage))
    }

    /// Every loop's phase now, and which are stuck.
    pub fn liveness(&self) -> Liveness {
        let loops = lock(&self.inner.loops).iter().map(|l| l.report()).collect();
        Liveness {
            loops,
            uptime: self.inner.started.elapsed(),
        }
    }

    /// Runs every readiness check.
    pub async fn readiness(&self) -> Readiness {
        let mut checks: Vec<(String, CheckFn)> = Vec::new();
        let ledgers = lock(&self.inner.ledgers).clone();
        for (i, ledger) in ledgers.into_iter().enumerate() {
            let name = match i {
                0 => "ledger".to_owned(),
                _ => format!("ledger {}", i + 1),
            };
            checks.push((
                name,
                check_fn(move || {
                    let ledger = ledger.clone();
                    async move {
                        ledger
                            .ping()
                            .await
                            .map(|()| None)
                            .map_err(|e| e.to_string())
                    }
                }),
            ));
        }
        let queues = lock(&self.inner.queues).clone();
        for (stage, queue) in queues {
            checks.push((
                format!("queue/{stage}"),
                check_fn(move || {
                    let queue = queue.clone();
                    async move {
                        match queue.probe().await {
                            Ok(waiting) => Ok(Some(format!(
                                "{}: about {waiting} messages waiting",
                                queue.name()
                            ))),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                }),
            ));
        }
        checks.extend(lock(&self.inner.checks).iter().cloned());
        let mut reports = readiness::run_all(checks, self.inner.settings.check_timeout).await;
        // The loops last: whether each still takes work needs no call.
        for state in lock(&self.inner.loops).iter() {
            let report = state.report();
            let result = if report.phase.accepts_work() {
                Ok(Some(format!(
                    "worker {}: {}",
                    report.worker,
                    report.phase.name()
                )))
            } else {
                Err(format!(
                    "worker {}: {}, takes no new work",
                    report.worker,
                    report.phase.name()
                ))
            };
            reports.push(CheckReport::immediate(
                format!("loop/{}", state.stage),
                result,
            ));
        }
        for failed in reports.iter().filter(|c| !c.ok) {
            tracing::warn!(check = %failed.name, error = failed.error.as_deref().unwrap_or(""), "worker not ready");
        }
        Readiness { checks: reports }
    }

    /// The Prometheus text exposition of the workers' series.
    pub fn render_metrics(&self) -> String {
        self.inner.exposition.render()
    }
}

/// What `/healthz` answers.
#[derive(Debug, Clone)]
pub struct Liveness {
    pub loops: Vec<LoopReport>,
    pub uptime: Duration,
}

impl Liveness {
    pub fn healthy(&self) -> bool {
        self.loops.iter().all(|l| !l.stuck())
    }

    /// One sentence per stuck loop.
    pub fn problems(&self) -> Vec<String> {
        self.loops
            .iter()
            .filter_map(|l| l.problem.clone())
            .collect()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "status": if self.healthy() { "ok" } else { "stuck" },
            "uptime_secs": secs(self.uptime),
            "problems": self.problems(),
            "loops": self.loops.iter().map(LoopReport::to_json).collect::<Vec<_>>(),
        })
    }
}

/// What `/readyz` answers.
#[derive(Debug, Clone)]
pub struct Readiness {
    pub checks: Vec<CheckReport>,
}

impl Readiness {
    pub fn ready(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "ready": self.ready(),
            "checks": self.checks.iter().map(CheckReport::to_json).collect::<Vec<_>>(),
        })
    }
}
