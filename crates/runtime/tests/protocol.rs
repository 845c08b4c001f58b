//! The delivery protocol on the in-memory queue and topic with a SQLite ledger: every
//! rule of "at-least-once in, exactly-once effect out", without Docker, in seconds.
//! The LocalStack tests in `crates/tests` stay as the end-to-end proof on SQS and SNS.

mod support;

use std::sync::Arc;
use std::time::Duration;

use intake_runtime::queue::{AttributeValue, POISON_CODE_ATTRIBUTE, Queue};
use support::{Bench, Options, Plan, Scripted, settings, until};
use tokio::sync::Semaphore;

const LIMIT: Duration = Duration::from_secs(20);

fn key(n: usize) -> String {
    format!("tenant-1/user-1/01a23bd6-578b-8640-18af-90e7a2ee25a{n}-photo.png")
}

#[tokio::test]
async fn a_burst_is_processed_once_each_with_batched_calls() {
    let bench = Bench::new(Options::default()).await;
    let stage = Scripted::default();
    for n in 0..30 {
        bench.queue.send(&bench.event(&key(n)));
    }
    let worker = bench.start(stage.clone(), settings("w1"));
    until("30 outcomes", LIMIT, async || {
        bench.topic.published().len() == 30
    })
    .await;
    until("an empty queue", LIMIT, async || bench.queue.is_empty()).await;
    let stats = worker.stop().await;

    for n in 0..30 {
        assert_eq!(stage.calls(&key(n)), 1, "{}", key(n));
        assert_eq!(bench.published(&key(n)), 1, "{}", key(n));
        let v = bench.version(&key(n));
        assert_eq!(bench.ledger.completions(&v, "validate").await.unwrap(), 1);
        let state = bench.ledger.state(&v).await.unwrap();
        assert_eq!(state.as_deref(), Some("scan"), "passed routes to scan");
    }
    assert_eq!((stats.received, stats.deleted), (30, 30));
    // 30 messages, concurrency 8: the calls went out in batches, not one per message.
    let acks = bench.queue.calls()["DeleteMessageBatch"];
    assert!(acks < 30, "30 acknowledgements took {acks} calls");
    let publishes = bench.topic.calls();
    assert!(publishes < 30, "30 outcomes took {publishes} publish calls");
    assert!(bench.queue.dlq().unwrap().is_empty());
}

#[tokio::test]
async fn the_same_event_five_times_in_a_row_does_the_work_once() {
    let bench = Bench::new(Options::default()).await;
    let stage = Scripted::default();
    let worker = bench.start(stage.clone(), settings("w1"));
    for _ in 0..5 {
        bench.queue.send(&bench.event(&key(1)));
        until("the delivery to be acknowledged", LIMIT, async || {
            bench.queue.is_empty()
        })
        .await;
    }
    worker.stop().await;
    assert_eq!(stage.calls(&key(1)), 1);
    assert_eq!(bench.published(&key(1)), 1);
    let v = bench.version(&key(1));
    assert_eq!(bench.ledger.completions(&v, "validate").await.unwrap(), 1);
}

#[tokio::test]
async fn concurrent_duplicates_on_two_workers_do_the_work_once() {
    let bench = Bench::new(Options::default()).await;
    let stage = Scripted::default();
    stage.plan(&key(2), Plan::Sleep(Duration::from_millis(300)));
    for _ in 0..6 {
        bench.queue.send(&bench.event(&key(2)));
    }
    let a = bench.start(stage.clone(), settings("a"));
    let b = bench.start(stage.clone(), settings("b"));
    until("every duplicate to be settled", LIMIT, async || {
        bench.queue.is_empty()
    })
    .await;
    a.stop().await;
    b.stop().await;
    assert_eq!(stage.calls(&key(2)), 1, "only the claim holder works");
    assert_eq!(bench.published(&key(2)), 1);
}

#[tokio::test]
async fn poison_goes_to_the_dlq_with_its_code_and_the_worker_goes_on() {
    let bench = Bench::new(Options::default()).await;
    let stage = Scripted::default();
    stage.plan(&key(4), Plan::Poison);
    bench.queue.send("{ this is not JSON");
    bench.queue.send(&bench.event(&key(4)));
    bench.queue.send(&bench.event(&key(3)));
    let worker = bench.start(stage.clone(), settings("w1"));
    let dlq = bench.queue.dlq().unwrap().clone();
    until("two dead letters", LIMIT, async || dlq.len() == 2).await;
    until("the good message", LIMIT, async || {
        bench.published(&key(3)) == 1
    })
    .await;
    let stats = worker.stop().await;
    assert_eq!(stats.poisoned, 2);
    let codes: Vec<String> = dlq
        .messages()
        .iter()
        .map(|m| match &m.attributes[POISON_CODE_ATTRIBUTE].value {
            AttributeValue::Text(code) => code.clone(),
            AttributeValue::Binary(_) => panic!("a text code"),
        })
        .collect();
    let not_json = intake_core::event::parse_body_from("{ this is not JSON", &bench.uploads)
        .expect_err("not JSON is poison");
    let mut codes = codes;
    codes.sort();
    let mut expected = vec!["bad_key".to_owned(), not_json.code.to_owned()];
    expected.sort();
    assert_eq!(codes, expected);
    assert!(bench.queue.is_empty(), "poison is moved, not left behind");
    assert_eq!(bench.published(&key(4)), 0, "poison publishes nothing");
}

