//! The operator's loop against LocalStack and a real clamd: clamd goes away, scans fail past
//! the retry budget and land in the scan DLQ; the cause is fixed; a filtered dry run counts
//! without moving; a filtered replay killed halfway and run again loses nothing; the rest is
//! replayed by SQS's move task; every object then ends `done`, once, and each replay is in
//! the ledger.

mod support;

use std::time::Duration;

use intake_core::names::BucketRole;
use intake_core::state_machine::StageKind;
use intake_imaging::samples;
use intake_ops::replay::{ReplayOptions, replay};
use intake_stage_archive::Archive;
use intake_stage_catalog::Catalog;
use intake_stage_scan::Scan;
use intake_stage_thumbnail::Thumbnail;
use intake_stage_validate::Validate;
use intake_store::VersionKey;
use intake_testkit::clamd::ClamdFixture;
use intake_testkit::eventually;
use support::{Pipeline, key};

const STAGES: [&str; 5] = ["validate", "scan", "thumbnail", "catalog", "archive"];

#[tokio::test(flavor = "multi_thread")]
async fn dead_lettered_scans_are_replayed_by_filter_after_the_fix_and_end_done_once() {
    let mut clamd = ClamdFixture::start("10M").await.expect("clamd");
    let address = format!("address = \"tcp://{}\"", clamd.tcp_address());
    // Two receives and the scan is dead-lettered: the retry budget runs out quickly.
    let p = Pipeline::start_with(|t| {
        t.replace("address = \"tcp://127.0.0.1:3310\"", &address)
            .replace("max_receive_count = 8\n", "max_receive_count = 2\n")
    })
    .await;
    assert_eq!(
        p.config.queue_settings(StageKind::Scan).max_receive_count,
        2
    );
    clamd.stop();

    let uploads = p.bucket(BucketRole::Uploads).to_owned();
    let mut versions = Vec::new();
    for tenant in ["tenant-a", "tenant-a", "tenant-a", "tenant-b", "tenant-b"] {
        let key = key(tenant, "photo.jpg");
        let version = p
            .upload(&key, samples::photo_jpeg(320, 240, 80), "image/jpeg")
            .await;
        versions.push(VersionKey::new(&uploads, &key, &version));
    }
    let validate = p.spawn_worker(Validate::new(&p.config), "validate-1").await;
    let scan = p.spawn_worker(Scan::from_config(&p.config), "scan-1").await;
    let dlq = p.dlq_url(StageKind::Scan).await;
    eventually(
        "five scans dead-lettered",
        Duration::from_secs(120),
        || async {
            match p.depth(&dlq).await {
                5 => Ok(()),
                n => Err(format!("{n} in the scan DLQ")),
            }
        },
    )
    .await;
    let history = p.ledger.history(&uploads, &versions[0].key).await.unwrap();
    assert!(
        history[0]
            .transitions
            .iter()
            .any(|t| t.code.as_deref() == Some("scanner_unreachable")),
        "{history:#?}"
    );

    // What an operator sees: five messages in the scan DLQ, all scanner_unreachable (read
    // from the ledger: SQS's redrive adds no attributes), each received twice.
    let listed = intake_ops::dlq::list(&p.aws, &p.names, &p.ledger, &[StageKind::Scan])
        .await
        .unwrap();
    assert_eq!(listed[0].depth, 5, "{listed:?}");
    assert_eq!(
        listed[0].codes.get("scanner_unreachable"),
        Some(&5),
        "{listed:?}"
    );
    let peeked = intake_ops::dlq::peek(&p.aws, &p.names, &p.ledger, StageKind::Scan, 10)
        .await
        .unwrap();
    assert_eq!(peeked.len(), 5);
    assert!(
        peeked
            .iter()
            .all(|m| m.code == "scanner_unreachable" && m.receive_count >= 2),
        "{peeked:#?}"
    );
    eventually(
        "peeked messages visible again",
        Duration::from_secs(30),
        || async {
            match visible(&p, &dlq).await {
                5 => Ok(()),
                n => Err(format!("{n} visible")),
            }
        },
    )
    .await;

    // The fix, and the rest of the pipeline.
    clamd.restart().await.expect("clamd restarts");
    let rest = [
        p.spawn_worker(Thumbnail::from_config(&p.config), "thumbnail-1")
            .await,
        p.spawn_worker(Catalog::new(), "catalog-1").await,
        p.spawn_worker(Archive::from_config(&p.config), "archive-1")
            .await,
    ];

    let tenant_a = ReplayOptions {
        filter: "tenant=tenant-a,code=scanner_unreachable".parse().unwrap(),
        requested_by: "test-operator".into(),
        hold: Duration::from_secs(3),
        ..ReplayOptions::default()
    };
    let mut quiet = |_: &intake_ops::replay::Progress| {};

    // A dry run counts what would move and moves nothing.
    let dry = replay(
        &p.aws,
        &p.names,
        &p.ledger,
        StageKind::Scan,
        &ReplayOptions {
            dry_run: true,
            ..tenant_a.clone()
        },
        &mut quiet,
    )
    .await
    .unwrap();
    assert_eq!((dry.matched, dry.moved), (3, 0), "{dry:?}");
    eventually(
        "the dry run released every message",
        Duration::from_secs(30),
        || async {
            match visible(&p, &dlq).await {
                5 => Ok(()),
                n => Err(format!("{n} in the scan DLQ")),
            }
        },
    )
    .await;

    // A slow replay killed after its first message (the future is dropped mid-flight, as a
    // process would die), then the same replay again: nothing is lost.
    let mut moved_before_kill = 0;
    let mut count = |progress: &intake_ops::replay::Progress| moved_before_kill = progress.moved;
    let killed = tokio::time::timeout(
        Duration::from_millis(1500),
        replay(
            &p.aws,
            &p.names,
            &p.ledger,
            StageKind::Scan,
            &ReplayOptions {
                rate_per_sec: Some(1.0),
                ..tenant_a.clone()
            },
            &mut count,
        ),
    )
    .await;
    assert!(killed.is_err(), "the replay should still be running");
    assert!(
        (1..3).contains(&moved_before_kill),
        "killed after {moved_before_kill} moved"
    );
    // What the killed run held comes back when its hold runs out (a message it sent but had
    // not yet deleted is still in the DLQ too, and is sent again: the ledger makes that a
    // duplicate delivery, acknowledged without a second effect).
    let left = 5 - moved_before_kill;
    eventually(
        "the killed run's holds ran out",
        Duration::from_secs(30),
        || async {
            match visible(&p, &dlq).await {
                n if n == left => Ok(()),
                n => Err(format!("{n} visible in the scan DLQ, want {left}")),
            }
        },
    )
    .await;
    let again = replay(
        &p.aws,
        &p.names,
        &p.ledger,
        StageKind::Scan,
        &tenant_a,
        &mut quiet,
    )
    .await
    .unwrap();
    assert_eq!(again.moved, 3 - moved_before_kill, "{again:?}");

    // The rest (tenant-b) without a filter: SQS's own move task.
    eventually(
        "the held messages are visible again",
        Duration::from_secs(30),
        || async {
            match visible(&p, &dlq).await {
                2 => Ok(()),
                n => Err(format!("{n} visible in the scan DLQ")),
            }
        },
    )
    .await;
    let all = replay(
        &p.aws,
        &p.names,
        &p.ledger,
        StageKind::Scan,
        &ReplayOptions {
            requested_by: "test-operator".into(),
            ..ReplayOptions::default()
        },
        &mut quiet,
    )
    .await
    .unwrap();
    assert_eq!(
        (all.method.as_str(), all.moved),
        ("move_task", 2),
        "{all:?}"
    );

    eventually("every object done", Duration::from_secs(120), || async {
        let mut states = Vec::new();
        for v in &versions {
            let h = p.ledger.history(&v.bucket, &v.key).await.unwrap();
            states.push(h[0].state.clone());
        }
        if states.iter().all(|s| s == "done") {
            Ok(())
        } else {
            Err(format!("{states:?}"))
        }
    })
    .await;
    for v in &versions {
        for stage in STAGES {
            assert_eq!(
                p.ledger.completions(v, stage).await.unwrap(),
                1,
                "{stage} of {v}"
            );
        }
    }
    assert_eq!(p.depth(&dlq).await, 0, "the scan DLQ is empty");

    let recorded = p.ledger.replays(Some("scan")).await.unwrap();
    let summary: Vec<(bool, &str, u64)> = recorded
        .iter()
        .rev()
        .map(|r| (r.dry_run, r.method.as_str(), r.moved))
        .collect();
    assert_eq!(
        summary,
        [
            (true, "receive_send_delete", 0),
            (false, "receive_send_delete", 3 - moved_before_kill),
            (false, "move_task", 2),
        ],
        "{recorded:#?}"
    );
    assert!(recorded.iter().all(|r| r.requested_by == "test-operator"));
    assert_eq!(
        recorded[1].filter,
        "tenant=tenant-a,code=scanner_unreachable"
    );

    validate.stop().await;
    scan.stop().await;
    for worker in rest {
        worker.stop().await;
    }
}

