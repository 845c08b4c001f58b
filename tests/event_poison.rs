//! Malformed S3 events against a running validate worker on LocalStack: every class of
//! malformed field is refused on its first receive and lands in the validate DLQ with its
//! `intake-error-code`, never retried until the redrive policy moves it.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use intake_core::names::BucketRole;
use intake_core::state_machine::StageKind;
use intake_stage_validate::Validate;
use intake_testkit::{eventually, queues};
use serde_json::{Value, json};
use support::Pipeline;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../crates/core/tests/fixtures/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).unwrap()
}

/// Each case: a name (also written into the body, so its DLQ copy can be found), the body
/// and the code it must be refused with.
fn cases(uploads: &str) -> Vec<(&'static str, String, &'static str)> {
    let notification = |edit: &dyn Fn(&mut Value)| {
        let mut body = fixture("localstack-s3-put.json");
        body["Records"][0]["s3"]["bucket"]["name"] = json!(uploads);
        edit(&mut body);
        body
    };
    let eventbridge = |edit: &dyn Fn(&mut Value)| {
        let mut body = fixture("aws-docs-eventbridge-object-created.json");
        body["detail"]["bucket"]["name"] = json!(uploads);
        edit(&mut body);
        body
    };
    let object = |body: &mut Value, field: &str, v: Value| {
        body["Records"][0]["s3"]["object"][field] = v;
    };
    let mut cases: Vec<(&'static str, Value, &'static str)> = vec![
        // As aws-lambda-go events/testdata/s3-event.json sends it.
        (
            "sequencer-not-hex",
            notification(&|b| object(b, "sequencer", json!("Happy Sequencer"))),
            "bad_sequencer",
        ),
        (
            "sequencer-too-long",
            notification(&|b| object(b, "sequencer", json!("0".repeat(80)))),
            "bad_sequencer",
        ),
        (
            "size-negative",
            notification(&|b| object(b, "size", json!(-12))),
            "bad_size",
        ),
        (
            "size-string",
            notification(&|b| object(b, "size", json!("12"))),
            "bad_size",
        ),
        (
            "size-fraction",
            notification(&|b| object(b, "size", json!(12.5))),
            "bad_size",
        ),
        (
            "key-bad-escape",
            notification(&|b| object(b, "key", json!("tenant-a/u/%zz.png"))),
            "bad_key_encoding",
        ),
        (
            "key-too-long",
            notification(&|b| object(b, "key", json!("k".repeat(1100)))),
            "bad_key",
        ),
        (
            "version-id-not-url-ready",
            notification(&|b| object(b, "versionId", json!("v 1/../x"))),
            "bad_version_id",
        ),
        (
            "etag-control-character",
            notification(&|b| object(b, "eTag", json!("ab\tcd"))),
            "bad_etag",
        ),
        (
            "event-removed",
            notification(&|b| b["Records"][0]["eventName"] = json!("ObjectRemoved:Delete")),
            "unexpected_event",
        ),
        (
            "event-copy",
            notification(&|b| b["Records"][0]["eventName"] = json!("ObjectCreated:Copy")),
            "unexpected_event",
        ),
        (
            "event-version-1",
            notification(&|b| b["Records"][0]["eventVersion"] = json!("1.0")),
            "unsupported_event_version",
        ),
        (
            "event-source-other",
            notification(&|b| b["Records"][0]["eventSource"] = json!("minio:s3")),
            "wrong_event_source",
        ),
        // Another bucket with a bad sequencer: the bucket is checked first.
        (
            "foreign-bucket",
            notification(&|b| {
                b["Records"][0]["s3"]["bucket"]["name"] = json!("someone-elses-bucket");
                object(b, "sequencer", json!("Happy Sequencer"));
            }),
            "foreign_bucket",
        ),
        (
            "eventbridge-copy",
            eventbridge(&|b| b["detail"]["reason"] = json!("CopyObject")),
            "unexpected_event",
        ),
        (
            "eventbridge-deleted",
            eventbridge(&|b| b["detail-type"] = json!("Object Deleted")),
            "unexpected_event",
        ),
        (
            "eventbridge-sequencer",
            eventbridge(&|b| b["detail"]["object"]["sequencer"] = json!("xyz")),
            "bad_sequencer",
        ),
        (
            "eventbridge-size",
            eventbridge(&|b| b["detail"]["object"]["size"] = json!(-5)),
            "bad_size",
        ),
        (
            "eventbridge-version-id",
            eventbridge(&|b| b["detail"]["object"]["version-id"] = json!("a b")),
            "bad_version_id",
        ),
        (
            "eventbridge-foreign-bucket",
            eventbridge(&|b| b["detail"]["bucket"]["name"] = json!("someone-elses-bucket")),
            "foreign_bucket",
        ),
    ];
    // A Lambda SQS batch (powertools-lambda-python tests/events/s3SqsEvent.json) as a body.
    cases.push((
        "lambda-sqs-batch",
        fixture("powertools-python-s3-sqs-event.json"),
        "wrong_event_source",
    ));
    cases
        .into_iter()
        .map(|(name, mut body, code)| {
            // The marker: a field Intake does not read.
            body["intake-test-case"] = json!(name);
            (name, body.to_string(), code)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_malformed_class_is_poison_on_its_first_receive() {
    let p = Pipeline::start().await;
    let uploads = p.bucket(BucketRole::Uploads).to_owned();
    let cases = cases(&uploads);
    let queue = p.stage_queue_url(StageKind::Validate).await;
    // Provisioning configured the bucket notification: S3 sent its test event already,
    // which the worker acknowledges (it is received, neither retried nor poison).
    let worker = p.spawn_worker(Validate::new(&p.config), "w1").await;
    for (_, body, _) in &cases {
        p.send(&queue, body).await;
    }

    let dlq = p.dlq_url(StageKind::Validate).await;
    let found = std::sync::Mutex::new(BTreeMap::new());
    eventually(
        &format!("{} poison messages in the validate DLQ", cases.len()),
        Duration::from_secs(90),
        || async {
            for m in queues::take(&p.aws, &dlq, 1).await? {
                let body: Value = serde_json::from_str(m.body().unwrap_or_default())
                    .map_err(|e| format!("DLQ body is not JSON: {e}"))?;
                let name = body["intake-test-case"].as_str().unwrap_or("?").to_owned();
                let code = m
                    .message_attributes()
                    .and_then(|a| a.get("intake-error-code"))
                    .and_then(|v| v.string_value())
                    .unwrap_or("(no intake-error-code: moved by redrive after retries)")
                    .to_owned();
                let receives = m
                    .attributes()
                    .and_then(|a| {
                        a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                    })
                    .cloned()
                    .unwrap_or_default();
                found.lock().unwrap().insert(name, (code, receives));
            }
            let n = found.lock().unwrap().len();
            if n >= cases.len() {
                Ok(())
            } else {
                Err(format!("{n} so far"))
            }
        },
    )
    .await;
    let stats = worker.stop().await;
    let found = found.into_inner().unwrap();
    for (name, _, code) in &cases {
        let (got, receives) = found
            .get(*name)
            .unwrap_or_else(|| panic!("{name} not in the DLQ: {found:?}"));
        assert_eq!(got, code, "{name}");
        // Sent to the DLQ by the worker on the first receive, and received once there.
        assert_eq!(receives, "1", "{name}");
    }
    // One receive per message (the test event included, when S3 sent one), no retries.
    assert_eq!(stats.poisoned, cases.len() as u64, "{stats:?}");
    assert_eq!(stats.retried, 0, "{stats:?}");
    assert!(
        stats.received == stats.poisoned || stats.received == stats.poisoned + 1,
        "{stats:?}"
    );
    assert_eq!(
        p.depth(&queue).await,
        0,
        "nothing left on the validate queue"
    );
}
