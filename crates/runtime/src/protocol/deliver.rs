//! Step 5: publish the recorded outcome and mark it published, then settle the message:
//! acknowledge it, delay it for a retry, or move it to the DLQ. A message is acknowledged
//! only after everything before it is durable.

use intake_store::VersionKey;

use super::{Disposition, Failure, Shared};
use crate::metrics::MetricEvent;
use crate::queue::{Delivery, VisibilityChange};
use crate::stage::Stage;
use crate::topic::Outbound;

/// Publishes a recorded outcome and clears its outbox flag.
pub async fn publish<S: Stage>(
    shared: &Shared<S>,
    version: &VersionKey,
    outbound: &Outbound,
) -> Result<(), Failure> {
    shared
        .io
        .publisher
        .publishes
        .submit(outbound.clone())
        .await
        .map_err(|e| Failure::retry(e.code(), e.to_string()))?;
    if let Err(e) = shared
        .io
        .publisher
        .marks
        .submit((version.clone(), S::KIND.name()))
        .await
    {
        // Published but not marked: a redelivery after the visibility timeout publishes it
        // again (consumers dedupe by object and stage); the message is still acknowledged.
        tracing::warn!(object = %version, error = %e, "outcome published but not marked; a redelivery may publish it again");
    }
    Ok(())
}

pub async fn acknowledge<S: Stage>(shared: &Shared<S>, delivery: &Delivery) -> Disposition {
    if let Err(e) = shared.io.acks.submit(delivery.receipt.clone()).await {
        // The effect is recorded; a redelivery will be acknowledged as a duplicate.
        tracing::warn!(queue = %shared.queue.name(), error = %e, "could not delete a processed message");
    }
    Disposition::Deleted
}

pub async fn retry_later<S: Stage>(
    shared: &Shared<S>,
    delivery: &Delivery,
    code: String,
    detail: String,
) -> Disposition {
    let receive_count = delivery.receive_count;
    let delay = shared.backoff.delay_random(receive_count);
    tracing::warn!(stage = %S::KIND, code, detail, receive_count, delay_secs = delay.as_secs(), "retryable failure; message will come back");
    shared.metrics.record(MetricEvent::Retried { code });
    delay_message(shared, delivery, delay).await;
    Disposition::Retried
}

pub async fn poison<S: Stage>(
    shared: &Shared<S>,
    delivery: &Delivery,
    code: &str,
    reason: &str,
) -> Disposition {
    tracing::warn!(queue = %shared.queue.name(), code, reason, "poison message moved to the DLQ");
    shared
        .metrics
        .record(MetricEvent::Poison { code: code.into() });
    match shared.queue.dead_letter(delivery, code, reason).await {
        Ok(()) => {
            acknowledge(shared, delivery).await;
            Disposition::Poisoned
        }
        Err(e) => {
            // Not in the DLQ yet: keep it; the redrive policy will move it eventually.
            tracing::warn!(error = %e, "could not move a poison message to the DLQ; leaving it on the queue");
            delay_message(shared, delivery, shared.backoff.delay_random(1)).await;
            Disposition::Retried
        }
    }
}

async fn delay_message<S: Stage>(
    shared: &Shared<S>,
    delivery: &Delivery,
    delay: std::time::Duration,
) {
    let change = VisibilityChange {
        receipt: delivery.receipt.clone(),
        timeout: delay,
    };
    if let Err(e) = shared.io.visibility.submit(change).await {
        tracing::warn!(error = %e, "could not change message visibility; the message comes back after its visibility timeout");
    }
}
