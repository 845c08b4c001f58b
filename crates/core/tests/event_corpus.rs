//! Every S3 event body in `fixtures/events/` (after bodies published by AWS and the AWS
//! SDKs; `SOURCES.md` names each source) and every malformed class Intake knows, with what
//! a worker does with it on the first receive: pass it on, acknowledge it as a test event,
//! or refuse it as poison with a fixed code.

use intake_core::event::{Incoming, POISON_CODES, Poison, parse_body, parse_body_from};
use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// One object handed to the stage: (bucket, key, version id, size, sequencer).
type Object = (
    &'static str,
    &'static str,
    Option<&'static str>,
    u64,
    Option<&'static str>,
);

/// What a worker does with a body.
#[derive(Debug)]
enum Expect {
    /// Objects handed to the stage: (bucket, key, version id, size, sequencer).
    Passed(&'static [Object]),
    TestEvent,
    Poison(&'static str),
}

/// (fixture, the bucket the pipeline would own, what happens). Bodies whose bucket is the
/// pipeline's show every field check; [`a_foreign_bucket_is_refused_before_any_other_field`]
/// replays the same table with another pipeline bucket.
const CORPUS: &[(&str, &str, Expect)] = &[
    (
        "aws-docs-s3-put-plus-space.json",
        "acme-intake-uploads",
        Expect::Passed(&[(
            "acme-intake-uploads",
            "tenant-a/user-1/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b-red flower+1 ü.png",
            Some("096fKKXTRTtl3on89fVO.nfljtsv6qko"),
            1024,
            Some("0055AED6DCD90281E5"),
        )]),
    ),
    (
        "aws-docs-s3-test-event.json",
        "amzn-s3-demo-bucket",
        Expect::TestEvent,
    ),
    (
        "localstack-s3-test-event.json",
        "intake-uploads",
        Expect::TestEvent,
    ),
    (
        "aws-docs-eventbridge-object-created.json",
        "DOC-EXAMPLE-BUCKET1",
        Expect::Passed(&[(
            "DOC-EXAMPLE-BUCKET1",
            "example-key",
            Some("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"),
            5,
            Some("617f08299329d189"),
        )]),
    ),
    (
        "aws-lambda-dotnet-cloudwatchevents-s3objectrestore.json",
        "DOC-EXAMPLE-BUCKET1",
        Expect::Poison("unexpected_event"),
    ),
    (
        "aws-lambda-dotnet-s3-event.json",
        "sourcebucket",
        Expect::Passed(&[
            (
                "sourcebucket",
                "HappyFace.jpg",
                None,
                1024,
                Some("0A1B2C3D4E5F678901"),
            ),
            (
                "sourcebucket",
                "New File.jpg",
                None,
                1024,
                Some("0A1B2C3D4E5F678901"),
            ),
        ]),
    ),
    // "Happy Sequencer" is not hexadecimal: before, it reached the ledger's sequencer
    // check and failed there as a retryable store error on every receive.
    (
        "aws-lambda-go-s3-event.json",
        "sourcebucket",
        Expect::Poison("bad_sequencer"),
    ),
    (
        "aws-lambda-go-s3-glacier-event.json",
        "example-bucket",
        Expect::Poison("unexpected_event"),
    ),
    (
        "aws-lambda-go-s3-intelligenttier-event.json",
        "example-bucket",
        Expect::Poison("unexpected_event"),
    ),
    (
        "aws-lambda-go-s3-lifecycle-event.json",
        "example-bucket",
        Expect::Poison("unexpected_event"),
    ),
    (
        "aws-lambda-go-s3-replication-event.json",
        "amzn-s3-demo-bucket1",
        Expect::Poison("unexpected_event"),
    ),
    (
        "aws-lambda-go-s3-batch-job-event-request-2.0.json",
        "awsexamplebucket",
        Expect::Poison("unknown_message"),
    ),
    (
        // `versionId: ""` is an unversioned object: the ETag identifies the version.
        "aws-lambda-java-s3-event.json",
        "example-bucket",
        Expect::Passed(&[(
            "example-bucket",
            "test/key",
            None,
            1024,
            Some("0A1B2C3D4E5F678901"),
        )]),
    ),
    (
        "powertools-python-s3-event.json",
        "lambda-artifacts-deafc19498e3f2df",
        Expect::Passed(&[(
            "lambda-artifacts-deafc19498e3f2df",
            "b21b84d653bb07b05b1e6b33684dc11b",
            None,
            1305107,
            Some("0C0F6F405D6ED209E1"),
        )]),
    ),
    (
        "powertools-python-s3-event-glacier.json",
        "lambda-artifacts-deafc19498e3f2df",
        Expect::Passed(&[(
            "lambda-artifacts-deafc19498e3f2df",
            "b21b84d653bb07b05b1e6b33684dc11b",
            None,
            1305107,
            Some("0C0F6F405D6ED209E1"),
        )]),
    ),
    (
        "powertools-python-s3-event-delete-object.json",
        "lambda-artifacts-deafc19498e3f2df",
        Expect::Poison("unexpected_event"),
    ),
    (
        "powertools-python-s3-sqs-event.json",
        "xxx",
        Expect::Poison("wrong_event_source"),
    ),
    (
        "powertools-python-s3-sqs-event-body.json",
        "xxx",
        Expect::Passed(&[(
            "xxx",
            "test.pdf",
            Some("yd3d4HaWOT2zguDLvIQLU6ptDTwKBnQV"),
            104681,
            Some("00643717F9F8B85354"),
        )]),
    ),
    (
        "powertools-python-s3-eventbridge-object-created.json",
        "example-bucket",
        Expect::Passed(&[(
            "example-bucket",
            "IMG_m7fzo3.jpg",
            None,
            184662,
            Some("006408CAD69598B05E"),
        )]),
    ),
    (
        "powertools-python-s3-eventbridge-object-deleted.json",
        "example-bucket",
        Expect::Poison("unexpected_event"),
    ),
    (
        "powertools-python-s3-eventbridge-object-expired.json",
        "example-bucket",
        Expect::Poison("unexpected_event"),
    ),
    (
        "powertools-python-s3-object-event-iam-user.json",
        "myap",
        Expect::Poison("unknown_message"),
    ),
    (
        "powertools-typescript-s3-lifecycle-event.json",
        "amzn-s3-demo-bucket",
        Expect::Poison("unexpected_event"),
    ),
    (
        // Captured from LocalStack 4.13.1 (S3 -> EventBridge -> rule -> SQS). Its sequencer
        // is the same constant on every event: equal sequencers are never stale.
        "localstack-eventbridge-object-created.json",
        "probe-uploads",
        Expect::Passed(&[(
            "probe-uploads",
            "t/u/red flower+1 100%.png",
            Some("AaI7RKDJxP85v7G8O3rRNUMafc5QvXoY"),
            5,
            Some("0062E99A88DC407460"),
        )]),
    ),
    (
        "localstack-s3-put.json",
        "intake-uploads",
        Expect::Passed(&[(
            "intake-uploads",
            "tenant-a/user-1/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b-red flower+1 ü.png",
            Some("AaIQj0nHNe87QXUgB4eFv6O5SMvNdmIu"),
            12,
            Some("0055AED6DCD90281E5"),
        )]),
    ),
];

fn check(name: &str, got: Result<Incoming, Poison>, expect: &Expect) {
    match (expect, got) {
        (Expect::TestEvent, Ok(Incoming::S3TestEvent)) => {}
        (Expect::Passed(want), Ok(Incoming::S3(objects))) => {
            let got: Vec<_> = objects
                .iter()
                .map(|o| {
                    (
                        o.bucket.as_str(),
                        o.key.as_str(),
                        o.version_id.as_deref(),
                        o.size,
                        o.sequencer.as_deref(),
                    )
                })
                .collect();
            assert_eq!(got, want.to_vec(), "{name}");
        }
        (Expect::Poison(code), Err(poison)) => {
            assert_eq!(poison.code, *code, "{name}: {poison}");
            assert!(
                poison.reason.len() > 20,
                "{name}: reason too thin: {poison}"
            );
        }
        (expect, got) => panic!("{name}: expected {expect:?}, got {got:?}"),
    }
}

#[test]
fn every_published_body_ends_passed_acknowledged_or_poison_with_its_code() {
    let listed: Vec<_> = CORPUS.iter().map(|(f, _, _)| *f).collect();
    for (file, bucket, expect) in CORPUS {
        check(file, parse_body_from(&fixture(file), bucket), expect);
        // Without a bucket to compare with (tools, tests), the answer is the same.
        check(file, parse_body(&fixture(file)), expect);
    }
    // Every fixture is in the table: a new one cannot be added without saying its fate.
    let dir = format!("{}/tests/fixtures/events", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".json") && name != "localstack-sns-envelope.json" {
            assert!(listed.contains(&name.as_str()), "{name} is not in CORPUS");
        }
    }
}

#[test]
fn a_foreign_bucket_is_refused_before_any_other_field() {
    for (file, _, expect) in CORPUS {
        let got = parse_body_from(&fixture(file), "another-pipelines-uploads");
        match expect {
            // Test events are acknowledged whatever their bucket; bodies that are not S3
            // events, or whose envelope is not S3's, are refused for that first.
            Expect::TestEvent => assert_eq!(got, Ok(Incoming::S3TestEvent), "{file}"),
            Expect::Poison(code @ ("unknown_message" | "wrong_event_source")) => {
                assert_eq!(got.unwrap_err().code, *code, "{file}")
            }
            // Everything else, including bad sequencers and deletions, is foreign first.
            _ => {
                let poison = got.expect_err(file);
                assert_eq!(poison.code, "foreign_bucket", "{file}: {poison}");
                assert!(
                    poison.reason.contains("another-pipelines-uploads"),
                    "{poison}"
                );
            }
        }
    }
}

/// A valid notification and a valid EventBridge event, for mutating one field at a time.
fn notification() -> Value {
    serde_json::from_str(&fixture("localstack-s3-put.json")).unwrap()
}

fn eventbridge() -> Value {
    serde_json::from_str(&fixture("aws-docs-eventbridge-object-created.json")).unwrap()
}

fn set(mut body: Value, pointer: &str, value: Value) -> String {
    *body
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer}")) = value;
    body.to_string()
}

