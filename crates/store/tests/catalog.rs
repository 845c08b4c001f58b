//! The catalog against a real database: records round-trip field for field, a second
//! insert of the same version changes nothing, the archive stage's storage update lands,
//! records are found by upload or stored location, listed by tenant and ledger state
//! newest first in pages that neither overlap nor skip, carry their stages' completion
//! times, are deleted once, and a version's recorded outcomes read back in completion
//! order.
//!
//! Every test runs against a SQLite file in a tempdir, and again against PostgreSQL when
//! `INTAKE_TEST_POSTGRES_URL` (e.g. `postgres://postgres@localhost/postgres`, a role
//! allowed to create databases) was set when the tests were built.

#[macro_use]
mod support;

use std::time::Duration;

use intake_store::{
    CatalogEntry, CatalogFilter, CatalogRecord, Ledger, RenditionRecord, ScanRecord, StageResult,
    StageTime, StoredAt, VersionKey,
};
use support::{Fixture, LEASE, START_MS, result, version};

on_every_backend!(
    insert_then_get_round_trips_every_field,
    second_insert_of_the_same_object_changes_nothing,
    set_storage_updates_class_version_note_and_time,
    find_matches_the_upload_or_the_stored_location,
    list_filters_by_tenant_and_state_newest_first,
    list_pages_with_limit_and_before_cursor_without_overlap,
    stages_list_completed_stages_in_completion_order,
    delete_returns_true_then_false,
    recorded_outcomes_read_back_in_completion_order,
);

/// A 32-hex-digit object id, distinct per `n`.
fn id(n: u32) -> String {
    format!("{n:032x}")
}

fn upload(key: &str, v: &str) -> VersionKey {
    VersionKey::new("uploads", key, v)
}

/// A record with every optional field set, stored under the upload's key.
fn full(object_id: &str, upload: &VersionKey, tenant: &str, cataloged_ms: i64) -> CatalogRecord {
    CatalogRecord {
        object_id: object_id.to_owned(),
        upload: upload.clone(),
        tenant: Some(tenant.to_owned()),
        user: Some("user-1".to_owned()),
        filename: Some("red flower.jpg".to_owned()),
        store: StoredAt {
            bucket: "store".to_owned(),
            key: upload.key.clone(),
            version: Some(format!("store-{}", upload.version)),
        },
        size: 5_000_000_000,
        content_type: Some("image/jpeg".to_owned()),
        class: Some("image".to_owned()),
        sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_owned(),
        width: Some(4032),
        height: Some(3024),
        renditions: vec![
            RenditionRecord {
                name: "thumb".to_owned(),
                bucket: "derivatives".to_owned(),
                key: format!("{}/thumb.webp", upload.key),
                width: 256,
                height: 192,
                bytes: 9_812,
                content_type: "image/webp".to_owned(),
            },
            RenditionRecord {
                name: "preview".to_owned(),
                bucket: "derivatives".to_owned(),
                key: format!("{}/preview.jpg", upload.key),
                width: 1600,
                height: 1200,
                bytes: 201_774,
                content_type: "image/jpeg".to_owned(),
            },
        ],
        scan: Some(ScanRecord {
            verdict: "clean".to_owned(),
            engine: Some("ClamAV 1.4.3/27500".to_owned()),
            scanned_at: Some("2023-11-14T22:13:21.000Z".to_owned()),
        }),
        storage_class: "STANDARD".to_owned(),
        archive_note: None,
        cataloged_ms,
        updated_ms: cataloged_ms,
    }
}

/// A record with every optional field empty: no dimensions, renditions, scan or names.
fn bare(object_id: &str, upload: &VersionKey, cataloged_ms: i64) -> CatalogRecord {
    CatalogRecord {
        object_id: object_id.to_owned(),
        upload: upload.clone(),
        tenant: None,
        user: None,
        filename: None,
        store: StoredAt {
            bucket: "store".to_owned(),
            key: upload.key.clone(),
            version: None,
        },
        size: 0,
        content_type: None,
        class: None,
        sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_owned(),
        width: None,
        height: None,
        renditions: Vec::new(),
        scan: None,
        storage_class: "STANDARD".to_owned(),
        archive_note: None,
        cataloged_ms,
        updated_ms: cataloged_ms,
    }
}

