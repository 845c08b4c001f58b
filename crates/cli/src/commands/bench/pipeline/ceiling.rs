//! The emulator's own ceiling in `intake bench pipeline`: raw S3 PUT and SQS
//! send/receive/delete loops at the same concurrency as the uploads, no Intake logic, on
//! scratch resources of their own (removed after).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use intake_aws::AwsClients;
use serde_json::json;
use tokio::sync::Semaphore;

use super::report::round;
use super::{CONCURRENCY, Object, upload};

pub(super) async fn ceiling(
    aws: &AwsClients,
    name: &str,
    objs: &[Object],
) -> anyhow::Result<serde_json::Value> {
    let n = objs.len();
    // S3: a scratch bucket of our own, emptied and removed after.
    let bucket = format!("{name}-bench-scratch");
    aws.s3
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .context("creating the scratch bucket")?;
    let t = Instant::now();
    upload(aws, &bucket, objs).await?;
    let put_secs = t.elapsed().as_secs_f64();
    for o in objs {
        let _ = aws
            .s3
            .delete_object()
            .bucket(&bucket)
            .key(&o.key)
            .send()
            .await;
    }
    let _ = aws.s3.delete_bucket().bucket(&bucket).send().await;

    // SQS: a scratch queue; N sends, then receive (10 at a time) and delete each.
    let queue = aws
        .sqs
        .create_queue()
        .queue_name(format!("{name}-bench-scratch"))
        .send()
        .await?
        .queue_url
        .context("no queue URL")?;
    let sem = Arc::new(Semaphore::new(CONCURRENCY));
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await?;
        let (sqs, queue) = (aws.sqs.clone(), queue.clone());
        set.spawn(async move {
            let r = sqs
                .send_message()
                .queue_url(&queue)
                .message_body(format!("bench {i}"))
                .send()
                .await;
            drop(permit);
            r.map(|_| ())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    let send_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // When the last message was deleted: the loops' final empty long polls do not count.
    let last = Arc::new(std::sync::Mutex::new(None::<Duration>));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (sqs, queue, received, last) = (
            aws.sqs.clone(),
            queue.clone(),
            received.clone(),
            last.clone(),
        );
        set.spawn(async move {
            let started = Instant::now();
            while received.load(std::sync::atomic::Ordering::Relaxed) < n
                && started.elapsed() < Duration::from_secs(120)
            {
                let out = sqs
                    .receive_message()
                    .queue_url(&queue)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .send()
                    .await?;
                for m in out.messages.unwrap_or_default() {
                    if let Some(h) = m.receipt_handle {
                        sqs.delete_message()
                            .queue_url(&queue)
                            .receipt_handle(h)
                            .send()
                            .await?;
                        if received.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1 == n {
                            *last.lock().unwrap() = Some(t.elapsed());
                        }
                    }
                }
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    let recv_secs = last
        .lock()
        .unwrap()
        .unwrap_or_else(|| t.elapsed())
        .as_secs_f64();
    let _ = aws.sqs.delete_queue().queue_url(&queue).send().await;
    let got = received.load(std::sync::atomic::Ordering::Relaxed);
    let bytes: usize = objs.iter().map(|o| o.body.len()).sum();
    Ok(json!({
        "s3_put_per_s": round(n as f64 / put_secs),
        "s3_put_mb_per_s": round(bytes as f64 / 1e6 / put_secs),
        "sqs_send_per_s": round(n as f64 / send_secs),
        "sqs_receive_delete_per_s": round(got as f64 / recv_secs),
        "sqs_messages_received": got,
    }))
}
