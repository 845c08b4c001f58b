//! The whole pipeline against LocalStack and a real clamd: an uploaded JPEG goes validate →
//! scan → thumbnail → catalog → archive and ends `done`, with one catalog record and its
//! storage class on the stored object; archiving starts no second run; redeliveries change
//! nothing; and a deletion removes every trace, finishing on retry after failing midway.
//! The deletion test also shows a deletion request on a stage queue going to its DLQ.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_s3::types::StorageClass;
use intake_core::names::BucketRole;
use intake_core::state_machine::StageKind;
use intake_core::{DeletionRequest, StageError};
use intake_imaging::samples;
use intake_stage_delete::{Delete, DeletionStep};
use intake_store::VersionKey;
use intake_testkit::clamd::ClamdFixture;
use sha2::{Digest, Sha256};
use support::{Pipeline, RunningWorker, key, wait_for_empty};

const STAGES: [&str; 5] = ["validate", "scan", "thumbnail", "catalog", "archive"];

/// The repo's pipeline with clamd at the fixture's address and images archived to
/// STANDARD_IA at once (the shipped minimum size would keep a test-sized photo STANDARD).
async fn pipeline_with(clamd: &ClamdFixture) -> Pipeline {
    let address = format!("address = \"tcp://{}\"", clamd.tcp_address());
    Pipeline::start_with(|t| {
        let edited = t
            .replace("address = \"tcp://127.0.0.1:3310\"", &address)
            .replace("min_size = \"128KiB\"", "min_size = \"1KiB\"")
            .replace(
                "[[stages.archive.policy.rules]]\nid = \"archives-to-glacier-ir\"",
                "[[stages.archive.policy.rules]]\nid = \"images-to-ia\"\nclass = \"image\"\nstorage_class = \"STANDARD_IA\"\napply = \"now\"\n\n[[stages.archive.policy.rules]]\nid = \"archives-to-glacier-ir\"",
            );
        assert!(edited.contains("images-to-ia"), "the archive rules moved in pipeline.toml");
        edited
    })
    .await
}

