//! The archive stage against LocalStack: an archive is rewritten in place in GLACIER_IR with
//! its type, metadata and tags, and its STANDARD version deleted; small and unmatched objects
//! are kept with a reason; lifecycle rules tag the version and become store lifecycle rules;
//! the catalog learns every decision; duplicates and re-runs after a crash copy nothing
//! twice; objects over the single-copy limit go in parts.

mod support;

use aws_sdk_s3::types::StorageClass;
use intake_aws::objects::{CopyLimits, change_storage_class, tags_of, versions_of};
use intake_aws::provision::plan;
use intake_core::names::BucketRole;
use intake_core::outcome::Timings;
use intake_core::state_machine::StageKind;
use intake_core::{ErrorClass, ObjectRef, OutcomeMessage};
use intake_runtime::{Stage, StageInput, StageOutput};
use intake_stage_archive::Archive;
use intake_store::{CatalogRecord, StoredAt, VersionKey};
use support::{Pipeline, key, wait_for_empty};

/// The shipped policy (archives to GLACIER_IR now) plus documents to GLACIER by lifecycle.
async fn pipeline() -> Pipeline {
    Pipeline::start_with(|text| {
        let anchor = "apply = \"now\"";
        let at = text.find(anchor).expect("fixture: the shipped archive rule");
        let end = at + text[at..].find('\n').unwrap() + 1;
        format!(
            "{}\n[[stages.archive.policy.rules]]\nid = \"documents-later\"\nclass = \"document\"\nstorage_class = \"GLACIER\"\napply = \"lifecycle\"\nafter_days = 90\n{}",
            &text[..end],
            &text[end..]
        )
    })
    .await
}

/// An object as the scan stage promotes it (store bucket, verdict and source-version
/// tags, user metadata), cataloged, and the catalog outcome that feeds the archive stage.
async fn promoted(
    p: &Pipeline,
    name: &str,
    class: &str,
    content_type: &str,
    body: Vec<u8>,
) -> OutcomeMessage {
    let key = key("tenant-a", name);
    let upload_version = format!("upload-{}", uuid::Uuid::now_v7());
    let put = p
        .aws
        .s3
        .put_object()
        .bucket(p.bucket(BucketRole::Store))
        .key(&key)
        .content_type(content_type)
        .metadata("origin", "the test")
        .tagging(format!(
            "intake-scan=clean&intake-source-version={upload_version}"
        ))
        .body(body.clone().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("promote {key}: {e}"));
    let location = ObjectRef {
        bucket: p.bucket(BucketRole::Store).to_owned(),
        key: key.clone(),
        version_id: put.version_id().map(str::to_owned),
        etag: put.e_tag().map(str::to_owned),
        size: body.len() as u64,
        tenant: Some("tenant-a".into()),
        user: Some("user-1".into()),
        sequencer: None,
    };
    let object = ObjectRef {
        bucket: p.bucket(BucketRole::Uploads).to_owned(),
        version_id: Some(upload_version.clone()),
        etag: None,
        ..location.clone()
    };
    p.ledger
        .catalog_insert(&CatalogRecord {
            object_id: object.object_id(),
            upload: VersionKey::new(&object.bucket, &object.key, &upload_version),
            tenant: object.tenant.clone(),
            user: object.user.clone(),
            filename: Some(name.into()),
            store: StoredAt {
                bucket: location.bucket.clone(),
                key: key.clone(),
                version: location.version_id.clone(),
            },
            size: location.size,
            content_type: Some(content_type.into()),
            class: Some(class.into()),
            sha256: "0".repeat(64),
            width: None,
            height: None,
            renditions: Vec::new(),
            scan: None,
            storage_class: "STANDARD".into(),
            archive_note: None,
            cataloged_ms: 0,
            updated_ms: 0,
        })
        .await
        .expect("catalog record");
    OutcomeMessage {
        intake_outcome: 1,
        object,
        stage: "catalog".into(),
        outcome: "cataloged".into(),
        code: None,
        detail: None,
        detected_type: Some(content_type.into()),
        class: Some(class.into()),
        location: Some(location),
        timings: Timings {
            started_ms: 0,
            finished_ms: 0,
        },
        worker: "test".into(),
        extra: Default::default(),
    }
}

