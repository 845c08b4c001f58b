//! One DLQ message decoded: the upload version its body names, the tenant, and why it
//! failed: from the runtime's `intake-error-*` attributes (poison), else from the
//! ledger's `retry` transitions of the stage for that version (redrive).

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use intake_core::ObjectRef;
use intake_core::event::{Incoming, parse_body};
use intake_core::key_template::parse_key;
use intake_core::state_machine::StageKind;
use intake_runtime::queue::{
    POISON_CODE_ATTRIBUTE, POISON_REASON_ATTRIBUTE, POISON_SOURCE_ATTRIBUTE,
};
use intake_store::{Ledger, VersionKey};
use serde::Serialize;

use super::error::DlqError;

/// The code of a message whose failure nothing recorded.
pub const UNKNOWN_CODE: &str = "unknown";

/// How a message got into the DLQ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Moved by the runtime, with `intake-error-*` attributes.
    Poison,
    /// Moved by SQS after `max_receive_count` retryable failures.
    Redrive,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Poison => "poison",
            Source::Redrive => "redrive",
        }
    }
}

/// One object version a DLQ message names: the ledger's key for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DlqObject {
    pub bucket: String,
    pub key: String,
    /// The S3 version id, or the ETag for an unversioned object (the ledger's version).
    pub version: String,
}

impl DlqObject {
    pub fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    fn of(object: &ObjectRef) -> DlqObject {
        DlqObject {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            version: object.version_token().to_owned(),
        }
    }
}

/// One decoded DLQ message.
#[derive(Clone, Debug, Serialize)]
pub struct DlqMessage {
    /// The stage whose DLQ holds it.
    pub stage: StageKind,
    pub message_id: String,
    /// The upload version the body names; `None` when the body is not an event Intake
    /// understands (a poison message, typically).
    pub object: Option<DlqObject>,
    /// Further versions when one S3 event carried several records (S3 sends one).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub more_objects: Vec<DlqObject>,
    /// From the body (outcomes carry it once validate has run), else from the key through
    /// the key template ([`DlqMessage::infer_tenant`]).
    pub tenant: Option<String>,
    /// From the `intake-error-code` attribute, else the ledger's last retry of this stage
    /// for the version, else [`UNKNOWN_CODE`].
    pub code: String,
    /// The reason or detail that goes with `code`; for an unknown code, why none is known.
    pub reason: String,
    pub source: Source,
    /// The queue the message failed on: `intake-source-queue`, or the name in SQS's
    /// `DeadLetterQueueSourceArn`.
    pub source_queue: Option<String>,
    /// `ApproximateReceiveCount` as this peek's receive returned it: every receive counts,
    /// this one and earlier peeks included.
    pub receive_count: u32,
    /// Epoch ms of the first failure: the earliest `retry` of this stage in the ledger, or
    /// for a poison message its `SentTimestamp` when that is earlier.
    pub first_failure_ms: Option<i64>,
    /// `SentTimestamp`, epoch ms: when a poison message was sent to the DLQ. For a
    /// redriven message SQS keeps the time it was first sent to the stage queue.
    pub sent_ms: Option<i64>,
    /// The message body as it is in the queue.
    pub body: String,
    /// The receipt handle of this peek's receive. It stays valid until the message is
    /// received again, so a caller can delete exactly the message it has shown.
    #[serde(skip)]
    pub receipt_handle: String,
}

impl DlqMessage {
    /// Fills in a missing tenant from the object key, read with the upload key template
    /// (`[uploads] key_template`). A key that does not match leaves it `None`.
    pub fn infer_tenant(&mut self, key_template: &str) {
        if self.tenant.is_none()
            && let Some(object) = &self.object
        {
            self.tenant = parse_key(key_template, &object.key).map(|parts| parts.tenant);
        }
    }
}

/// One failure recorded in the ledger.
struct Retry {
    code: Option<String>,
    detail: Option<String>,
    finished_ms: i64,
}