async fn visible(p: &Pipeline, url: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName;
    p.aws
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default()
        .get(&QueueAttributeName::ApproximateNumberOfMessages)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The smallest PDF that `infer` recognises.
fn pdf() -> Vec<u8> {
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n".to_vec()
}

async fn wait_state(p: &Pipeline, v: &VersionKey, state: &str, stage: &str, completions: u64) {
    eventually(
        &format!("{v} {state} with {completions} {stage} completions"),
        Duration::from_secs(90),
        || async {
            let h = p.ledger.history(&v.bucket, &v.key).await.unwrap();
            let n = p.ledger.completions(v, stage).await.unwrap();
            if h[0].state == state && n == completions {
                Ok(())
            } else {
                Err(format!("{} with {n} {stage} completions", h[0].state))
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_stage_is_reprocessed_after_the_fix_and_a_prefix_from_archive() {
    use intake_ops::reprocess::{Selection, plan, reprocess};
    let clamd = ClamdFixture::start("10M").await.expect("clamd");
    let address = format!("address = \"tcp://{}\"", clamd.tcp_address());
    // A pixel limit no photo passes: the thumbnail stage fails the image.
    let p = Pipeline::start_with(|t| {
        t.replace("address = \"tcp://127.0.0.1:3310\"", &address)
            .replace("max_pixels = 100_000_000", "max_pixels = 1000")
    })
    .await;
    let uploads = p.bucket(BucketRole::Uploads).to_owned();
    let photo = key("tenant-r", "photo.jpg");
    let photo_version = p
        .upload(&photo, samples::photo_jpeg(320, 240, 80), "image/jpeg")
        .await;
    let photo = VersionKey::new(&uploads, &photo, &photo_version);
    let doc = key("tenant-r", "report.pdf");
    let doc_version = p.upload(&doc, pdf(), "application/pdf").await;
    let doc = VersionKey::new(&uploads, &doc, &doc_version);

    let mut workers = vec![
        p.spawn_worker(Validate::new(&p.config), "validate-1").await,
        p.spawn_worker(Scan::from_config(&p.config), "scan-1").await,
        p.spawn_worker(Catalog::new(), "catalog-1").await,
        p.spawn_worker(Archive::from_config(&p.config), "archive-1")
            .await,
    ];
    let strict = p
        .spawn_worker(Thumbnail::from_config(&p.config), "thumbnail-strict")
        .await;
    wait_state(&p, &photo, "failed", "thumbnail", 1).await;
    wait_state(&p, &doc, "done", "archive", 1).await;

    // Nothing can be re-run from before promotion, or while in flight.
    let refused = plan(
        &p.ledger,
        &p.config,
        &p.names,
        &Selection::Key(photo.key.clone()),
        Some(StageKind::Scan),
    )
    .await
    .unwrap();
    let err = refused[0].as_ref().unwrap_err().to_string();
    assert!(err.contains("upload the file again"), "{err}");

    // The fix: a thumbnail worker with the default limits.
    strict.stop().await;
    let mut fixed = (*p.config).clone();
    fixed.stages.get_mut("thumbnail").unwrap().images = None;
    workers.push(
        p.spawn_worker(Thumbnail::from_config(&fixed), "thumbnail-fixed")
            .await,
    );
    let planned = plan(
        &p.ledger,
        &p.config,
        &p.names,
        &Selection::Key(photo.key.clone()),
        None,
    )
    .await
    .unwrap();
    let planned = planned[0].as_ref().expect("reprocessable");
    assert_eq!(
        planned.from,
        StageKind::Thumbnail,
        "from the stage that failed"
    );
    reprocess(&p.aws, &p.config, &p.names, &p.ledger, planned, "ops")
        .await
        .unwrap();
    wait_state(&p, &photo, "done", "archive", 1).await;
    let entry = p
        .ledger
        .catalog_get(&planned_object_id(&p, &photo).await)
        .await
        .unwrap()
        .expect("cataloged after the reprocess");
    assert_eq!(entry.record.renditions.len(), 2);
    let history = p.ledger.history(&photo.bucket, &photo.key).await.unwrap();
    assert!(
        history[0]
            .transitions
            .iter()
            .any(|t| t.outcome == "reprocess" && t.worker == "ops"),
        "the reprocess is in the history: {history:#?}"
    );

    // A whole prefix from archive (say, after new archive rules): both run archive again.
    let planned = plan(
        &p.ledger,
        &p.config,
        &p.names,
        &Selection::Prefix("tenant-r/".into()),
        Some(StageKind::Archive),
    )
    .await
    .unwrap();
    assert_eq!(planned.len(), 2, "{planned:?}");
    for one in &planned {
        let one = one.as_ref().expect("reprocessable");
        reprocess(&p.aws, &p.config, &p.names, &p.ledger, one, "ops")
            .await
            .unwrap();
    }
    wait_state(&p, &photo, "done", "archive", 2).await;
    wait_state(&p, &doc, "done", "archive", 2).await;
    assert_eq!(p.ledger.completions(&doc, "catalog").await.unwrap(), 1);
    for worker in workers {
        worker.stop().await;
    }
}

async fn planned_object_id(p: &Pipeline, v: &VersionKey) -> String {
    let outcomes = p.ledger.recorded_outcomes(v).await.unwrap();
    let first: intake_core::OutcomeMessage = serde_json::from_str(&outcomes[0]).unwrap();
    first.object.object_id()
}