/// Runs `stage` to completion for `v`, leaving it in `next`.
async fn complete(l: &Ledger, v: &VersionKey, stage: &str, outcome: &str, next: &str) {
    l.begin_stage(v, stage, "w1", LEASE).await.unwrap();
    let done = l
        .complete_stage(v, stage, "w1", &result(stage, outcome), next)
        .await
        .unwrap();
    assert_eq!(done, intake_store::Completion::Recorded, "{v} {stage}");
}

fn ids(entries: &[CatalogEntry]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e.record.object_id.as_str())
        .collect()
}

async fn insert_then_get_round_trips_every_field(fx: &Fixture) {
    let l = &fx.ledger;
    let (a, b) = (upload("acme/u/a.jpg", "v1"), upload("acme/u/empty", "v1"));
    let full = full(&id(1), &a, "acme", START_MS);
    let bare = bare(&id(2), &b, START_MS + 1);
    assert!(l.catalog_insert(&full).await.unwrap());
    assert!(l.catalog_insert(&bare).await.unwrap());
    complete(l, &a, "catalog", "cataloged", "archive").await;

    // Read back through a second connection: the record is in the database, not cached.
    let other = fx.reconnect().await;
    let got = other.catalog_get(&id(1)).await.unwrap().expect("record 1");
    assert_eq!(got.record, full);
    assert_eq!(got.state, "archive");
    let got = other.catalog_get(&id(2)).await.unwrap().expect("record 2");
    assert_eq!(got.record, bare);
    assert_eq!(
        (got.state.as_str(), got.stages.len()),
        ("unknown", 0),
        "a record whose version the ledger never saw"
    );
    assert_eq!(other.catalog_get(&id(3)).await.unwrap(), None);
    other.close().await;
}

async fn second_insert_of_the_same_object_changes_nothing(fx: &Fixture) {
    let l = &fx.ledger;
    let v = upload("acme/u/a.jpg", "v1");
    let first = full(&id(1), &v, "acme", START_MS);
    assert!(l.catalog_insert(&first).await.unwrap());
    // A redelivery that computed something different must not overwrite the record.
    let mut again = bare(&id(1), &v, START_MS + 60_000);
    again.sha256 = "0".repeat(64);
    assert!(!l.catalog_insert(&again).await.unwrap());
    assert!(!l.catalog_insert(&first).await.unwrap());
    let got = l.catalog_get(&id(1)).await.unwrap().unwrap();
    assert_eq!(got.record, first);
    let all = l.catalog_list(&CatalogFilter::default()).await.unwrap();
    assert_eq!(ids(&all), [id(1)]);
}

async fn set_storage_updates_class_version_note_and_time(fx: &Fixture) {
    let l = &fx.ledger;
    let v = upload("acme/u/a.jpg", "v1");
    let before = full(&id(1), &v, "acme", START_MS);
    l.catalog_insert(&before).await.unwrap();
    fx.clock.advance(Duration::from_secs(90));
    let note = "moved: older than 30 days";
    assert!(
        l.catalog_set_storage(&id(1), Some("store-v2"), "GLACIER_IR", note)
            .await
            .unwrap()
    );
    let got = l.catalog_get(&id(1)).await.unwrap().unwrap().record;
    let mut want = before.clone();
    want.store.version = Some("store-v2".to_owned());
    want.storage_class = "GLACIER_IR".to_owned();
    want.archive_note = Some(note.to_owned());
    want.updated_ms = START_MS + 90_000;
    assert_eq!(got, want, "only class, version, note and updated_ms change");

    // An unversioned store bucket has no version to record.
    assert!(
        l.catalog_set_storage(&id(1), None, "STANDARD", "kept: below_minimum_size")
            .await
            .unwrap()
    );
    let got = l.catalog_get(&id(1)).await.unwrap().unwrap().record;
    assert_eq!(got.store.version, None);
    assert_eq!(got.storage_class, "STANDARD");
    assert!(
        !l.catalog_set_storage(&id(9), None, "GLACIER_IR", note)
            .await
            .unwrap(),
        "no such record"
    );
}

