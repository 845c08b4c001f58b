//! What each stage's receive loop is doing, and whether that has gone on too long.
//!
//! A loop is always in one phase. A phase that should end by itself has a deadline: a
//! receive returns within its long poll (plus the batch window the loop may wait first),
//! a pause after a failed receive ends with its backoff. Past the deadline plus
//! [`super::HealthSettings::margin`] the loop is stuck, and `/healthz` says so. A
//! phase that ends only when something else happens has no deadline:
//!
//! - `full`: every permit is taken by work in flight, so the loop does not receive (by
//!   design: backpressure). Long work is not a stuck loop; restarting would only lose it.
//!   Each message's own heartbeat and the stage's timeouts bound that work.
//! - `draining`, `stopped`: shutdown was asked for. Healthy: the process is exiting on
//!   purpose, and failing the check would only have the orchestrator kill it before its
//!   grace period ends. `/readyz` fails instead (no new work is taken).
//!
//! A loop whose task ended without being asked to stop (aborted, or dropped by a panic
//! outside a message) is `gone`, and that is unhealthy.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::prometheus::StageMetrics;
use crate::queue::QueueError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Registered; the receive loop has not started yet.
    Starting,
    /// A receive is in flight (or waiting one batch window for room first).
    Receiving,
    /// Pausing after a failed receive.
    Pausing,
    /// Every permit is taken by work in flight; no receive until one returns.
    Full,
    /// Shutdown asked for: no more receives, in-flight work finishing.
    Draining,
    /// The loop returned after a shutdown.
    Stopped,
    /// The loop's task ended without a shutdown (aborted or panicked).
    Gone,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Receiving => "receiving",
            Phase::Pausing => "pausing",
            Phase::Full => "full",
            Phase::Draining => "draining",
            Phase::Stopped => "stopped",
            Phase::Gone => "gone",
        }
    }

    /// Whether the loop takes new work in this phase (what `/readyz` asks).
    pub fn accepts_work(self) -> bool {
        !matches!(self, Phase::Draining | Phase::Stopped | Phase::Gone)
    }
}

#[derive(Debug, Clone, Copy)]
struct Status {
    phase: Phase,
    since: Instant,
    /// How long this phase may last before the loop reads as stuck (margin included).
    limit: Option<Duration>,
    last_receive: Option<Instant>,
    receives: u64,
}

/// One registered receive loop.
#[derive(Debug)]
pub(crate) struct LoopState {
    pub stage: &'static str,
    pub worker: String,
    pub queue: String,
    /// The long poll plus the batch window: how long one receive may take, margin aside.
    receive_bound: Duration,
    margin: Duration,
    status: Mutex<Status>,
}

/// One loop as `/healthz` shows it.
#[derive(Debug, Clone)]
pub struct LoopReport {
    pub stage: &'static str,
    pub worker: String,
    pub queue: String,
    pub phase: Phase,
    /// How long the loop has been in this phase.
    pub phase_for: Duration,
    /// How long the phase may last; `None`: no bound (see the module's documentation).
    pub limit: Option<Duration>,
    /// Since the last receive returned (with messages, empty, or failed).
    pub since_receive: Option<Duration>,
    pub receives: u64,
    /// Why the loop is stuck; `None` when it is not.
    pub problem: Option<String>,
}

impl LoopReport {
    pub fn stuck(&self) -> bool {
        self.problem.is_some()
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "stage": self.stage,
            "worker": self.worker,
            "queue": self.queue,
            "phase": self.phase.name(),
            "phase_secs": secs(self.phase_for),
            "limit_secs": self.limit.map(secs),
            "secs_since_receive": self.since_receive.map(secs),
            "receives": self.receives,
            "ok": !self.stuck(),
            "problem": self.problem,
        })
    }
}

/// Seconds with millisecond precision, for reports.
pub(crate) fn secs(d: Duration) -> f64 {
    (d.as_millis() as f64) / 1000.0
}

impl LoopState {
    pub(crate) fn new(
        stage: &'static str,
        worker: &str,
        queue: &str,
        receive_bound: Duration,
        margin: Duration,
    ) -> LoopState {
        LoopState {
            stage,
            worker: worker.to_owned(),
            queue: queue.to_owned(),
            receive_bound,
            margin,
            status: Mutex::new(Status {
                phase: Phase::Starting,
                since: Instant::now(),
                // A worker is run right after it is built; one receive's bound is plenty.
                limit: Some(receive_bound + margin),
                last_receive: None,
                receives: 0,
            }),
        }
    }

