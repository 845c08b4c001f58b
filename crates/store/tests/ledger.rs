//! The ledger's guarantees, checked against a real database: claims are exclusive,
//! completed stages are never redone, lapsed claims are taken over, outcomes wait in the
//! outbox until published, and history reads back in order.
//!
//! Every test runs against a SQLite file in a tempdir, and again against PostgreSQL when
//! `INTAKE_TEST_POSTGRES_URL` (e.g. `postgres://postgres@localhost/postgres`, a role
//! allowed to create databases) was set when the tests were built.

#[macro_use]
mod support;

use std::time::Duration;

use intake_store::{Begin, Completion, Ledger};
use support::{Fixture, LEASE, START_MS, result, version};

on_every_backend!(
    claim_complete_then_duplicate_is_already_done,
    two_joined_claims_have_one_winner,
    twenty_concurrent_claims_and_completions_have_one_winner,
    lapsed_lease_is_taken_over_and_the_old_worker_loses,
    zero_lease_is_expired_at_once,
    heartbeat_keeps_the_claim,
    release_then_reclaim,
    outbox_keeps_the_outcome_until_published,
    history_lists_newest_version_first_with_ordered_transitions,
    migrations_are_idempotent_and_data_survives_reconnect,
);

async fn claim_complete_then_duplicate_is_already_done(fx: &Fixture) {
    let l = &fx.ledger;
    let v = version("v1");
    let begin = l.begin_stage(&v, "validate", "w1", LEASE).await.unwrap();
    assert_eq!(begin, Begin::Claimed { attempt: 1 });
    let done = l
        .complete_stage(&v, "validate", "w1", &result("validate", "passed"), "scan")
        .await
        .unwrap();
    assert_eq!(done, Completion::Recorded);

    for worker in ["w2", "w1"] {
        match l.begin_stage(&v, "validate", worker, LEASE).await.unwrap() {
            Begin::AlreadyDone { outcome, .. } => assert_eq!(outcome, "passed"),
            other => panic!("duplicate for {worker} must be AlreadyDone, got {other:?}"),
        }
    }
    // A second completion by the original worker (e.g. a retried call) changes nothing.
    let again = l
        .complete_stage(&v, "validate", "w1", &result("validate", "passed"), "scan")
        .await
        .unwrap();
    assert_eq!(again, Completion::LostClaim);
    assert_eq!(l.completions(&v, "validate").await.unwrap(), 1);
    // Another stage of the same version, and the same stage of another version, are free.
    assert_eq!(
        l.begin_stage(&v, "scan", "w2", LEASE).await.unwrap(),
        Begin::Claimed { attempt: 1 }
    );
    assert_eq!(
        l.begin_stage(&version("v2"), "validate", "w2", LEASE)
            .await
            .unwrap(),
        Begin::Claimed { attempt: 1 }
    );
}