#[tokio::test]
async fn a_retryable_failure_comes_back_with_backoff_and_then_succeeds_once() {
    let bench = Bench::new(Options::default()).await;
    let stage = Scripted::default();
    stage.plan(&key(5), Plan::RetryTimes(2));
    bench.queue.send(&bench.event(&key(5)));
    let worker = bench.start(stage.clone(), settings("w1"));
    until("the outcome", LIMIT, async || bench.published(&key(5)) == 1).await;
    until("an empty queue", LIMIT, async || bench.queue.is_empty()).await;
    let stats = worker.stop().await;
    assert_eq!(stage.calls(&key(5)), 3);
    assert_eq!((stats.retried, stats.deleted), (2, 1));
    let history = bench.ledger.history(&bench.uploads, &key(5)).await.unwrap();
    let kinds: Vec<(String, u32)> = history[0]
        .transitions
        .iter()
        .map(|t| (t.outcome.clone(), t.attempt))
        .collect();
    assert_eq!(
        kinds,
        [
            ("retry".into(), 1),
            ("retry".into(), 2),
            ("passed".into(), 3)
        ]
    );
}

#[tokio::test]
async fn a_permanent_failure_is_published_as_failed_and_the_message_is_gone() {
    let bench = Bench::new(Options::default()).await;
    let stage = Scripted::default();
    stage.plan(&key(6), Plan::Permanent);
    bench.queue.send(&bench.event(&key(6)));
    let worker = bench.start(stage.clone(), settings("w1"));
    until("the outcome", LIMIT, async || bench.published(&key(6)) == 1).await;
    until("an empty queue", LIMIT, async || bench.queue.is_empty()).await;
    worker.stop().await;
    let outcome = &bench.topic.published()[0];
    assert!(
        outcome.json.contains("\"outcome\":\"failed\""),
        "{}",
        outcome.json
    );
    assert!(
        outcome.json.contains("\"code\":\"too_large\""),
        "{}",
        outcome.json
    );
    assert!(
        outcome
            .attributes
            .contains(&("outcome".into(), "failed".into()))
    );
    assert_eq!(
        stage.calls(&key(6)),
        1,
        "a permanent failure is not retried"
    );
    let state = bench.ledger.state(&bench.version(&key(6))).await.unwrap();
    assert_eq!(state.as_deref(), Some("failed"));
}

#[tokio::test]
async fn a_panicking_stage_is_contained_and_its_message_ends_in_the_dlq() {
    let bench = Bench::new(Options {
        visibility_secs: 1,
        max_receive_count: 2,
        ..Options::default()
    })
    .await;
    let stage = Scripted::default();
    stage.plan(&key(7), Plan::Panic);
    bench.queue.send(&bench.event(&key(7)));
    bench.queue.send(&bench.event(&key(8)));
    let worker = bench.start(stage.clone(), settings("w1"));
    let dlq = bench.queue.dlq().unwrap().clone();
    until("the panicking message in the DLQ", LIMIT, async || {
        dlq.len() == 1
    })
    .await;
    let stats = worker.stop().await;
    assert_eq!(
        stats.panicked, 2,
        "one panic per receive, redrive after two"
    );
    assert_eq!(
        bench.published(&key(8)),
        1,
        "the other message was processed"
    );
    assert_eq!(bench.published(&key(7)), 0);
    assert!(bench.queue.is_empty());
}

