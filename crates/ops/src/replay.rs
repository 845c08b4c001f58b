//! Moving dead-lettered messages back to their stage queue once the cause is fixed.
//!
//! Without a filter, limit or rate, SQS moves them itself (`StartMessageMoveTask`). With
//! one, Intake receives each message, sends a copy to the stage queue (same body, same
//! attributes minus the DLQ's own `intake-error-*`), and only then deletes it from the DLQ;
//! messages that do not match are held invisible until the end, then released. A replay
//! killed at any point therefore loses nothing: a message is in the DLQ, in the stage queue,
//! or (killed between send and delete) in both, and the ledger makes the duplicate a no-op.
//! Every replay, dry runs included, is recorded in the ledger.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName};
use intake_aws::AwsClients;
use intake_aws::error::{AwsError, classify};
use intake_core::ResourceNames;
use intake_core::clock::now_ms;
use intake_core::state_machine::StageKind;
use intake_runtime::queue::{
    POISON_CODE_ATTRIBUTE, POISON_REASON_ATTRIBUTE, POISON_SOURCE_ATTRIBUTE,
};
use intake_store::{Ledger, ReplayRecord, StoreError};

use crate::dlq::{DlqError, DlqMessage, decode};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dlq(#[from] DlqError),
    #[error(
        "invalid replay filter {given:?}: {reason}. Write comma-separated key=value pairs with \
         keys tenant, code and key-prefix, e.g. tenant=acme,code=scanner_unreachable"
    )]
    Filter { given: String, reason: String },
    #[error(
        "the message move task from {dlq} ended {status}: {reason}. Messages not moved are \
         still in the DLQ; run the replay again"
    )]
    MoveTask {
        dlq: String,
        status: String,
        reason: String,
    },
}

/// Which DLQ messages a replay takes; every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayFilter {
    pub tenant: Option<String>,
    /// The error code (the DLQ attribute, or the ledger's last retry code).
    pub code: Option<String>,
    pub key_prefix: Option<String>,
}

impl ReplayFilter {
    pub fn is_empty(&self) -> bool {
        *self == ReplayFilter::default()
    }

    fn matches(&self, message: &DlqMessage) -> bool {
        let key = message.object.as_ref().map(|o| o.key.as_str());
        self.matches_fields(message.tenant.as_deref(), key, &message.code)
    }

    fn matches_fields(&self, tenant: Option<&str>, key: Option<&str>, code: &str) -> bool {
        let tenant_ok = self.tenant.as_deref().is_none_or(|t| tenant == Some(t));
        let code_ok = self.code.as_deref().is_none_or(|c| code == c);
        let prefix_ok = self
            .key_prefix
            .as_deref()
            .is_none_or(|p| key.is_some_and(|k| k.starts_with(p)));
        tenant_ok && code_ok && prefix_ok
    }
}

impl FromStr for ReplayFilter {
    type Err = ReplayError;
    fn from_str(s: &str) -> Result<Self, ReplayError> {
        let mut filter = ReplayFilter::default();
        let fail = |reason: String| ReplayError::Filter {
            given: s.to_owned(),
            reason,
        };
        for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| fail(format!("\"{pair}\" has no '='")))?;
            let value = value.trim();
            if value.is_empty() {
                return Err(fail(format!("{key} has an empty value")));
            }
            let slot = match key.trim() {
                "tenant" => &mut filter.tenant,
                "code" => &mut filter.code,
                "key-prefix" | "key_prefix" | "prefix" => &mut filter.key_prefix,
                other => return Err(fail(format!("unknown key \"{other}\""))),
            };
            if slot.replace(value.to_owned()).is_some() {
                return Err(fail(format!("{key} is given twice")));
            }
        }
        Ok(filter)
    }
}

impl fmt::Display for ReplayFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = [
            ("tenant", &self.tenant),
            ("code", &self.code),
            ("key-prefix", &self.key_prefix),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();
        f.write_str(&parts.join(","))
    }
}

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub filter: ReplayFilter,
    /// Move at most this many.
    pub limit: Option<u64>,
    /// At most this many messages per second.
    pub rate_per_sec: Option<f64>,
    /// Count what would move; move nothing.
    pub dry_run: bool,
    pub requested_by: String,
    /// `[uploads] key_template`: reads the tenant from the key when the body has none (S3
    /// events).
    pub key_template: String,
    /// How long a message that does not match is held invisible while the replay runs; it
    /// is released at the end, or by SQS after this if the replay dies.
    pub hold: Duration,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            filter: ReplayFilter::default(),
            limit: None,
            rate_per_sec: None,
            dry_run: false,
            requested_by: "intake".into(),
            key_template: intake_core::config::defaults::key_template(),
            hold: Duration::from_secs(120),
        }
    }
}

