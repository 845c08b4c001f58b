//! The thumbnail stage against LocalStack (behind the real validate and scan stages and a
//! real clamd): renditions land upright, at the configured sizes, without EXIF or GPS, with
//! alpha kept; non-images are skipped; redeliveries write nothing twice; hostile images fail
//! with fixed codes and the worker goes on.

mod support;

use std::time::Duration;

use image::GenericImageView;
use intake_core::names::BucketRole;
use intake_core::outcome::Timings;
use intake_core::state_machine::StageKind;
use intake_core::{ObjectRef, OutcomeMessage};
use intake_imaging::samples;
use intake_runtime::{Stage, StageInput};
use intake_stage_scan::Scan;
use intake_stage_thumbnail::{SOURCE_VERSION_METADATA, Thumbnail};
use intake_stage_validate::Validate;
use intake_store::VersionKey;
use intake_testkit::clamd::ClamdFixture;
use support::{Pipeline, key, wait_for_empty};

async fn pipeline_with(clamd: &ClamdFixture) -> Pipeline {
    let address = format!("address = \"tcp://{}\"", clamd.tcp_address());
    Pipeline::start_with(|t| t.replace("address = \"tcp://127.0.0.1:3310\"", &address)).await
}

/// The smallest PDF that `infer` recognises.
fn pdf() -> Vec<u8> {
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n".to_vec()
}

fn rendition<'a>(outcome: &'a OutcomeMessage, name: &str) -> &'a serde_json::Value {
    outcome.extra["renditions"]
        .as_array()
        .expect("renditions listed")
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no {name} rendition in {outcome:#?}"))
}

async fn fetch(p: &Pipeline, key: &str) -> aws_sdk_s3::operation::get_object::GetObjectOutput {
    p.aws
        .s3
        .get_object()
        .bucket(p.bucket(BucketRole::Derivatives))
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("rendition {key}: {e}"))
}

async fn versions_under(p: &Pipeline, prefix: &str) -> Vec<String> {
    let out = p
        .aws
        .s3
        .list_object_versions()
        .bucket(p.bucket(BucketRole::Derivatives))
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    out.versions()
        .iter()
        .map(|v| {
            format!(
                "{}@{}",
                v.key().unwrap_or_default(),
                v.version_id().unwrap_or_default()
            )
        })
        .collect()
}

fn is_red(pixel: image::Rgba<u8>) -> bool {
    pixel[0] > 180 && pixel[1] < 90 && pixel[2] < 90
}