#[tokio::test]
async fn a_lapsed_claim_is_taken_over_and_the_stalled_worker_publishes_nothing() {
    let bench = Bench::new(Options {
        visibility_secs: 60,
        manual_clock: true,
        ..Options::default()
    })
    .await;
    let clock = bench.clock.clone().unwrap();
    // Worker A stalls inside the stage (no heartbeat comes in 60 s of test time).
    let stalled = Scripted::default();
    let gate = Arc::new(Semaphore::new(0));
    stalled.plan(&key(9), Plan::Gate(gate.clone()));
    bench.queue.send(&bench.event(&key(9)));
    // One message at a time, so that A cannot take the message again itself.
    let mut one_at_a_time = settings("a");
    one_at_a_time.concurrency = 1;
    let a = bench.start(stalled.clone(), one_at_a_time);
    until("A to start work", LIMIT, async || {
        stalled.calls(&key(9)) == 1
    })
    .await;

    // Its lease lapses and the message becomes visible again: B takes over and finishes.
    clock.advance(Duration::from_secs(61));
    bench.queue.make_all_visible();
    let healthy = Scripted::default();
    let b = bench.start(healthy.clone(), settings("b"));
    until("B's outcome", LIMIT, async || bench.published(&key(9)) == 1).await;
    until("an empty queue", LIMIT, async || bench.queue.is_empty()).await;
    assert_eq!(healthy.calls(&key(9)), 1);

    // A wakes up: it lost the claim, so it records and publishes nothing.
    gate.add_permits(1);
    let a_stats = a.stop().await;
    b.stop().await;
    assert_eq!(a_stats.retried, 1, "A's completion found the claim lost");
    assert_eq!(bench.published(&key(9)), 1);
    let v = bench.version(&key(9));
    assert_eq!(bench.ledger.completions(&v, "validate").await.unwrap(), 1);
}

#[tokio::test]
async fn shutdown_hands_in_flight_work_back_at_once() {
    let bench = Bench::new(Options {
        visibility_secs: 60,
        ..Options::default()
    })
    .await;
    let stage = Scripted::default();
    stage.plan(&key(1), Plan::Gate(Arc::new(Semaphore::new(0))));
    bench.queue.send(&bench.event(&key(1)));
    let mut quick = settings("w1");
    quick.shutdown_grace = Duration::from_millis(200);
    let worker = bench.start(stage.clone(), quick);
    until("work to start", LIMIT, async || stage.calls(&key(1)) == 1).await;
    let stats = worker.stop().await;
    assert_eq!(stats.released, 1);
    // Visible again at once, not after the 60 s visibility timeout.
    let again = bench.queue.receive(1, Duration::ZERO).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 2);
}

#[tokio::test]
async fn an_outcome_recorded_but_not_published_goes_out_once_on_redelivery() {
    let bench = Bench::new(Options {
        visibility_secs: 30,
        // Redeliveries come every 50-200 ms here; the redrive must not end them first.
        max_receive_count: 1000,
        manual_clock: true,
    })
    .await;
    let clock = bench.clock.clone().unwrap();
    let stage = Scripted::default();
    bench.topic.fail_next(1);
    bench.queue.send(&bench.event(&key(3)));
    let worker = bench.start(stage.clone(), settings("w1"));
    // The first publish fails: the outcome is in the outbox and the message is kept.
    let v = bench.version(&key(3));
    until("the recorded result", LIMIT, async || {
        bench.ledger.completions(&v, "validate").await.unwrap() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(bench.published(&key(3)), 0);
    assert_eq!(
        bench.queue.len(),
        1,
        "not acknowledged before it is published"
    );
    // Redeliveries wait for the recording worker's visibility period, then publish for it.
    clock.advance(Duration::from_secs(31));
    until("the outcome", LIMIT, async || bench.published(&key(3)) == 1).await;
    until("an empty queue", LIMIT, async || bench.queue.is_empty()).await;
    worker.stop().await;
    assert_eq!(stage.calls(&key(3)), 1, "the work is not redone");
    assert_eq!(bench.published(&key(3)), 1);
    assert_eq!(bench.ledger.completions(&v, "validate").await.unwrap(), 1);
}

#[tokio::test]
async fn an_s3_test_event_is_acknowledged_and_a_deletion_request_is_refused_as_wrong_queue() {
    let bench = Bench::new(Options::default()).await;
    let stage = Scripted::default();
    bench.queue.send(include_str!(
        "../../core/tests/fixtures/events/aws-docs-s3-test-event.json"
    ));
    bench.queue.send(
        &serde_json::json!({"intake_delete": 1, "object": {"bucket": bench.uploads, "key": key(1), "version_id": "v1"}, "requested_by": "test", "requested_ms": 1})
            .to_string(),
    );
    let worker = bench.start(stage.clone(), settings("w1"));
    until("both settled", LIMIT, async || bench.queue.is_empty()).await;
    worker.stop().await;
    assert!(bench.topic.published().is_empty());
    let dead = bench.queue.dlq().unwrap().messages();
    assert_eq!(
        dead.len(),
        1,
        "the test event is acknowledged, not dead-lettered"
    );
}