async fn find_matches_the_upload_or_the_stored_location(fx: &Fixture) {
    let l = &fx.ledger;
    let (v1, v2) = (upload("acme/u/a.jpg", "v1"), upload("acme/u/a.jpg", "v2"));
    let other = upload("acme/u/b.jpg", "v1");
    l.catalog_insert(&full(&id(1), &v1, "acme", START_MS))
        .await
        .unwrap();
    l.catalog_insert(&full(&id(2), &v2, "acme", START_MS + 5))
        .await
        .unwrap();
    let mut moved = full(&id(3), &other, "acme", START_MS + 1);
    // Stored under a key unlike its upload's, as a key template may decide.
    moved.store.key = "objects/3".to_owned();
    l.catalog_insert(&moved).await.unwrap();

    let by_upload = l.catalog_find("uploads", "acme/u/a.jpg").await.unwrap();
    assert_eq!(
        ids(&by_upload),
        [id(2), id(1)],
        "every version, newest first"
    );
    let by_store = l.catalog_find("store", "acme/u/a.jpg").await.unwrap();
    assert_eq!(ids(&by_store), [id(2), id(1)]);
    assert_eq!(
        ids(&l.catalog_find("store", "objects/3").await.unwrap()),
        [id(3)]
    );
    assert_eq!(
        ids(&l.catalog_find("uploads", "acme/u/b.jpg").await.unwrap()),
        [id(3)]
    );
    // A bucket and key must match together, not each somewhere.
    for (bucket, key) in [
        ("store", "acme/u/b.jpg"),
        ("uploads", "objects/3"),
        ("derivatives", "acme/u/a.jpg"),
        ("uploads", "acme/u/a"),
    ] {
        let found = l.catalog_find(bucket, key).await.unwrap();
        assert!(found.is_empty(), "s3://{bucket}/{key}: {:?}", ids(&found));
    }
}

async fn list_filters_by_tenant_and_state_newest_first(fx: &Fixture) {
    let l = &fx.ledger;
    // (id, tenant, state): `done` went through archive, `archive` waits for it, and
    // the third has no ledger row at all.
    let rows = [
        (1, "acme", Some("done")),
        (2, "globex", Some("done")),
        (3, "acme", Some("archive")),
        (4, "acme", Some("done")),
        (5, "globex", Some("archive")),
        (6, "acme", None),
    ];
    for (n, tenant, state) in rows {
        let v = upload(&format!("{tenant}/u/{n}.jpg"), "v1");
        l.catalog_insert(&full(&id(n), &v, tenant, START_MS + i64::from(n) * 1_000))
            .await
            .unwrap();
        match state {
            Some("done") => {
                complete(l, &v, "catalog", "cataloged", "archive").await;
                complete(l, &v, "archive", "archived", "done").await;
            }
            Some("archive") => complete(l, &v, "catalog", "cataloged", "archive").await,
            _ => {}
        }
    }
    let list = |tenant: Option<&str>, state: Option<&str>| {
        let filter = CatalogFilter {
            tenant: tenant.map(str::to_owned),
            state: state.map(str::to_owned),
            ..CatalogFilter::default()
        };
        async move { l.catalog_list(&filter).await.unwrap() }
    };

    let all = list(None, None).await;
    assert_eq!(ids(&all), [id(6), id(5), id(4), id(3), id(2), id(1)]);
    let states: Vec<_> = all.iter().map(|e| e.state.as_str()).collect();
    assert_eq!(
        states,
        ["unknown", "archive", "done", "archive", "done", "done"]
    );
    assert_eq!(
        ids(&list(Some("acme"), None).await),
        [id(6), id(4), id(3), id(1)]
    );
    assert_eq!(ids(&list(None, Some("done")).await), [id(4), id(2), id(1)]);
    assert_eq!(ids(&list(None, Some("archive")).await), [id(5), id(3)]);
    assert_eq!(ids(&list(Some("acme"), Some("done")).await), [id(4), id(1)]);
    assert_eq!(ids(&list(Some("globex"), Some("archive")).await), [id(5)]);
    assert!(list(Some("initech"), None).await.is_empty());
    assert!(list(Some("acme"), Some("quarantined")).await.is_empty());
}

