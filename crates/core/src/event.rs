//! Parsing SQS message bodies into what a stage acts on: S3 object events (bucket
//! notification records of format 2.x, or EventBridge `aws.s3` events; checked field by
//! field in [`crate::s3_event`]), the `s3:TestEvent` S3 sends when notifications are
//! configured, Intake's own outcome messages and deletion requests, each raw or wrapped in
//! an SNS envelope. Anything else is poison, with a code and a reason that says what was
//! wrong; nothing here does IO, so a poison body is refused on its first receive.

use crate::deletion::DeletionRequest;
use crate::object::ObjectRef;
use crate::outcome::OutcomeMessage;
use crate::s3_event;

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
    pub(crate) fn new(code: &'static str, reason: impl Into<String>) -> Self {
        Poison {
            code,
            reason: reason.into(),
        }
    }

    /// Name the record of a multi-record notification that was refused.
    pub(crate) fn at_record(self, index: usize) -> Self {
        Poison {
            reason: format!("record {index}: {}", self.reason),
            ..self
        }
    }
}

/// Every code a [`Poison`] from this parser can carry (docs/events.md explains each).
pub const POISON_CODES: [&str; 18] = [
    "body_too_large",
    "not_json",
    "bad_envelope",
    "unknown_message",
    "bad_outcome",
    "bad_deletion",
    "bad_s3_event",
    "wrong_event_source",
    "unsupported_event_version",
    "bad_bucket",
    "foreign_bucket",
    "unexpected_event",
    "bad_key",
    "bad_key_encoding",
    "bad_size",
    "bad_version_id",
    "bad_etag",
    "bad_sequencer",
];

/// SQS refuses bodies over 1 MiB; anything longer did not come from a queue.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Parse one SQS message body, without knowing which bucket is the pipeline's (tests,
/// tools). Workers use [`parse_body_from`], which also refuses events of other buckets.
pub fn parse_body(body: &str) -> Result<Incoming, Poison> {
    parse(body, None)
}

/// Parse one SQS message body on a worker of the pipeline whose uploads bucket is
/// `uploads_bucket`: an S3 event naming another bucket is poison (`foreign_bucket`),
/// checked before the key, size, version and sequencer of the object.
pub fn parse_body_from(body: &str, uploads_bucket: &str) -> Result<Incoming, Poison> {
    parse(body, Some(uploads_bucket))
}

fn parse(body: &str, bucket: Option<&str>) -> Result<Incoming, Poison> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Poison::new(
            "body_too_large",
            format!(
                "message body is {} bytes; SQS carries at most {MAX_BODY_BYTES}",
                body.len()
            ),
        ));
    }
    // serde_json refuses nesting deeper than 128 levels with an error, not a stack overflow.
    let value: serde_json::Value = serde_json::from_str(body).map_err(|e| {
        Poison::new(
            "not_json",
            format!("message body is not JSON ({e}); expected an S3 event or an Intake outcome"),
        )
    })?;
    parse_value(value, 0, bucket)
}

/// Is this an EventBridge event (of any source)? Its envelope always has these three.
fn is_eventbridge(value: &serde_json::Value) -> bool {
    value.get("detail-type").is_some()
        && value.get("source").is_some()
        && value.get("detail").is_some()
}

fn parse_value(
    value: serde_json::Value,
    depth: u8,
    bucket: Option<&str>,
) -> Result<Incoming, Poison> {
    if value.get("Event").and_then(|e| e.as_str()) == Some("s3:TestEvent") {
        return Ok(Incoming::S3TestEvent);
    }
    if value.get("Records").is_some() {
        return s3_event::notification(&value, bucket).map(Incoming::S3);
    }
    if is_eventbridge(&value) {
        return s3_event::eventbridge(&value, bucket).map(|o| Incoming::S3(vec![o]));
    }
    if value.get("Type").and_then(|t| t.as_str()) == Some("Notification") && depth == 0 {
        // An SNS envelope (subscription without raw delivery): the payload is a JSON string.
        let inner = value
            .get("Message")
            .and_then(|m| m.as_str())
            .ok_or_else(|| Poison::new("bad_envelope", "SNS envelope without a Message string"))?;
        let inner: serde_json::Value = serde_json::from_str(inner)
            .map_err(|e| Poison::new("not_json", format!("SNS Message is not JSON ({e})")))?;
        return parse_value(inner, depth + 1, bucket);
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
        "JSON body is neither an S3 event (Records, or EventBridge source aws.s3), an s3:TestEvent, an SNS envelope, an Intake outcome nor a deletion request",
    ))
}

/// Order two S3 sequencers for the same key: hex strings compared after left-padding with
/// zeros to equal length (the documented way; their lengths vary).
pub fn compare_sequencers(a: &str, b: &str) -> std::cmp::Ordering {
    let width = a.len().max(b.len());
    format!("{a:0>width$}")
        .to_ascii_uppercase()
        .cmp(&format!("{b:0>width$}").to_ascii_uppercase())
}
