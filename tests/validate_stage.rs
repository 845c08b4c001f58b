//! The runtime and the validate stage against LocalStack: outcomes on the events topic,
//! quarantine, exactly-once effects under duplicate deliveries, poison to the DLQ,
//! retryable and permanent failures.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use intake_core::StageError;
use intake_core::names::BucketRole;
use intake_core::state_machine::StageKind;
use intake_runtime::{Stage, StageCx, StageInput, StageOutput};
use intake_stage_validate::Validate;
use intake_store::VersionKey;
use support::{Pipeline, elf, key, png};

#[tokio::test(flavor = "multi_thread")]
async fn a_png_passes_and_an_executable_named_png_is_quarantined() {
    let p = Pipeline::start().await;
    let good = key("tenant-a", "holiday photo.png");
    let evil = key("tenant-a", "cat.png");
    let good_version = p.upload(&good, png(), "image/png").await;
    let evil_version = p.upload(&evil, elf(), "image/png").await;
    // This worker also sends its metrics, to LocalStack's CloudWatch.
    let settings = intake_runtime::WorkerSettings {
        metrics: true,
        ..p.settings("w1")
    };
    let worker = p
        .spawn_worker_with(Validate::new(&p.config), settings)
        .await;

    let outcomes = p.outcomes(2).await;
    let stats = worker.stop().await;
    assert_eq!(outcomes.len(), 2, "{outcomes:#?}");
    let passed = outcomes
        .iter()
        .find(|o| o.object.key == good)
        .expect("outcome for the PNG");
    assert_eq!(
        (passed.stage.as_str(), passed.outcome.as_str()),
        ("validate", "passed")
    );
    assert_eq!(passed.detected_type.as_deref(), Some("image/png"));
    assert_eq!(passed.class.as_deref(), Some("image"));
    assert_eq!(passed.object.tenant.as_deref(), Some("tenant-a"));
    assert_eq!(
        passed.object.version_id.as_deref(),
        Some(good_version.as_str())
    );
    assert_eq!(passed.attributes()["outcome"], "passed");

    let rejected = outcomes
        .iter()
        .find(|o| o.object.key == evil)
        .expect("outcome for the executable");
    assert_eq!(rejected.outcome, "rejected");
    assert_eq!(
        rejected.code.as_deref(),
        Some("type_mismatch"),
        "{rejected:#?}"
    );
    assert!(
        rejected
            .detail
            .as_deref()
            .unwrap()
            .contains("application/x-executable"),
        "{rejected:#?}"
    );
    let location = rejected.location.as_ref().expect("quarantine location");
    assert_eq!(location.bucket, p.bucket(BucketRole::Quarantine));

    // In quarantine with its reason; that version gone from uploads; the PNG still there.
    let tags = p
        .aws
        .s3
        .get_object_tagging()
        .bucket(p.bucket(BucketRole::Quarantine))
        .key(&evil)
        .send()
        .await
        .unwrap();
    let reason = tags
        .tag_set()
        .iter()
        .find(|t| t.key() == "intake-reason")
        .map(|t| t.value().to_owned());
    assert_eq!(reason.as_deref(), Some("type_mismatch"));
    let quarantined = p
        .aws
        .s3
        .head_object()
        .bucket(p.bucket(BucketRole::Quarantine))
        .key(&evil)
        .send()
        .await
        .unwrap();
    assert_eq!(
        quarantined.content_type(),
        Some("image/png"),
        "metadata kept"
    );
    let gone = p
        .aws
        .s3
        .head_object()
        .bucket(p.bucket(BucketRole::Uploads))
        .key(&evil)
        .version_id(&evil_version)
        .send()
        .await;
    assert!(
        gone.is_err(),
        "the executable's version must be gone from uploads"
    );
    p.aws
        .s3
        .head_object()
        .bucket(p.bucket(BucketRole::Uploads))
        .key(&good)
        .send()
        .await
        .expect("the PNG waits for scan");

    // The ledger: state and history per version.
    let history = p
        .ledger
        .history(p.bucket(BucketRole::Uploads), &evil)
        .await
        .unwrap();
    assert_eq!(history[0].state, "quarantined");
    let history = p
        .ledger
        .history(p.bucket(BucketRole::Uploads), &good)
        .await
        .unwrap();
    assert_eq!(history[0].state, "scan", "passed routes to scan");
    assert_eq!(stats.deleted, stats.received, "{stats:?}");

    // Metrics were flushed when the worker stopped; dimensions are bounded names only.
    let metrics = support::eventually_metrics(&p, "processed").await;
    for m in &metrics {
        let dims: Vec<&str> = m.dimensions().iter().filter_map(|d| d.name()).collect();
        assert!(
            dims.iter()
                .all(|d| ["pipeline", "stage", "outcome", "code"].contains(d)),
            "{dims:?}"
        );
    }
    let outcomes: Vec<&str> = metrics
        .iter()
        .flat_map(|m| {
            m.dimensions()
                .iter()
                .filter(|d| d.name() == Some("outcome"))
                .filter_map(|d| d.value())
        })
        .collect();
    assert!(
        outcomes.contains(&"passed") && outcomes.contains(&"rejected"),
        "{outcomes:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_event_delivered_five_times_does_the_work_once() {
    let p = Pipeline::start().await;
    let k = key("tenant-a", "dup.png");
    let version = p.upload(&k, png(), "image/png").await;
    let event = p.take_s3_events(1).await.remove(0);
    let queue = p.stage_queue_url(StageKind::Validate).await;

    // Three deliveries one after another, and two at the same moment.
    for _ in 0..3 {
        p.send(&queue, &event).await;
    }
    tokio::join!(p.send(&queue, &event), p.send(&queue, &event));
    let worker = p.spawn_worker(Validate::new(&p.config), "w1").await;
    let second = p.spawn_worker(Validate::new(&p.config), "w2").await;

    let outcomes = p.outcomes(1).await;
    support::wait_for_empty(&p, &queue).await;
    let (a, b) = (worker.stop().await, second.stop().await);
    assert_eq!(outcomes.len(), 1, "exactly one outcome: {outcomes:#?}");
    let v = VersionKey::new(p.bucket(BucketRole::Uploads), &k, &version);
    assert_eq!(p.ledger.completions(&v, "validate").await.unwrap(), 1);
    assert_eq!(
        a.deleted + b.deleted,
        5,
        "every delivery acknowledged: {a:?} {b:?}"
    );
    let history = p
        .ledger
        .history(p.bucket(BucketRole::Uploads), &k)
        .await
        .unwrap();
    let done: Vec<_> = history[0]
        .transitions
        .iter()
        .filter(|t| t.outcome == "passed")
        .collect();
    assert_eq!(done.len(), 1, "{history:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_goes_to_the_dlq_with_its_reason_and_the_worker_keeps_going() {
    let p = Pipeline::start().await;
    let queue = p.stage_queue_url(StageKind::Validate).await;
    let worker = p.spawn_worker(Validate::new(&p.config), "w1").await;
    p.send(&queue, "this is not JSON").await;
    let bad_escape = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/core/tests/fixtures/events/localstack-s3-put.json"
    ))
    .unwrap()
    .replace("red%20flower", "red%zzflower");
    // A bad escape from this pipeline's own bucket (a foreign bucket is refused first).
    let own_bucket = format!("\"name\": \"{}\"", p.bucket(BucketRole::Uploads));
    let bad_escape_here = bad_escape.replace("\"name\": \"intake-uploads\"", &own_bucket);
    p.send(&queue, &bad_escape_here).await;
    // A well-formed event from a bucket that is not this pipeline's uploads bucket.
    let foreign = bad_escape.replace("red%zzflower", "red%20flower");
    p.send(&queue, &foreign).await;

    let dead = p.dlq_messages(StageKind::Validate, 3).await;
    let code_of = |body_part: &str| {
        dead.iter()
            .find(|(body, _)| body.contains(body_part))
            .map(|(_, attrs)| attrs.clone())
            .unwrap_or_default()
    };
    let not_json = code_of("this is not JSON");
    assert_eq!(
        not_json.get("intake-error-code").map(String::as_str),
        Some("not_json"),
        "{dead:?}"
    );
    assert!(
        not_json
            .get("intake-error-reason")
            .is_some_and(|r| r.contains("not JSON"))
    );
    let escape = code_of("red%zzflower");
    assert_eq!(
        escape.get("intake-error-code").map(String::as_str),
        Some("bad_key_encoding"),
        "{dead:?}"
    );
    assert!(
        escape
            .get("intake-error-reason")
            .is_some_and(|r| r.contains("invalid %-escape"))
    );
    assert_eq!(
        escape.get("intake-source-queue"),
        Some(&p.names.stage(StageKind::Validate).queue)
    );
    let foreign = code_of("red%20flower");
    assert_eq!(
        foreign.get("intake-error-code").map(String::as_str),
        Some("foreign_bucket"),
        "{dead:?}"
    );

    // Still running: a good upload goes through.
    p.upload(&key("tenant-a", "after.png"), png(), "image/png")
        .await;
    let outcomes = p.outcomes(1).await;
    assert_eq!(outcomes[0].outcome, "passed");
    let stats = worker.stop().await;
    assert_eq!(stats.poisoned, 3, "{stats:?}");
    assert_eq!(stats.panicked, 0);
}