/// How far a replay has come, for a progress bar.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Messages in the DLQ when the replay started (SQS's approximation).
    pub total: u64,
    /// Messages looked at so far.
    pub seen: u64,
    pub matched: u64,
    pub moved: u64,
    pub elapsed: Duration,
}

impl Progress {
    /// Moved per second so far.
    pub fn rate(&self) -> f64 {
        self.moved as f64 / self.elapsed.as_secs_f64().max(0.001)
    }
}

/// Replays `stage`'s DLQ into its queue. `on_progress` is called after every message.
pub async fn replay(
    aws: &AwsClients,
    names: &ResourceNames,
    ledger: &Ledger,
    stage: StageKind,
    options: &ReplayOptions,
    on_progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<ReplayRecord, ReplayError> {
    let queues = names.stage(stage);
    let queue_url = crate::dlq::queue_url(aws, &queues.queue).await?;
    let dlq_url = crate::dlq::queue_url(aws, &queues.dlq).await?;
    let started_ms = now_ms();
    let total = crate::dlq::queue_depth(aws, &queues.dlq).await?.visible;
    let whole_queue = options.filter.is_empty()
        && options.limit.is_none()
        && options.rate_per_sec.is_none()
        && !options.dry_run;
    let (method, matched, moved) = if whole_queue {
        let moved = move_task(aws, &queues.dlq, &queues.queue, total, on_progress).await?;
        ("move_task", moved, moved)
    } else {
        let (matched, moved) = receive_send_delete(
            aws,
            ledger,
            stage,
            (&dlq_url, &queues.dlq),
            &queue_url,
            total,
            options,
            on_progress,
        )
        .await?;
        ("receive_send_delete", matched, moved)
    };
    let record = ReplayRecord {
        stage: stage.name().to_owned(),
        requested_by: options.requested_by.clone(),
        filter: options.filter.to_string(),
        method: method.to_owned(),
        dry_run: options.dry_run,
        matched,
        moved,
        started_ms,
        finished_ms: now_ms(),
    };
    ledger.record_replay(&record).await?;
    Ok(record)
}

async fn move_task(
    aws: &AwsClients,
    dlq: &str,
    queue: &str,
    total: u64,
    on_progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<u64, ReplayError> {
    let account = aws.account_id().await?;
    let arns = intake_aws::arn::Arns::new(account, aws.region.clone());
    let (source, destination) = (arns.queue(dlq), arns.queue(queue));
    let started = Instant::now();
    aws.sqs
        .start_message_move_task()
        .source_arn(&source)
        .destination_arn(&destination)
        .send()
        .await
        .map_err(|e| classify(&aws.endpoint, "StartMessageMoveTask", dlq, e))?;
    loop {
        let tasks = aws
            .sqs
            .list_message_move_tasks()
            .source_arn(&source)
            .max_results(1)
            .send()
            .await
            .map_err(|e| classify(&aws.endpoint, "ListMessageMoveTasks", dlq, e))?;
        let Some(task) = tasks.results().first() else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let moved = task
            .approximate_number_of_messages_moved()
            .max(0)
            .unsigned_abs();
        on_progress(&Progress {
            total,
            seen: moved,
            matched: moved,
            moved,
            elapsed: started.elapsed(),
        });
        match task.status().unwrap_or_default() {
            "COMPLETED" => return Ok(moved),
            "RUNNING" | "CANCELLING" => tokio::time::sleep(Duration::from_millis(200)).await,
            status => {
                return Err(ReplayError::MoveTask {
                    dlq: dlq.to_owned(),
                    status: status.to_owned(),
                    reason: task
                        .failure_reason()
                        .unwrap_or("no reason given")
                        .to_owned(),
                });
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn receive_send_delete(
    aws: &AwsClients,
    ledger: &Ledger,
    stage: StageKind,
    (dlq_url, dlq): (&str, &str),
    queue_url: &str,
    total: u64,
    options: &ReplayOptions,
    on_progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<(u64, u64), ReplayError> {
    let started = Instant::now();
    let mut progress = Progress {
        total,
        ..Progress::default()
    };
    let mut seen: HashSet<String> = HashSet::new();
    // Receipt handles of messages held back (no match, over the limit, or a dry run),
    // released when the replay ends.
    let mut held: HashMap<String, String> = HashMap::new();
    let interval = options
        .rate_per_sec
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(1.0 / r));
    let result: Result<(), ReplayError> = async {
        loop {
            let batch = aws
                .sqs
                .receive_message()
                .queue_url(dlq_url)
                .max_number_of_messages(10)
                .visibility_timeout(options.hold.as_secs().clamp(1, 43_200) as i32)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .wait_time_seconds(1)
                .send()
                .await
                .map_err(|e| classify(&aws.endpoint, "ReceiveMessage", dlq, e))?;
            let messages = batch.messages();
            if messages.is_empty() {
                return Ok(());
            }
            for message in messages {
                let id = message.message_id().unwrap_or_default().to_owned();
                let receipt = message.receipt_handle().unwrap_or_default().to_owned();
                if !seen.insert(id.clone()) {
                    // Held earlier and come back (the hold ran out): keep holding it.
                    held.insert(id, receipt);
                    continue;
                }
                progress.seen += 1;
                let mut described = decode(ledger, stage, dlq, message).await?;
                described.infer_tenant(&options.key_template);
                let under_limit = options.limit.is_none_or(|l| progress.moved < l);
                if options.filter.matches(&described) {
                    progress.matched += 1;
                    if under_limit && !options.dry_run {
                        if let Some(interval) = interval {
                            let due = interval.mul_f64(progress.moved as f64);
                            tokio::time::sleep(due.saturating_sub(started.elapsed())).await;
                        }
                        send_back(aws, queue_url, message).await?;
                        aws.sqs
                            .delete_message()
                            .queue_url(dlq_url)
                            .receipt_handle(&receipt)
                            .send()
                            .await
                            .map_err(|e| classify(&aws.endpoint, "DeleteMessage", dlq, e))?;
                        progress.moved += 1;
                    } else {
                        held.insert(id, receipt);
                    }
                } else {
                    held.insert(id, receipt);
                }
                progress.elapsed = started.elapsed();
                on_progress(&progress);
            }
        }
    }
    .await;
    // Released whatever happened above; if this process dies first, SQS releases them
    // when the hold runs out.
    for receipt in held.values() {
        let _ = aws
            .sqs
            .change_message_visibility()
            .queue_url(dlq_url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await;
    }
    result?;
    Ok((progress.matched, progress.moved))
}

/// A copy of `message` on the stage queue: the same body and attributes, without the ones
/// the DLQ added.
async fn send_back(aws: &AwsClients, queue_url: &str, message: &Message) -> Result<(), AwsError> {
    let attributes: HashMap<String, MessageAttributeValue> = message
        .message_attributes()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| {
            ![
                POISON_CODE_ATTRIBUTE,
                POISON_REASON_ATTRIBUTE,
                POISON_SOURCE_ATTRIBUTE,
            ]
            .contains(&k.as_str())
        })
        .collect();
    aws.sqs
        .send_message()
        .queue_url(queue_url)
        .message_body(message.body().unwrap_or_default())
        .set_message_attributes((!attributes.is_empty()).then_some(attributes))
        .send()
        .await
        .map_err(|e| classify(&aws.endpoint, "SendMessage", queue_url, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_print_and_refuse_mistakes() {
        let f: ReplayFilter = "tenant=acme, code=scanner_unreachable,key-prefix=acme/u1/"
            .parse()
            .unwrap();
        assert_eq!(f.tenant.as_deref(), Some("acme"));
        assert_eq!(f.code.as_deref(), Some("scanner_unreachable"));
        assert_eq!(f.key_prefix.as_deref(), Some("acme/u1/"));
        assert_eq!(
            f.to_string(),
            "tenant=acme,code=scanner_unreachable,key-prefix=acme/u1/"
        );
        assert!("".parse::<ReplayFilter>().unwrap().is_empty());
        for bad in ["tenant", "colour=red", "tenant=a,tenant=b", "code="] {
            let err = bad.parse::<ReplayFilter>().unwrap_err().to_string();
            assert!(err.contains("tenant, code and key-prefix"), "{bad}: {err}");
        }
    }

    #[test]
    fn every_given_field_must_match() {
        let matches = |filter: &str| {
            filter.parse::<ReplayFilter>().unwrap().matches_fields(
                Some("acme"),
                Some("acme/u1/photo.jpg"),
                "scanner_unreachable",
            )
        };
        assert!(matches(""));
        assert!(matches("tenant=acme,code=scanner_unreachable"));
        assert!(matches("key-prefix=acme/u1/"));
        assert!(!matches("tenant=acme,code=not_json"));
        assert!(!matches("key-prefix=other/"));
    }
}
