//! `intake delete` as an operator runs it, against LocalStack: a catalog id and an
//! `s3://` key (of a version that never reached the catalog) each become one deletion
//! request on the deletion queue, naming the exact upload version; a target that matches
//! nothing fails without queueing anything.

use std::process::{Command, Output};
use std::time::Duration;

use intake_core::names::BucketRole;
use intake_core::state_machine::StageKind;
use intake_core::{DeletionRequest, PipelineConfig, ResourceNames};
use intake_store::{
    CatalogRecord, Completion, Ledger, ScanRecord, StageResult, StoredAt, VersionKey,
};
use intake_testkit::{LocalStack, queues, unique_pipeline_name};

const REPO_CONFIG: &str = include_str!("../../../pipeline.toml");

fn intake(args: &[&str], env: &[(&'static str, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_intake"));
    cmd.args(args)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("INTAKE_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run intake")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Moves `version` through `stage` into `state`, as a worker would.
async fn settle(ledger: &Ledger, version: &VersionKey, stage: &str, outcome: &str, state: &str) {
    ledger
        .begin_stage(version, stage, "w", Duration::from_secs(30))
        .await
        .unwrap();
    let result = StageResult {
        outcome: outcome.into(),
        code: None,
        detail: None,
        outcome_json: "{}".into(),
        started_ms: 1,
        finished_ms: 2,
    };
    let done = ledger
        .complete_stage(version, stage, "w", &result, state)
        .await
        .unwrap();
    assert_eq!(done, Completion::Recorded);
}

#[tokio::test(flavor = "multi_thread")]
async fn ids_and_keys_become_one_request_per_upload_version() {
    let localstack = LocalStack::start().await.expect("LocalStack");
    let dir = tempfile::tempdir().unwrap();
    let name = unique_pipeline_name();
    let text_config = REPO_CONFIG.replacen("name = \"intake\"", &format!("name = \"{name}\""), 1);
    let config_path = dir.path().join("pipeline.toml");
    std::fs::write(&config_path, &text_config).unwrap();
    let config = config_path.to_str().unwrap().to_owned();
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let mut env = localstack.env();
    env.push(("INTAKE_DATABASE_URL", url.clone()));
    let provision = intake(&["provision", "--config", &config], &env);
    assert_eq!(
        provision.status.code(),
        Some(0),
        "{}",
        text(&provision.stderr)
    );

    let pipeline = PipelineConfig::from_toml(&text_config, "pipeline.toml").unwrap();
    let names = ResourceNames::of(&pipeline);
    let uploads = names.bucket(BucketRole::Uploads).to_owned();
    let ledger = Ledger::connect(&url).await.unwrap();
    // A cataloged photo (found by its id) ...
    let photo = VersionKey::new(&uploads, "acme/user-1/0b7c3e1e-photo.png", "v-photo");
    let object_id = "0123456789abcdef0123456789abcdef";
    settle(&ledger, &photo, "archive", "archived", "done").await;
    let record = CatalogRecord {
        object_id: object_id.into(),
        upload: photo.clone(),
        tenant: Some("acme".into()),
        user: Some("user-1".into()),
        filename: Some("photo.png".into()),
        store: StoredAt {
            bucket: names.bucket(BucketRole::Store).to_owned(),
            key: photo.key.clone(),
            version: Some("s-photo".into()),
        },
        size: 10,
        content_type: Some("image/png".into()),
        class: Some("image".into()),
        sha256: "00".repeat(32),
        width: Some(1),
        height: Some(1),
        renditions: Vec::new(),
        scan: Some(ScanRecord {
            verdict: "clean".into(),
            engine: None,
            scanned_at: None,
        }),
        storage_class: "STANDARD".into(),
        archive_note: None,
        cataloged_ms: 1,
        updated_ms: 1,
    };
    assert!(ledger.catalog_insert(&record).await.unwrap());
    // ... and a quarantined file, known only to the ledger (found by its key).
    let infected = VersionKey::new(&uploads, "acme/user-1/1f2e-invoice.zip", "v-zip");
    settle(&ledger, &infected, "scan", "infected", "quarantined").await;
    ledger.close().await;

    let quarantined_uri = format!(
        "s3://{}/{}",
        names.bucket(BucketRole::Quarantine),
        infected.key
    );
    let out = intake(
        &[
            "delete",
            "--config",
            &config,
            "--requested-by",
            "ops",
            object_id,
            &quarantined_uri,
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.matches("queued deletion of").count(), 2, "{stdout}");

    let aws = localstack.clients();
    let queue_url = aws
        .sqs
        .get_queue_url()
        .queue_name(&names.stage(StageKind::Delete).queue)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let mut requests: Vec<DeletionRequest> = queues::take(&aws, &queue_url, 2)
        .await
        .unwrap()
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).expect("a deletion request"))
        .collect();
    requests.sort_by(|a, b| a.object.key.cmp(&b.object.key));
    assert_eq!(requests.len(), 2, "{requests:#?}");
    let named: Vec<(&str, &str, Option<&str>)> = requests
        .iter()
        .map(|r| {
            (
                r.object.key.as_str(),
                r.object.version_id.as_deref().unwrap(),
                r.object.tenant.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        named,
        [
            (photo.key.as_str(), "v-photo", Some("acme")),
            (infected.key.as_str(), "v-zip", None),
        ]
    );
    assert!(requests.iter().all(|r| r.object.bucket == uploads));
    assert!(requests.iter().all(|r| r.requested_by == "ops"));

    // Nothing matches: an error that says where to look, and nothing queued.
    let missing = format!("s3://{uploads}/acme/user-1/never-uploaded.png");
    let out = intake(&["delete", "--config", &config, &missing], &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("nothing in the ledger or the catalog matches"),
        "{}",
        text(&out.stderr)
    );
    let out = intake(&["delete", "--config", &config, "photo.png"], &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("neither an object id"),
        "{}",
        text(&out.stderr)
    );
    assert!(queues::take(&aws, &queue_url, 1).await.unwrap().is_empty());
}