async fn list_pages_with_limit_and_before_cursor_without_overlap(fx: &Fixture) {
    let l = &fx.ledger;
    // Seven records, several cataloged in the same millisecond: the cursor must break
    // ties by object id or a page boundary between twins would skip or repeat one.
    let times = [0, 10, 10, 10, 20, 30, 30];
    for (n, t) in (1..).zip(times) {
        let tenant = if n % 2 == 0 { "acme" } else { "globex" };
        let v = upload(&format!("{tenant}/u/{n}.jpg"), "v1");
        l.catalog_insert(&full(&id(n), &v, tenant, START_MS + t))
            .await
            .unwrap();
    }
    let everything = l.catalog_list(&CatalogFilter::default()).await.unwrap();
    assert_eq!(
        ids(&everything),
        [id(7), id(6), id(5), id(4), id(3), id(2), id(1)]
    );

    for (tenant, limit) in [(None, 3), (None, 1), (None, 2), (Some("acme"), 2)] {
        let want: Vec<&str> = everything
            .iter()
            .filter(|e| tenant.is_none() || e.record.tenant.as_deref() == tenant)
            .map(|e| e.record.object_id.as_str())
            .collect();
        let mut seen: Vec<String> = Vec::new();
        let mut before = None;
        for _ in 0..=want.len() {
            let page = l
                .catalog_list(&CatalogFilter {
                    tenant: tenant.map(str::to_owned),
                    limit: Some(limit),
                    before: before.clone(),
                    ..CatalogFilter::default()
                })
                .await
                .unwrap();
            assert!(page.len() <= limit as usize, "{tenant:?}/{limit}: {page:?}");
            let Some(last) = page.last() else { break };
            before = Some(last.record.object_id.clone());
            seen.extend(page.iter().map(|e| e.record.object_id.clone()));
        }
        assert_eq!(seen, want, "pages of {limit} for {tenant:?}");
    }

    let default_limit = l.catalog_list(&CatalogFilter::default()).await.unwrap();
    assert_eq!(default_limit.len(), 7, "the default limit (100) holds all");
    let unknown_cursor = CatalogFilter {
        before: Some(id(99)),
        ..CatalogFilter::default()
    };
    assert!(l.catalog_list(&unknown_cursor).await.unwrap().is_empty());
}