fn remove(mut body: Value, parent: &str, field: &str) -> String {
    body.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap()
        .remove(field);
    body.to_string()
}

#[test]
fn each_malformed_field_is_poison_with_its_own_code() {
    const N: &str = "/Records/0";
    const O: &str = "/Records/0/s3/object";
    const D: &str = "/detail/object";
    let long_key = "k".repeat(1025);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "sequencer not hex",
            set(
                notification(),
                &format!("{O}/sequencer"),
                json!("0055AED6DCD9028XYZ"),
            ),
            "bad_sequencer",
        ),
        (
            "sequencer too long",
            set(
                notification(),
                &format!("{O}/sequencer"),
                json!("0".repeat(65)),
            ),
            "bad_sequencer",
        ),
        (
            "sequencer empty",
            set(notification(), &format!("{O}/sequencer"), json!("")),
            "bad_sequencer",
        ),
        (
            "sequencer a number",
            set(notification(), &format!("{O}/sequencer"), json!(12)),
            "bad_sequencer",
        ),
        (
            "size negative",
            set(notification(), &format!("{O}/size"), json!(-1)),
            "bad_size",
        ),
        (
            "size fractional",
            set(notification(), &format!("{O}/size"), json!(1.5)),
            "bad_size",
        ),
        (
            "size a string",
            set(notification(), &format!("{O}/size"), json!("12")),
            "bad_size",
        ),
        (
            "size past i64",
            set(notification(), &format!("{O}/size"), json!(u64::MAX)),
            "bad_size",
        ),
        (
            "size as a huge float",
            set(notification(), &format!("{O}/size"), json!(1e300)),
            "bad_size",
        ),
        (
            "key bad escape",
            set(notification(), &format!("{O}/key"), json!("a%zz.png")),
            "bad_key_encoding",
        ),
        (
            "key not UTF-8",
            set(notification(), &format!("{O}/key"), json!("%FF%FE.png")),
            "bad_key_encoding",
        ),
        (
            "key empty",
            set(notification(), &format!("{O}/key"), json!("")),
            "bad_key",
        ),
        (
            "key over 1024 bytes",
            set(notification(), &format!("{O}/key"), json!(long_key)),
            "bad_key",
        ),
        (
            "key a number",
            set(notification(), &format!("{O}/key"), json!(7)),
            "bad_key",
        ),
        (
            "version id with a space",
            set(notification(), &format!("{O}/versionId"), json!("v 1")),
            "bad_version_id",
        ),
        (
            "version id with a slash",
            set(notification(), &format!("{O}/versionId"), json!("../v1")),
            "bad_version_id",
        ),
        (
            "version id too long",
            set(
                notification(),
                &format!("{O}/versionId"),
                json!("v".repeat(1025)),
            ),
            "bad_version_id",
        ),
        (
            "version id a number",
            set(notification(), &format!("{O}/versionId"), json!(3)),
            "bad_version_id",
        ),
        (
            "etag with a newline",
            set(notification(), &format!("{O}/eTag"), json!("abc\ndef")),
            "bad_etag",
        ),
        (
            "event name removed",
            set(
                notification(),
                &format!("{N}/eventName"),
                json!("ObjectRemoved:Delete"),
            ),
            "unexpected_event",
        ),
        (
            "event name copy",
            set(
                notification(),
                &format!("{N}/eventName"),
                json!("ObjectCreated:Copy"),
            ),
            "unexpected_event",
        ),
        (
            "event name unknown created",
            set(
                notification(),
                &format!("{N}/eventName"),
                json!("ObjectCreated:Teleport"),
            ),
            "unexpected_event",
        ),
        (
            "event name missing",
            remove(notification(), N, "eventName"),
            "unexpected_event",
        ),
        (
            "event version 1",
            set(notification(), &format!("{N}/eventVersion"), json!("1.0")),
            "unsupported_event_version",
        ),
        (
            "event version 3",
            set(notification(), &format!("{N}/eventVersion"), json!("3.0")),
            "unsupported_event_version",
        ),
        (
            "event version missing",
            remove(notification(), N, "eventVersion"),
            "unsupported_event_version",
        ),
        (
            "event source minio",
            set(
                notification(),
                &format!("{N}/eventSource"),
                json!("minio:s3"),
            ),
            "wrong_event_source",
        ),
        (
            "event source missing",
            remove(notification(), N, "eventSource"),
            "wrong_event_source",
        ),
        (
            "bucket name empty",
            set(notification(), &format!("{N}/s3/bucket/name"), json!("")),
            "bad_bucket",
        ),
        (
            "bucket name with a slash",
            set(notification(), &format!("{N}/s3/bucket/name"), json!("a/b")),
            "bad_bucket",
        ),
        (
            "bucket name missing",
            remove(notification(), &format!("{N}/s3/bucket"), "name"),
            "bad_bucket",
        ),
        (
            "no s3 object",
            remove(notification(), &format!("{N}/s3"), "object"),
            "bad_s3_event",
        ),
        (
            "records not a list",
            json!({"Records": {"a": 1}}).to_string(),
            "bad_s3_event",
        ),
        (
            "no records",
            json!({"Records": []}).to_string(),
            "bad_s3_event",
        ),
        (
            "record not an object",
            json!({"Records": [1]}).to_string(),
            "bad_s3_event",
        ),
        (
            "EB copy",
            set(eventbridge(), "/detail/reason", json!("CopyObject")),
            "unexpected_event",
        ),
        (
            "EB reason missing",
            remove(eventbridge(), "/detail", "reason"),
            "unexpected_event",
        ),
        (
            "EB object deleted",
            set(eventbridge(), "/detail-type", json!("Object Deleted")),
            "unexpected_event",
        ),
        (
            "EB source ec2",
            set(eventbridge(), "/source", json!("aws.ec2")),
            "wrong_event_source",
        ),
        (
            "EB version 1",
            set(eventbridge(), "/version", json!("1")),
            "unsupported_event_version",
        ),
        (
            "EB detail version 1",
            set(eventbridge(), "/detail/version", json!("1")),
            "unsupported_event_version",
        ),
        (
            "EB sequencer not hex",
            set(
                eventbridge(),
                &format!("{D}/sequencer"),
                json!("Happy Sequencer"),
            ),
            "bad_sequencer",
        ),
        (
            "EB size string",
            set(eventbridge(), &format!("{D}/size"), json!("5")),
            "bad_size",
        ),
        (
            "EB version id bad",
            set(eventbridge(), &format!("{D}/version-id"), json!("a b")),
            "bad_version_id",
        ),
        (
            "EB key empty",
            set(eventbridge(), &format!("{D}/key"), json!("")),
            "bad_key",
        ),
        (
            "EB key too long",
            set(eventbridge(), &format!("{D}/key"), json!("é".repeat(513))),
            "bad_key",
        ),
        (
            "EB key bad escape",
            set(eventbridge(), &format!("{D}/key"), json!("a%G1")),
            "bad_key_encoding",
        ),
        (
            "EB bucket missing",
            remove(eventbridge(), "/detail", "bucket"),
            "bad_bucket",
        ),
        (
            "EB detail not an object",
            set(eventbridge(), "/detail", json!("x")),
            "bad_s3_event",
        ),
        (
            "body over 1 MiB",
            format!("{{\"pad\": \"{}\"}}", "x".repeat(1 << 20)),
            "body_too_large",
        ),
    ];
    for (what, body, code) in cases {
        let poison = parse_body(&body).expect_err(what);
        assert_eq!(poison.code, code, "{what}: {poison}");
        assert!(
            POISON_CODES.contains(&poison.code),
            "{what}: {}",
            poison.code
        );
        assert!(
            poison.reason.len() <= 400,
            "{what}: reason not clipped: {poison}"
        );
    }
}

