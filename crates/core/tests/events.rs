//! Event parsing over real captured message bodies (LocalStack 4.13.1 and the AWS
//! documentation's format), plus the poison cases.

use intake_core::ObjectRef;
use intake_core::event::{Incoming, compare_sequencers, parse_body};
use intake_core::outcome::{OutcomeMessage, Timings};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect(name)
}

#[test]
fn s3_records_decode_keys_and_carry_version_and_sequencer() {
    let cases = [
        // LocalStack encodes a space as %20, AWS as '+': both decode to the same key.
        (
            "localstack-s3-put.json",
            "intake-uploads",
            "AaIQj0nHNe87QXUgB4eFv6O5SMvNdmIu",
            12,
        ),
        (
            "aws-docs-s3-put-plus-space.json",
            "acme-intake-uploads",
            "096fKKXTRTtl3on89fVO.nfljtsv6qko",
            1024,
        ),
    ];
    for (file, bucket, version, size) in cases {
        let Ok(Incoming::S3(objects)) = parse_body(&fixture(file)) else {
            panic!("{file}: not an S3 event")
        };
        assert_eq!(objects.len(), 1, "{file}");
        let o = &objects[0];
        assert_eq!(o.bucket, bucket, "{file}");
        assert_eq!(
            o.key, "tenant-a/user-1/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b-red flower+1 ü.png",
            "{file}"
        );
        assert_eq!(o.version_id.as_deref(), Some(version), "{file}");
        assert_eq!(o.size, size, "{file}");
        assert_eq!(o.sequencer.as_deref(), Some("0055AED6DCD90281E5"), "{file}");
    }
}

#[test]
fn test_events_are_recognised() {
    assert_eq!(
        parse_body(&fixture("localstack-s3-test-event.json")),
        Ok(Incoming::S3TestEvent)
    );
}

#[test]
fn sns_envelopes_are_unwrapped() {
    // The captured envelope carries a non-Intake payload: unwrapped, then refused by name.
    let err = parse_body(&fixture("localstack-sns-envelope.json")).unwrap_err();
    assert_eq!(err.code, "unknown_message");

    let outcome = OutcomeMessage {
        intake_outcome: 1,
        object: ObjectRef {
            bucket: "b".into(),
            key: "t/u/k".into(),
            version_id: Some("v1".into()),
            etag: None,
            size: 5,
            tenant: Some("t".into()),
            user: Some("u".into()),
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
    let raw = serde_json::to_string(&outcome).unwrap();
    assert_eq!(
        parse_body(&raw),
        Ok(Incoming::Outcome(Box::new(outcome.clone())))
    );
    let mut envelope: serde_json::Value =
        serde_json::from_str(&fixture("localstack-sns-envelope.json")).unwrap();
    envelope["Message"] = raw.into();
    assert_eq!(
        parse_body(&envelope.to_string()),
        Ok(Incoming::Outcome(Box::new(outcome)))
    );
}

#[test]
fn poison_bodies_name_what_is_wrong() {
    let bad_escape = fixture("localstack-s3-put.json").replace("red%20flower", "red%zzflower");
    let cases = [
        ("not json at all", "not_json"),
        ("{}", "unknown_message"),
        ("{\"Records\": []}", "bad_s3_event"),
        // A record without the eventSource every S3 record carries.
        (
            "{\"Records\": [{\"eventName\": \"ObjectCreated:Put\"}]}",
            "wrong_event_source",
        ),
        (bad_escape.as_str(), "bad_key_encoding"),
        (
            "{\"Type\": \"Notification\", \"Message\": \"{not json\"}",
            "not_json",
        ),
        ("{\"intake_outcome\": 1, \"stage\": 3}", "bad_outcome"),
    ];
    for (body, code) in cases {
        let err = parse_body(body).expect_err(body);
        assert_eq!(err.code, code, "{body}: {err}");
        assert!(!err.reason.is_empty());
    }
    let deleted =
        fixture("localstack-s3-put.json").replace("ObjectCreated:Put", "ObjectRemoved:Delete");
    assert_eq!(parse_body(&deleted).unwrap_err().code, "unexpected_event");
}

#[test]
fn sequencers_compare_after_zero_padding() {
    use std::cmp::Ordering::*;
    assert_eq!(
        compare_sequencers("0055AED6DCD90281E5", "0055AED6DCD90281E6"),
        Less
    );
    assert_eq!(
        compare_sequencers("FF", "0100"),
        Less,
        "shorter is padded, not compared as text"
    );
    assert_eq!(compare_sequencers("00ab", "AB"), Equal);
}

#[test]
fn deletion_requests_round_trip_and_must_name_a_version() {
    let object = ObjectRef {
        bucket: "intake-uploads".into(),
        key: "tenant-a/user-1/photo.jpg".into(),
        version_id: Some("v1".into()),
        etag: None,
        size: 0,
        tenant: Some("tenant-a".into()),
        user: None,
        sequencer: None,
    };
    let request = intake_core::DeletionRequest::new(object.clone(), "ops", 1_700_000_000_000);
    let body = serde_json::to_string(&request).unwrap();
    let Ok(Incoming::Delete(parsed)) = parse_body(&body) else {
        panic!("not a deletion request: {body}")
    };
    assert_eq!(*parsed, request);

    let unversioned = intake_core::DeletionRequest::new(
        ObjectRef {
            version_id: None,
            ..object
        },
        "ops",
        0,
    );
    let poison = parse_body(&serde_json::to_string(&unversioned).unwrap()).unwrap_err();
    assert_eq!(poison.code, "bad_deletion");
    assert!(
        poison.reason.contains("names no version"),
        "{}",
        poison.reason
    );

    let poison = parse_body(r#"{"intake_delete": 1, "object": "photo.jpg"}"#).unwrap_err();
    assert_eq!(poison.code, "bad_deletion");
}
