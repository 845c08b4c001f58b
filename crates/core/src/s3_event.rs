//! S3 object events in the two shapes S3 delivers them: bucket notification records
//! (`Records[].s3`) and EventBridge events (`source: aws.s3`, `detail-type`, the object
//! under `detail`). Both carry the key URL-encoded, decoded the same way (see
//! [`eventbridge`] for why EventBridge keys are decoded too).
//!
//! Every field here is one that a retry cannot change, so every check fails as a
//! [`Poison`] with its own code, before anything does IO. The bucket is checked right
//! after the envelope (source and version): an event for another bucket is not ours,
//! whatever else is wrong with it.

use serde_json::Value;

use crate::event::Poison;
use crate::object::ObjectRef;
use crate::s3_key::decode_notification_key;

/// S3's limit on a key, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// S3 documents version ids as URL-ready strings of at most 1,024 bytes.
pub const MAX_VERSION_ID_BYTES: usize = 1024;
/// Sequencers S3 sends are 16 to 18 hex digits; anything past 64 is not one.
pub const MAX_SEQUENCER_DIGITS: usize = 64;
/// An ETag is 32 hex digits (plus `-<parts>` for multipart uploads); 1,024 bytes is generous.
pub const MAX_ETAG_BYTES: usize = 1024;
/// Sizes must fit the ledger's signed 64-bit columns; no S3 object comes near this.
pub const MAX_SIZE: u64 = i64::MAX as u64;

/// How S3 names the created events Intake starts from, in notifications (after an
/// optional `s3:` prefix) and as EventBridge `reason`s.
const CREATED_EVENTS: [&str; 3] = [
    "ObjectCreated:Put",
    "ObjectCreated:Post",
    "ObjectCreated:CompleteMultipartUpload",
];
/// The EventBridge `reason`s of an `Object Created` event that Intake starts from.
pub const CREATED_REASONS: [&str; 3] = ["PutObject", "PostObject", "CompleteMultipartUpload"];

const COPY_REASON: &str = "copies are never an upload: the provisioned notification and rule name \
     Put, Post and CompleteMultipartUpload only, and a copy inside the uploads bucket makes a \
     later version of a key whose file is its first version; remove the Copy event from the \
     bucket's notification (or the rule's reason list)";

/// Parse the `Records` of an S3 bucket notification.
pub(crate) fn notification(value: &Value, bucket: Option<&str>) -> Result<Vec<ObjectRef>, Poison> {
    let records = value
        .get("Records")
        .and_then(Value::as_array)
        .ok_or_else(|| Poison::new("bad_s3_event", "S3 event whose Records is not a list"))?;
    if records.is_empty() {
        return Err(Poison::new("bad_s3_event", "S3 event with no records"));
    }
    records
        .iter()
        .enumerate()
        .map(|(i, record)| notification_record(record, bucket).map_err(|p| p.at_record(i)))
        .collect()
}

fn notification_record(record: &Value, expected: Option<&str>) -> Result<ObjectRef, Poison> {
    if !record.is_object() {
        return Err(Poison::new("bad_s3_event", "record is not a JSON object"));
    }
    match record.get("eventSource").and_then(Value::as_str) {
        Some("aws:s3") => {}
        Some("aws:sqs") => {
            return Err(Poison::new(
                "wrong_event_source",
                "eventSource is aws:sqs: this is a Lambda SQS batch, not an S3 event; send each \
                 record's body, not the batch",
            ));
        }
        other => {
            return Err(Poison::new(
                "wrong_event_source",
                format!(
                    "eventSource is {}, not aws:s3: only S3 bucket notifications start the pipeline",
                    shown(other)
                ),
            ));
        }
    }
    let version = record.get("eventVersion").and_then(Value::as_str);
    if version.is_none_or(|v| v.split('.').next() != Some("2")) {
        return Err(Poison::new(
            "unsupported_event_version",
            format!(
                "eventVersion is {}; Intake reads S3 notification format 2.x",
                shown(version)
            ),
        ));
    }
    let s3 = record
        .get("s3")
        .filter(|s| s.is_object())
        .ok_or_else(|| Poison::new("bad_s3_event", "record without an s3 object"))?;
    let bucket = bucket_name(s3.get("bucket").and_then(|b| b.get("name")), expected)?;
    let name = record
        .get("eventName")
        .and_then(Value::as_str)
        .ok_or_else(|| Poison::new("unexpected_event", "record without an eventName string"))?;
    let bare = name.strip_prefix("s3:").unwrap_or(name);
    if !CREATED_EVENTS.contains(&bare) {
        let why = if bare == "ObjectCreated:Copy" {
            COPY_REASON.to_owned()
        } else {
            "the uploads notification should name only ObjectCreated:Put, :Post and \
             :CompleteMultipartUpload"
                .to_owned()
        };
        return Err(Poison::new(
            "unexpected_event",
            format!("S3 event {name} does not start the pipeline: {why}"),
        ));
    }
    let object = s3
        .get("object")
        .filter(|o| o.is_object())
        .ok_or_else(|| Poison::new("bad_s3_event", "record without an s3.object"))?;
    let encoded = object
        .get("key")
        .and_then(Value::as_str)
        .ok_or_else(|| Poison::new("bad_key", "s3.object.key is missing or not a string"))?;
    let key = decode_notification_key(encoded)
        .map_err(|e| Poison::new("bad_key_encoding", e.to_string()))?;
    object_ref(bucket, key, object, "versionId", "eTag")
}