async fn two_joined_claims_have_one_winner(fx: &Fixture) {
    let l = &fx.ledger;
    let v = version("v1");
    let (a, b) = tokio::join!(
        l.begin_stage(&v, "scan", "wa", LEASE),
        l.begin_stage(&v, "scan", "wb", LEASE),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let until_ms = START_MS + LEASE.as_millis() as i64;
    match (&a, &b) {
        (
            Begin::Claimed { attempt: 1 },
            Begin::HeldElsewhere {
                worker,
                until_ms: u,
            },
        ) => {
            assert_eq!((worker.as_str(), *u), ("wa", until_ms));
        }
        (
            Begin::HeldElsewhere {
                worker,
                until_ms: u,
            },
            Begin::Claimed { attempt: 1 },
        ) => {
            assert_eq!((worker.as_str(), *u), ("wb", until_ms));
        }
        other => panic!("exactly one claim must win, got {other:?}"),
    }
}

async fn twenty_concurrent_claims_and_completions_have_one_winner(fx: &Fixture) {
    let v = version("v1");
    let claims: Vec<_> = (0..20)
        .map(|i| {
            let (l, v) = (fx.ledger.clone(), v.clone());
            tokio::spawn(async move {
                let worker = format!("w{i}");
                let begin = l.begin_stage(&v, "scan", &worker, LEASE).await.unwrap();
                (worker, begin)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in claims {
        let (worker, begin) = task.await.unwrap();
        match begin {
            Begin::Claimed { attempt } => {
                assert_eq!(attempt, 1);
                winners.push(worker);
            }
            Begin::HeldElsewhere { .. } => {}
            other => panic!("{worker}: unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");

    // Every worker now tries to complete at once; only the holder's result counts.
    let completions: Vec<_> = (0..20)
        .map(|i| {
            let (l, v) = (fx.ledger.clone(), v.clone());
            tokio::spawn(async move {
                let worker = format!("w{i}");
                let r = result("scan", "clean");
                let done = l.complete_stage(&v, "scan", &worker, &r, "thumbnail").await;
                (worker, done.unwrap())
            })
        })
        .collect();
    let mut recorded = Vec::new();
    for task in completions {
        let (worker, done) = task.await.unwrap();
        if done == Completion::Recorded {
            recorded.push(worker);
        }
    }
    assert_eq!(recorded, winners);
    assert_eq!(fx.ledger.completions(&v, "scan").await.unwrap(), 1);
}

async fn lapsed_lease_is_taken_over_and_the_old_worker_loses(fx: &Fixture) {
    let l = &fx.ledger;
    let v = version("v1");
    assert_eq!(
        l.begin_stage(&v, "scan", "old", LEASE).await.unwrap(),
        Begin::Claimed { attempt: 1 }
    );
    fx.clock.advance(LEASE - Duration::from_millis(1));
    assert!(matches!(
        l.begin_stage(&v, "scan", "new", LEASE).await.unwrap(),
        Begin::HeldElsewhere { worker, .. } if worker == "old"
    ));
    fx.clock.advance(Duration::from_millis(1));
    assert_eq!(
        l.begin_stage(&v, "scan", "new", LEASE).await.unwrap(),
        Begin::Claimed { attempt: 2 }
    );

    assert!(!l.extend_lease(&v, "scan", "old", LEASE).await.unwrap());
    let old = l
        .complete_stage(
            &v,
            "scan",
            "old",
            &result("scan", "infected"),
            "quarantined",
        )
        .await
        .unwrap();
    assert_eq!(old, Completion::LostClaim);
    let new = l
        .complete_stage(&v, "scan", "new", &result("scan", "clean"), "thumbnail")
        .await
        .unwrap();
    assert_eq!(new, Completion::Recorded);
    assert_eq!(l.completions(&v, "scan").await.unwrap(), 1);

    let history = l.history(&v.bucket, &v.key).await.unwrap();
    assert_eq!(history[0].state, "thumbnail");
    let t = &history[0].transitions;
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(
        (t[0].outcome.as_str(), t[0].worker.as_str(), t[0].attempt),
        ("clean", "new", 2)
    );
}

async fn zero_lease_is_expired_at_once(fx: &Fixture) {
    let l = &fx.ledger;
    let v = version("v1");
    assert_eq!(
        l.begin_stage(&v, "scan", "w1", Duration::ZERO)
            .await
            .unwrap(),
        Begin::Claimed { attempt: 1 }
    );
    assert_eq!(
        l.begin_stage(&v, "scan", "w2", Duration::ZERO)
            .await
            .unwrap(),
        Begin::Claimed { attempt: 2 }
    );
    assert_eq!(
        l.begin_stage(&v, "scan", "w3", LEASE).await.unwrap(),
        Begin::Claimed { attempt: 3 }
    );
}

async fn heartbeat_keeps_the_claim(fx: &Fixture) {
    let l = &fx.ledger;
    let v = version("v1");
    l.begin_stage(&v, "scan", "w1", LEASE).await.unwrap();
    fx.clock.advance(Duration::from_secs(20));
    assert!(l.extend_lease(&v, "scan", "w1", LEASE).await.unwrap());
    fx.clock.advance(Duration::from_secs(20));
    // 40 s after the claim, beyond the original lease but within the extended one.
    assert_eq!(
        l.begin_stage(&v, "scan", "w2", LEASE).await.unwrap(),
        Begin::HeldElsewhere {
            worker: "w1".into(),
            until_ms: START_MS + 50_000
        }
    );
    assert!(!l.extend_lease(&v, "scan", "w2", LEASE).await.unwrap());
    // A lapsed lease that nobody took over is still the holder's to extend.
    fx.clock.advance(Duration::from_secs(60));
    assert!(l.extend_lease(&v, "scan", "w1", LEASE).await.unwrap());
    assert!(matches!(
        l.begin_stage(&v, "scan", "w2", LEASE).await.unwrap(),
        Begin::HeldElsewhere { .. }
    ));
}

async fn release_then_reclaim(fx: &Fixture) {
    let l = &fx.ledger;
    let v = version("v1");
    l.begin_stage(&v, "scan", "w1", LEASE).await.unwrap();
    fx.clock.advance(Duration::from_secs(2));
    let released = l
        .release_stage(&v, "scan", "w1", "clamd_unreachable", "connection refused")
        .await
        .unwrap();
    assert!(released);
    // The lease had 28 s left, but a released claim is free at once.
    assert_eq!(
        l.begin_stage(&v, "scan", "w2", LEASE).await.unwrap(),
        Begin::Claimed { attempt: 2 }
    );
    assert!(!l.release_stage(&v, "scan", "w1", "late", "").await.unwrap());
    let late = l
        .complete_stage(&v, "scan", "w1", &result("scan", "clean"), "thumbnail")
        .await
        .unwrap();
    assert_eq!(late, Completion::LostClaim);
    assert_eq!(l.completions(&v, "scan").await.unwrap(), 0);

    let history = l.history(&v.bucket, &v.key).await.unwrap();
    assert_eq!(
        history[0].state, "scan",
        "a release leaves the state where it was"
    );
    let t = &history[0].transitions;
    assert_eq!(t.len(), 1, "only w1's release is recorded: {t:?}");
    assert_eq!(t[0].stage, "scan");
    assert_eq!(t[0].outcome, "retry");
    assert_eq!(t[0].code.as_deref(), Some("clamd_unreachable"));
    assert_eq!(t[0].detail.as_deref(), Some("connection refused"));
    assert_eq!((t[0].attempt, t[0].worker.as_str()), (1, "w1"));
    assert_eq!(
        (t[0].started_ms, t[0].finished_ms),
        (START_MS, START_MS + 2_000)
    );
}

async fn outbox_keeps_the_outcome_until_published(fx: &Fixture) {
    let l = &fx.ledger;
    let v = version("v1");
    let r = result("validate", "passed");
    l.begin_stage(&v, "validate", "w1", LEASE).await.unwrap();
    l.complete_stage(&v, "validate", "w1", &r, "scan")
        .await
        .unwrap();
    // The worker died before publishing: the redelivery must publish for it.
    assert_eq!(
        l.begin_stage(&v, "validate", "w2", LEASE).await.unwrap(),
        Begin::AlreadyDone {
            outcome: "passed".into(),
            unpublished_outcome: Some(r.outcome_json.clone()),
        }
    );
    l.mark_published(&v, "validate").await.unwrap();
    l.mark_published(&v, "validate").await.unwrap();
    assert_eq!(
        l.begin_stage(&v, "validate", "w3", LEASE).await.unwrap(),
        Begin::AlreadyDone {
            outcome: "passed".into(),
            unpublished_outcome: None,
        }
    );
    let err = l.mark_published(&v, "scan").await.unwrap_err();
    assert_eq!(err.code(), "no_outcome", "{err}");
}

async fn history_lists_newest_version_first_with_ordered_transitions(fx: &Fixture) {
    let l = &fx.ledger;
    let (v1, v2) = (version("v1"), version("v2"));
    assert!(l.history(&v1.bucket, &v1.key).await.unwrap().is_empty());

    l.begin_stage(&v1, "validate", "w1", LEASE).await.unwrap();
    l.complete_stage(&v1, "validate", "w1", &result("validate", "passed"), "scan")
        .await
        .unwrap();
    l.begin_stage(&v1, "scan", "w1", LEASE).await.unwrap();
    fx.clock.advance(Duration::from_secs(1));
    l.release_stage(&v1, "scan", "w1", "clamd_unreachable", "timeout")
        .await
        .unwrap();
    l.begin_stage(&v2, "validate", "w2", LEASE).await.unwrap();
    l.begin_stage(&v1, "scan", "w2", LEASE).await.unwrap();
    let mut infected = result("scan", "infected");
    infected.code = Some("infected".into());
    infected.detail = Some("Eicar-Signature".into());
    fx.clock.advance(Duration::from_secs(1));
    l.complete_stage(&v1, "scan", "w2", &infected, "quarantined")
        .await
        .unwrap();
    // Another key must not appear.
    let elsewhere = intake_store::VersionKey::new("uploads", "other.jpg", "v1");
    l.begin_stage(&elsewhere, "validate", "w3", LEASE)
        .await
        .unwrap();

    let history = l.history(&v1.bucket, &v1.key).await.unwrap();
    let versions: Vec<_> = history.iter().map(|h| h.version.as_str()).collect();
    assert_eq!(versions, ["v2", "v1"]);
    assert_eq!(history[0].state, "validate");
    assert!(history[0].transitions.is_empty());
    assert_eq!(history[1].state, "quarantined");
    assert_eq!(history[1].updated_ms, START_MS + 2_000);
    let steps: Vec<_> = history[1]
        .transitions
        .iter()
        .map(|t| {
            (
                t.stage.as_str(),
                t.outcome.as_str(),
                t.attempt,
                t.worker.as_str(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("validate", "passed", 1, "w1"),
            ("scan", "retry", 1, "w1"),
            ("scan", "infected", 2, "w2"),
        ]
    );
    let last = &history[1].transitions[2];
    assert_eq!(last.code.as_deref(), Some("infected"));
    assert_eq!(last.detail.as_deref(), Some("Eicar-Signature"));
    assert_eq!(
        (last.started_ms, last.finished_ms),
        (START_MS, START_MS + 10)
    );
}

async fn migrations_are_idempotent_and_data_survives_reconnect(fx: &Fixture) {
    let v = version("v1");
    fx.ledger
        .begin_stage(&v, "validate", "w1", LEASE)
        .await
        .unwrap();
    fx.ledger
        .complete_stage(&v, "validate", "w1", &result("validate", "passed"), "scan")
        .await
        .unwrap();
    for _ in 0..2 {
        let again: Ledger = fx.reconnect().await;
        assert!(matches!(
            again
                .begin_stage(&v, "validate", "w2", LEASE)
                .await
                .unwrap(),
            Begin::AlreadyDone { .. }
        ));
        assert_eq!(again.completions(&v, "validate").await.unwrap(), 1);
        again.close().await;
    }
}