async fn stop(workers: Vec<RunningWorker>) {
    for worker in workers {
        worker.stop().await;
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn store_versions(p: &Pipeline, key: &str) -> Vec<String> {
    let out = p
        .aws
        .s3
        .list_object_versions()
        .bucket(p.bucket(BucketRole::Store))
        .prefix(key)
        .send()
        .await
        .unwrap();
    out.versions()
        .iter()
        .filter_map(|v| v.version_id().map(str::to_owned))
        .chain(
            out.delete_markers()
                .iter()
                .filter_map(|m| m.version_id().map(|v| format!("marker:{v}"))),
        )
        .collect()
}

async fn derivative_versions(p: &Pipeline, prefix: &str) -> usize {
    let out = p
        .aws
        .s3
        .list_object_versions()
        .bucket(p.bucket(BucketRole::Derivatives))
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    out.versions().len() + out.delete_markers().len()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_jpeg_ends_done_with_one_catalog_record_and_archiving_starts_no_second_run() {
    let clamd = ClamdFixture::start("10M").await.expect("clamd");
    let p = pipeline_with(&clamd).await;
    let photo = key("tenant-a", "red flower.jpg");
    let jpeg = samples::photo_jpeg(1200, 800, 85);
    let upload_version = p.upload(&photo, jpeg.clone(), "image/jpeg").await;

    let workers = p.spawn_stages().await;
    let outcomes = p.outcomes(5).await;
    let uploads = p.bucket(BucketRole::Uploads).to_owned();
    let version = VersionKey::new(&uploads, &photo, &upload_version);

    // One outcome per stage, in order, and nothing more (outcomes() polls once more after
    // the fifth, so a second run would show here).
    let stages: Vec<&str> = outcomes.iter().map(|o| o.stage.as_str()).collect();
    assert_eq!(stages, STAGES, "{outcomes:#?}");
    let archive = &outcomes[4];
    assert_eq!(archive.outcome, "archived", "{archive:#?}");
    let history = p.ledger.history(&uploads, &photo).await.unwrap();
    assert_eq!(history.len(), 1, "one version in the ledger: {history:#?}");
    assert_eq!(history[0].state, "done");
    for stage in STAGES {
        assert_eq!(
            p.ledger.completions(&version, stage).await.unwrap(),
            1,
            "{stage} completed once"
        );
    }

    let object_id = outcomes[0].object.object_id();
    let entry = p
        .ledger
        .catalog_get(&object_id)
        .await
        .unwrap()
        .expect("a catalog record");
    let record = &entry.record;
    assert_eq!(entry.state, "done");
    assert_eq!(record.sha256, sha256_hex(&jpeg));
    assert_eq!(record.size, jpeg.len() as u64);
    assert_eq!((record.width, record.height), (Some(1200), Some(800)));
    assert_eq!(record.content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(record.class.as_deref(), Some("image"));
    assert_eq!(record.tenant.as_deref(), Some("tenant-a"));
    assert_eq!(record.user.as_deref(), Some("user-1"));
    assert_eq!(record.filename.as_deref(), Some("red flower.jpg"));
    let scan = record.scan.as_ref().expect("a scan verdict");
    assert_eq!(scan.verdict, "clean");
    assert!(
        scan.engine
            .as_deref()
            .is_some_and(|e| e.starts_with("ClamAV")),
        "{scan:?}"
    );
    let mut renditions: Vec<&str> = record.renditions.iter().map(|r| r.name.as_str()).collect();
    renditions.sort();
    assert_eq!(renditions, ["preview", "thumb"]);
    assert_eq!(record.storage_class, "STANDARD_IA");
    let completed: Vec<&str> = entry.stages.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(completed, STAGES);

    // The stored object itself is in STANDARD_IA, the catalog points at that version, and
    // the STANDARD version it was copied from is gone (else it would still be billed).
    let store = p.bucket(BucketRole::Store);
    let head = p
        .aws
        .s3
        .head_object()
        .bucket(store)
        .key(&photo)
        .send()
        .await
        .unwrap();
    assert_eq!(head.storage_class(), Some(&StorageClass::StandardIa));
    assert_eq!(head.version_id(), record.store.version.as_deref());
    assert_eq!(head.content_length(), Some(jpeg.len() as i64));
    assert_eq!(store_versions(&p, &photo).await.len(), 1);

    // Archiving wrote in the store bucket, which notifies nothing: no event reached validate.
    let validate_queue = p.stage_queue_url(StageKind::Validate).await;
    wait_for_empty(&p, &validate_queue).await;
    assert_eq!(p.ledger.history(&uploads, &photo).await.unwrap().len(), 1);

    // Redeliver the catalog and archive inputs: both are acknowledged, nothing changes.
    let catalog_queue = p.stage_queue_url(StageKind::Catalog).await;
    let archive_queue = p.stage_queue_url(StageKind::Archive).await;
    p.send(
        &catalog_queue,
        &serde_json::to_string(&outcomes[2]).unwrap(),
    )
    .await;
    p.send(
        &archive_queue,
        &serde_json::to_string(&outcomes[3]).unwrap(),
    )
    .await;
    wait_for_empty(&p, &catalog_queue).await;
    wait_for_empty(&p, &archive_queue).await;
    let again = p
        .ledger
        .catalog_get(&object_id)
        .await
        .unwrap()
        .expect("still there");
    assert_eq!(
        again.record, entry.record,
        "a redelivery changed the record"
    );
    assert_eq!(store_versions(&p, &photo).await.len(), 1);
    for stage in ["catalog", "archive"] {
        assert_eq!(p.ledger.completions(&version, stage).await.unwrap(), 1);
    }
    stop(workers).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deletion_that_fails_midway_is_finished_by_its_retry() {
    let clamd = ClamdFixture::start("10M").await.expect("clamd");
    let p = pipeline_with(&clamd).await;
    let photo = key("tenant-b", "holiday.jpg");
    let upload_version = p
        .upload(&photo, samples::photo_jpeg(900, 600, 85), "image/jpeg")
        .await;
    let workers = p.spawn_stages().await;
    let outcomes = p.outcomes(5).await;
    assert_eq!(outcomes[4].stage, "archive", "{outcomes:#?}");
    let object_id = outcomes[0].object.object_id();
    let prefix = format!("tenant-b/{object_id}/");
    assert_eq!(derivative_versions(&p, &prefix).await, 2, "two renditions");
    assert!(p.ledger.catalog_get(&object_id).await.unwrap().is_some());

    // The first attempt dies after removing the derivatives, before the stored object.
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let delete = Delete::from_config(&p.config).with_step_hook(Arc::new(move |step| {
        if step == DeletionStep::Derivatives && seen.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(StageError::retryable(
                "injected_fault",
                "test: the worker fails after the derivatives step",
            ));
        }
        Ok(())
    }));
    let deleter = p.spawn_worker(delete, "delete-1").await;
    let request = DeletionRequest::new(outcomes[0].object.clone(), "test", 0);
    let delete_queue = p.stage_queue_url(StageKind::Delete).await;
    let body = serde_json::to_string(&request).unwrap();
    p.send(&delete_queue, &body).await;
    let deleted = p.outcomes(1).await;
    assert_eq!(deleted.len(), 1, "{deleted:#?}");
    assert_eq!(deleted[0].stage, "delete");
    assert_eq!(deleted[0].outcome, "deleted", "{:#?}", deleted[0]);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "failed once, then finished"
    );

    assert_eq!(derivative_versions(&p, &prefix).await, 0);
    assert!(
        store_versions(&p, &photo).await.is_empty(),
        "every stored version and no delete marker left"
    );
    assert!(p.ledger.catalog_get(&object_id).await.unwrap().is_none());
    let uploads = p.bucket(BucketRole::Uploads).to_owned();
    let history = p.ledger.history(&uploads, &photo).await.unwrap();
    assert_eq!(history[0].state, "deleted");
    let delete_steps: Vec<(&str, Option<&str>)> = history[0]
        .transitions
        .iter()
        .filter(|t| t.stage == "delete")
        .map(|t| (t.outcome.as_str(), t.code.as_deref()))
        .collect();
    assert_eq!(
        delete_steps,
        [("retry", Some("injected_fault")), ("deleted", None)],
        "the failed attempt is in the ledger"
    );

    // A second request for the same version is acknowledged without a second deletion.
    p.send(&delete_queue, &body).await;
    wait_for_empty(&p, &delete_queue).await;
    let version = VersionKey::new(&uploads, &photo, &upload_version);
    assert_eq!(p.ledger.completions(&version, "delete").await.unwrap(), 1);
    assert!(
        p.outcomes(0).await.is_empty(),
        "no second `deleted` outcome"
    );

    // A deletion request sent to a stage queue is not acted on by that stage: it goes to
    // the DLQ with its reason.
    let catalog_queue = p.stage_queue_url(StageKind::Catalog).await;
    p.send(&catalog_queue, &body).await;
    let dead = p.dlq_messages(StageKind::Catalog, 1).await;
    assert_eq!(
        dead[0].1.get("intake-error-code").map(String::as_str),
        Some("wrong_queue"),
        "{dead:?}"
    );
    deleter.stop().await;
    stop(workers).await;
}