async fn stages_list_completed_stages_in_completion_order(fx: &Fixture) {
    let l = &fx.ledger;
    let v = version("v1");
    l.catalog_insert(&full(&id(1), &v, "tenant-a", START_MS))
        .await
        .unwrap();
    let at = |ms: i64| START_MS + ms;
    let step = |stage: &'static str, outcome: &'static str, start: i64, end: i64| StageResult {
        outcome: outcome.to_owned(),
        code: None,
        detail: None,
        outcome_json: format!(r#"{{"stage":"{stage}","outcome":"{outcome}"}}"#),
        started_ms: at(start),
        finished_ms: at(end),
    };
    for (stage, outcome, start, end, next) in [
        ("validate", "passed", 0, 40, "scan"),
        ("scan", "clean", 50, 1_250, "thumbnail"),
        ("thumbnail", "rendered", 1_300, 1_900, "catalog"),
    ] {
        l.begin_stage(&v, stage, "w1", LEASE).await.unwrap();
        if stage == "scan" {
            // A retried attempt is history, not a completed stage.
            l.release_stage(&v, stage, "w1", "clamd_unreachable", "refused")
                .await
                .unwrap();
            l.begin_stage(&v, stage, "w2", LEASE).await.unwrap();
            let r = step(stage, outcome, start, end);
            l.complete_stage(&v, stage, "w2", &r, next).await.unwrap();
        } else {
            let r = step(stage, outcome, start, end);
            l.complete_stage(&v, stage, "w1", &r, next).await.unwrap();
        }
    }
    // Another version of the same key has stages of its own.
    complete(l, &version("v2"), "validate", "passed", "scan").await;

    let got = l.catalog_get(&id(1)).await.unwrap().unwrap();
    assert_eq!(got.state, "catalog");
    let time = |stage: &str, outcome: &str, started: i64, finished: i64| StageTime {
        stage: stage.to_owned(),
        outcome: outcome.to_owned(),
        started_ms: at(started),
        finished_ms: at(finished),
    };
    assert_eq!(
        got.stages,
        [
            time("validate", "passed", 0, 40),
            time("scan", "clean", 50, 1_250),
            time("thumbnail", "rendered", 1_300, 1_900),
        ]
    );
    // The same entry through every read path.
    let found = l.catalog_find(&v.bucket, &v.key).await.unwrap();
    assert_eq!(found, std::slice::from_ref(&got));
    assert_eq!(
        l.catalog_list(&CatalogFilter::default()).await.unwrap(),
        [got]
    );
}

async fn delete_returns_true_then_false(fx: &Fixture) {
    let l = &fx.ledger;
    let (a, b) = (upload("acme/u/a.jpg", "v1"), upload("acme/u/b.jpg", "v1"));
    l.catalog_insert(&full(&id(1), &a, "acme", START_MS))
        .await
        .unwrap();
    l.catalog_insert(&full(&id(2), &b, "acme", START_MS))
        .await
        .unwrap();
    assert!(l.catalog_delete(&id(1)).await.unwrap());
    assert!(
        !l.catalog_delete(&id(1)).await.unwrap(),
        "a retried deletion"
    );
    assert_eq!(l.catalog_get(&id(1)).await.unwrap(), None);
    assert!(
        l.catalog_find("uploads", "acme/u/a.jpg")
            .await
            .unwrap()
            .is_empty()
    );
    let left = l.catalog_list(&CatalogFilter::default()).await.unwrap();
    assert_eq!(ids(&left), [id(2)], "only the deleted record goes");
    // Deleted and inserted again (a re-upload of the same version is impossible, but a
    // replayed catalog message after a deletion must not fail).
    assert!(
        l.catalog_insert(&full(&id(1), &a, "acme", START_MS))
            .await
            .unwrap()
    );
}

async fn recorded_outcomes_read_back_in_completion_order(fx: &Fixture) {
    let l = &fx.ledger;
    let v = version("v1");
    assert!(l.recorded_outcomes(&v).await.unwrap().is_empty());
    // All in the same millisecond (the manual clock stands still): the order must come
    // from the order of completion, not from the stage names or the clock.
    let stages = [
        ("validate", "passed", "scan"),
        ("scan", "clean", "thumbnail"),
        ("thumbnail", "rendered", "catalog"),
        ("catalog", "cataloged", "archive"),
    ];
    for (stage, outcome, next) in stages {
        complete(l, &v, stage, outcome, next).await;
    }
    // Published outcomes stay readable.
    l.mark_published(&v, "validate").await.unwrap();
    // Later completions, after the clock moved, come after.
    fx.clock.advance(Duration::from_secs(1));
    complete(l, &v, "archive", "archived", "done").await;
    // Another version's outcomes are not this one's.
    complete(l, &version("v2"), "validate", "passed", "scan").await;

    let want: Vec<String> = stages
        .iter()
        .map(|(stage, outcome, _)| result(stage, outcome).outcome_json)
        .chain([result("archive", "archived").outcome_json])
        .collect();
    assert_eq!(l.recorded_outcomes(&v).await.unwrap(), want);
}
