//! Per-stage activity against a real database: completions (with `failed` ones counted
//! apart), retries, nearest-rank p50/p99 of completion durations, only inside the window.
//!
//! Every test runs against a SQLite file in a tempdir, and again against PostgreSQL when
//! `INTAKE_TEST_POSTGRES_URL` was set when the tests were built.

// The shared fixtures include helpers these tests have no use for.
#[macro_use]
#[allow(dead_code)]
mod support;

use std::time::Duration;

use intake_store::{Completion, StageActivity, StageResult, VersionKey};
use support::{Fixture, LEASE, START_MS, version};

on_every_backend!(
    activity_counts_completions_failures_and_retries_per_stage,
    percentiles_are_nearest_rank_over_completions_in_the_window,
    an_empty_window_has_no_stages,
);

/// Runs `stage` for `v` to completion with `outcome`, taking `duration_ms`, finishing at
/// `finished_ms`.
async fn complete(
    fx: &Fixture,
    v: &VersionKey,
    stage: &str,
    outcome: &str,
    finished_ms: i64,
    duration_ms: i64,
) {
    fx.ledger.begin_stage(v, stage, "w", LEASE).await.unwrap();
    let result = StageResult {
        outcome: outcome.to_owned(),
        code: None,
        detail: None,
        outcome_json: "{}".to_owned(),
        started_ms: finished_ms - duration_ms,
        finished_ms,
    };
    let done = fx
        .ledger
        .complete_stage(v, stage, "w", &result, "next")
        .await
        .unwrap();
    assert_eq!(done, Completion::Recorded);
}

/// One retryable failure of `stage` for `v`, recorded at the clock's time.
async fn retry(fx: &Fixture, v: &VersionKey, stage: &str) {
    fx.ledger.begin_stage(v, stage, "w", LEASE).await.unwrap();
    assert!(
        fx.ledger
            .release_stage(v, stage, "w", "scanner_unreachable", "clamd refused")
            .await
            .unwrap()
    );
}

async fn activity_counts_completions_failures_and_retries_per_stage(fx: &Fixture) {
    // Before the window: counted nowhere.
    complete(fx, &version("old"), "scan", "clean", START_MS - 1, 5).await;

    complete(fx, &version("a"), "validate", "passed", START_MS + 10, 4).await;
    complete(fx, &version("a"), "scan", "clean", START_MS + 20, 30).await;
    complete(fx, &version("b"), "scan", "failed", START_MS + 30, 10).await;
    complete(fx, &version("c"), "scan", "clean", START_MS + 40, 20).await;
    let flaky = version("d");
    for _ in 0..3 {
        retry(fx, &flaky, "scan").await;
        fx.clock.advance(Duration::from_secs(1));
    }
    retry(fx, &version("e"), "delete").await;
    let activity = fx.ledger.stage_activity(START_MS).await.unwrap();
    assert_eq!(
        activity,
        vec![
            StageActivity {
                stage: "delete".into(),
                completed: 0,
                failed: 0,
                retried: 1,
                p50_ms: None,
                p99_ms: None,
            },
            StageActivity {
                stage: "scan".into(),
                completed: 3,
                failed: 1,
                retried: 3,
                p50_ms: Some(20),
                p99_ms: Some(30),
            },
            StageActivity {
                stage: "validate".into(),
                completed: 1,
                failed: 0,
                retried: 0,
                p50_ms: Some(4),
                p99_ms: Some(4),
            },
        ]
    );

    // A later window keeps only what finished in it: the last two retries of scan and
    // the one of delete.
    let later = fx.ledger.stage_activity(START_MS + 1_000).await.unwrap();
    assert_eq!(
        later,
        vec![
            StageActivity {
                stage: "delete".into(),
                retried: 1,
                ..StageActivity::default()
            },
            StageActivity {
                stage: "scan".into(),
                retried: 2,
                ..StageActivity::default()
            },
        ]
    );
}

async fn percentiles_are_nearest_rank_over_completions_in_the_window(fx: &Fixture) {
    // Durations 10, 20, ..., 100 ms in shuffled order, and one slow completion that
    // finished before the window.
    for (i, tens) in [7, 2, 10, 5, 1, 9, 3, 8, 6, 4].into_iter().enumerate() {
        let v = version(&format!("v{i}"));
        complete(
            fx,
            &v,
            "thumbnail",
            "thumbnailed",
            START_MS + i as i64,
            tens * 10,
        )
        .await;
    }
    complete(
        fx,
        &version("slow"),
        "thumbnail",
        "thumbnailed",
        START_MS - 1,
        60_000,
    )
    .await;

    let activity = fx.ledger.stage_activity(START_MS).await.unwrap();
    assert_eq!(
        activity,
        vec![StageActivity {
            stage: "thumbnail".into(),
            completed: 10,
            failed: 0,
            retried: 0,
            // The 5th and the 10th of ten sorted durations.
            p50_ms: Some(50),
            p99_ms: Some(100),
        }]
    );
}

async fn an_empty_window_has_no_stages(fx: &Fixture) {
    assert!(fx.ledger.stage_activity(START_MS).await.unwrap().is_empty());
    complete(fx, &version("a"), "scan", "clean", START_MS, 1).await;
    assert!(
        fx.ledger
            .stage_activity(START_MS + 1)
            .await
            .unwrap()
            .is_empty()
    );
}
