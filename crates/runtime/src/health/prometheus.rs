//! `GET /metrics`: the workers' own Prometheus series, from a registry that belongs to one
//! [`super::Health`] (not a process-wide global, so two in one test process do not mix).
//!
//! Labels are only `stage`, `outcome` and `code`, each from a bounded set: stage kinds,
//! the outcomes `pipeline.toml` routes (an unrouted one is recorded as `failed`), the
//! message dispositions below, and error codes. Never a key, an id or a queue URL.
//!
//! | series | type | what |
//! |---|---|---|
//! | `intake_messages_total{stage,outcome}` | counter | messages settled, by what became of them: `deleted` (done, or found done), `retried` (comes back after a backoff), `poisoned` (moved to the DLQ), `panicked` (comes back after its visibility timeout), `released` (handed back at shutdown) |
//! | `intake_processed_total{stage,outcome}` | counter | objects whose outcome was recorded and published, by the stage's outcome (`passed`, `clean`, `failed`, …) |
//! | `intake_failed_total{stage,code}` | counter | objects whose outcome is `failed`, by code |
//! | `intake_retried_total{stage,code}` | counter | retryable failures, by code |
//! | `intake_poison_total{stage,code}` | counter | poison messages, by code |
//! | `intake_receive_errors_total{stage,code}` | counter | receives that failed (the loop backs off) |
//! | `intake_in_flight{stage}` | gauge | messages being handled now |
//! | `intake_receive_batch_size{stage}` | histogram | messages per receive (0 for an empty long poll) |
//! | `intake_message_duration_seconds{stage}` | histogram | time to handle one message, receive to settled |

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::metrics::MetricEvent;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabel {
    stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    stage: &'static str,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    stage: &'static str,
    code: String,
}

/// What became of a message, as `intake_messages_total` counts it.
pub(crate) const MESSAGE_OUTCOMES: [&str; 5] =
    ["deleted", "retried", "poisoned", "panicked", "released"];

/// Up to ten per receive, so one bucket per size.
const BATCH_BUCKETS: [f64; 11] = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];

/// From a cached duplicate (milliseconds) to a large scan or archive (minutes).
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

