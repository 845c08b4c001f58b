//! The scan stage against LocalStack and a real clamd: clean uploads are promoted to the
//! store bucket with verdict tags, infected ones (EICAR, EICAR in a zip) and unscannable
//! ones (over clamd's stream limit) are quarantined, and a clamd outage is retried, not
//! turned into a verdict.

mod support;

use std::time::Duration;

use intake_core::names::BucketRole;
use intake_core::state_machine::StageKind;
use intake_stage_scan::Scan;
use intake_stage_validate::Validate;
use intake_testkit::clamd::{ClamdFixture, eicar};
use intake_testkit::eventually;
use support::{Pipeline, key, png};

async fn pipeline_with(clamd: &ClamdFixture) -> Pipeline {
    let address = format!("address = \"tcp://{}\"", clamd.tcp_address());
    Pipeline::start_with(|t| t.replace("address = \"tcp://127.0.0.1:3310\"", &address)).await
}

async fn tags(p: &Pipeline, role: BucketRole, key: &str) -> Vec<(String, String)> {
    let out = p
        .aws
        .s3
        .get_object_tagging()
        .bucket(p.bucket(role))
        .key(key)
        .send()
        .await
        .expect("object exists");
    out.tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

fn tag<'a>(tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    tags.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread")]
async fn clean_files_are_promoted_and_infected_or_unscannable_ones_quarantined() {
    let clamd = ClamdFixture::start("1M").await.expect("clamd");
    let p = pipeline_with(&clamd).await;
    let photo = key("tenant-a", "photo.png");
    let virus = key("tenant-a", "eicar.txt");
    let zipped = key("tenant-a", "bundle.zip");
    let big = key("tenant-a", "big.txt");
    let photo_version = p.upload(&photo, png(), "image/png").await;
    p.upload(&virus, eicar(), "text/plain").await;
    p.upload(
        &zipped,
        support::stored_zip("readme.txt", &eicar()),
        "application/zip",
    )
    .await;
    p.upload(
        &big,
        "a line of harmless text\n".repeat(100_000).into_bytes(),
        "text/plain",
    )
    .await;

    let validate = p.spawn_worker(Validate::new(&p.config), "v1").await;
    let scan = p.spawn_worker(Scan::from_config(&p.config), "s1").await;
    let outcomes = p.outcomes(8).await;
    validate.stop().await;
    scan.stop().await;

    let scan_outcome = |key: &str| {
        outcomes
            .iter()
            .find(|o| o.stage == "scan" && o.object.key == key)
            .unwrap_or_else(|| panic!("no scan outcome for {key}: {outcomes:#?}"))
    };
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| o.stage == "validate" && o.outcome == "passed")
            .count(),
        4,
        "{outcomes:#?}"
    );

    let clean = scan_outcome(&photo);
    assert_eq!(clean.outcome, "clean");
    assert_eq!(
        clean.location.as_ref().unwrap().bucket,
        p.bucket(BucketRole::Store)
    );
    assert_eq!(
        clean.class.as_deref(),
        Some("image"),
        "carried over from validate"
    );
    let stored = tags(&p, BucketRole::Store, &photo).await;
    assert_eq!(tag(&stored, "intake-scan"), Some("clean"));
    assert!(
        tag(&stored, "intake-scan-engine").is_some_and(|e| e.starts_with("ClamAV")),
        "{stored:?}"
    );
    assert_eq!(
        tag(&stored, "intake-source-version"),
        Some(photo_version.as_str())
    );
    let gone = p
        .aws
        .s3
        .head_object()
        .bucket(p.bucket(BucketRole::Uploads))
        .key(&photo)
        .version_id(&photo_version)
        .send()
        .await;
    assert!(gone.is_err(), "the scanned version is gone from uploads");

    for (k, signature) in [
        (&virus, "Intake.Test.EICAR.UNOFFICIAL"),
        (&zipped, "Intake.Test.EICAR.UNOFFICIAL"),
    ] {
        let infected = scan_outcome(k);
        assert_eq!(infected.outcome, "infected", "{infected:#?}");
        assert_eq!(
            infected.extra["scan"]["signature"], signature,
            "{infected:#?}"
        );
        let q = tags(&p, BucketRole::Quarantine, k).await;
        assert_eq!(tag(&q, "intake-scan"), Some("infected"));
        assert_eq!(tag(&q, "intake-signature"), Some(signature));
        assert!(
            p.aws
                .s3
                .head_object()
                .bucket(p.bucket(BucketRole::Store))
                .key(k.as_str())
                .send()
                .await
                .is_err(),
            "never promoted"
        );
    }

    let unscannable = scan_outcome(&big);
    assert_eq!(unscannable.outcome, "unscannable", "{unscannable:#?}");
    assert!(
        unscannable
            .detail
            .as_deref()
            .unwrap()
            .contains("size limit"),
        "{unscannable:#?}"
    );
    assert_eq!(
        tag(&tags(&p, BucketRole::Quarantine, &big).await, "intake-scan"),
        Some("unscannable")
    );
    assert!(
        p.aws
            .s3
            .head_object()
            .bucket(p.bucket(BucketRole::Store))
            .key(&big)
            .send()
            .await
            .is_err(),
        "fail closed"
    );

    let history = p
        .ledger
        .history(p.bucket(BucketRole::Uploads), &photo)
        .await
        .unwrap();
    assert_eq!(history[0].state, "thumbnail", "clean routes to thumbnail");
    let history = p
        .ledger
        .history(p.bucket(BucketRole::Uploads), &virus)
        .await
        .unwrap();
    assert_eq!(history[0].state, "quarantined");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clamd_outage_is_retried_and_completes_once_clamd_is_back() {
    let mut clamd = ClamdFixture::start("1M").await.expect("clamd");
    let p = pipeline_with(&clamd).await;
    clamd.stop();
    let photo = key("tenant-a", "during-outage.png");
    p.upload(&photo, png(), "image/png").await;
    let validate = p.spawn_worker(Validate::new(&p.config), "v1").await;
    let scan = p.spawn_worker(Scan::from_config(&p.config), "s1").await;

    // The scan fails as retryable while clamd is down...
    eventually(
        "a scan retry while clamd is down",
        Duration::from_secs(60),
        || async {
            let history = p
                .ledger
                .history(p.bucket(BucketRole::Uploads), &photo)
                .await
                .map_err(|e| e.to_string())?;
            let retried = history.first().is_some_and(|v| {
                v.transitions.iter().any(|t| {
                    t.stage == "scan"
                        && t.outcome == "retry"
                        && t.code.as_deref() == Some("scanner_unreachable")
                })
            });
            if retried {
                Ok(())
            } else {
                Err(format!("{history:?}"))
            }
        },
    )
    .await;
    // ...and completes once it is back, without a trip to the DLQ.
    clamd.restart().await.expect("clamd back");
    let outcomes = p.outcomes(2).await;
    validate.stop().await;
    let stats = scan.stop().await;
    let scanned = outcomes
        .iter()
        .find(|o| o.stage == "scan")
        .expect("scan outcome");
    assert_eq!(scanned.outcome, "clean");
    assert!(stats.retried >= 1, "{stats:?}");
    assert_eq!(
        p.depth(&p.dlq_url(StageKind::Scan).await).await,
        0,
        "nothing in the scan DLQ"
    );
}
