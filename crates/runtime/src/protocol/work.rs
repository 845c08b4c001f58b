//! Step 3: run the stage under a heartbeat that keeps the message invisible and the ledger
//! claim alive. A permanent error becomes the outcome `failed`; a retryable or poison one
//! releases the claim (with a transition saying why) so the next delivery can take it.

use std::sync::Arc;
use std::time::Duration;

use intake_core::ErrorClass;
use intake_store::{Ledger, VersionKey};
use tokio::time::Instant;

use super::{Failure, Shared};
use crate::backoff::MAX_VISIBILITY;
use crate::batch::Batcher;
use crate::queue::{Delivery, QueueError, VisibilityChange};
use crate::stage::{Stage, StageInput, StageOutput};

pub async fn run<S: Stage>(
    shared: &Shared<S>,
    delivery: &Delivery,
    version: &VersionKey,
    claimant: &str,
    input: &StageInput,
) -> Result<StageOutput, Failure> {
    let stage = S::KIND.name();
    // Aborted when dropped, so that a stage that panics (the task unwinds) or is cancelled
    // at shutdown does not leave a heartbeat keeping its message invisible forever.
    let heartbeat = AbortOnDrop(tokio::spawn(heartbeat(
        shared.io.visibility.clone(),
        delivery.receipt.clone(),
        shared.ledger.clone(),
        version.clone(),
        stage,
        claimant.to_owned(),
        shared.visibility,
    )));
    let result = shared.stage.process(&shared.cx, input).await;
    drop(heartbeat);
    match result {
        Ok(output) => Ok(output),
        Err(e) if e.class == ErrorClass::Permanent => Ok(StageOutput {
            outcome: "failed".into(),
            code: Some(e.code.into()),
            detail: Some(e.message),
            ..Default::default()
        }),
        Err(e) => {
            if let Err(release) = shared
                .ledger
                .release_stage(version, stage, claimant, e.code, &e.message)
                .await
            {
                // The claim lapses by itself after the visibility timeout.
                tracing::warn!(object = %version, stage, error = %release, "could not release a claim after a failure");
            }
            Err(match e.class {
                ErrorClass::Poison => Failure::Poison {
                    code: e.code.into(),
                    reason: e.message,
                },
                _ => Failure::retry(e.code, e.message),
            })
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Extends the message's visibility and the ledger lease every half visibility timeout.
/// Aborted by the caller when the work ends; never extends past SQS's 12-hour cap.
async fn heartbeat(
    visibility_calls: Batcher<VisibilityChange, QueueError>,
    receipt: String,
    ledger: Arc<Ledger>,
    version: VersionKey,
    stage: &'static str,
    claimant: String,
    visibility: Duration,
) {
    let started = Instant::now();
    let every = (visibility / 2).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(every).await;
        if started.elapsed() + visibility >= MAX_VISIBILITY {
            tracing::warn!(object = %version, "work has run for 12 hours; no longer extending visibility");
            return;
        }
        let change = VisibilityChange {
            receipt: receipt.clone(),
            timeout: visibility,
        };
        if let Err(e) = visibility_calls.submit(change).await {
            tracing::warn!(object = %version, error = %e, "could not extend visibility");
        }
        match ledger
            .extend_lease(&version, stage, &claimant, visibility)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(object = %version, stage, "ledger claim lost while working")
            }
            Err(e) => {
                tracing::warn!(object = %version, error = %e, "could not extend ledger claim")
            }
        }
    }
}