fn batch_histogram() -> Histogram {
    Histogram::new(BATCH_BUCKETS)
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

struct Families {
    messages: Family<OutcomeLabels, Counter>,
    processed: Family<OutcomeLabels, Counter>,
    failed: Family<CodeLabels, Counter>,
    retried: Family<CodeLabels, Counter>,
    poison: Family<CodeLabels, Counter>,
    receive_errors: Family<CodeLabels, Counter>,
    in_flight: Family<StageLabel, Gauge>,
    batch_size: Family<StageLabel, Histogram>,
    duration: Family<StageLabel, Histogram>,
}

/// The registry and its families.
pub(crate) struct Exposition {
    registry: Mutex<Registry>,
    families: Arc<Families>,
}

impl Exposition {
    pub(crate) fn new() -> Exposition {
        let mut registry = Registry::with_prefix("intake");
        let families = Families {
            messages: Family::default(),
            processed: Family::default(),
            failed: Family::default(),
            retried: Family::default(),
            poison: Family::default(),
            receive_errors: Family::default(),
            in_flight: Family::default(),
            batch_size: Family::new_with_constructor(batch_histogram),
            duration: Family::new_with_constructor(duration_histogram),
        };
        registry.register(
            "messages",
            "Messages settled, by stage and what became of them (deleted, retried, poisoned, panicked, released)",
            families.messages.clone(),
        );
        registry.register(
            "processed",
            "Objects whose outcome was recorded and published, by stage and outcome",
            families.processed.clone(),
        );
        registry.register(
            "failed",
            "Objects whose outcome is failed, by stage and error code",
            families.failed.clone(),
        );
        registry.register(
            "retried",
            "Retryable failures, by stage and error code",
            families.retried.clone(),
        );
        registry.register(
            "poison",
            "Poison messages moved to the DLQ, by stage and error code",
            families.poison.clone(),
        );
        registry.register(
            "receive_errors",
            "Failed receives from the stage queue, by stage and error code",
            families.receive_errors.clone(),
        );
        registry.register(
            "in_flight",
            "Messages being handled now, by stage",
            families.in_flight.clone(),
        );
        registry.register(
            "receive_batch_size",
            "Messages per receive from the stage queue (0: an empty long poll)",
            families.batch_size.clone(),
        );
        registry.register(
            "message_duration_seconds",
            "Time to handle one message, from receive to acknowledged, delayed or dead-lettered",
            families.duration.clone(),
        );
        Exposition {
            registry: Mutex::new(registry),
            families: Arc::new(families),
        }
    }

    /// The series of one stage. Its gauges and histograms, and a zero for each message
    /// outcome, exist from now on, so a quiet stage shows zeros rather than nothing.
    pub(crate) fn stage(&self, stage: &'static str) -> StageMetrics {
        let families = &self.families;
        let label = StageLabel { stage };
        // `get_or_create` makes the series; the guard it returns is not needed.
        let _ = families.in_flight.get_or_create(&label);
        let _ = families.batch_size.get_or_create(&label);
        let _ = families.duration.get_or_create(&label);
        for outcome in MESSAGE_OUTCOMES {
            let _ = families.messages.get_or_create(&OutcomeLabels {
                stage,
                outcome: outcome.into(),
            });
        }
        StageMetrics {
            families: self.families.clone(),
            stage,
        }
    }

    /// The OpenMetrics text exposition, which Prometheus reads.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

/// One stage's series: what a worker records into.
#[derive(Clone)]
pub struct StageMetrics {
    families: Arc<Families>,
    stage: &'static str,
}

impl std::fmt::Debug for StageMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageMetrics")
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

impl StageMetrics {
    fn outcome(&self, outcome: &str) -> OutcomeLabels {
        OutcomeLabels {
            stage: self.stage,
            outcome: outcome.to_owned(),
        }
    }

    fn code(&self, code: &str) -> CodeLabels {
        CodeLabels {
            stage: self.stage,
            code: code.to_owned(),
        }
    }

    fn label(&self) -> StageLabel {
        StageLabel { stage: self.stage }
    }

    /// The events the CloudWatch metrics get too. A panic is counted once, as a message
    /// outcome ([`Self::message`]), not here.
    pub(crate) fn record(&self, event: &MetricEvent) {
        let f = &self.families;
        match event {
            MetricEvent::Processed { outcome, .. } => {
                f.processed.get_or_create(&self.outcome(outcome)).inc();
            }
            MetricEvent::Failed { code } => {
                f.failed.get_or_create(&self.code(code)).inc();
            }
            MetricEvent::Retried { code } => {
                f.retried.get_or_create(&self.code(code)).inc();
            }
            MetricEvent::Poison { code } => {
                f.poison.get_or_create(&self.code(code)).inc();
            }
            MetricEvent::Panicked => {}
        }
    }

    /// `n` messages ended as `outcome` (one of [`MESSAGE_OUTCOMES`]).
    pub(crate) fn messages(&self, outcome: &str, n: u64) {
        if n > 0 {
            self.families
                .messages
                .get_or_create(&self.outcome(outcome))
                .inc_by(n);
        }
    }

    pub(crate) fn in_flight(&self, change: i64) {
        self.families
            .in_flight
            .get_or_create(&self.label())
            .inc_by(change);
    }

    pub(crate) fn received(&self, n: usize) {
        self.families
            .batch_size
            .get_or_create(&self.label())
            .observe(n as f64);
    }

    pub(crate) fn receive_failed(&self, code: &str) {
        self.families
            .receive_errors
            .get_or_create(&self.code(code))
            .inc();
    }

    pub(crate) fn handled(&self, took: Duration) {
        self.families
            .duration
            .get_or_create(&self.label())
            .observe(took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_carry_only_stage_outcome_and_code_and_quiet_stages_show_zeros() {
        let exposition = Exposition::new();
        let scan = exposition.stage("scan");
        exposition.stage("validate");
        scan.messages("deleted", 2);
        scan.record(&MetricEvent::Processed {
            outcome: "clean".into(),
            duration_ms: 12,
            bytes: 100,
        });
        scan.record(&MetricEvent::Retried {
            code: "scanner_unreachable".into(),
        });
        scan.in_flight(3);
        scan.in_flight(-1);
        scan.received(4);
        scan.handled(Duration::from_millis(30));
        let text = exposition.render();
        for line in [
            r#"intake_messages_total{stage="scan",outcome="deleted"} 2"#,
            r#"intake_messages_total{stage="validate",outcome="poisoned"} 0"#,
            r#"intake_processed_total{stage="scan",outcome="clean"} 1"#,
            r#"intake_retried_total{stage="scan",code="scanner_unreachable"} 1"#,
            r#"intake_in_flight{stage="scan"} 2"#,
            r#"intake_in_flight{stage="validate"} 0"#,
            r#"intake_receive_batch_size_bucket{le="4.0",stage="scan"} 1"#,
            r#"intake_receive_batch_size_bucket{le="3.0",stage="scan"} 0"#,
            r#"intake_message_duration_seconds_count{stage="scan"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