/// Parse an S3 event delivered by EventBridge (`source: aws.s3`).
///
/// AWS documents the key of a notification as URL-encoded and says nothing of EventBridge's.
/// LocalStack 4.13.1 percent-encodes EventBridge keys exactly as it does notification keys
/// (`red%20flower%2B1.png`), and Powertools for AWS Lambda (Python) decodes EventBridge
/// keys with `unquote_plus`, as it does notification keys. So the key is decoded the same
/// way: `+` is a space, `%XX` a byte. Were S3 to send raw keys, only keys holding `+` or
/// `%` would differ, and their HeadObject would find nothing (validate: `object_gone`),
/// never another object.
pub(crate) fn eventbridge(value: &Value, expected: Option<&str>) -> Result<ObjectRef, Poison> {
    let source = value.get("source").and_then(Value::as_str);
    if source != Some("aws.s3") {
        return Err(Poison::new(
            "wrong_event_source",
            format!(
                "EventBridge event from source {}, not aws.s3: the rule targeting this queue \
                 should match source aws.s3 only",
                shown(source)
            ),
        ));
    }
    let detail = value
        .get("detail")
        .filter(|d| d.is_object())
        .ok_or_else(|| Poison::new("bad_s3_event", "EventBridge event without a detail object"))?;
    for (what, version) in [
        ("version", value.get("version")),
        ("detail.version", detail.get("version")),
    ] {
        // The envelope's version is always present; the detail's may be left out.
        if what == "detail.version" && version.is_none() {
            continue;
        }
        let version = version.and_then(Value::as_str);
        if version != Some("0") {
            return Err(Poison::new(
                "unsupported_event_version",
                format!(
                    "EventBridge {what} is {}; Intake reads version 0",
                    shown(version)
                ),
            ));
        }
    }
    let bucket = bucket_name(detail.get("bucket").and_then(|b| b.get("name")), expected)?;
    let kind = value.get("detail-type").and_then(Value::as_str);
    if kind != Some("Object Created") {
        return Err(Poison::new(
            "unexpected_event",
            format!(
                "EventBridge S3 event {} does not start the pipeline: the rule should match \
                 detail-type Object Created only",
                shown(kind)
            ),
        ));
    }
    let reason = detail.get("reason").and_then(Value::as_str);
    if !reason.is_some_and(|r| CREATED_REASONS.contains(&r)) {
        let why = if reason == Some("CopyObject") {
            COPY_REASON.to_owned()
        } else {
            format!(
                "the rule should match reasons {} only",
                CREATED_REASONS.join(", ")
            )
        };
        return Err(Poison::new(
            "unexpected_event",
            format!(
                "Object Created with reason {} does not start the pipeline: {why}",
                shown(reason)
            ),
        ));
    }
    let object = detail
        .get("object")
        .filter(|o| o.is_object())
        .ok_or_else(|| Poison::new("bad_s3_event", "EventBridge detail without an object"))?;
    let encoded = object
        .get("key")
        .and_then(Value::as_str)
        .ok_or_else(|| Poison::new("bad_key", "detail.object.key is missing or not a string"))?;
    let key = decode_notification_key(encoded)
        .map_err(|e| Poison::new("bad_key_encoding", e.to_string()))?;
    object_ref(bucket, key, object, "version-id", "etag")
}