/// Run the stage directly (as a redelivery after a crash would) and expect `archived`.
async fn archived(p: &Pipeline, stage: &Archive, outcome: &OutcomeMessage) -> StageOutput {
    let out = stage
        .process(&p.cx(), &input_of(outcome))
        .await
        .unwrap_or_else(|e| panic!("archive {}: {e}", outcome.object.key));
    assert_eq!(out.outcome, "archived", "{out:#?}");
    out
}

fn input_of(outcome: &OutcomeMessage) -> StageInput {
    StageInput {
        object: outcome.object.clone(),
        location: outcome.current_location().clone(),
        upstream: Some(outcome.clone()),
        attempt: 1,
    }
}

/// (version id, storage class) of every version of exactly `key` in the store, newest
/// first. The class comes from HeadObject: LocalStack lists every version as STANDARD.
async fn versions(p: &Pipeline, key: &str) -> Vec<(String, String)> {
    let store = p.bucket(BucketRole::Store);
    let mut found = Vec::new();
    for v in versions_of(&p.aws, store, key).await.unwrap() {
        let head = head(p, key, Some(&v.version_id)).await;
        let class = head.storage_class().map_or("STANDARD", |c| c.as_str());
        found.push((v.version_id, class.to_owned()));
    }
    found
}

/// Tags of the current version of `key` in the store, sorted.
async fn tags(p: &Pipeline, key: &str) -> Vec<(String, String)> {
    let (_, mut tags) = tags_of(&p.aws, p.bucket(BucketRole::Store), key)
        .await
        .unwrap_or_else(|| panic!("no tags for {key}"));
    tags.sort();
    tags
}

/// HeadObject of a version of `key` in the store (`None`: the current one).
async fn head(
    p: &Pipeline,
    key: &str,
    version: Option<&str>,
) -> aws_sdk_s3::operation::head_object::HeadObjectOutput {
    p.aws
        .s3
        .head_object()
        .bucket(p.bucket(BucketRole::Store))
        .key(key)
        .set_version_id(version.map(str::to_owned))
        .send()
        .await
        .unwrap_or_else(|e| panic!("head {key} ({version:?}): {e}"))
}

/// The key of `archive` holds one version, `new`, in GLACIER_IR, with the promoted
/// object's Content-Type, metadata and tags.
async fn assert_archived_in_place(p: &Pipeline, archive: &OutcomeMessage, new: &ObjectRef) {
    let key = &archive.object.key;
    let stored = head(p, key, None).await;
    assert_eq!(stored.storage_class(), Some(&StorageClass::GlacierIr));
    assert_eq!(stored.version_id(), new.version_id.as_deref());
    assert_eq!(stored.content_type(), Some("application/zip"));
    assert_eq!(
        stored
            .metadata()
            .and_then(|m| m.get("origin"))
            .map(String::as_str),
        Some("the test")
    );
    assert_eq!(tags(p, key).await, promotion_tags(archive));
    assert_eq!(
        versions(p, key).await,
        [(new.version_id.clone().unwrap(), "GLACIER_IR".to_owned())],
        "only the new version is left"
    );
}

