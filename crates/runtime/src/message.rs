//! One SQS message, end to end. The order is what makes the effect exactly-once:
//! claim in the ledger → do the work (idempotent, deterministic keys) → record the result
//! and the outcome in one ledger transaction → publish → mark published → delete the
//! message. A crash anywhere leaves the message on the queue; its redelivery either takes
//! the claim over, or finds the stage done and only publishes an outcome that never went out.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use intake_aws::AwsClients;
use intake_core::event::{Incoming, parse_body_from};
use intake_core::names::BucketRole;
use intake_core::outcome::{OUTCOME_SCHEMA_VERSION, Timings};
use intake_core::state_machine::StageKind;
use intake_core::{ErrorClass, OutcomeMessage};
use intake_store::{Begin, Completion, Ledger, StageResult, VersionKey};

use crate::backoff::{Backoff, MAX_VISIBILITY};
use crate::metrics::{MetricEvent, Metrics};
use crate::publish::{publish_outcome, send_to_dlq};
use crate::stage::{Stage, StageCx, StageInput, StageOutput};

/// Everything a message handler needs, shared by every task of one worker.
pub struct Shared<S> {
    pub stage: Arc<S>,
    pub cx: StageCx,
    pub ledger: Arc<Ledger>,
    pub queue_name: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub events_topic_arn: String,
    pub worker_id: String,
    pub metrics: Metrics,
    pub visibility: Duration,
    pub backoff: Backoff,
}

/// What became of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Work done (or found done) and the message deleted.
    Deleted,
    /// A retryable failure: the message comes back after a backoff.
    Retried,
    /// Not an event Intake understands: moved to the DLQ.
    Poisoned,
}

enum Failure {
    Retry { code: String, detail: String },
    Poison { code: String, reason: String },
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub async fn handle<S: Stage>(shared: &Shared<S>, message: &Message) -> Disposition {
    let body = message.body().unwrap_or_default();
    let receive_count = message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|c| c.parse().ok())
        .unwrap_or(1u32);
    // Every field of an S3 event that a retry cannot change, the bucket first, is checked
    // here, before the ledger or S3 is touched: a malformed event is poison on its first
    // receive instead of a retryable store or S3 failure on every receive.
    let parsed = parse_body_from(body, shared.cx.names.bucket(BucketRole::Uploads));
    // Deletion requests belong on the deletion queue and nothing else does: a message on
    // the wrong queue would otherwise be acted on by the wrong worker.
    if let Ok(incoming) = &parsed
        && matches!(incoming, Incoming::Delete(_)) != (S::KIND == StageKind::Delete)
        && !matches!(incoming, Incoming::S3TestEvent)
    {
        let reason = format!(
            "a {} on the {} queue: deletion requests go to the deletion queue only, events to stage queues only",
            match incoming {
                Incoming::Delete(_) => "deletion request",
                _ => "pipeline event",
            },
            S::KIND
        );
        return poison_message(shared, message, "wrong_queue", &reason).await;
    }
    let inputs = match parsed {
        Err(poison) => return poison_message(shared, message, poison.code, &poison.reason).await,
        Ok(Incoming::S3TestEvent) => {
            tracing::info!(queue = %shared.queue_name, "s3:TestEvent acknowledged");
            return delete(shared, message).await;
        }
        Ok(Incoming::S3(objects)) => objects
            .into_iter()
            .map(|o| StageInput {
                location: o.clone(),
                object: o,
                upstream: None,
            })
            .collect::<Vec<_>>(),
        Ok(Incoming::Delete(request)) => vec![StageInput {
            location: request.object.clone(),
            object: request.object,
            upstream: None,
        }],
        Ok(Incoming::Outcome(outcome)) => vec![StageInput {
            object: outcome.object.clone(),
            location: outcome.current_location().clone(),
            upstream: Some(*outcome),
        }],
    };
    let claimant = format!(
        "{}/{}",
        shared.worker_id,
        message.message_id().unwrap_or("?")
    );
    let mut retry = None;
    for input in inputs {
        match process_one(shared, message, &claimant, input).await {
            Ok(()) => {}
            Err(Failure::Poison { code, reason }) => {
                return poison_message(shared, message, &code, &reason).await;
            }
            Err(Failure::Retry { code, detail }) => retry = Some((code, detail)),
        }
    }
    match retry {
        None => delete(shared, message).await,
        Some((code, detail)) => {
            let delay = shared.backoff.delay_random(receive_count);
            tracing::warn!(stage = %S::KIND, code, detail, receive_count, delay_secs = delay.as_secs(), "retryable failure; message will come back");
            shared.metrics.record(MetricEvent::Retried { code });
            set_visibility(&shared.cx.aws, &shared.queue_url, message, delay).await;
            Disposition::Retried
        }
    }
}

