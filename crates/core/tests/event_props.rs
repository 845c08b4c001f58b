//! Property tests of the event parser and the key decoder over hostile input: arbitrary
//! bytes, arbitrary JSON, deep nesting, huge numbers and strings, and one-field mutations
//! of valid S3 bodies. Nothing may panic or take long, and every refusal is a [`Poison`]
//! with one of the documented codes and a reason.

use std::time::{Duration, Instant};

use intake_core::event::{Incoming, POISON_CODES, parse_body, parse_body_from};
use intake_core::s3_key::{KeyDecodeError, decode_notification_key};
use proptest::prelude::*;
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The parser's whole contract on one body: an answer, quickly; a refusal has a known code.
fn assert_contract(body: &str) -> Result<(), TestCaseError> {
    let started = Instant::now();
    for result in [parse_body(body), parse_body_from(body, "intake-uploads")] {
        if let Err(poison) = &result {
            prop_assert!(
                POISON_CODES.contains(&poison.code),
                "undocumented code {}",
                poison.code
            );
            prop_assert!(!poison.reason.is_empty());
            // A reason quotes fields clipped: a hostile body cannot make it huge.
            prop_assert!(
                poison.reason.len() < 2_000,
                "reason of {} bytes",
                poison.reason.len()
            );
        }
        if let Ok(Incoming::S3(objects)) = &result {
            for o in objects {
                prop_assert!(!o.key.is_empty() && o.key.len() <= 1024);
                prop_assert!(o.size <= i64::MAX as u64);
                if let Some(s) = &o.sequencer {
                    prop_assert!(!s.is_empty() && s.len() <= 64);
                    prop_assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
                }
            }
        }
    }
    prop_assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    Ok(())
}

/// Arbitrary JSON values, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
        "[0-9A-Fa-f]{0,80}".prop_map(Value::from),
        "[%+a-zA-Z0-9/ ]{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z-]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every field path of a JSON value (RFC 6901 pointers), containers included.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(v, p, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(v, p, out);
            }
        }
        _ => {}
    }
}

/// A valid body with one field replaced by arbitrary JSON, or removed.
fn mutated(base: &'static str) -> impl Strategy<Value = String> {
    let body = fixture(base);
    let mut paths = Vec::new();
    pointers(&body, String::new(), &mut paths);
    (prop::sample::select(paths), prop::option::of(any_json())).prop_map(move |(path, new)| {
        let mut body = body.clone();
        match new {
            Some(v) => *body.pointer_mut(&path).unwrap() = v,
            None => {
                let (parent, last) = path.rsplit_once('/').unwrap();
                match body.pointer_mut(parent).unwrap() {
                    Value::Object(m) => {
                        m.remove(&last.replace("~1", "/").replace("~0", "~"));
                    }
                    Value::Array(a) => {
                        a.remove(last.parse::<usize>().unwrap());
                    }
                    _ => unreachable!(),
                }
            }
        }
        body.to_string()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        assert_contract(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn arbitrary_json_never_panics(value in any_json()) {
        assert_contract(&value.to_string())?;
        // The same value where an S3 event, an EventBridge event or an SNS envelope is expected.
        assert_contract(&json!({"Records": [value.clone()]}).to_string())?;
        assert_contract(&json!({"source": "aws.s3", "detail-type": "Object Created", "detail": value.clone()}).to_string())?;
        assert_contract(&json!({"Type": "Notification", "Message": value.to_string()}).to_string())?;
    }

    #[test]
    fn one_field_of_a_notification_mutated(body in mutated("localstack-s3-put.json")) {
        assert_contract(&body)?;
    }

    #[test]
    fn one_field_of_an_eventbridge_event_mutated(body in mutated("aws-docs-eventbridge-object-created.json")) {
        assert_contract(&body)?;
    }

    #[test]
    fn the_key_decoder_answers_every_string(raw in "\\PC{0,256}|[%+0-9a-fA-FgG]{0,64}") {
        match decode_notification_key(&raw) {
            Ok(key) => prop_assert!(key.len() <= raw.len()),
            Err(KeyDecodeError::BadEscape { at, .. }) => {
                prop_assert!(raw.as_bytes()[at] == b'%')
            }
            Err(KeyDecodeError::NotUtf8 { .. }) => prop_assert!(raw.contains('%')),
        }
    }
}

#[test]
fn pathological_bodies_are_refused_quickly() {
    let deep_array = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_object = "{\"a\":".repeat(50_000) + "1" + &"}".repeat(50_000);
    let deep_in_records = format!(
        "{{\"Records\": [{}{}]}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let huge_number = format!("{{\"Records\": [{{\"size\": {}}}]}}", "9".repeat(500_000));
    let long_string = format!("{{\"Records\": \"{}\"}}", "x".repeat(1_000_000));
    let many_records =
        json!({"Records": vec![fixture("localstack-s3-put.json")["Records"][0].clone(); 1000]})
            .to_string();
    let long_key = {
        let mut b = fixture("localstack-s3-put.json");
        b["Records"][0]["s3"]["object"]["key"] = json!("%41".repeat(300_000));
        b.to_string()
    };
    for (what, body) in [
        ("deep array", deep_array),
        ("deep object", deep_object),
        ("deep value in Records", deep_in_records),
        ("500,000-digit number", huge_number),
        ("1 MB string", long_string),
        ("1000 records", many_records),
        ("900 KB key", long_key),
    ] {
        let started = Instant::now();
        let result = parse_body(&body);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{what}: {:?}",
            started.elapsed()
        );
        match result {
            Err(p) if what == "1000 records" => panic!("{what}: {p}"),
            Err(p) => assert!(POISON_CODES.contains(&p.code), "{what}: {}", p.code),
            // 1000 valid records of the same object (about 800 KB): accepted, all of them.
            Ok(Incoming::S3(objects)) => assert_eq!(objects.len(), 1000, "{what}"),
            Ok(other) => panic!("{what}: {other:?}"),
        }
    }
}
