//! Step 4: route the stage's outcome through `pipeline.toml`, build the outcome message,
//! and record result, outcome (the outbox row), transition and next state in one ledger
//! transaction, only if this delivery still holds the claim.

use std::time::Duration;

use intake_core::OutcomeMessage;
use intake_core::outcome::{OUTCOME_SCHEMA_VERSION, Timings};
use intake_store::{Completion, StageResult, VersionKey};

use super::{Failure, Shared};
use crate::metrics::MetricEvent;
use crate::stage::{Stage, StageInput, StageOutput};
use crate::topic::Outbound;

/// A result safely in the ledger, with the outcome still to publish.
pub struct Recorded {
    pub outbound: Outbound,
    output: StageOutput,
    state: String,
}

pub async fn record<S: Stage>(
    shared: &Shared<S>,
    version: &VersionKey,
    claimant: &str,
    input: &StageInput,
    output: StageOutput,
    started_ms: i64,
) -> Result<Recorded, Failure> {
    let stage = S::KIND.name();
    let (output, state) = route::<S>(shared, output);
    let outcome = outcome_message(shared, input, &output, started_ms);
    let json = serde_json::to_string(&outcome).expect("an outcome message serialises");
    let result = StageResult {
        outcome: output.outcome.clone(),
        code: output.code.clone(),
        detail: output.detail.clone(),
        outcome_json: json.clone(),
        started_ms,
        finished_ms: outcome.timings.finished_ms,
    };
    let completion = shared
        .ledger
        .complete_stage(version, stage, claimant, &result, &state)
        .await
        .map_err(Failure::store)?;
    if completion == Completion::LostClaim {
        return Err(Failure::retry(
            "lost_claim",
            format!("{version}: the claim on {stage} lapsed and was taken over; not publishing"),
        ));
    }
    let attributes = outcome
        .attributes()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    Ok(Recorded {
        outbound: Outbound { json, attributes },
        output,
        state,
    })
}

impl Recorded {
    /// Metrics and the log line for a processed object, once its outcome is out.
    pub fn report<S: Stage>(&self, shared: &Shared<S>, version: &VersionKey, took: Duration) {
        let output = &self.output;
        let duration_ms = took.as_millis() as u64;
        if output.outcome == "failed" {
            shared.metrics.record(MetricEvent::Failed {
                code: output.code.clone().unwrap_or_default(),
            });
        }
        shared.metrics.record(MetricEvent::Processed {
            outcome: output.outcome.clone(),
            duration_ms,
            bytes: output.bytes,
        });
        tracing::info!(object = %version, stage = S::KIND.name(), outcome = %output.outcome, code = ?output.code, next = %self.state, duration_ms, "processed");
    }
}

/// Where the outcome leads. An outcome `pipeline.toml` does not route becomes `failed`
/// (`unrouted_outcome`), routed like any failure.
fn route<S: Stage>(shared: &Shared<S>, output: StageOutput) -> (StageOutput, String) {
    let config = &shared.cx.config;
    if let Some(state) = config.route(S::KIND, &output.outcome) {
        return (output, state);
    }
    let detail = format!(
        "stage {} returned outcome \"{}\", which pipeline.toml does not route",
        S::KIND.name(),
        output.outcome
    );
    let failed = StageOutput {
        outcome: "failed".into(),
        code: Some("unrouted_outcome".into()),
        detail: Some(detail),
        ..Default::default()
    };
    let state = config
        .route(S::KIND, "failed")
        .unwrap_or_else(|| "failed".into());
    (failed, state)
}

fn outcome_message<S: Stage>(
    shared: &Shared<S>,
    input: &StageInput,
    output: &StageOutput,
    started_ms: i64,
) -> OutcomeMessage {
    let upstream = input.upstream.as_ref();
    let mut object = input.object.clone();
    object.tenant = output.tenant.clone().or(object.tenant);
    object.user = output.user.clone().or(object.user);
    let location = output
        .location
        .clone()
        .or_else(|| upstream.and_then(|u| u.location.clone()));
    OutcomeMessage {
        intake_outcome: OUTCOME_SCHEMA_VERSION,
        object,
        stage: S::KIND.name().into(),
        outcome: output.outcome.clone(),
        code: output.code.clone(),
        detail: output.detail.clone(),
        detected_type: output
            .detected_type
            .clone()
            .or_else(|| upstream.and_then(|u| u.detected_type.clone())),
        class: output
            .class
            .clone()
            .or_else(|| upstream.and_then(|u| u.class.clone())),
        location,
        timings: Timings {
            started_ms,
            finished_ms: shared.ledger.now_ms(),
        },
        worker: shared.worker_id.clone(),
        extra: output.extra.clone(),
    }
}
