//! What is in each stage's dead-letter queue, and why: decoded messages, depths, counts by
//! error code; and purging a DLQ.
//!
//! A DLQ holds two kinds of messages:
//!
//! - **poison**: the runtime moved the message itself because it can never succeed (a body
//!   that is not JSON, a key that does not decode, a stage's permanent error). It carries
//!   the attributes `intake-error-code`, `intake-error-reason` and `intake-source-queue`.
//! - **redrive**: SQS's redrive policy moved it after `max_receive_count` deliveries that
//!   each ended in a retryable failure. SQS adds no attributes, so the reason is read from
//!   the ledger: the body is decoded to the upload version it names, and that version's
//!   `retry` transitions for the stage carry the code and detail of each failure.
//!
//! **SQS has no true peek.** [`peek`] receives messages with a short visibility timeout
//! ([`PEEK_VISIBILITY`], 30 s) and then at once sets each one's visibility back to 0, so
//! they are visible again as soon as the peek has read them. A peek that crashes in between
//! delays those messages by at most the 30 s; nothing is deleted. Each receive counts as a
//! delivery, so a message's `ApproximateReceiveCount` grows by one per peek (and per
//! [`list`]), and two peeks running at the same time each see only part of the queue.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName, QueueAttributeName,
};
use intake_aws::AwsClients;
use intake_aws::error::{AwsError, classify};
use intake_core::event::{Incoming, parse_body};
use intake_core::key_template::parse_key;
use intake_core::state_machine::StageKind;
use intake_core::{ObjectRef, ResourceNames};
use intake_runtime::queue::{
    POISON_CODE_ATTRIBUTE, POISON_REASON_ATTRIBUTE, POISON_SOURCE_ATTRIBUTE,
};
use intake_store::{Ledger, StoreError, VersionKey};
use serde::Serialize;

/// How long a peeked message stays hidden if the peek dies before making it visible again.
pub const PEEK_VISIBILITY: i32 = 30;

/// How many messages [`list`] reads from each DLQ to find the oldest one and count codes.
pub const LIST_PEEK_CAP: usize = 1000;

/// The code of a message whose failure nothing recorded.
pub const UNKNOWN_CODE: &str = "unknown";

/// SQS's limit on messages per receive and entries per batch call.
const BATCH: usize = 10;

/// How long each receive waits for messages. Long polling (any value above 0) asks every
/// SQS server, so an empty answer means the queue has no visible message; a short poll
/// samples a few servers and can come back empty while messages are there.
const RECEIVE_WAIT_SECS: i32 = 1;

/// What went wrong reading or purging a DLQ.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error(
        "unknown stage \"{given}\": the stages with a queue and a DLQ are {}",
        stage_names()
    )]
    UnknownStage { given: String },

    #[error(
        "queue {queue} does not exist at {endpoint}. Run `intake provision` with the same \
         pipeline.toml and AWS settings to create the pipeline's queues; a stage's queues \
         exist once the stage is configured and provisioned"
    )]
    QueueMissing { queue: String, endpoint: String },

    #[error(transparent)]
    Aws(#[from] AwsError),

    #[error(
        "reading the ledger to explain message {message_id} of {queue}: {source}. Check that \
         INTAKE_DATABASE_URL or [ledger] database_url names the ledger the workers use"
    )]
    Ledger {
        queue: String,
        message_id: String,
        #[source]
        source: Box<StoreError>,
    },
}

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

/// How many messages a queue holds, as SQS approximates it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    /// `ApproximateNumberOfMessages`: ready to be received.
    pub visible: u64,
    /// `ApproximateNumberOfMessagesNotVisible`: received and not yet deleted (in flight,
    /// backing off, or being peeked).
    pub in_flight: u64,
    /// `ApproximateNumberOfMessagesDelayed`.
    pub delayed: u64,
}

impl QueueDepth {
    /// Visible plus in flight: what the queue holds that is not delayed.
    pub fn total(self) -> u64 {
        self.visible + self.in_flight
    }
}

/// One DLQ at a glance, for `intake dlq list`.
#[derive(Clone, Debug, Serialize)]
pub struct DlqSummary {
    pub stage: StageKind,
    pub dlq: String,
    /// Visible plus in flight.
    pub depth: u64,
    pub depth_detail: QueueDepth,
    /// Milliseconds since the oldest `SentTimestamp` among the messages read; `None` for
    /// an empty queue.
    pub oldest_age_ms: Option<i64>,
    /// Messages per error code among the messages read.
    pub codes: BTreeMap<String, u64>,
    /// How many messages were read for `oldest_age_ms` and `codes`: all visible ones, up
    /// to [`LIST_PEEK_CAP`].
    pub examined: usize,
}