pub(crate) async fn decode(
    ledger: &Ledger,
    stage: StageKind,
    dlq: &str,
    message: &Message,
) -> Result<DlqMessage, DlqError> {
    let message_id = message.message_id().unwrap_or_default().to_owned();
    let body = message.body().unwrap_or_default().to_owned();
    let attribute = |name: &str| {
        message
            .message_attributes()
            .and_then(|a| a.get(name))
            .and_then(|v| v.string_value())
            .map(str::to_owned)
    };
    let system = |name: MessageSystemAttributeName| {
        message
            .attributes()
            .and_then(|a| a.get(&name))
            .map(String::as_str)
    };
    let poison_code = attribute(POISON_CODE_ATTRIBUTE);
    let source = if poison_code.is_some() {
        Source::Poison
    } else {
        Source::Redrive
    };
    let source_queue = attribute(POISON_SOURCE_ATTRIBUTE).or_else(|| {
        system(MessageSystemAttributeName::DeadLetterQueueSourceArn)
            .and_then(|arn| arn.rsplit(':').next())
            .map(str::to_owned)
    });
    let receive_count = system(MessageSystemAttributeName::ApproximateReceiveCount)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let sent_ms = system(MessageSystemAttributeName::SentTimestamp).and_then(|t| t.parse().ok());

    let objects: Vec<ObjectRef> = match parse_body(&body) {
        Ok(Incoming::S3(objects)) => objects,
        Ok(Incoming::Outcome(outcome)) => vec![outcome.object],
        Ok(Incoming::Delete(request)) => vec![request.object],
        Ok(Incoming::S3TestEvent) | Err(_) => Vec::new(),
    };
    let mut retries = Vec::new();
    for object in &objects {
        let version = VersionKey::new(&object.bucket, &object.key, object.version_token());
        let histories = ledger
            .history(&version.bucket, &version.key)
            .await
            .map_err(|source| DlqError::Ledger {
                queue: dlq.to_owned(),
                message_id: message_id.clone(),
                source: Box::new(source),
            })?;
        for history in histories
            .into_iter()
            .filter(|h| h.version == version.version)
        {
            retries.extend(
                history
                    .transitions
                    .into_iter()
                    .filter(|t| t.stage == stage.name() && t.outcome == "retry")
                    .map(|t| Retry {
                        code: t.code,
                        detail: t.detail,
                        finished_ms: t.finished_ms,
                    }),
            );
        }
    }
    retries.sort_by_key(|r| r.finished_ms);

    let (code, reason) = match (poison_code, retries.last()) {
        (Some(code), _) => (code, attribute(POISON_REASON_ATTRIBUTE).unwrap_or_default()),
        (None, Some(last)) => (
            last.code.clone().unwrap_or_else(|| UNKNOWN_CODE.to_owned()),
            last.detail.clone().unwrap_or_default(),
        ),
        (None, None) => (UNKNOWN_CODE.to_owned(), unexplained(stage, &objects)),
    };
    let first_failure_ms = match source {
        Source::Poison => retries
            .first()
            .map(|r| r.finished_ms)
            .into_iter()
            .chain(sent_ms)
            .min(),
        Source::Redrive => retries.first().map(|r| r.finished_ms),
    };
    let tenant = objects.first().and_then(|o| o.tenant.clone());
    let mut decoded = objects.iter().map(DlqObject::of);
    Ok(DlqMessage {
        stage,
        message_id,
        object: decoded.next(),
        more_objects: decoded.collect(),
        tenant,
        code,
        reason,
        source,
        source_queue,
        receive_count,
        first_failure_ms,
        sent_ms,
        body,
        receipt_handle: message.receipt_handle().unwrap_or_default().to_owned(),
    })
}

/// Why a message without attributes has no recorded failure.
fn unexplained(stage: StageKind, objects: &[ObjectRef]) -> String {
    match objects.first() {
        None => "no intake-error-code attribute, and the body names no object version to look \
                 up in the ledger"
            .to_owned(),
        Some(object) => format!(
            "no intake-error-code attribute, and the ledger records no retry of {stage} for \
             {} version {}: the failures happened before the ledger was reached (e.g. it was \
             unreachable), or this is not the ledger the workers use",
            object.uri(),
            object.version_token()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_are_inferred_from_the_key_when_the_body_has_none() {
        let mut m = DlqMessage {
            stage: StageKind::Scan,
            message_id: "m".into(),
            object: Some(DlqObject {
                bucket: "b".into(),
                key: "acme/user-1/0b7c3e1e-1d3a-4b8e-9a55-2f0e6c7d8a9b-photo.png".into(),
                version: "v".into(),
            }),
            more_objects: Vec::new(),
            tenant: None,
            code: UNKNOWN_CODE.into(),
            reason: String::new(),
            source: Source::Redrive,
            source_queue: None,
            receive_count: 1,
            first_failure_ms: None,
            sent_ms: None,
            body: String::new(),
            receipt_handle: String::new(),
        };
        m.infer_tenant("{tenant}/{user}/{uuid}-{filename}");
        assert_eq!(m.tenant.as_deref(), Some("acme"));
        m.tenant = Some("from-body".into());
        m.infer_tenant("{tenant}/{user}/{uuid}-{filename}");
        assert_eq!(m.tenant.as_deref(), Some("from-body"));
    }
}