#[test]
fn the_first_bad_record_of_several_is_named() {
    let mut body = notification();
    let mut second = body["Records"][0].clone();
    second["s3"]["object"]["sequencer"] = json!("nope");
    body["Records"].as_array_mut().unwrap().push(second);
    let poison = parse_body(&body.to_string()).unwrap_err();
    assert_eq!(poison.code, "bad_sequencer");
    assert!(poison.reason.starts_with("record 1: "), "{poison}");
}

#[test]
fn eventbridge_keys_are_decoded_as_notification_keys_and_sns_envelopes_are_unwrapped() {
    // As LocalStack 4.13.1 sends them (fixture captured from it), and as Powertools for
    // Python reads them: URL-encoded, `+` a space.
    let Ok(Incoming::S3(objects)) =
        parse_body(&fixture("localstack-eventbridge-object-created.json"))
    else {
        panic!("LocalStack's EventBridge body")
    };
    assert_eq!(objects[0].key, "t/u/red flower+1 100%.png");
    let body = set(
        eventbridge(),
        "/detail/object/key",
        json!("t/u/a+b%2Bc.jpg"),
    );
    let Ok(Incoming::S3(objects)) = parse_body(&body) else {
        panic!("{body}")
    };
    assert_eq!(objects[0].key, "t/u/a b+c.jpg");
    let bad = set(eventbridge(), "/detail/object/key", json!("t/u/%zz.jpg"));
    assert_eq!(parse_body(&bad).unwrap_err().code, "bad_key_encoding");

    // EventBridge -> SNS -> SQS without raw delivery: the event is the envelope's Message.
    let mut envelope: Value =
        serde_json::from_str(&fixture("localstack-sns-envelope.json")).unwrap();
    envelope["Message"] = json!(fixture(
        "powertools-python-s3-eventbridge-object-created.json"
    ));
    let Ok(Incoming::S3(objects)) = parse_body_from(&envelope.to_string(), "example-bucket") else {
        panic!("SNS-wrapped EventBridge event not accepted")
    };
    assert_eq!(objects[0].key, "IMG_m7fzo3.jpg");
    assert_eq!(
        parse_body_from(&envelope.to_string(), "other")
            .unwrap_err()
            .code,
        "foreign_bucket"
    );
    // A notification in an SNS envelope gets the same checks.
    envelope["Message"] = json!(fixture("aws-lambda-go-s3-event.json"));
    assert_eq!(
        parse_body_from(&envelope.to_string(), "sourcebucket")
            .unwrap_err()
            .code,
        "bad_sequencer"
    );
}

#[test]
fn every_poison_code_is_documented() {
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/events.md"))
            .expect("docs/events.md");
    for code in POISON_CODES {
        assert!(
            docs.contains(&format!("`{code}`")),
            "docs/events.md does not explain `{code}`"
        );
    }
}
