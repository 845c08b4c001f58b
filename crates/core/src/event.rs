//! Parsing SQS message bodies into what a stage acts on: S3 notification records (any event
//! version), the `s3:TestEvent` S3 sends when notifications are configured, Intake's own
//! outcome messages (raw or wrapped in an SNS envelope). Anything else is poison, with a
//! reason that says what was wrong.

use serde::Deserialize;

use crate::deletion::DeletionRequest;
use crate::object::ObjectRef;
use crate::outcome::OutcomeMessage;
use crate::s3_key::decode_notification_key;

/// What a message body holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// Objects created in a bucket (one message may carry several records).
    S3(Vec<ObjectRef>),
    /// Sent once when a notification is configured: acknowledge and ignore.
    S3TestEvent,
    /// Another stage's outcome.
    Outcome(Box<OutcomeMessage>),
    /// A request to delete one upload version (the deletion worker's queue only).
    Delete(Box<DeletionRequest>),
}

/// A body that is not an event Intake understands. It goes to the DLQ with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Poison {
    pub code: &'static str,
    pub reason: String,
}

impl Poison {
    fn new(code: &'static str, reason: impl Into<String>) -> Self {
        Poison {
            code,
            reason: reason.into(),
        }
    }
}

#[derive(Deserialize)]
struct S3Notification {
    #[serde(rename = "Records")]
    records: Vec<S3Record>,
}

#[derive(Deserialize)]
struct S3Record {
    #[serde(rename = "eventName")]
    event_name: String,
    s3: S3Entity,
}

#[derive(Deserialize)]
struct S3Entity {
    bucket: S3Bucket,
    object: S3Object,
}

#[derive(Deserialize)]
struct S3Bucket {
    name: String,
}

#[derive(Deserialize)]
struct S3Object {
    key: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(rename = "eTag", default)]
    etag: Option<String>,
    #[serde(rename = "versionId", default)]
    version_id: Option<String>,
    #[serde(default)]
    sequencer: Option<String>,
}

/// Parse one SQS message body.
pub fn parse_body(body: &str) -> Result<Incoming, Poison> {
    let value: serde_json::Value = serde_json::from_str(body).map_err(|e| {
        Poison::new(
            "not_json",
            format!("message body is not JSON ({e}); expected an S3 event or an Intake outcome"),
        )
    })?;
    parse_value(value, 0)
}

fn parse_value(value: serde_json::Value, depth: u8) -> Result<Incoming, Poison> {
    if value.get("Event").and_then(|e| e.as_str()) == Some("s3:TestEvent") {
        return Ok(Incoming::S3TestEvent);
    }
    if value.get("Records").is_some() {
        return parse_s3(value);
    }
    if value.get("Type").and_then(|t| t.as_str()) == Some("Notification") && depth == 0 {
        // An SNS envelope (subscription without raw delivery): the payload is a JSON string.
        let inner = value
            .get("Message")
            .and_then(|m| m.as_str())
            .ok_or_else(|| Poison::new("bad_envelope", "SNS envelope without a Message string"))?;
        let inner: serde_json::Value = serde_json::from_str(inner)
            .map_err(|e| Poison::new("not_json", format!("SNS Message is not JSON ({e})")))?;
        return parse_value(inner, depth + 1);
    }
    if value.get("intake_outcome").is_some() {
        return serde_json::from_value::<OutcomeMessage>(value)
            .map(|o| Incoming::Outcome(Box::new(o)))
            .map_err(|e| {
                Poison::new(
                    "bad_outcome",
                    format!("Intake outcome message does not match schema: {e}"),
                )
            });
    }
    if value.get("intake_delete").is_some() {
        let request = serde_json::from_value::<DeletionRequest>(value).map_err(|e| {
            Poison::new(
                "bad_deletion",
                format!("Intake deletion request does not match schema: {e}"),
            )
        })?;
        if request.object.version_id.is_none() && request.object.etag.is_none() {
            return Err(Poison::new(
                "bad_deletion",
                format!(
                    "deletion request for {} names no version (version_id or etag); `intake delete` always names one",
                    request.object.uri()
                ),
            ));
        }
        return Ok(Incoming::Delete(Box::new(request)));
    }
    Err(Poison::new(
        "unknown_message",
        "JSON body is neither an S3 event (Records), an s3:TestEvent, an SNS envelope, an Intake outcome nor a deletion request",
    ))
}

fn parse_s3(value: serde_json::Value) -> Result<Incoming, Poison> {
    let notification: S3Notification = serde_json::from_value(value).map_err(|e| {
        Poison::new(
            "bad_s3_event",
            format!("S3 event does not match the notification schema: {e}"),
        )
    })?;
    if notification.records.is_empty() {
        return Err(Poison::new("bad_s3_event", "S3 event with no records"));
    }
    let mut objects = Vec::with_capacity(notification.records.len());
    for record in notification.records {
        if !record.event_name.starts_with("ObjectCreated:") {
            return Err(Poison::new(
                "unexpected_event",
                format!(
                    "S3 event {} is not ObjectCreated; the uploads notification should name only ObjectCreated events",
                    record.event_name
                ),
            ));
        }
        let key = decode_notification_key(&record.s3.object.key)
            .map_err(|e| Poison::new("bad_key_encoding", e.to_string()))?;
        objects.push(ObjectRef {
            bucket: record.s3.bucket.name,
            key,
            version_id: record
                .s3
                .object
                .version_id
                .filter(|v| !v.is_empty() && v != "null"),
            etag: record.s3.object.etag,
            size: record.s3.object.size.unwrap_or(0),
            tenant: None,
            user: None,
            sequencer: record.s3.object.sequencer,
        });
    }
    Ok(Incoming::S3(objects))
}

/// Order two S3 sequencers for the same key: hex strings compared after left-padding with
/// zeros to equal length (the documented way; their lengths vary).
pub fn compare_sequencers(a: &str, b: &str) -> std::cmp::Ordering {
    let width = a.len().max(b.len());
    format!("{a:0>width$}")
        .to_ascii_uppercase()
        .cmp(&format!("{b:0>width$}").to_ascii_uppercase())
}
