//! One file, one life, against LocalStack, a real clamd, the API and every worker: the
//! defects a hostile or unlucky client found, each as its own test — a reused upload URL
//! after deletion, concurrent PUTs of one URL, an original that fails after promotion.
//! The model-based test of every client action in random order is in `lifecycle_model.rs`.

mod api_support;
mod lifecycle_support;
mod support;

use std::time::Duration;

use api_support::ApiStack;
use intake_core::names::BucketRole;
use intake_store::VersionKey;
use lifecycle_support::{GENEROUS_RATE_LIMITS, post, put, text_body, versions_of};
use reqwest::Method;
use serde_json::{Value, json};

/// Waits until the ledger has `version` of `key` in `state`; the last transition of it.
async fn wait_version(
    stack: &ApiStack,
    key: &str,
    version: &str,
    state: &str,
) -> intake_store::Transition {
    let p = &stack.pipeline;
    let uploads = p.bucket(BucketRole::Uploads).to_owned();
    intake_testkit::wait::eventually(
        &format!("version {version} of {key} to be {state}"),
        Duration::from_secs(120),
        || async {
            let history = p.ledger.history(&uploads, key).await.unwrap();
            match history.iter().find(|h| h.version == version) {
                Some(h) if h.state == state => Ok(h.transitions.last().cloned().unwrap()),
                Some(h) => Err(format!("{}: {:?}", h.state, h.transitions.last())),
                None => Err("not seen yet".to_owned()),
            }
        },
    )
    .await
}

