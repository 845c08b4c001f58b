//! The ceiling of `intake bench pipeline`: the same call mix the workers made (the same
//! operations, as many of each, on objects of the same size, at the same concurrency),
//! replayed against the same endpoint with no Intake logic. Whatever the pipeline's rate
//! falls short of it is Intake's own cost; whatever the replay itself costs is the price of
//! the calls Intake chooses to make.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    SendMessageBatchRequestEntry,
};
use intake_aws::AwsClients;
use serde_json::json;
use tokio::sync::Semaphore;

/// What to replay: total requests by `Service.Operation`, for `objects` objects of
/// `body` each, with `concurrency` calls in flight.
pub struct CallMix<'a> {
    pub calls: &'a BTreeMap<String, u64>,
    pub objects: usize,
    pub body: &'a [u8],
    pub concurrency: usize,
}

/// Scratch resources the replay works on, removed at the end.
struct Scratch {
    bucket: String,
    queue: String,
    fanout_queue: String,
    topic: String,
    /// Receipts of received messages, for the batch deletes and visibility changes.
    receipts: Mutex<Vec<String>>,
}

pub async fn replay(
    aws: &AwsClients,
    name: &str,
    mix: CallMix<'_>,
) -> anyhow::Result<serde_json::Value> {
    // Every acknowledgement or visibility change the pipeline made acted on a message.
    let batch_calls: u64 = ["SQS.DeleteMessageBatch", "SQS.ChangeMessageVisibilityBatch"]
        .iter()
        .filter_map(|op| mix.calls.get(*op))
        .sum();
    let prefill = (batch_calls as usize * 10).clamp(10, 100_000);
    let scratch = Arc::new(setup(aws, name, mix.body, prefill).await?);
    // Operations the replay does not know (start-up lookups, CloudWatch) are left out and
    // named, rather than guessed at.
    let mut skipped = BTreeMap::new();
    let mut jobs: Vec<&'static str> = Vec::new();
    for (operation, &n) in mix.calls {
        match known(operation) {
            Some(op) => jobs.extend(std::iter::repeat_n(op, n as usize)),
            None => {
                skipped.insert(operation.clone(), n);
            }
        }
    }
    // Receives first, as in the pipeline, so that deletes and visibility changes act on
    // real receipts; then the rest, interleaved.
    jobs.sort_by_key(|op| *op != "SQS.ReceiveMessage");
    let replayed = jobs.len();
    let permits = Arc::new(Semaphore::new(mix.concurrency.max(1)));
    let body = Arc::new(mix.body.to_vec());
    let failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, op) in jobs.into_iter().enumerate() {
        let permit = permits.clone().acquire_owned().await?;
        let (aws, scratch, body, failures) =
            (aws.clone(), scratch.clone(), body.clone(), failures.clone());
        tasks.spawn(async move {
            if let Err(e) = call(&aws, &scratch, op, i, &body).await {
                tracing::debug!(op, error = %e, "replayed call failed");
                failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
    let secs = started.elapsed().as_secs_f64().max(0.001);
    teardown(aws, &scratch).await;
    let failed = failures.load(std::sync::atomic::Ordering::Relaxed);
    Ok(json!({
        "calls": replayed,
        "failed_calls": failed,
        "seconds": (secs * 100.0).round() / 100.0,
        "objects_per_s": ((mix.objects as f64 / secs) * 100.0).round() / 100.0,
        "not_replayed": skipped,
    }))
}

/// The operations the replay can make, by the name the call counter gives them.
fn known(operation: &str) -> Option<&'static str> {
    const KNOWN: [&str; 11] = [
        "S3.GetObject",
        "S3.HeadObject",
        "S3.PutObject",
        "S3.CopyObject",
        "S3.DeleteObject",
        "S3.GetObjectTagging",
        "SQS.ReceiveMessage",
        "SQS.DeleteMessageBatch",
        "SQS.ChangeMessageVisibilityBatch",
        "SQS.SendMessage",
        "SNS.PublishBatch",
    ];
    KNOWN.into_iter().find(|k| *k == operation)
}

async fn setup(
    aws: &AwsClients,
    name: &str,
    body: &[u8],
    prefill: usize,
) -> anyhow::Result<Scratch> {
    let bucket = format!("{name}-replay");
    aws.s3
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .context("creating the replay bucket")?;
    aws.s3
        .put_object()
        .bucket(&bucket)
        .key("seed")
        .body(body.to_vec().into())
        .send()
        .await
        .context("writing the replay's seed object")?;
    let queue = create_queue(aws, &format!("{name}-replay"), prefill).await?;
    let fanout_queue = create_queue(aws, &format!("{name}-replay-fanout"), 0).await?;
    let topic = aws
        .sns
        .create_topic()
        .name(format!("{name}-replay"))
        .send()
        .await?
        .topic_arn
        .context("no topic ARN")?;
    let fanout_arn = aws
        .sqs
        .get_queue_attributes()
        .queue_url(&fanout_queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .context("no queue ARN")?;
    // Publishes fan out to a queue, as the events topic does to the stage queues.
    aws.sns
        .subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(fanout_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await?;
    Ok(Scratch {
        bucket,
        queue,
        fanout_queue,
        topic,
        receipts: Mutex::new(Vec::new()),
    })
}

/// A queue holding `prefill` messages for the receives, deletes and visibility changes to
/// act on (sent before the timed replay, ten per call).
async fn create_queue(aws: &AwsClients, name: &str, prefill: usize) -> anyhow::Result<String> {
    let url = aws
        .sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .with_context(|| format!("creating queue {name}"))?
        .queue_url
        .context("no queue URL")?;
    for batch in 0..prefill.div_ceil(10) {
        let entries = (0..10)
            .map(|i| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(format!("replay {batch}-{i}"))
                    .build()
                    .expect("id and body are set")
            })
            .collect();
        aws.sqs
            .send_message_batch()
            .queue_url(&url)
            .set_entries(Some(entries))
            .send()
            .await?;
    }
    Ok(url)
}

async fn call(
    aws: &AwsClients,
    scratch: &Scratch,
    op: &str,
    i: usize,
    body: &[u8],
) -> anyhow::Result<()> {
    let (s3, sqs, bucket) = (&aws.s3, &aws.sqs, scratch.bucket.as_str());
    match op {
        "S3.GetObject" => {
            let out = s3.get_object().bucket(bucket).key("seed").send().await?;
            out.body.collect().await?;
        }
        "S3.HeadObject" => {
            s3.head_object().bucket(bucket).key("seed").send().await?;
        }
        "S3.GetObjectTagging" => {
            s3.get_object_tagging()
                .bucket(bucket)
                .key("seed")
                .send()
                .await?;
        }
        "S3.PutObject" => {
            s3.put_object()
                .bucket(bucket)
                .key(format!("put-{i}"))
                .body(body.to_vec().into())
                .send()
                .await?;
        }
        "S3.CopyObject" => {
            s3.copy_object()
                .bucket(bucket)
                .key(format!("copy-{i}"))
                .copy_source(format!("{bucket}/seed"))
                .send()
                .await?;
        }
        "S3.DeleteObject" => {
            s3.delete_object()
                .bucket(bucket)
                .key(format!("copy-{i}"))
                .send()
                .await?;
        }
        "SQS.ReceiveMessage" => {
            let out = sqs
                .receive_message()
                .queue_url(&scratch.queue)
                .max_number_of_messages(10)
                .visibility_timeout(0)
                .send()
                .await?;
            let mut receipts = scratch.receipts.lock().expect("receipts lock");
            receipts.extend(
                out.messages()
                    .iter()
                    .filter_map(|m| m.receipt_handle.clone()),
            );
        }
        "SQS.DeleteMessageBatch" => {
            let entries: Vec<_> = take_receipts(scratch)
                .into_iter()
                .enumerate()
                .map(|(n, r)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(n.to_string())
                        .receipt_handle(r)
                        .build()
                        .expect("id and receipt are set")
                })
                .collect();
            sqs.delete_message_batch()
                .queue_url(&scratch.queue)
                .set_entries(Some(entries))
                .send()
                .await?;
        }
        "SQS.ChangeMessageVisibilityBatch" => {
            let entries: Vec<_> = take_receipts(scratch)
                .into_iter()
                .enumerate()
                .map(|(n, r)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(n.to_string())
                        .receipt_handle(r)
                        .visibility_timeout(0)
                        .build()
                        .expect("id and receipt are set")
                })
                .collect();
            sqs.change_message_visibility_batch()
                .queue_url(&scratch.queue)
                .set_entries(Some(entries))
                .send()
                .await?;
        }
        "SQS.SendMessage" => {
            sqs.send_message()
                .queue_url(&scratch.queue)
                .message_body(format!("replay {i}"))
                .send()
                .await?;
        }
        "SNS.PublishBatch" => {
            let entry = aws_sdk_sns::types::PublishBatchRequestEntry::builder()
                .id("0")
                .message(format!("{{\"replay\":{i}}}"))
                .build()
                .expect("id and message are set");
            aws.sns
                .publish_batch()
                .topic_arn(&scratch.topic)
                .publish_batch_request_entries(entry)
                .send()
                .await?;
        }
        other => anyhow::bail!("the replay does not know {other}"),
    }
    Ok(())
}

/// Up to ten receipts from the pool; a batch call needs at least one entry, so a dummy
/// receipt stands in when the pool is empty (SQS answers it per entry, as for a stale one).
fn take_receipts(scratch: &Scratch) -> Vec<String> {
    let mut receipts = scratch.receipts.lock().expect("receipts lock");
    let n = receipts.len().min(10);
    let taken: Vec<String> = receipts.drain(..n).collect();
    if taken.is_empty() {
        vec!["replay-no-receipt".to_owned()]
    } else {
        taken
    }
}

async fn teardown(aws: &AwsClients, scratch: &Scratch) {
    for queue in [&scratch.queue, &scratch.fanout_queue] {
        let _ = aws.sqs.delete_queue().queue_url(queue).send().await;
    }
    let _ = aws
        .sns
        .delete_topic()
        .topic_arn(&scratch.topic)
        .send()
        .await;
    if let Ok(listed) = aws
        .s3
        .list_objects_v2()
        .bucket(&scratch.bucket)
        .send()
        .await
    {
        for object in listed.contents() {
            if let Some(key) = object.key() {
                let _ = aws
                    .s3
                    .delete_object()
                    .bucket(&scratch.bucket)
                    .key(key)
                    .send()
                    .await;
            }
        }
    }
    let _ = aws.s3.delete_bucket().bucket(&scratch.bucket).send().await;
}
