//! Uploads the API signed, against a real database: a record round-trips, its file state
//! follows the ledger's version that is the file (the first accepted; later versions are
//! refused), through awaiting upload, processing, a terminal state, deleting, deleted;
//! lists stay inside one tenant, filter by file state and page without overlap.
//!
//! Every test runs against a SQLite file in a tempdir, and again against PostgreSQL when
//! `INTAKE_TEST_POSTGRES_URL` was set when the tests were built.

// Each test binary uses part of the shared fixtures.
#[allow(dead_code)]
#[macro_use]
mod support;

use intake_store::{FileVersion, Ledger, UploadFilter, UploadRecord, VersionKey};
use support::{Fixture, LEASE, START_MS, result};

on_every_backend!(
    insert_then_get_round_trips_and_starts_awaiting_upload,
    file_state_follows_the_first_accepted_version,
    concurrent_versions_of_one_key_accept_exactly_one,
    deletion_request_shows_deleting_until_deleted,
    list_is_one_tenant_filtered_by_state_and_paged,
);

fn upload(file_id: &str, tenant: &str, created_ms: i64) -> UploadRecord {
    UploadRecord {
        file_id: file_id.to_owned(),
        tenant: tenant.to_owned(),
        user: "user-1".to_owned(),
        bucket: "p-uploads".to_owned(),
        key: format!("{tenant}/user-1/{file_id}-photo.jpg"),
        filename: "photo.jpg".to_owned(),
        content_type: "image/jpeg".to_owned(),
        size: 1234,
        method: "put".to_owned(),
        multipart_upload_id: None,
        created_ms,
    }
}

async fn complete(l: &Ledger, v: &VersionKey, stage: &str, outcome: &str, next: &str) {
    if stage == "validate" {
        // As the validate stage does: a version is the file if it is the first accepted.
        l.accept_file_version(v).await.unwrap();
    }
    l.begin_stage(v, stage, "w1", LEASE).await.unwrap();
    l.complete_stage(v, stage, "w1", &result(stage, outcome), next)
        .await
        .unwrap();
}

async fn insert_then_get_round_trips_and_starts_awaiting_upload(fx: &Fixture) {
    let record = upload("f1", "tenant-a", START_MS);
    fx.ledger.upload_insert(&record).await.unwrap();
    let entry = fx.ledger.upload_get("f1").await.unwrap().expect("found");
    assert_eq!(entry.record, record);
    assert_eq!(entry.file_state, "awaiting_upload");
    assert_eq!(entry.version, None);
    assert!(fx.ledger.upload_get("nope").await.unwrap().is_none());
    // A second insert of the same id is an error, never an overwrite.
    assert!(fx.ledger.upload_insert(&record).await.is_err());
}

async fn file_state_follows_the_first_accepted_version(fx: &Fixture) {
    let record = upload("f1", "tenant-a", START_MS);
    fx.ledger.upload_insert(&record).await.unwrap();
    let v1 = VersionKey::new(&record.bucket, &record.key, "v1");
    assert_eq!(
        fx.ledger.accept_file_version(&v1).await.unwrap(),
        FileVersion::Accepted
    );
    complete(&fx.ledger, &v1, "validate", "passed", "scan").await;
    let entry = fx.ledger.upload_get("f1").await.unwrap().unwrap();
    assert_eq!(
        (entry.file_state.as_str(), entry.ledger_state.as_deref()),
        ("processing", Some("scan"))
    );
    assert_eq!(entry.version.as_deref(), Some("v1"));
    complete(&fx.ledger, &v1, "scan", "clean", "done").await;

    // A later version of the same key (a reused URL) is refused and never becomes the
    // file, even once the ledger has seen it go further than the file did.
    let v2 = VersionKey::new(&record.bucket, &record.key, "v2");
    assert_eq!(
        fx.ledger.accept_file_version(&v2).await.unwrap(),
        FileVersion::Refused {
            file_version: "v1".into(),
            file_state: Some("done".into()),
        }
    );
    complete(&fx.ledger, &v2, "validate", "rejected", "quarantined").await;
    let entry = fx.ledger.upload_get("f1").await.unwrap().unwrap();
    assert_eq!(entry.version.as_deref(), Some("v1"));
    assert_eq!(entry.file_state, "done");
    // A redelivery of the file's own event is accepted again.
    assert_eq!(
        fx.ledger.accept_file_version(&v1).await.unwrap(),
        FileVersion::Accepted
    );
    assert_eq!(
        fx.ledger
            .file_version(&record.bucket, &record.key)
            .await
            .unwrap()
            .as_deref(),
        Some("v1")
    );

    // Deleted stays deleted: a version arriving after the deletion is refused too.
    complete(&fx.ledger, &v1, "delete", "deleted", "deleted").await;
    let v3 = VersionKey::new(&record.bucket, &record.key, "v3");
    assert_eq!(
        fx.ledger.accept_file_version(&v3).await.unwrap(),
        FileVersion::Refused {
            file_version: "v1".into(),
            file_state: Some("deleted".into()),
        }
    );
    let entry = fx.ledger.upload_get("f1").await.unwrap().unwrap();
    assert_eq!(entry.file_state, "deleted");
}