/// A stage whose first calls fail as the test says: exercises the runtime's error classes.
struct Flaky {
    calls: Arc<AtomicU32>,
    retryable_failures: u32,
    permanent: bool,
}

impl Stage for Flaky {
    const KIND: StageKind = StageKind::Validate;

    async fn process(&self, _cx: &StageCx, _input: &StageInput) -> Result<StageOutput, StageError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.permanent {
            return Err(StageError::permanent(
                "corrupt_image",
                "the image data is damaged",
            ));
        }
        if call <= self.retryable_failures {
            return Err(StageError::retryable(
                "s3_unavailable",
                format!("simulated outage, call {call}"),
            ));
        }
        Ok(StageOutput::outcome("passed"))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retryable_error_is_retried_with_backoff_and_then_succeeds() {
    let p = Pipeline::start().await;
    let k = key("tenant-a", "flaky.png");
    p.upload(&k, png(), "image/png").await;
    let calls = Arc::new(AtomicU32::new(0));
    let worker = p
        .spawn_worker(
            Flaky {
                calls: calls.clone(),
                retryable_failures: 2,
                permanent: false,
            },
            "w1",
        )
        .await;

    let outcomes = p.outcomes(1).await;
    let queue = p.stage_queue_url(StageKind::Validate).await;
    support::wait_for_empty(&p, &queue).await;
    let stats = worker.stop().await;
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].outcome, "passed");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "two failures, then success"
    );
    assert_eq!(stats.retried, 2, "{stats:?}");
    let history = p
        .ledger
        .history(p.bucket(BucketRole::Uploads), &k)
        .await
        .unwrap();
    let outcomes: Vec<_> = history[0]
        .transitions
        .iter()
        .map(|t| (t.outcome.as_str(), t.attempt))
        .collect();
    assert_eq!(
        outcomes,
        [("retry", 1), ("retry", 2), ("passed", 3)],
        "{history:#?}"
    );
    assert_eq!(
        p.depth(&p.dlq_url(StageKind::Validate).await).await,
        0,
        "nothing in the DLQ"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permanent_error_is_published_as_failed_and_the_message_is_gone() {
    let p = Pipeline::start().await;
    let k = key("tenant-a", "broken.png");
    p.upload(&k, png(), "image/png").await;
    let calls = Arc::new(AtomicU32::new(0));
    let worker = p
        .spawn_worker(
            Flaky {
                calls: calls.clone(),
                retryable_failures: 0,
                permanent: true,
            },
            "w1",
        )
        .await;

    let outcomes = p.outcomes(1).await;
    let queue = p.stage_queue_url(StageKind::Validate).await;
    support::wait_for_empty(&p, &queue).await;
    worker.stop().await;
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].outcome, "failed");
    assert_eq!(outcomes[0].code.as_deref(), Some("corrupt_image"));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a permanent failure is not retried"
    );
    assert_eq!(p.depth(&queue).await, 0);
    assert_eq!(p.depth(&p.dlq_url(StageKind::Validate).await).await, 0);
    let history = p
        .ledger
        .history(p.bucket(BucketRole::Uploads), &k)
        .await
        .unwrap();
    assert_eq!(history[0].state, "failed");
}

