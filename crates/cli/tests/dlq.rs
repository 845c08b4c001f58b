//! `intake dlq` and `intake stats` as an operator runs them, against LocalStack and a
//! SQLite ledger. The scan DLQ gets the two kinds of message a DLQ holds: a poison message
//! the runtime moved (a body that is not JSON, with the `intake-error-*` attributes) and a
//! message SQS's redrive moved after retryable failures (validate's outcome, no attributes;
//! the ledger holds its `retry` transitions). `list` and `peek` explain both without
//! consuming them; `purge` refuses without a terminal or `--yes`, and removes both with it.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};
use intake_aws::AwsClients;
use intake_core::names::BucketRole;
use intake_core::object::ObjectRef;
use intake_core::outcome::Timings;
use intake_core::state_machine::StageKind;
use intake_core::{OutcomeMessage, PipelineConfig, ResourceNames};
use intake_store::{Begin, Ledger, VersionKey};
use intake_testkit::{LocalStack, unique_pipeline_name};
use serde_json::Value;

const REPO_CONFIG: &str = include_str!("../../../pipeline.toml");

fn intake(args: &[&str], env: &[(&'static str, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_intake"));
    cmd.args(args)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("INTAKE_CONFIG")
        // Not a terminal: what a script or CI sees.
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run intake")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// stdout of a successful run.
fn ok(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn json(out: &Output) -> Value {
    let stdout = ok(out);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn string_attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .unwrap()
}

/// (visible, not visible) as SQS reports them.
async fn depth(aws: &AwsClients, url: &str) -> (u64, u64) {
    let answer = aws
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let count =
        |name: QueueAttributeName| -> u64 { answer.attributes().unwrap()[&name].parse().unwrap() };
    (
        count(QueueAttributeName::ApproximateNumberOfMessages),
        count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn list_peek_and_purge_explain_poison_and_redriven_messages() {
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
    ok(&intake(&["provision", "--config", &config], &env));

    let pipeline = PipelineConfig::from_toml(&text_config, "pipeline.toml").unwrap();
    let names = ResourceNames::of(&pipeline);
    let uploads = names.bucket(BucketRole::Uploads).to_owned();
    let scan_dlq = names.stage(StageKind::Scan).dlq.clone();
    let scan_queue = names.stage(StageKind::Scan).queue.clone();
    let aws = localstack.clients();
    let dlq_url = aws
        .sqs
        .get_queue_url()
        .queue_name(&scan_dlq)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();

    // The redriven message: validate's outcome for a version whose scans failed twice,
    // retryably, and which SQS then moved to the DLQ (no attributes).
    let key = "acme/user-1/0b7c3e1e-1d3a-4b8e-9a55-2f0e6c7d8a9b-photo.png";
    let version = VersionKey::new(&uploads, key, "v-photo");
    let ledger = Ledger::connect(&url).await.unwrap();
    for attempt in 1..=2 {
        let worker = format!("w/{attempt}");
        let begin = ledger
            .begin_stage(&version, "scan", &worker, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(begin, Begin::Claimed { attempt });
        let detail = format!("clamd refused (attempt {attempt})");
        assert!(
            ledger
                .release_stage(&version, "scan", &worker, "scanner_unreachable", &detail)
                .await
                .unwrap()
        );
    }
    let first_failure_ms =
        ledger.history(&uploads, key).await.unwrap()[0].transitions[0].finished_ms;
    ledger.close().await;
    let outcome = OutcomeMessage {
        intake_outcome: 1,
        object: ObjectRef {
            bucket: uploads.clone(),
            key: key.into(),
            version_id: Some("v-photo".into()),
            etag: None,
            size: 10,
            tenant: Some("acme".into()),
            user: Some("user-1".into()),
            sequencer: None,
        },
        stage: "validate".into(),
        outcome: "passed".into(),
        code: None,
        detail: None,
        detected_type: Some("image/png".into()),
        class: Some("image".into()),
        location: None,
        timings: Timings {
            started_ms: 1,
            finished_ms: 2,
        },
        worker: "w".into(),
        extra: Default::default(),
    };
    let redriven_body = serde_json::to_string(&outcome).unwrap();
    aws.sqs
        .send_message()
        .queue_url(&dlq_url)
        .message_body(&redriven_body)
        .send()
        .await
        .unwrap();
    // The poison message, as the runtime's queue seam dead-letters it.
    aws.sqs
        .send_message()
        .queue_url(&dlq_url)
        .message_body("this is not JSON")
        .message_attributes("intake-error-code", string_attribute("not_json"))
        .message_attributes(
            "intake-error-reason",
            string_attribute("message body is not JSON (expected value at line 1 column 1)"),
        )
        .message_attributes("intake-source-queue", string_attribute(&scan_queue))
        .send()
        .await
        .unwrap();

    // list: the scan DLQ holds both, with both codes; the others are empty.
    let listed = json(&intake(
        &["dlq", "list", "--config", &config, "--json"],
        &env,
    ));
    let listed = listed.as_array().unwrap();
    let stages: Vec<&str> = listed
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "validate",
            "scan",
            "thumbnail",
            "catalog",
            "archive",
            "delete"
        ]
    );
    let scan = listed.iter().find(|s| s["stage"] == "scan").unwrap();
    assert_eq!(scan["dlq"], scan_dlq.as_str());
    assert_eq!(scan["depth"], 2, "{scan}");
    assert_eq!(scan["codes"]["scanner_unreachable"], 1, "{scan}");
    assert_eq!(scan["codes"]["not_json"], 1, "{scan}");
    assert!(scan["oldest_age_ms"].as_i64().unwrap() >= 0, "{scan}");
    for other in listed.iter().filter(|s| s["stage"] != "scan") {
        assert_eq!(other["depth"], 0, "{other}");
        assert!(other["oldest_age_ms"].is_null(), "{other}");
    }
    let table = ok(&intake(&["dlq", "list", "--config", &config], &env));
    let scan_row = table
        .lines()
        .find(|l| l.contains(&scan_dlq))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        scan_row.contains("not_json×1") && scan_row.contains("scanner_unreachable×1"),
        "{table}"
    );

    // peek: both decoded, with their codes, objects and receive counts (every receive
    // counts: the two lists' peeks and this one).
    let peeked = json(&intake(
        &["dlq", "peek", "scan", "--config", &config, "--json"],
        &env,
    ));
    let peeked = peeked.as_array().unwrap();
    assert_eq!(peeked.len(), 2, "{peeked:#?}");
    let poison = peeked.iter().find(|m| m["source"] == "poison").unwrap();
    assert_eq!(poison["stage"], "scan");
    assert_eq!(poison["code"], "not_json");
    assert_eq!(
        poison["reason"],
        "message body is not JSON (expected value at line 1 column 1)"
    );
    assert!(poison["object"].is_null(), "{poison}");
    assert_eq!(poison["source_queue"], scan_queue.as_str());
    assert_eq!(poison["body"], "this is not JSON");
    assert_eq!(poison["receive_count"], 3, "{poison}");
    assert_eq!(poison["first_failure_ms"], poison["sent_ms"], "{poison}");
    let redriven = peeked.iter().find(|m| m["source"] == "redrive").unwrap();
    assert_eq!(redriven["code"], "scanner_unreachable");
    assert_eq!(
        redriven["reason"], "clamd refused (attempt 2)",
        "the last retry"
    );
    assert_eq!(redriven["object"]["bucket"], uploads.as_str());
    assert_eq!(redriven["object"]["key"], key);
    assert_eq!(redriven["object"]["version"], "v-photo");
    assert_eq!(redriven["tenant"], "acme");
    assert_eq!(redriven["receive_count"], 3, "{redriven}");
    assert_eq!(redriven["first_failure_ms"], first_failure_ms);
    assert_eq!(redriven["body"], redriven_body.as_str());

    // Peeking consumed nothing: both are still there, and visible at once.
    assert_eq!(depth(&aws, &dlq_url).await, (2, 0));

    // The table: one row per message, objects as s3:// URIs.
    let table = ok(&intake(&["dlq", "peek", "scan", "--config", &config], &env));
    assert!(
        table.contains(&format!("s3://{uploads}/")) && table.contains("scanner_unreachable"),
        "{table}"
    );
    assert!(
        table.contains("not_json") && table.contains("poison"),
        "{table}"
    );
    assert_eq!(depth(&aws, &dlq_url).await, (2, 0));

    // An unknown stage names the valid ones.
    let out = intake(&["dlq", "peek", "scna", "--config", &config], &env);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("validate, scan, thumbnail, catalog, archive, delete"),
        "{}",
        text(&out.stderr)
    );

    // replay with a filter: a dry run counts the redriven scan failure and moves nothing;
    // then it alone goes back to the scan queue, without the DLQ's attributes.
    let stdout = ok(&intake(
        &[
            "dlq",
            "replay",
            "scan",
            "--filter",
            "code=scanner_unreachable",
            "--dry-run",
            "--requested-by",
            "ops",
            "--config",
            &config,
        ],
        &env,
    ));
    assert!(stdout.contains("dry run: 1 message(s)"), "{stdout}");
    let queue_url = aws
        .sqs
        .get_queue_url()
        .queue_name(&scan_queue)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    assert_eq!(depth(&aws, &queue_url).await, (0, 0));
    let stdout = ok(&intake(
        &[
            "dlq",
            "replay",
            "scan",
            "--filter",
            "code=scanner_unreachable",
            "--requested-by",
            "ops",
            "--config",
            &config,
        ],
        &env,
    ));
    assert!(stdout.contains("replayed 1 message(s)"), "{stdout}");
    let back = intake_testkit::queues::take(&aws, &queue_url, 2)
        .await
        .unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].body(), Some(redriven_body.as_str()));
    let out = intake(
        &[
            "dlq",
            "replay",
            "scan",
            "--filter",
            "colour=red",
            "--config",
            &config,
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("key-prefix"),
        "{}",
        text(&out.stderr)
    );
    let ledger = Ledger::connect(&url).await.unwrap();
    let replays = ledger.replays(Some("scan")).await.unwrap();
    ledger.close().await;
    assert_eq!(replays.len(), 2, "{replays:#?}");
    assert!(replays[1].dry_run && !replays[0].dry_run);
    assert!(replays.iter().all(|r| r.requested_by == "ops"));
    // Put it back in the DLQ for the purge below.
    aws.sqs
        .send_message()
        .queue_url(&dlq_url)
        .message_body(&redriven_body)
        .send()
        .await
        .unwrap();

    // purge without a terminal and without --yes: refused, nothing removed.
    let out = intake(&["dlq", "purge", "scan", "--config", &config], &env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--yes") && stderr.contains(&scan_dlq),
        "{stderr}"
    );
    assert_eq!(depth(&aws, &dlq_url).await, (2, 0));

    // With --yes: both removed, and it says so.
    let stdout = ok(&intake(
        &["dlq", "purge", "scan", "--yes", "--config", &config],
        &env,
    ));
    assert!(
        stdout.contains(&format!("Removed 2 messages from {scan_dlq}")),
        "{stdout}"
    );
    assert_eq!(depth(&aws, &dlq_url).await, (0, 0));
    let stdout = ok(&intake(
        &["dlq", "purge", "scan", "--yes", "--config", &config],
        &env,
    ));
    assert!(stdout.contains("nothing to purge"), "{stdout}");

    // stats: every stage, the two retries of scan in the window, empty queues now.
    let stats = json(&intake(
        &["stats", "--since", "1h", "--config", &config, "--json"],
        &env,
    ));
    let rows = stats["stages"].as_array().unwrap();
    let stages: Vec<&str> = rows.iter().map(|s| s["stage"].as_str().unwrap()).collect();
    assert_eq!(
        stages,
        [
            "validate",
            "scan",
            "thumbnail",
            "catalog",
            "archive",
            "delete"
        ]
    );
    let scan = rows.iter().find(|s| s["stage"] == "scan").unwrap();
    assert_eq!(scan["retried"], 2, "{scan}");
    assert_eq!(scan["processed"], 0, "{scan}");
    assert!(scan["p50_ms"].is_null(), "{scan}");
    assert_eq!(scan["dlq_depth"], 0, "{scan}");
    assert_eq!(scan["queue"], scan_queue.as_str());
    let table = ok(&intake(&["stats", "--config", &config], &env));
    assert!(
        table.contains("p99") && table.contains("thumbnail"),
        "{table}"
    );
    let out = intake(
        &["stats", "--since", "yesterday", "--config", &config],
        &env,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}