    fn set(&self, phase: Phase, limit: Option<Duration>) {
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status.phase = phase;
        status.since = Instant::now();
        status.limit = limit;
    }

    pub(crate) fn report(&self) -> LoopReport {
        let status = *self.status.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let phase_for = now.saturating_duration_since(status.since);
        let since_receive = status
            .last_receive
            .map(|t| now.saturating_duration_since(t));
        let last = match since_receive {
            Some(ago) => format!("the last receive returned {:.1} s ago", secs(ago)),
            None => "no receive has returned yet".to_owned(),
        };
        let over = |what: &str, limit: Duration| {
            format!(
                "{}: {what} for {:.1} s, over its limit of {:.1} s ({}); {last}",
                self.name(),
                secs(phase_for),
                secs(limit),
                self.explain(status.phase, limit),
            )
        };
        let problem = match (status.phase, status.limit) {
            (Phase::Gone, _) => Some(format!(
                "{}: its receive loop ended without a shutdown (task aborted or panicked); {last}",
                self.name()
            )),
            (phase, Some(limit)) if phase_for > limit => Some(match phase {
                Phase::Starting => over("registered but its receive loop never started", limit),
                Phase::Pausing => over("pausing after a failed receive", limit),
                _ => over("in a receive that has not returned", limit),
            }),
            _ => None,
        };
        LoopReport {
            stage: self.stage,
            worker: self.worker.clone(),
            queue: self.queue.clone(),
            phase: status.phase,
            phase_for,
            limit: status.limit,
            since_receive,
            receives: status.receives,
            problem,
        }
    }

    fn name(&self) -> String {
        format!(
            "stage {} (worker {}, queue {})",
            self.stage, self.worker, self.queue
        )
    }

    fn explain(&self, phase: Phase, limit: Duration) -> String {
        match phase {
            Phase::Pausing => format!(
                "the backoff {:.1} s + margin {:.1} s",
                secs(limit.saturating_sub(self.margin)),
                secs(self.margin)
            ),
            _ => format!(
                "long poll and batch window {:.1} s + margin {:.1} s",
                secs(self.receive_bound),
                secs(self.margin)
            ),
        }
    }
}

/// A worker's side of its loop's health: the phase changes its receive loop reports and
/// the Prometheus series it records into. Detached (a no-op) for a worker without a
/// [`super::Health`].
#[derive(Debug, Clone, Default)]
pub struct LoopProbe {
    state: Option<Arc<LoopState>>,
    metrics: Option<StageMetrics>,
}

impl LoopProbe {
    pub(crate) fn attached(state: Arc<LoopState>, metrics: StageMetrics) -> LoopProbe {
        LoopProbe {
            state: Some(state),
            metrics: Some(metrics),
        }
    }

    /// The stage's Prometheus series, when there is a registry.
    pub fn metrics(&self) -> Option<&StageMetrics> {
        self.metrics.as_ref()
    }

    /// A receive begins: it must return within the long poll and batch window.
    pub fn receiving(&self) {
        if let Some(s) = &self.state {
            s.set(Phase::Receiving, Some(s.receive_bound + s.margin));
        }
    }

    /// A receive returned: with `Ok(n)` messages, or failed with the error's code.
    pub fn received(&self, result: Result<usize, &QueueError>) {
        if let Some(s) = &self.state {
            let mut status = s.status.lock().unwrap_or_else(|e| e.into_inner());
            status.last_receive = Some(Instant::now());
            status.receives += 1;
        }
        if let Some(m) = &self.metrics {
            match result {
                Ok(n) => m.received(n),
                Err(e) => m.receive_failed(e.code()),
            }
        }
    }

    /// Pausing `pause` after a failed receive.
    pub fn pausing(&self, pause: Duration) {
        if let Some(s) = &self.state {
            s.set(Phase::Pausing, Some(pause + s.margin));
        }
    }