/// Panics on its first call, then passes.
struct PanicsOnce {
    calls: Arc<AtomicU32>,
}

impl Stage for PanicsOnce {
    const KIND: StageKind = StageKind::Validate;

    async fn process(&self, _cx: &StageCx, _input: &StageInput) -> Result<StageOutput, StageError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("simulated bug in a stage");
        }
        Ok(StageOutput::outcome("passed"))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_stage_is_contained_counted_and_the_message_comes_back() {
    // A short visibility so the message of the panicked task returns quickly.
    let p =
        Pipeline::start_with(|t| t + "\n[stages.validate.queue]\nvisibility_timeout_secs = 2\n")
            .await;
    let k = key("tenant-a", "panic.png");
    p.upload(&k, png(), "image/png").await;
    let calls = Arc::new(AtomicU32::new(0));
    let worker = p
        .spawn_worker(
            PanicsOnce {
                calls: calls.clone(),
            },
            "w1",
        )
        .await;

    let outcomes = p.outcomes(1).await;
    let stats = worker.stop().await;
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].outcome, "passed");
    assert_eq!(stats.panicked, 1, "{stats:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // The panicked attempt's claim lapsed and was taken over: attempt 2 completed.
    let history = p
        .ledger
        .history(p.bucket(BucketRole::Uploads), &k)
        .await
        .unwrap();
    let last = history[0].transitions.last().unwrap();
    assert_eq!(
        (last.outcome.as_str(), last.attempt),
        ("passed", 2),
        "{history:#?}"
    );
}
