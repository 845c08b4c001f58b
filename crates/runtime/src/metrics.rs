//! Typed metric events, batched into CloudWatch `PutMetricData`. Dimensions are only
//! pipeline, stage, outcome and code (bounded; never keys or ids). Recording never blocks: a
//! full buffer drops the datum and counts it, and a CloudWatch outage only logs. The same
//! events also go to the worker's Prometheus series when it has a [`crate::health::Health`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use intake_aws::AwsClients;
use tokio::sync::mpsc;

use intake_aws::provision::desired::METRIC_NAMESPACE;

use crate::health::prometheus::StageMetrics;

/// One thing worth counting.
#[derive(Debug, Clone)]
pub enum MetricEvent {
    Processed {
        outcome: String,
        duration_ms: u64,
        bytes: u64,
    },
    Failed {
        code: String,
    },
    Retried {
        code: String,
    },
    Poison {
        code: String,
    },
    Panicked,
}

#[derive(Clone)]
pub struct Metrics {
    sender: Option<mpsc::Sender<MetricDatum>>,
    pipeline: String,
    stage: String,
    dropped: Arc<AtomicU64>,
    prometheus: Option<StageMetrics>,
}

impl Metrics {
    /// Metrics that go nowhere (tools and tests that do not want CloudWatch traffic).
    pub fn disabled(pipeline: &str, stage: &str) -> Self {
        Metrics {
            sender: None,
            pipeline: pipeline.into(),
            stage: stage.into(),
            dropped: Arc::default(),
            prometheus: None,
        }
    }

    /// Start the background flusher; it ends when every `Metrics` clone is dropped.
    pub fn start(aws: AwsClients, pipeline: &str, stage: &str) -> Self {
        let (sender, receiver) = mpsc::channel(10_000);
        tokio::spawn(flush_loop(aws, receiver));
        Metrics {
            sender: Some(sender),
            pipeline: pipeline.into(),
            stage: stage.into(),
            dropped: Arc::default(),
            prometheus: None,
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The same events also counted in these Prometheus series.
    pub fn with_prometheus(self, prometheus: Option<StageMetrics>) -> Self {
        Metrics { prometheus, ..self }
    }

    pub fn record(&self, event: MetricEvent) {
        if let Some(prometheus) = &self.prometheus {
            prometheus.record(&event);
        }
        let Some(sender) = &self.sender else { return };
        for datum in self.data(event) {
            if sender.try_send(datum).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn data(&self, event: MetricEvent) -> Vec<MetricDatum> {
        let dims = |extra: &[(&str, &str)]| {
            let mut d = vec![
                Dimension::builder()
                    .name("pipeline")
                    .value(&self.pipeline)
                    .build(),
                Dimension::builder()
                    .name("stage")
                    .value(&self.stage)
                    .build(),
            ];
            d.extend(
                extra
                    .iter()
                    .map(|(n, v)| Dimension::builder().name(*n).value(*v).build()),
            );
            d
        };
        let datum = |name: &str, value: f64, unit: StandardUnit, extra: &[(&str, &str)]| {
            MetricDatum::builder()
                .metric_name(name)
                .value(value)
                .unit(unit)
                .set_dimensions(Some(dims(extra)))
                .build()
        };
        match event {
            MetricEvent::Processed {
                outcome,
                duration_ms,
                bytes,
            } => vec![
                datum(
                    "processed",
                    1.0,
                    StandardUnit::Count,
                    &[("outcome", &outcome)],
                ),
                datum(
                    "duration_ms",
                    duration_ms as f64,
                    StandardUnit::Milliseconds,
                    &[],
                ),
                datum("bytes", bytes as f64, StandardUnit::Bytes, &[]),
            ],
            // The per-stage total is what the failures alarm watches; the per-code series
            // tells why.
            MetricEvent::Failed { code } => vec![
                datum("failed", 1.0, StandardUnit::Count, &[]),
                datum("failed", 1.0, StandardUnit::Count, &[("code", &code)]),
            ],
            MetricEvent::Retried { code } => vec![datum(
                "retried",
                1.0,
                StandardUnit::Count,
                &[("code", &code)],
            )],
            MetricEvent::Poison { code } => vec![datum(
                "poison",
                1.0,
                StandardUnit::Count,
                &[("code", &code)],
            )],
            MetricEvent::Panicked => vec![datum("panicked", 1.0, StandardUnit::Count, &[])],
        }
    }
}

async fn flush_loop(aws: AwsClients, mut receiver: mpsc::Receiver<MetricDatum>) {
    let mut batch = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            datum = receiver.recv() => match datum {
                Some(d) => {
                    batch.push(d);
                    if batch.len() >= 500 {
                        flush(&aws, &mut batch).await;
                    }
                }
                None => {
                    flush(&aws, &mut batch).await;
                    return;
                }
            },
            _ = tick.tick() => flush(&aws, &mut batch).await,
        }
    }
}

async fn flush(aws: &AwsClients, batch: &mut Vec<MetricDatum>) {
    if batch.is_empty() {
        return;
    }
    let data = std::mem::take(batch);
    // PutMetricData takes at most 1000 data per call.
    for chunk in data.chunks(1000) {
        let result = aws
            .cloudwatch
            .put_metric_data()
            .namespace(METRIC_NAMESPACE)
            .set_metric_data(Some(chunk.to_vec()))
            .send()
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %aws_sdk_cloudwatch::error::DisplayErrorContext(&e), dropped = chunk.len(), "could not send metrics to CloudWatch; processing goes on");
        }
    }
}