async fn process_one<S: Stage>(
    shared: &Shared<S>,
    message: &Message,
    claimant: &str,
    input: StageInput,
) -> Result<(), Failure> {
    let stage = S::KIND.name();
    let version = VersionKey::new(
        &input.object.bucket,
        &input.object.key,
        input.object.version_token(),
    );
    let store_failure = |e: intake_store::StoreError| Failure::Retry {
        code: e.code().to_owned(),
        detail: e.to_string(),
    };

    // S3's sequencer orders events for a key, but no event is dropped for arriving late:
    // one file, one version (the entry stage asks the ledger which version is the file), so
    // a late event is either a duplicate of the file's own, which the claim below
    // acknowledges, or a later version, which the entry stage refuses as `upload_reused`
    // and cleans up. Dropping it would leave its bytes in the uploads bucket.
    match shared
        .ledger
        .begin_stage(&version, stage, claimant, shared.visibility)
        .await
        .map_err(store_failure)?
    {
        Begin::Claimed { .. } => {}
        Begin::AlreadyDone {
            unpublished_outcome: None,
            ..
        } => {
            tracing::info!(object = %version, stage, "duplicate delivery acknowledged: stage already completed");
            return Ok(());
        }
        Begin::AlreadyDone {
            unpublished_outcome: Some(json),
            ..
        } => {
            let recorded = serde_json::from_str::<OutcomeMessage>(&json).ok();
            // Recorded but not yet published: either the worker that did the work is
            // publishing right now, or it died in between. Give it its visibility period
            // before publishing on its behalf, or both would publish.
            let finished_ms = recorded.as_ref().map_or(0, |o| o.timings.finished_ms);
            if now_ms() - finished_ms < shared.visibility.as_millis() as i64 {
                return Err(Failure::Retry {
                    code: "publish_pending".into(),
                    detail: format!(
                        "{version}: {stage} is done and its outcome is being published by another delivery"
                    ),
                });
            }
            let attributes = recorded
                .map(|o| {
                    o.attributes()
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            publish_outcome(&shared.cx.aws, &shared.events_topic_arn, &json, &attributes)
                .await
                .map_err(|e| Failure::Retry {
                    code: e.code().to_owned(),
                    detail: e.to_string(),
                })?;
            shared
                .ledger
                .mark_published(&version, stage)
                .await
                .map_err(store_failure)?;
            return Ok(());
        }
        Begin::HeldElsewhere { worker, .. } => {
            return Err(Failure::Retry {
                code: "in_progress_elsewhere".into(),
                detail: format!("{version}: {stage} is being processed by {worker}"),
            });
        }
    }

    // Aborted when dropped, so that a stage that panics (the task unwinds) or is cancelled
    // at shutdown does not leave a heartbeat keeping its message invisible forever.
    let heartbeat = AbortOnDrop(tokio::spawn(heartbeat(
        shared.cx.aws.clone(),
        shared.queue_url.clone(),
        message.receipt_handle().unwrap_or_default().to_owned(),
        shared.ledger.clone(),
        version.clone(),
        stage,
        claimant.to_owned(),
        shared.visibility,
    )));
    let started_ms = now_ms();
    let started = Instant::now();
    let result = shared.stage.process(&shared.cx, &input).await;
    drop(heartbeat);

    let output = match result {
        Ok(output) => output,
        Err(e) if e.class == ErrorClass::Permanent => StageOutput {
            outcome: "failed".into(),
            code: Some(e.code.into()),
            detail: Some(e.message),
            ..Default::default()
        },
        Err(e) => {
            let _ = shared
                .ledger
                .release_stage(&version, stage, claimant, e.code, &e.message)
                .await;
            return Err(match e.class {
                ErrorClass::Poison => Failure::Poison {
                    code: e.code.into(),
                    reason: e.message,
                },
                _ => Failure::Retry {
                    code: e.code.into(),
                    detail: e.message,
                },
            });
        }
    };

    let config = &shared.cx.config;
    let (output, state) = match config.route(S::KIND, &output.outcome) {
        Some(state) => (output, state),
        None => {
            let detail = format!(
                "stage {stage} returned outcome \"{}\", which pipeline.toml does not route",
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
    };
    let outcome = outcome_message(shared, &input, &output, started_ms);
    let outcome_json = serde_json::to_string(&outcome).expect("outcome serialises");
    let record = StageResult {
        outcome: output.outcome.clone(),
        code: output.code.clone(),
        detail: output.detail.clone(),
        outcome_json: outcome_json.clone(),
        started_ms,
        finished_ms: outcome.timings.finished_ms,
    };
    match shared
        .ledger
        .complete_stage(&version, stage, claimant, &record, &state)
        .await
        .map_err(store_failure)?
    {
        Completion::Recorded => {}
        Completion::LostClaim => {
            return Err(Failure::Retry {
                code: "lost_claim".into(),
                detail: format!(
                    "{version}: the claim on {stage} lapsed and was taken over; not publishing"
                ),
            });
        }
    }
    let attributes: Vec<(String, String)> = outcome
        .attributes()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    publish_outcome(
        &shared.cx.aws,
        &shared.events_topic_arn,
        &outcome_json,
        &attributes,
    )
    .await
    .map_err(|e| Failure::Retry {
        code: e.code().to_owned(),
        detail: e.to_string(),
    })?;
    if let Err(e) = shared.ledger.mark_published(&version, stage).await {
        tracing::warn!(object = %version, error = %e, "outcome published but not marked; a redelivery may publish it again");
    }
    let duration_ms = started.elapsed().as_millis() as u64;
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
    tracing::info!(object = %version, stage, outcome = %output.outcome, code = ?output.code, next = %state, duration_ms, "processed");
    Ok(())
}

fn outcome_message<S>(
    shared: &Shared<S>,
    input: &StageInput,
    output: &StageOutput,
    started_ms: i64,
) -> OutcomeMessage
where
    S: Stage,
{
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
            finished_ms: now_ms(),
        },
        worker: shared.worker_id.clone(),
        extra: output.extra.clone(),
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Keep the message invisible and the ledger claim alive while the work runs. Aborted by
/// the caller when the work ends; never extends past SQS's 12-hour cap.
#[allow(clippy::too_many_arguments)]
async fn heartbeat(
    aws: AwsClients,
    queue_url: String,
    receipt: String,
    ledger: Arc<Ledger>,
    version: VersionKey,
    stage: &'static str,
    claimant: String,
    visibility: Duration,
) {
    let started = Instant::now();
    let every = (visibility / 2).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(every).await;
        if started.elapsed() + visibility >= MAX_VISIBILITY {
            tracing::warn!(object = %version, "work has run for 12 hours; no longer extending visibility");
            return;
        }
        let extended = aws
            .sqs
            .change_message_visibility()
            .queue_url(&queue_url)
            .receipt_handle(&receipt)
            .visibility_timeout(visibility.as_secs() as i32)
            .send()
            .await;
        if let Err(e) = extended {
            tracing::warn!(object = %version, error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "could not extend visibility");
        }
        match ledger
            .extend_lease(&version, stage, &claimant, visibility)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(object = %version, stage, "ledger claim lost while working")
            }
            Err(e) => {
                tracing::warn!(object = %version, error = %e, "could not extend ledger claim")
            }
        }
    }
}

async fn delete<S>(shared: &Shared<S>, message: &Message) -> Disposition {
    let result = shared
        .cx
        .aws
        .sqs
        .delete_message()
        .queue_url(&shared.queue_url)
        .receipt_handle(message.receipt_handle().unwrap_or_default())
        .send()
        .await;
    if let Err(e) = result {
        // The effect is recorded; a redelivery will be acknowledged as a duplicate.
        tracing::warn!(queue = %shared.queue_name, error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "could not delete a processed message");
    }
    Disposition::Deleted
}

async fn poison_message<S: Stage>(
    shared: &Shared<S>,
    message: &Message,
    code: &str,
    reason: &str,
) -> Disposition {
    tracing::warn!(queue = %shared.queue_name, code, reason, "poison message moved to the DLQ");
    shared
        .metrics
        .record(MetricEvent::Poison { code: code.into() });
    match send_to_dlq(
        &shared.cx.aws,
        &shared.dlq_url,
        &shared.queue_name,
        message,
        code,
        reason,
    )
    .await
    {
        Ok(()) => {
            delete(shared, message).await;
            Disposition::Poisoned
        }
        Err(e) => {
            // Not in the DLQ yet: keep it; the redrive policy will move it eventually.
            tracing::warn!(error = %e, "could not move a poison message to the DLQ; leaving it on the queue");
            set_visibility(
                &shared.cx.aws,
                &shared.queue_url,
                message,
                shared.backoff.delay_random(1),
            )
            .await;
            Disposition::Retried
        }
    }
}

pub(crate) async fn set_visibility(
    aws: &AwsClients,
    queue_url: &str,
    message: &Message,
    delay: Duration,
) {
    let result = aws
        .sqs
        .change_message_visibility()
        .queue_url(queue_url)
        .receipt_handle(message.receipt_handle().unwrap_or_default())
        .visibility_timeout(delay.min(MAX_VISIBILITY).as_secs() as i32)
        .send()
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "could not change message visibility");
    }
}