async fn concurrent_versions_of_one_key_accept_exactly_one(fx: &Fixture) {
    let record = upload("f2", "tenant-a", START_MS);
    fx.ledger.upload_insert(&record).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let ledger = fx.ledger.clone();
            let v = VersionKey::new(&record.bucket, &record.key, format!("v{i}"));
            tokio::spawn(async move { (v.version.clone(), ledger.accept_file_version(&v).await) })
        })
        .collect();
    let mut accepted = Vec::new();
    let mut refused_for = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (version, Ok(FileVersion::Accepted)) => accepted.push(version),
            (_, Ok(FileVersion::Refused { file_version, .. })) => refused_for.push(file_version),
            (version, Err(e)) => panic!("accepting {version}: {e}"),
        }
    }
    assert_eq!(
        accepted.len(),
        1,
        "exactly one version is the file: {accepted:?}"
    );
    assert_eq!(refused_for.len(), 19);
    assert!(
        refused_for.iter().all(|v| *v == accepted[0]),
        "every refusal names the one file version"
    );
    assert_eq!(
        fx.ledger
            .file_version(&record.bucket, &record.key)
            .await
            .unwrap(),
        Some(accepted[0].clone())
    );
}

async fn deletion_request_shows_deleting_until_deleted(fx: &Fixture) {
    let record = upload("f1", "tenant-a", START_MS);
    fx.ledger.upload_insert(&record).await.unwrap();
    let v = VersionKey::new(&record.bucket, &record.key, "v1");
    complete(&fx.ledger, &v, "validate", "passed", "done").await;
    assert_eq!(
        fx.ledger
            .upload_get("f1")
            .await
            .unwrap()
            .unwrap()
            .file_state,
        "done"
    );
    fx.ledger
        .upload_deletion_requested("f1", START_MS + 5)
        .await
        .unwrap();
    fx.ledger
        .upload_deletion_requested("f1", START_MS + 9)
        .await
        .unwrap();
    let entry = fx.ledger.upload_get("f1").await.unwrap().unwrap();
    assert_eq!(entry.file_state, "deleting");
    assert_eq!(
        entry.deletion_requested_ms,
        Some(START_MS + 5),
        "first request kept"
    );
    complete(&fx.ledger, &v, "delete", "deleted", "deleted").await;
    assert_eq!(
        fx.ledger
            .upload_get("f1")
            .await
            .unwrap()
            .unwrap()
            .file_state,
        "deleted"
    );
}

async fn list_is_one_tenant_filtered_by_state_and_paged(fx: &Fixture) {
    for i in 0..5 {
        let r = upload(&format!("a{i}"), "tenant-a", START_MS + i);
        fx.ledger.upload_insert(&r).await.unwrap();
    }
    fx.ledger
        .upload_insert(&upload("b0", "tenant-b", START_MS + 100))
        .await
        .unwrap();
    let a2 = fx.ledger.upload_get("a2").await.unwrap().unwrap().record;
    let v = VersionKey::new(&a2.bucket, &a2.key, "v1");
    complete(&fx.ledger, &v, "validate", "passed", "scan").await;

    let list = |state: Option<&str>, limit: u32, before: Option<&str>| UploadFilter {
        tenant: "tenant-a".to_owned(),
        state: state.map(str::to_owned),
        limit,
        before: before.map(str::to_owned),
    };
    let ids = |entries: Vec<intake_store::UploadEntry>| -> Vec<String> {
        entries.into_iter().map(|e| e.record.file_id).collect()
    };
    let all = ids(fx
        .ledger
        .uploads_list(&list(None, 100, None))
        .await
        .unwrap());
    assert_eq!(
        all,
        ["a4", "a3", "a2", "a1", "a0"],
        "newest first, no tenant-b"
    );
    let processing = ids(fx
        .ledger
        .uploads_list(&list(Some("processing"), 100, None))
        .await
        .unwrap());
    assert_eq!(processing, ["a2"]);
    let first = ids(fx.ledger.uploads_list(&list(None, 2, None)).await.unwrap());
    let second = ids(fx
        .ledger
        .uploads_list(&list(None, 2, Some("a3")))
        .await
        .unwrap());
    let third = ids(fx
        .ledger
        .uploads_list(&list(None, 2, Some("a1")))
        .await
        .unwrap());
    assert_eq!(
        (first, second, third.clone()),
        (
            vec!["a4".to_owned(), "a3".to_owned()],
            vec!["a2".to_owned(), "a1".to_owned()],
            vec!["a0".to_owned()]
        )
    );
    // Another tenant's id is no cursor for this tenant: an empty page, not its files.
    let foreign = fx
        .ledger
        .uploads_list(&list(None, 2, Some("b0")))
        .await
        .unwrap();
    assert!(foreign.is_empty());
}