#[tokio::test(flavor = "multi_thread")]
async fn renditions_are_upright_stripped_and_keep_alpha_and_documents_are_skipped() {
    let clamd = ClamdFixture::start("10M").await.expect("clamd");
    let p = pipeline_with(&clamd).await;
    // Stored 1200×800 with its top-left quadrant red; EXIF orientation 6 (turn 90° clockwise
    // to show) and GPS coordinates.
    let photo = key("tenant-a", "photo.jpg");
    let jpeg = samples::jpeg_with_exif(1200, 800, 6, true);
    assert!(
        jpeg.windows(4).any(|w| w == b"Exif"),
        "the sample carries EXIF"
    );
    p.upload(&photo, jpeg, "image/jpeg").await;
    let logo = key("tenant-a", "logo.png");
    p.upload(&logo, samples::png_rgba(600, 400), "image/png")
        .await;
    let doc = key("tenant-a", "report.pdf");
    p.upload(&doc, pdf(), "application/pdf").await;

    let validate = p.spawn_worker(Validate::new(&p.config), "v1").await;
    let scan = p.spawn_worker(Scan::from_config(&p.config), "s1").await;
    let thumbnail = p
        .spawn_worker(Thumbnail::from_config(&p.config), "t1")
        .await;
    let outcomes = p.outcomes(9).await;
    validate.stop().await;
    scan.stop().await;
    thumbnail.stop().await;
    let of = |key: &str| {
        outcomes
            .iter()
            .find(|o| o.stage == "thumbnail" && o.object.key == key)
            .unwrap_or_else(|| panic!("no thumbnail outcome for {key}: {outcomes:#?}"))
    };

    let photo_outcome = of(&photo);
    assert_eq!(photo_outcome.outcome, "thumbnailed", "{photo_outcome:#?}");
    let object_id = photo_outcome.object.object_id();
    let thumb = rendition(photo_outcome, "thumb");
    assert_eq!(
        (thumb["width"].as_u64(), thumb["height"].as_u64()),
        (Some(256), Some(256))
    );
    assert_eq!(thumb["key"], format!("tenant-a/{object_id}/thumb.webp"));
    let preview = rendition(photo_outcome, "preview");
    // Shown 800×1200 (turned), fitted into 1024×1024: 683×1024.
    assert_eq!(
        (preview["width"].as_u64(), preview["height"].as_u64()),
        (Some(683), Some(1024))
    );
    assert_eq!(photo_outcome.extra["image"]["orientation"], 6);

    let stored = fetch(&p, preview["key"].as_str().unwrap()).await;
    assert_eq!(stored.content_type(), Some("image/webp"));
    assert_eq!(
        stored.cache_control(),
        Some("public, max-age=31536000, immutable")
    );
    let source_version = photo_outcome
        .location
        .as_ref()
        .expect("promoted")
        .version_token();
    assert_eq!(
        stored
            .metadata()
            .and_then(|m| m.get(SOURCE_VERSION_METADATA))
            .map(String::as_str),
        Some(source_version),
        "the rendition points back at the promoted version"
    );
    let bytes = stored.body.collect().await.unwrap().into_bytes();
    for needle in [&b"Exif"[..], b"EXIF", b"GPS", b"XMP"] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "rendition holds {needle:?}"
        );
    }
    let shown = image::load_from_memory(&bytes).expect("a real WebP");
    assert_eq!(shown.dimensions(), (683, 1024));
    // Stored top-left is shown top-right after a quarter turn clockwise.
    assert!(
        is_red(shown.get_pixel(600, 100)),
        "top-right is red: upright"
    );
    assert!(!is_red(shown.get_pixel(80, 100)), "top-left is not red");
    assert!(
        !is_red(shown.get_pixel(600, 900)),
        "bottom-right is not red"
    );

    let logo_outcome = of(&logo);
    assert_eq!(logo_outcome.outcome, "thumbnailed", "{logo_outcome:#?}");
    let logo_preview = rendition(logo_outcome, "preview");
    assert_eq!(logo_preview["format"], "webp");
    let bytes = fetch(&p, logo_preview["key"].as_str().unwrap())
        .await
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let decoded = image::load_from_memory(&bytes).unwrap();
    assert!(
        decoded.color().has_alpha(),
        "WebP rendition keeps the alpha channel"
    );
    assert!(
        decoded.to_rgba8().pixels().any(|px| px[3] < 128),
        "transparent pixels stay transparent"
    );

    let doc_outcome = of(&doc);
    assert_eq!(doc_outcome.outcome, "skipped", "{doc_outcome:#?}");
    assert!(
        versions_under(&p, &format!("tenant-a/{}/", doc_outcome.object.object_id()))
            .await
            .is_empty()
    );
    assert_eq!(
        versions_under(&p, "tenant-a/").await.len(),
        4,
        "two renditions per image, nothing else"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivered_message_writes_no_second_copy_and_no_second_outcome() {
    let clamd = ClamdFixture::start("10M").await.expect("clamd");
    let p = pipeline_with(&clamd).await;
    let photo = key("tenant-b", "photo.jpg");
    p.upload(&photo, samples::photo_jpeg(1600, 1200, 85), "image/jpeg")
        .await;
    let validate = p.spawn_worker(Validate::new(&p.config), "v1").await;
    let scan = p.spawn_worker(Scan::from_config(&p.config), "s1").await;
    let outcomes = p.outcomes(2).await;
    validate.stop().await;
    scan.stop().await;
    let clean = outcomes
        .iter()
        .find(|o| o.stage == "scan")
        .expect("scan outcome")
        .clone();
    assert_eq!(clean.outcome, "clean");

    // The clean outcome arrives three times: once from SNS, twice more by hand.
    let queue = p.stage_queue_url(StageKind::Thumbnail).await;
    let body = serde_json::to_string(&clean).unwrap();
    let thumbnail = p
        .spawn_worker(Thumbnail::from_config(&p.config), "t1")
        .await;
    let first = p.outcomes(1).await;
    assert_eq!(first[0].outcome, "thumbnailed");
    p.send(&queue, &body).await;
    p.send(&queue, &body).await;
    wait_for_empty(&p, &queue).await;
    let again = p.outcomes(0).await;
    thumbnail.stop().await;
    assert!(again.is_empty(), "no second outcome: {again:#?}");

    let object = &clean.object;
    let v = VersionKey::new(&object.bucket, &object.key, object.version_token());
    assert_eq!(p.ledger.completions(&v, "thumbnail").await.unwrap(), 1);
    let prefix = format!("tenant-b/{}/", object.object_id());
    assert_eq!(
        versions_under(&p, &prefix).await.len(),
        2,
        "one version per rendition"
    );

    // A crash after the PUTs, before the ledger recorded them, re-runs the stage itself:
    // the conditional PUTs find the renditions in place and add no version.
    let stage = Thumbnail::from_config(&p.config);
    let input = StageInput {
        object: clean.object.clone(),
        location: clean.current_location().clone(),
        upstream: Some(clean.clone()),
        // A rerun of a stage that already ran, as a redelivery after a crash would be.
        attempt: 2,
    };
    let rerun = stage
        .process(&p.cx(), &input)
        .await
        .expect("re-run succeeds");
    assert_eq!(rerun.outcome, "thumbnailed");
    assert_eq!(
        versions_under(&p, &prefix).await.len(),
        2,
        "still one version per rendition"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_images_fail_with_fixed_codes_and_the_worker_goes_on() {
    let p = Pipeline::start().await;
    let store = p.bucket(BucketRole::Store).to_owned();
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "bomb.png",
            samples::bomb_png(50_000, 50_000),
            "image/png",
            "too_many_pixels",
        ),
        (
            "truncated.jpg",
            samples::truncated_jpeg(1600, 1200),
            "image/jpeg",
            "corrupt_image",
        ),
        (
            "lying.jpg",
            samples::lying_header_jpeg(),
            "image/jpeg",
            "corrupt_image",
        ),
        (
            "lying.png",
            samples::lying_header_png(),
            "image/png",
            "corrupt_image",
        ),
        (
            "zero.png",
            samples::zero_dimension_png(),
            "image/png",
            "empty_image",
        ),
        (
            "frames.gif",
            samples::gif_frames(64, 64, 1000),
            "image/gif",
            "too_many_frames",
        ),
        (
            "fine.jpg",
            samples::photo_jpeg(800, 600, 85),
            "image/jpeg",
            "",
        ),
    ];
    let queue = p.stage_queue_url(StageKind::Thumbnail).await;
    let thumbnail = p
        .spawn_worker(Thumbnail::from_config(&p.config), "t1")
        .await;
    let mut keys = Vec::new();
    for (name, bytes, content_type, _) in &cases {
        // As the scan stage leaves it: promoted into the store bucket, announced as clean.
        let key = key("tenant-h", name);
        let put = p
            .aws
            .s3
            .put_object()
            .bucket(&store)
            .key(&key)
            .content_type(*content_type)
            .body(bytes.clone().into())
            .send()
            .await
            .unwrap();
        let location = ObjectRef {
            bucket: store.clone(),
            key: key.clone(),
            version_id: put.version_id().map(str::to_owned),
            etag: None,
            size: bytes.len() as u64,
            tenant: Some("tenant-h".into()),
            user: Some("user-1".into()),
            sequencer: None,
        };
        let clean = OutcomeMessage {
            intake_outcome: 1,
            object: ObjectRef {
                bucket: p.bucket(BucketRole::Uploads).to_owned(),
                version_id: Some(format!("upload-{name}")),
                ..location.clone()
            },
            stage: "scan".into(),
            outcome: "clean".into(),
            code: None,
            detail: None,
            detected_type: Some((*content_type).into()),
            class: Some("image".into()),
            location: Some(location),
            timings: Timings {
                started_ms: 0,
                finished_ms: 0,
            },
            worker: "test".into(),
            extra: Default::default(),
        };
        p.send(&queue, &serde_json::to_string(&clean).unwrap())
            .await;
        keys.push(key);
    }
    // An unscanned upload routed here by mistake is refused, not rendered.
    let unscanned_key = key("tenant-h", "unscanned.jpg");
    let unscanned = ObjectRef {
        bucket: p.bucket(BucketRole::Uploads).to_owned(),
        key: unscanned_key.clone(),
        version_id: Some("v1".into()),
        etag: None,
        size: 10,
        tenant: Some("tenant-h".into()),
        user: Some("user-1".into()),
        sequencer: None,
    };
    let passed = OutcomeMessage {
        intake_outcome: 1,
        object: unscanned.clone(),
        stage: "validate".into(),
        outcome: "passed".into(),
        code: None,
        detail: None,
        detected_type: Some("image/jpeg".into()),
        class: Some("image".into()),
        location: None,
        timings: Timings {
            started_ms: 0,
            finished_ms: 0,
        },
        worker: "test".into(),
        extra: Default::default(),
    };
    p.send(&queue, &serde_json::to_string(&passed).unwrap())
        .await;

    let outcomes = p.outcomes(cases.len() + 1).await;
    let refused = outcomes
        .iter()
        .find(|o| o.object.key == unscanned_key)
        .expect("an outcome for the unscanned upload");
    assert_eq!(refused.outcome, "failed");
    assert_eq!(
        refused.code.as_deref(),
        Some("not_promoted"),
        "{refused:#?}"
    );
    let stats = tokio::time::timeout(Duration::from_secs(30), thumbnail.stop())
        .await
        .expect("the worker is still responsive");
    for ((name, _, _, code), key) in cases.iter().zip(&keys) {
        let outcome = outcomes
            .iter()
            .find(|o| &o.object.key == key)
            .unwrap_or_else(|| panic!("no outcome for {name}: {outcomes:#?}"));
        if code.is_empty() {
            assert_eq!(outcome.outcome, "thumbnailed", "{name}: {outcome:#?}");
        } else {
            assert_eq!(outcome.outcome, "failed", "{name}: {outcome:#?}");
            assert_eq!(outcome.code.as_deref(), Some(*code), "{name}: {outcome:#?}");
            assert!(
                outcome.detail.as_deref().is_some_and(|d| d.contains(key)),
                "the detail names the object: {outcome:#?}"
            );
        }
    }
    let dlq = p.dlq_url(StageKind::Thumbnail).await;
    assert_eq!(p.depth(&dlq).await, 0, "nothing went to the DLQ");
    eprintln!("hostile images: {stats:?}");
}