async fn download_bytes(stack: &ApiStack, token: &str, file_id: &str) -> Vec<u8> {
    let (status, link) = stack
        .call(
            Method::GET,
            &format!("/v1/files/{file_id}/download"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{link}");
    let response = stack
        .http
        .get(link["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_file_stays_deleted_when_its_upload_url_is_used_again() {
    let mut stack =
        ApiStack::start("INTAKE_TEST_JWT_SECRET_REUSE", GENEROUS_RATE_LIMITS, true).await;
    stack.spawn_workers().await;
    let token = stack.token("tenant-a", "user-1");
    let body = text_body("first", 2048);
    let signed = stack
        .sign(
            &token,
            json!({"filename": "notes.txt", "size": body.len(), "content_type": "text/plain"}),
        )
        .await;
    let file_id = signed["file_id"].as_str().unwrap().to_owned();
    let key = signed["key"].as_str().unwrap().to_owned();
    let (status, first) = put(&stack, &signed, body.clone()).await;
    assert_eq!(status, 200);
    let first = first.expect("uploads is versioned");
    stack.wait_state(&token, &file_id, "done").await;
    assert_eq!(download_bytes(&stack, &token, &file_id).await, body);

    let path = format!("/v1/files/{file_id}");
    let (status, deleting) = stack.call(Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(status, 202, "{deleting}");
    let deleted = stack.wait_state(&token, &file_id, "deleted").await;

    // The URL is still valid: S3 takes the bytes, but they never become the file.
    let again = text_body("second", 2048);
    let (status, second) = put(&stack, &signed, again).await;
    assert_eq!(
        status, 200,
        "S3 accepts a write to a signed URL it still honours"
    );
    let second = second.expect("uploads is versioned");
    assert_ne!(first, second);
    let refused = wait_version(&stack, &key, &second, "quarantined").await;
    assert_eq!(
        (
            refused.stage.as_str(),
            refused.outcome.as_str(),
            refused.code.as_deref()
        ),
        ("validate", "rejected", Some("upload_reused")),
        "{refused:?}"
    );

    // Still deleted, everywhere; a second DELETE answers as the first did.
    let (status, file) = stack.call(Method::GET, &path, Some(&token), None).await;
    assert_eq!((status, file["state"].as_str()), (200, Some("deleted")));
    assert_eq!(file["ready"], false);
    let (status, again) = stack.call(Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(
        (status, &again["state"]),
        (202, &deleted["state"]),
        "{again}"
    );
    let (status, body) = stack
        .call(Method::GET, &format!("{path}/download"), Some(&token), None)
        .await;
    assert_eq!(status, 409, "{body}");
    let p = &stack.pipeline;
    assert!(versions_of(p, BucketRole::Store, &key).await.is_empty());
    assert!(versions_of(p, BucketRole::Uploads, &key).await.is_empty());
    let quarantined = versions_of(p, BucketRole::Quarantine, &key).await;
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert_eq!(quarantined[0].tag("intake-reason"), Some("upload_reused"));
    assert_eq!(
        quarantined[0].tag("intake-source-version"),
        Some(second.as_str())
    );
    let uploads = p.bucket(BucketRole::Uploads).to_owned();
    assert!(
        p.ledger
            .catalog_find(&uploads, &key)
            .await
            .unwrap()
            .is_empty(),
        "no catalog record is left or made"
    );
    assert_eq!(
        p.ledger.file_version(&uploads, &key).await.unwrap(),
        Some(first)
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_writes_of_one_upload_make_one_file_that_downloads() {
    const FILES: usize = 10;
    let mut stack =
        ApiStack::start("INTAKE_TEST_JWT_SECRET_RACE", GENEROUS_RATE_LIMITS, true).await;
    stack.spawn_workers().await;
    let token = stack.token("tenant-a", "user-1");
    let mut files = Vec::new();
    let mut both_landed = 0;
    for i in 0..FILES {
        // Half PUT, half POST: two writes of the same upload at once, with different bytes
        // of the signed length (a retry whose first attempt was not lost after all). S3 may
        // refuse the second PUT (412: the URL signs `If-None-Match: *`); a POST has no such
        // condition, so both land and the pipeline must pick one.
        let method = if i % 2 == 0 { "put" } else { "post" };
        let signed = stack
            .sign(
                &token,
                json!({"filename": format!("race-{i}.txt"), "size": 4096, "content_type": "text/plain", "method": method}),
            )
            .await;
        let (a, b) = (
            text_body(&format!("file {i} attempt A"), 4096),
            text_body(&format!("file {i} attempt B"), 4096),
        );
        let write = |bytes: Vec<u8>| {
            let signed = &signed;
            let stack = &stack;
            async move {
                if method == "put" {
                    put(stack, signed, bytes).await
                } else {
                    post(stack, signed, bytes).await
                }
            }
        };
        let ((sa, va), (sb, vb)) = tokio::join!(write(a.clone()), write(b.clone()));
        let mut landed = Vec::new();
        for (status, version, bytes) in [(sa, va, a), (sb, vb, b)] {
            match status {
                200 | 204 => landed.push((version.expect("uploads is versioned"), bytes)),
                412 if method == "put" => {}
                other => panic!("{method} {i}: HTTP {other}"),
            }
        }
        assert!(!landed.is_empty(), "one of two writes lands");
        both_landed += usize::from(landed.len() == 2);
        files.push((signed, landed));
    }
    assert!(
        both_landed >= FILES / 2,
        "every POST pair lands twice, so the pipeline's rule is what decides ({both_landed})"
    );
    let p = &stack.pipeline;
    let uploads = p.bucket(BucketRole::Uploads).to_owned();
    for (signed, landed) in &files {
        let file_id = signed["file_id"].as_str().unwrap();
        let key = signed["key"].as_str().unwrap();
        let file = stack.wait_state(&token, file_id, "done").await;
        assert_eq!(file["ready"], true, "{file}");
        let file_version = p.ledger.file_version(&uploads, key).await.unwrap().unwrap();
        let winner = landed
            .iter()
            .find(|(version, _)| *version == file_version)
            .expect("the file is one of the writes that landed");
        assert_eq!(download_bytes(&stack, &token, file_id).await, winner.1);
        for (version, _) in landed.iter().filter(|(v, _)| *v != file_version) {
            let refused = wait_version(&stack, key, version, "quarantined").await;
            assert_eq!(refused.code.as_deref(), Some("upload_reused"));
        }
        let stored = versions_of(p, BucketRole::Store, key).await;
        assert_eq!(stored.len(), 1, "{stored:?}");
        assert_eq!(
            stored[0].tag("intake-source-version"),
            Some(file_version.as_str())
        );
        let records = p.ledger.catalog_find(&uploads, key).await.unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].record.upload.version, file_version);
        assert!(versions_of(p, BucketRole::Uploads, key).await.is_empty());
    }
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_original_that_fails_after_promotion_shows_failed_and_is_deleted_on_request() {
    let mut stack =
        ApiStack::start("INTAKE_TEST_JWT_SECRET_FAILED", GENEROUS_RATE_LIMITS, true).await;
    stack.spawn_workers().await;
    let token = stack.token("tenant-a", "user-1");
    // A JPEG whose header declares 40,000 × 40,000 pixels: it passes validate (real JPEG
    // magic) and scan (clean), is promoted, and fails at the thumbnail stage.
    let bytes = intake_imaging::samples::jpeg_declaring(40_000, 40_000);
    let signed = stack
        .sign(
            &token,
            json!({"filename": "huge.jpg", "size": bytes.len(), "content_type": "image/jpeg"}),
        )
        .await;
    let file_id = signed["file_id"].as_str().unwrap().to_owned();
    let key = signed["key"].as_str().unwrap().to_owned();
    assert_eq!(put(&stack, &signed, bytes).await.0, 200);
    let failed: Value = stack.wait_state(&token, &file_id, "failed").await;
    assert_eq!(failed["reason"]["stage"], "thumbnail", "{failed}");
    assert_eq!(failed["ready"], false);
    let p = &stack.pipeline;
    assert_eq!(
        versions_of(p, BucketRole::Store, &key).await.len(),
        1,
        "the promoted original is kept for `intake reprocess` after a fix"
    );

    let path = format!("/v1/files/{file_id}");
    let (status, body) = stack.call(Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(status, 202, "{body}");
    stack.wait_state(&token, &file_id, "deleted").await;
    assert!(versions_of(p, BucketRole::Store, &key).await.is_empty());
    assert!(versions_of(p, BucketRole::Uploads, &key).await.is_empty());
    let uploads = p.bucket(BucketRole::Uploads).to_owned();
    let version = p
        .ledger
        .file_version(&uploads, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        p.ledger
            .state(&VersionKey::new(&uploads, &key, &version))
            .await
            .unwrap()
            .as_deref(),
        Some("deleted")
    );
    stack.shutdown().await;
}
