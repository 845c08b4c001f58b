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

#[tokio::test(flavor = "multi_thread")]
async fn a_later_version_of_a_key_is_refused_before_the_scanner_and_never_promoted() {
    let clamd = ClamdFixture::start("1M").await.expect("clamd");
    let p = pipeline_with(&clamd).await;
    // A clean version is uploaded; while it moves through the stages, a second version of
    // the same key (EICAR) arrives: one file, one version, so the second is refused at
    // validate (`upload_reused`) and quarantined, and only the first is scanned and stored.
    let k = key("tenant-a", "notes.txt");
    let clean_version = p
        .upload(&k, b"meeting notes, nothing else\n".to_vec(), "text/plain")
        .await;
    let validate = p.spawn_worker(Validate::new(&p.config), "v1").await;
    let scan = p.spawn_worker(Scan::from_config(&p.config), "s1").await;
    let mut outcomes = p.outcomes(1).await;
    let infected_version = p.upload(&k, eicar(), "text/plain").await;
    outcomes.extend(p.outcomes(3 - outcomes.len()).await);
    validate.stop().await;
    scan.stop().await;

    let outcome = |stage: &str, version: &str| {
        outcomes
            .iter()
            .find(|o| o.stage == stage && o.object.version_id.as_deref() == Some(version))
            .map(|o| (o.outcome.clone(), o.code.clone()))
            .unwrap_or_else(|| panic!("no {stage} outcome for version {version}: {outcomes:#?}"))
    };
    assert_eq!(outcome("scan", &clean_version).0, "clean");
    assert_eq!(
        outcome("validate", &infected_version),
        ("rejected".to_owned(), Some("upload_reused".to_owned()))
    );
    assert!(
        !outcomes
            .iter()
            .any(|o| o.stage == "scan" && o.object.version_id.as_deref() == Some(&infected_version)),
        "the refused version never reached the scanner: {outcomes:#?}"
    );
    // The store holds only the file's version, scanned clean.
    let stored = p
        .aws
        .s3
        .get_object()
        .bucket(p.bucket(BucketRole::Store))
        .key(&k)
        .send()
        .await
        .unwrap();
    let bytes = stored.body.collect().await.unwrap().to_vec();
    assert_eq!(bytes, b"meeting notes, nothing else\n");
    let store_tags = tags(&p, BucketRole::Store, &k).await;
    assert_eq!(
        tag(&store_tags, "intake-source-version"),
        Some(clean_version.as_str())
    );
    let q = tags(&p, BucketRole::Quarantine, &k).await;
    assert_eq!(
        tag(&q, "intake-source-version"),
        Some(infected_version.as_str())
    );
    assert_eq!(tag(&q, "intake-reason"), Some("upload_reused"));
}

fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_300_mb_object_is_streamed_with_its_visibility_kept_alive_and_memory_bounded() {
    const SIZE: usize = 300 * 1024 * 1024;
    let clamd = ClamdFixture::start("400M").await.expect("clamd");
    let address = format!("address = \"tcp://{}\"", clamd.tcp_address());
    // A visibility timeout of 1 s, far shorter than the scan: only the heartbeat keeps the
    // message from being delivered again mid-scan.
    let p = Pipeline::start_with(|t| {
        t.replace("address = \"tcp://127.0.0.1:3310\"", &address)
            .replace(
                "visibility_timeout_secs = 300",
                "visibility_timeout_secs = 1",
            )
            .replace("max_size = \"100MiB\"", "max_size = \"1GiB\"")
    })
    .await;

    // Upload from a file, streamed, so the test itself never holds 300 MB either.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.txt");
    {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let line = b"an ordinary line of a very long, very harmless log file\n";
        let mut written = 0;
        while written < SIZE {
            file.write_all(line).unwrap();
            written += line.len();
        }
    }
    let k = key("tenant-a", "big.txt");
    p.aws
        .s3
        .put_object()
        .bucket(p.bucket(BucketRole::Uploads))
        .key(&k)
        .content_type("text/plain")
        .body(
            aws_sdk_s3::primitives::ByteStream::from_path(&path)
                .await
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    std::fs::remove_file(&path).unwrap();

    let validate = p.spawn_worker(Validate::new(&p.config), "v1").await;
    let validated = p.outcomes(1).await;
    validate.stop().await;
    assert_eq!(validated[0].outcome, "passed", "{validated:#?}");

    // Reset the peak-RSS counter, then scan: the peak above this level is what scanning costs.
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
    let idle_kib = proc_status_kib("VmRSS:");
    let scan = p.spawn_worker(Scan::from_config(&p.config), "s1").await;
    let scanned = p.outcomes(1).await;
    let stats = scan.stop().await;
    let peak_kib = proc_status_kib("VmHWM:");

    let outcome = &scanned[0];
    assert_eq!(outcome.outcome, "clean", "{outcome:#?}");
    assert_eq!(
        outcome.location.as_ref().unwrap().size,
        SIZE as u64 + (56 - SIZE as u64 % 56) % 56
    );
    let took_ms = outcome.timings.finished_ms - outcome.timings.started_ms;
    assert!(
        took_ms > 1_000,
        "the scan ({took_ms} ms) must outlast the 1 s visibility for this test to mean anything"
    );
    assert_eq!(
        stats.received, 1,
        "the message was never redelivered during the scan: {stats:?}"
    );
    let history = p
        .ledger
        .history(p.bucket(BucketRole::Uploads), &k)
        .await
        .unwrap();
    let scans: Vec<_> = history[0]
        .transitions
        .iter()
        .filter(|t| t.stage == "scan")
        .map(|t| (t.outcome.as_str(), t.attempt))
        .collect();
    assert_eq!(scans, [("clean", 1)], "one attempt, no takeover");
    let growth_mib = peak_kib.saturating_sub(idle_kib) / 1024;
    println!(
        "scan of {} MiB took {took_ms} ms; peak RSS {} MiB above idle ({} MiB)",
        SIZE >> 20,
        growth_mib,
        idle_kib / 1024
    );
    assert!(
        growth_mib < 64,
        "scanning 300 MB grew the process by {growth_mib} MiB"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn scanner_none_promotes_as_unscanned_and_says_so() {
    let p = Pipeline::start_with(|t| {
        t.replace(
            "kind = \"clamd\"\naddress = \"tcp://127.0.0.1:3310\"\ntimeout_secs = 120",
            "kind = \"none\"",
        )
    })
    .await;
    assert!(
        matches!(
            p.config.stages["scan"].scanner,
            Some(intake_core::config::ScannerConfig::None)
        ),
        "fixture drifted: scanner is not none"
    );
    let k = key("tenant-a", "dev.png");
    p.upload(&k, png(), "image/png").await;
    let validate = p.spawn_worker(Validate::new(&p.config), "v1").await;
    let scan = p.spawn_worker(Scan::from_config(&p.config), "s1").await;
    let outcomes = p.outcomes(2).await;
    validate.stop().await;
    scan.stop().await;
    let scanned = outcomes
        .iter()
        .find(|o| o.stage == "scan")
        .expect("scan outcome");
    assert_eq!(scanned.outcome, "clean");
    assert_eq!(scanned.extra["scan"]["verdict"], "unscanned");
    assert_eq!(
        tag(&tags(&p, BucketRole::Store, &k).await, "intake-scan"),
        Some("unscanned")
    );
}