/// What [`purge`] did.
#[derive(Clone, Debug, Serialize)]
pub struct Purged {
    pub stage: StageKind,
    pub dlq: String,
    /// Messages deleted: exactly those received and deleted.
    pub removed: u64,
    /// Messages left because they were in flight (invisible: being peeked or replayed by
    /// someone else) when the purge ended, as SQS approximates it right after.
    pub left_in_flight: u64,
}

/// The stage with a queue called `name` (`validate`, ..., `delete`).
pub fn parse_stage(name: &str) -> Result<StageKind, DlqError> {
    StageKind::WITH_QUEUES
        .into_iter()
        .find(|k| k.name() == name)
        .ok_or_else(|| DlqError::UnknownStage {
            given: name.to_owned(),
        })
}

fn stage_names() -> String {
    StageKind::WITH_QUEUES.map(StageKind::name).join(", ")
}

/// Up to `n` decoded messages of `stage`'s DLQ, left in the queue and visible again (see
/// the module docs for why this is not a true peek). Receives 10 at a time until `n` or
/// until the queue has nothing more to give.
pub async fn peek(
    aws: &AwsClients,
    names: &ResourceNames,
    ledger: &Ledger,
    stage: StageKind,
    n: usize,
) -> Result<Vec<DlqMessage>, DlqError> {
    let dlq = &names.stage(stage).dlq;
    let url = queue_url(aws, dlq).await?;
    let received = receive_and_release(aws, dlq, &url, n).await?;
    let mut out = Vec::with_capacity(received.len());
    for message in &received {
        out.push(decode(ledger, stage, dlq, message).await?);
    }
    Ok(out)
}

/// Every DLQ of `kinds` (usually `PipelineConfig::queue_kinds()`): depth, oldest message
/// age and counts by code, from a peek of up to [`LIST_PEEK_CAP`] messages each.
pub async fn list(
    aws: &AwsClients,
    names: &ResourceNames,
    ledger: &Ledger,
    kinds: &[StageKind],
) -> Result<Vec<DlqSummary>, DlqError> {
    let mut out = Vec::with_capacity(kinds.len());
    for &stage in kinds {
        let dlq = names.stage(stage).dlq.clone();
        let depth = queue_depth(aws, &dlq).await?;
        let messages = if depth.total() == 0 {
            Vec::new()
        } else {
            peek(aws, names, ledger, stage, LIST_PEEK_CAP).await?
        };
        let mut codes = BTreeMap::new();
        for m in &messages {
            *codes.entry(m.code.clone()).or_insert(0) += 1;
        }
        let now = now_ms();
        out.push(DlqSummary {
            stage,
            depth: depth.total(),
            depth_detail: depth,
            oldest_age_ms: messages
                .iter()
                .filter_map(|m| m.sent_ms)
                .min()
                .map(|sent| (now - sent).max(0)),
            codes,
            examined: messages.len(),
            dlq,
        });
    }
    Ok(out)
}

/// Deletes every message in `stage`'s DLQ and says how many.
///
/// This receives and deletes (`DeleteMessageBatch`, 10 at a time) rather than calling
/// `PurgeQueue`: the count is exact (only deleted messages are counted, not an estimate
/// taken before), it is done when it returns (`PurgeQueue` may take up to 60 s and may be
/// called once a minute), and a purge interrupted half way has deleted only what it
/// counted. Messages in flight (invisible because someone else is peeking or replaying
/// them) are not removed; [`Purged::left_in_flight`] says how many there were.
pub async fn purge(
    aws: &AwsClients,
    names: &ResourceNames,
    stage: StageKind,
) -> Result<Purged, DlqError> {
    let dlq = names.stage(stage).dlq.clone();
    let url = queue_url(aws, &dlq).await?;
    let mut removed = 0u64;
    loop {
        let batch = receive(aws, &dlq, &url, BATCH, PEEK_VISIBILITY).await?;
        if batch.is_empty() {
            break;
        }
        let entries: Vec<_> = batch
            .iter()
            .enumerate()
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()
                    .expect("id and receipt handle are set")
            })
            .collect();
        let answer = aws
            .sqs
            .delete_message_batch()
            .queue_url(&url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| classify(&aws.endpoint, "DeleteMessageBatch", &dlq, e))?;
        removed += answer.successful().len() as u64;
        if let Some(failed) = answer.failed().first() {
            // Not deleted: the message becomes visible again after PEEK_VISIBILITY and a
            // later receive of this loop would only find it once that has passed.
            return Err(DlqError::Aws(AwsError::Call {
                operation: "DeleteMessageBatch",
                resource: dlq.clone(),
                code: Some(failed.code().to_owned()),
                message: format!(
                    "{} of {} deletions refused ({}); {removed} messages were removed before. \
                     Run the purge again",
                    answer.failed().len(),
                    batch.len(),
                    failed.message().unwrap_or("no message")
                ),
            }));
        }
    }
    let left = queue_depth(aws, &dlq).await?;
    Ok(Purged {
        stage,
        dlq,
        removed,
        left_in_flight: left.in_flight,
    })
}