fn promotion_tags(outcome: &OutcomeMessage) -> Vec<(String, String)> {
    vec![
        ("intake-scan".into(), "clean".into()),
        (
            "intake-source-version".into(),
            outcome.object.version_token().into(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn each_object_ends_as_its_rule_says_and_the_catalog_learns_it() {
    let p = pipeline().await;

    // Provisioning made the lifecycle rule for the lifecycle archive rule, and converged.
    let lifecycle = p
        .aws
        .s3
        .get_bucket_lifecycle_configuration()
        .bucket(p.bucket(BucketRole::Store))
        .send()
        .await
        .expect("store lifecycle");
    let rule = lifecycle
        .rules()
        .iter()
        .find(|r| r.id() == Some("intake-archive-documents-later"))
        .unwrap_or_else(|| panic!("no archive lifecycle rule: {:#?}", lifecycle.rules()));
    let tag = rule.filter().and_then(|f| f.tag()).expect("a tag filter");
    assert_eq!(
        (tag.key(), tag.value()),
        ("intake-archive", "documents-later")
    );
    let transition = &rule.transitions()[0];
    assert_eq!(transition.days(), Some(90));
    assert_eq!(
        transition.storage_class().map(|c| c.as_str()),
        Some("GLACIER")
    );
    assert!(
        lifecycle
            .rules()
            .iter()
            .any(|r| r.id() == Some("store-glacier-ir")),
        "the [[lifecycle.transitions]] rules are still there"
    );
    let again = plan(&p.aws, &p.config).await.expect("plan");
    assert!(again.is_converged(), "{}", again.table());

    let mut sent = Vec::new();
    for (name, class, content_type, size) in [
        ("backup.zip", "archive", "application/zip", 200 * 1024),
        ("small.zip", "archive", "application/zip", 1024),
        ("photo.png", "image", "image/png", 200 * 1024),
        ("report.pdf", "document", "application/pdf", 200 * 1024),
    ] {
        sent.push(promoted(&p, name, class, content_type, vec![7; size]).await);
    }
    let [archive, small, image, document]: [OutcomeMessage; 4] = sent.try_into().unwrap();
    let queue = p.stage_queue_url(StageKind::Archive).await;
    for outcome in [&archive, &small, &image, &document] {
        p.send(&queue, &serde_json::to_string(outcome).unwrap())
            .await;
    }
    let worker = p.spawn_worker(Archive::from_config(&p.config), "a1").await;
    let outcomes = p.outcomes(4).await;
    let of = |sent: &OutcomeMessage| {
        outcomes
            .iter()
            .find(|o| o.stage == "archive" && o.object.key == sent.object.key)
            .unwrap_or_else(|| panic!("no archive outcome for {}: {outcomes:#?}", sent.object.key))
            .clone()
    };
    let catalog = |sent: &OutcomeMessage| {
        let id = sent.object.object_id();
        let ledger = p.ledger.clone();
        async move {
            ledger
                .catalog_get(&id)
                .await
                .unwrap()
                .expect("record")
                .record
        }
    };

    // Copied in place: a new GLACIER_IR version with the type, metadata and tags; the
    // STANDARD version is gone.
    let archived = of(&archive);
    assert_eq!(archived.outcome, "archived", "{archived:#?}");
    let old_version = archive.current_location().version_id.clone().unwrap();
    let new = archived.location.clone().expect("the new version");
    assert_ne!(new.version_id.as_deref(), Some(old_version.as_str()));
    assert_eq!(
        archived.extra["archive"],
        serde_json::json!({
            "decision": "archived",
            "mode": "now",
            "rule": "archives-to-glacier-ir",
            "storage_class": "GLACIER_IR",
            "previous_version": old_version,
        })
    );
    let key = &archive.object.key;
    assert_archived_in_place(&p, &archive, &new).await;
    let record = catalog(&archive).await;
    assert_eq!(record.storage_class, "GLACIER_IR");
    assert_eq!(record.store.version, new.version_id);
    assert_eq!(
        record.archive_note.as_deref(),
        Some("archived: rule archives-to-glacier-ir moved it to GLACIER_IR")
    );

    // Too small to be worth moving.
    let kept_small = of(&small);
    assert_eq!(kept_small.outcome, "kept", "{kept_small:#?}");
    assert_eq!(kept_small.extra["archive"]["reason"], "below_minimum_size");
    assert_eq!(kept_small.extra["archive"]["size"], 1024);
    assert_eq!(kept_small.extra["archive"]["min_size"], 128 * 1024);
    let detail = kept_small.detail.clone().unwrap_or_default();
    assert!(
        detail.contains("1 KiB") || detail.contains("1.0 KiB"),
        "names the size: {detail}"
    );
    assert!(detail.contains("128"), "names the minimum: {detail}");
    assert_eq!(versions(&p, &small.object.key).await.len(), 1);
    let record = catalog(&small).await;
    assert_eq!(record.storage_class, "STANDARD");
    assert!(
        record
            .archive_note
            .as_deref()
            .is_some_and(|n| n.starts_with("kept: below_minimum_size")),
        "{record:#?}"
    );

    // No rule for images.
    let kept_image = of(&image);
    assert_eq!(kept_image.outcome, "kept", "{kept_image:#?}");
    assert_eq!(
        kept_image.extra["archive"],
        serde_json::json!({"decision": "kept", "reason": "no_rule", "storage_class": "STANDARD"})
    );
    assert_eq!(
        versions(&p, &image.object.key).await,
        [(
            image.current_location().version_id.clone().unwrap(),
            "STANDARD".to_owned()
        )]
    );
    assert_eq!(
        catalog(&image).await.archive_note.as_deref(),
        Some("kept: no_rule")
    );

    // Left to lifecycle: tagged, same version, still STANDARD.
    let tagged = of(&document);
    assert_eq!(tagged.outcome, "archived", "{tagged:#?}");
    assert_eq!(tagged.extra["archive"]["mode"], "lifecycle");
    assert_eq!(tagged.extra["archive"]["after_days"], 90);
    assert_eq!(tagged.extra["archive"]["target_storage_class"], "GLACIER");
    assert_eq!(tagged.extra["archive"]["storage_class"], "STANDARD");
    let doc_key = &document.object.key;
    let mut expected = promotion_tags(&document);
    expected.insert(0, ("intake-archive".into(), "documents-later".into()));
    assert_eq!(tags(&p, doc_key).await, expected);
    assert_eq!(
        versions(&p, doc_key).await,
        [(
            document.current_location().version_id.clone().unwrap(),
            "STANDARD".to_owned()
        )]
    );
    let record = catalog(&document).await;
    assert_eq!(record.storage_class, "STANDARD");
    assert_eq!(
        record.archive_note.as_deref(),
        Some("archived: rule documents-later; lifecycle moves it to GLACIER after 90 days")
    );

    // A duplicate delivery is acknowledged without a second copy or outcome.
    p.send(&queue, &serde_json::to_string(&archive).unwrap())
        .await;
    wait_for_empty(&p, &queue).await;
    let duplicate = p.outcomes(0).await;
    worker.stop().await;
    assert!(duplicate.is_empty(), "no second outcome: {duplicate:#?}");
    assert_eq!(versions(&p, key).await.len(), 1, "no second copy");
    let dlq = p.dlq_url(StageKind::Archive).await;
    assert_eq!(p.depth(&dlq).await, 0, "nothing went to the DLQ");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_after_a_crash_copies_nothing_twice_and_refuses_what_it_cannot_archive() {
    let p = pipeline().await;
    let stage = Archive::from_config(&p.config);
    let archive = promoted(
        &p,
        "backup.zip",
        "archive",
        "application/zip",
        vec![9; 256 * 1024],
    )
    .await;
    let source = archive.current_location().clone();
    let key = &source.key;

    // A crash after the copy, before the old version was deleted: the copy is there.
    let copy = change_storage_class(&p.aws, &source, "GLACIER_IR", CopyLimits::default())
        .await
        .expect("copy in place");
    assert_eq!(versions(&p, key).await.len(), 2);

    let rerun = archived(&p, &stage, &archive).await;
    assert_eq!(
        rerun.location.as_ref().and_then(|l| l.version_id.clone()),
        copy.version_id,
        "the earlier copy is reported, not a new one"
    );
    assert_eq!(
        rerun.extra["archive"]["previous_version"],
        source.version_id.clone().unwrap()
    );
    assert_eq!(
        versions(&p, key).await,
        [(copy.version_id.clone().unwrap(), "GLACIER_IR".to_owned())],
        "the old version deleted, nothing copied"
    );

    // A crash after the delete, before the ledger recorded it: the source is gone, the
    // copy is found by its promotion tag.
    let again = archived(&p, &stage, &archive).await;
    assert_eq!(again.location, rerun.location);
    assert_eq!(versions(&p, key).await.len(), 1);
    let record = p
        .ledger
        .catalog_get(&archive.object.object_id())
        .await
        .unwrap()
        .unwrap()
        .record;
    assert_eq!(record.store.version, copy.version_id);
    assert_eq!(record.storage_class, "GLACIER_IR");

    // A later upload of the same key, promoted and archived, is not taken for this one's.
    let mut other = archive.clone();
    other.object.version_id = Some("upload-later".into());
    let put = p
        .aws
        .s3
        .put_object()
        .bucket(p.bucket(BucketRole::Store))
        .key(key)
        .tagging("intake-scan=clean&intake-source-version=upload-later")
        .body(vec![1; 256 * 1024].into())
        .send()
        .await
        .unwrap();
    other.location = Some(ObjectRef {
        version_id: put.version_id().map(str::to_owned),
        ..source.clone()
    });
    let later = archived(&p, &stage, &other).await;
    assert_ne!(later.location, again.location);
    assert_eq!(
        versions(&p, key).await.len(),
        2,
        "one archived version each"
    );
    let third = archived(&p, &stage, &archive).await;
    assert_eq!(
        third.location, rerun.location,
        "its own copy, not the newer one of the later upload"
    );
    assert_eq!(versions(&p, key).await.len(), 2);

    // Gone without a copy, or never promoted: refused for good.
    let mut gone = archive.clone();
    gone.object.version_id = Some("upload-gone".into());
    gone.location = Some(ObjectRef {
        version_id: Some(put.version_id().unwrap().to_owned()),
        key: format!("{key}.missing"),
        ..source.clone()
    });
    let mut unscanned = archive.clone();
    unscanned.location = Some(unscanned.object.clone());
    for (refused, code) in [(gone, "object_gone"), (unscanned, "not_promoted")] {
        let err = stage
            .process(&p.cx(), &input_of(&refused))
            .await
            .expect_err(code);
        assert_eq!((err.class, err.code), (ErrorClass::Permanent, code));
        let location = refused.current_location();
        assert!(err.message.contains(&location.to_string()), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_object_is_copied_in_parts_with_its_type_metadata_and_tags() {
    let p = pipeline().await;
    // 12 MiB + 3 bytes of a non-repeating pattern, so a misplaced part would show.
    let body: Vec<u8> = (0..12 * 1024 * 1024 + 3)
        .map(|i: u32| (i % 251) as u8 ^ (i >> 16) as u8)
        .collect();
    let archive = promoted(&p, "large.zip", "archive", "application/zip", body.clone()).await;
    // Scaled down so 12 MiB takes the path a 6 GB object would: three 5 MiB parts.
    let stage = Archive::from_config(&p.config).with_copy_limits(CopyLimits {
        single_max: 8 * 1024 * 1024,
        part_size: 5 * 1024 * 1024,
    });
    let out = archived(&p, &stage, &archive).await;
    let new = out.location.expect("the new version");
    assert!(
        new.etag.as_deref().is_some_and(|e| e.contains("-3")),
        "a 3-part ETag: {:?}",
        new.etag
    );
    let key = &archive.object.key;
    assert_archived_in_place(&p, &archive, &new).await;
    let got = p
        .aws
        .s3
        .get_object()
        .bucket(p.bucket(BucketRole::Store))
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().to_vec(),
        body,
        "same bytes, in order"
    );
}