    /// Every permit is taken: no receive until work returns one. Keeps the phase's start if
    /// the loop was already full.
    pub fn full(&self) {
        if let Some(s) = &self.state {
            let mut status = s.status.lock().unwrap_or_else(|e| e.into_inner());
            if status.phase != Phase::Full {
                status.phase = Phase::Full;
                status.since = Instant::now();
                status.limit = None;
            }
        }
    }

    pub fn draining(&self) {
        if let Some(s) = &self.state {
            s.set(Phase::Draining, None);
        }
    }

    /// Marks the loop `gone` when dropped, unless [`RunGuard::stopped`] was called first:
    /// held by the receive loop for as long as it runs.
    pub fn run_guard(&self) -> RunGuard {
        RunGuard {
            state: self.state.clone(),
        }
    }
}

/// See [`LoopProbe::run_guard`].
pub struct RunGuard {
    state: Option<Arc<LoopState>>,
}

impl RunGuard {
    /// The loop returned after a shutdown.
    pub fn stopped(mut self) {
        if let Some(s) = self.state.take() {
            s.set(Phase::Stopped, None);
        }
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if let Some(s) = self.state.take() {
            s.set(Phase::Gone, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::prometheus::Exposition;

    fn attached(bound_secs: u64, margin_secs: u64) -> (Arc<LoopState>, LoopProbe) {
        let state = Arc::new(LoopState::new(
            "scan",
            "w1",
            "intake-scan",
            Duration::from_secs(bound_secs),
            Duration::from_secs(margin_secs),
        ));
        let probe = LoopProbe::attached(state.clone(), Exposition::new().stage("scan"));
        (state, probe)
    }

    #[tokio::test(start_paused = true)]
    async fn a_receive_past_its_long_poll_and_margin_is_stuck_and_says_for_how_long() {
        let (state, probe) = attached(20, 10);
        probe.receiving();
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(!state.report().stuck(), "30 s is within 20 s + 10 s");
        tokio::time::advance(Duration::from_millis(1500)).await;
        let report = state.report();
        let problem = report.problem.expect("stuck");
        assert!(
            problem.contains("stage scan (worker w1, queue intake-scan)")
                && problem.contains("in a receive that has not returned for 31.5 s")
                && problem.contains("limit of 30.0 s")
                && problem.contains("no receive has returned yet"),
            "{problem}"
        );
        // It returns: the next receive starts its own clock.
        probe.received(Ok(3));
        probe.receiving();
        tokio::time::advance(Duration::from_secs(5)).await;
        let report = state.report();
        assert!(!report.stuck());
        assert_eq!(report.since_receive, Some(Duration::from_secs(5)));
    }

    #[tokio::test(start_paused = true)]
    async fn full_and_draining_loops_have_no_deadline_but_a_gone_one_is_unhealthy() {
        let (state, probe) = attached(1, 1);
        let guard = probe.run_guard();
        probe.full();
        tokio::time::advance(Duration::from_secs(3600)).await;
        probe.full();
        let report = state.report();
        assert!(!report.stuck());
        assert_eq!(
            report.phase_for,
            Duration::from_secs(3600),
            "still the same phase"
        );
        probe.draining();
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(!state.report().stuck());
        guard.stopped();
        assert_eq!(state.report().phase, Phase::Stopped);
        assert!(!state.report().stuck());

        let (state, probe) = attached(1, 1);
        drop(probe.run_guard());
        let report = state.report();
        assert_eq!(report.phase, Phase::Gone);
        assert!(report.problem.unwrap().contains("ended without a shutdown"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_is_bounded_by_its_backoff_and_a_loop_that_never_starts_is_stuck() {
        let (state, probe) = attached(1, 2);
        tokio::time::advance(Duration::from_secs(4)).await;
        let problem = state.report().problem.expect("never started");
        assert!(problem.contains("never started"), "{problem}");

        probe.received(Err(&QueueError::Lost { operation: "x" }));
        probe.pausing(Duration::from_secs(30));
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(!state.report().stuck());
        tokio::time::advance(Duration::from_secs(2)).await;
        let problem = state.report().problem.expect("paused too long");
        assert!(
            problem.contains("pausing after a failed receive")
                && problem.contains("the backoff 30.0 s + margin 2.0 s"),
            "{problem}"
        );
    }
}