/// The depth of the queue called `queue`.
pub async fn queue_depth(aws: &AwsClients, queue: &str) -> Result<QueueDepth, DlqError> {
    let url = queue_url(aws, queue).await?;
    let answer = aws
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error()
                .is_some_and(|s| s.is_queue_does_not_exist())
            {
                missing(aws, queue)
            } else {
                classify(&aws.endpoint, "GetQueueAttributes", queue, e).into()
            }
        })?;
    let count = |name: QueueAttributeName| {
        answer
            .attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(QueueDepth {
        visible: count(QueueAttributeName::ApproximateNumberOfMessages),
        in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        delayed: count(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
    })
}

/// The URL of the queue called `queue`.
pub async fn queue_url(aws: &AwsClients, queue: &str) -> Result<String, DlqError> {
    let answer = aws
        .sqs
        .get_queue_url()
        .queue_name(queue)
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error()
                .is_some_and(|s| s.is_queue_does_not_exist())
            {
                missing(aws, queue)
            } else {
                classify(&aws.endpoint, "GetQueueUrl", queue, e).into()
            }
        })?;
    answer.queue_url.ok_or_else(|| missing(aws, queue))
}

fn missing(aws: &AwsClients, queue: &str) -> DlqError {
    DlqError::QueueMissing {
        queue: queue.to_owned(),
        endpoint: aws.endpoint.clone(),
    }
}

/// Receives up to `n` distinct messages, then makes them all visible again.
async fn receive_and_release(
    aws: &AwsClients,
    dlq: &str,
    url: &str,
    n: usize,
) -> Result<Vec<Message>, DlqError> {
    let mut received: Vec<Message> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut outcome = Ok(());
    while received.len() < n {
        let batch = match receive(
            aws,
            dlq,
            url,
            (n - received.len()).min(BATCH),
            PEEK_VISIBILITY,
        )
        .await
        {
            Ok(batch) => batch,
            Err(e) => {
                outcome = Err(e);
                break;
            }
        };
        let mut new = 0;
        for message in batch {
            let id = message.message_id().unwrap_or_default().to_owned();
            match index.get(&id) {
                // Seen before: its first hiding lapsed during a long peek. Keep the newest
                // receipt handle, the only one that can release it now.
                Some(&i) => received[i] = message,
                None => {
                    index.insert(id, received.len());
                    received.push(message);
                    new += 1;
                }
            }
        }
        if new == 0 {
            break;
        }
    }
    // Released even when a receive failed, so what was hidden does not wait 30 s.
    release(aws, dlq, url, &received).await;
    outcome.map(|()| received)
}

async fn receive(
    aws: &AwsClients,
    queue: &str,
    url: &str,
    max: usize,
    visibility: i32,
) -> Result<Vec<Message>, DlqError> {
    let answer = aws
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(max.clamp(1, BATCH) as i32)
        .visibility_timeout(visibility)
        .wait_time_seconds(RECEIVE_WAIT_SECS)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .map_err(|e| classify(&aws.endpoint, "ReceiveMessage", queue, e))?;
    Ok(answer.messages.unwrap_or_default())
}

/// Visibility 0 for every message, 10 per call. A failure is logged, not returned: those
/// messages only come back after [`PEEK_VISIBILITY`], which loses nothing.
async fn release(aws: &AwsClients, dlq: &str, url: &str, messages: &[Message]) {
    for chunk in messages.chunks(BATCH) {
        let entries: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .visibility_timeout(0)
                    .build()
                    .expect("id and receipt handle are set")
            })
            .collect();
        match aws
            .sqs
            .change_message_visibility_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(answer) => {
                for failed in answer.failed() {
                    tracing::warn!(
                        dlq,
                        code = failed.code(),
                        reason = failed.message().unwrap_or_default(),
                        "a peeked message could not be made visible again; it will be after {PEEK_VISIBILITY} s"
                    );
                }
            }
            Err(e) => {
                let e = classify(&aws.endpoint, "ChangeMessageVisibilityBatch", dlq, e);
                tracing::warn!(
                    dlq,
                    "peeked messages could not be made visible again ({e}); they will be after {PEEK_VISIBILITY} s"
                );
            }
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

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_parse_by_name_and_unknown_ones_list_the_valid_ones() {
        assert_eq!(parse_stage("scan").unwrap(), StageKind::Scan);
        assert_eq!(parse_stage("delete").unwrap(), StageKind::Delete);
        let err = parse_stage("scna").unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown stage \"scna\": the stages with a queue and a DLQ are validate, scan, \
             thumbnail, catalog, archive, delete"
        );
    }

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

    #[test]
    fn depth_counts_visible_and_in_flight() {
        let d = QueueDepth {
            visible: 2,
            in_flight: 3,
            delayed: 7,
        };
        assert_eq!(d.total(), 5);
    }
}