/// The checks both shapes share, on the decoded key and the object's fields.
fn object_ref(
    bucket: String,
    key: String,
    object: &Value,
    version_field: &str,
    etag_field: &str,
) -> Result<ObjectRef, Poison> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(Poison::new(
            "bad_key",
            format!(
                "object key is {} bytes; S3 keys are 1 to {MAX_KEY_BYTES} bytes of UTF-8",
                key.len()
            ),
        ));
    }
    let size = match object.get("size") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_u64().filter(|&s| s <= MAX_SIZE).ok_or_else(|| {
            Poison::new(
                "bad_size",
                format!(
                    "object size {} is not a whole number of bytes from 0 to {MAX_SIZE}",
                    clipped(v)
                ),
            )
        })?,
    };
    let version_id = match object.get(version_field) {
        None | Some(Value::Null) => None,
        Some(Value::String(v)) if v.is_empty() || v == "null" => None,
        Some(Value::String(v)) if is_version_id(v) => Some(v.clone()),
        Some(v) => {
            return Err(Poison::new(
                "bad_version_id",
                format!(
                    "version id {} is not a version S3 issues (URL-ready characters \
                     A-Z a-z 0-9 . _ - ~, at most {MAX_VERSION_ID_BYTES} bytes)",
                    clipped(v)
                ),
            ));
        }
    };
    let etag = match object.get(etag_field) {
        None | Some(Value::Null) => None,
        Some(Value::String(e)) if is_etag(e) => Some(e.clone()),
        Some(v) => {
            return Err(Poison::new(
                "bad_etag",
                format!(
                    "ETag {} is not printable ASCII of 1 to {MAX_ETAG_BYTES} bytes",
                    clipped(v)
                ),
            ));
        }
    };
    let sequencer = match object.get("sequencer") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if is_sequencer(s) => Some(s.clone()),
        Some(v) => {
            return Err(Poison::new(
                "bad_sequencer",
                format!(
                    "sequencer {} is not 1 to {MAX_SEQUENCER_DIGITS} hexadecimal digits; \
                     S3 orders events for a key by it",
                    clipped(v)
                ),
            ));
        }
    };
    Ok(ObjectRef {
        bucket,
        key,
        version_id,
        etag,
        size,
        tenant: None,
        user: None,
        sequencer,
    })
}

fn bucket_name(name: Option<&Value>, expected: Option<&str>) -> Result<String, Poison> {
    let name = name.and_then(Value::as_str).ok_or_else(|| {
        Poison::new(
            "bad_bucket",
            "event without a bucket name string (s3.bucket.name or detail.bucket.name)",
        )
    })?;
    // Legacy us-east-1 buckets allow upper case and up to 255 characters: accept those.
    let valid = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !valid {
        return Err(Poison::new(
            "bad_bucket",
            format!(
                "bucket name {} is not a bucket name S3 allows",
                clipped(&Value::String(name.to_owned()))
            ),
        ));
    }
    if let Some(expected) = expected
        && name != expected
    {
        return Err(Poison::new(
            "foreign_bucket",
            format!(
                "event from bucket {name}, but this pipeline's uploads bucket is {expected}; \
                 check which buckets notify this queue (or which rule targets it)"
            ),
        ));
    }
    Ok(name.to_owned())
}

/// URL-ready (RFC 3986 unreserved characters), as S3 documents its version ids.
fn is_version_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= MAX_VERSION_ID_BYTES
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-~".contains(&b))
}

fn is_etag(e: &str) -> bool {
    !e.is_empty() && e.len() <= MAX_ETAG_BYTES && e.bytes().all(|b| b.is_ascii_graphic())
}

fn is_sequencer(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_SEQUENCER_DIGITS && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn shown(value: Option<&str>) -> String {
    match value {
        None => "missing".to_owned(),
        Some(v) => clipped(&Value::String(v.to_owned())),
    }
}

/// A field's JSON for a message, cut so a hostile value cannot flood the DLQ reason.
fn clipped(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("{}… ({} bytes)", &text[..at], text.len()),
        None => text,
    }
}
