//! Step 2: claim the (version, stage) in the ledger. Exactly one delivery works on it; a
//! duplicate of a finished stage is acknowledged, and one whose outcome was recorded but
//! never published publishes it on the dead worker's behalf.
//!
//! S3's sequencer orders events for a key, but no event is dropped for arriving late: one
//! file, one version (the entry stage asks the ledger which version is the file), so a late
//! event is either a duplicate of the file's own, which this claim acknowledges, or a later
//! version, which the entry stage refuses as `upload_reused` and cleans up.

use intake_core::OutcomeMessage;
use intake_store::{Begin, VersionKey};

use super::{Failure, Shared, deliver};
use crate::stage::Stage;
use crate::topic::Outbound;

pub enum Claimed {
    /// This delivery holds the claim (its attempt number): do the work.
    Work(u32),
    /// Nothing left to do (the stage was done and its outcome is out).
    AlreadySettled,
}

pub async fn claim<S: Stage>(
    shared: &Shared<S>,
    version: &VersionKey,
    claimant: &str,
) -> Result<Claimed, Failure> {
    let stage = S::KIND.name();
    let begun = shared
        .ledger
        .begin_stage(version, stage, claimant, shared.visibility)
        .await
        .map_err(Failure::store)?;
    match begun {
        Begin::Claimed { attempt } => Ok(Claimed::Work(attempt)),
        Begin::AlreadyDone {
            unpublished_outcome: None,
            ..
        } => {
            tracing::info!(object = %version, stage, "duplicate delivery acknowledged: stage already completed");
            Ok(Claimed::AlreadySettled)
        }
        Begin::AlreadyDone {
            unpublished_outcome: Some(json),
            ..
        } => {
            publish_on_behalf(shared, version, json).await?;
            Ok(Claimed::AlreadySettled)
        }
        Begin::HeldElsewhere { worker, .. } => Err(Failure::retry(
            "in_progress_elsewhere",
            format!("{version}: {stage} is being processed by {worker}"),
        )),
    }
}

/// A recorded outcome that is not marked published: either the worker that did the work is
/// publishing right now, or it died in between. It gets its visibility period before this
/// delivery publishes on its behalf, or both would publish.
async fn publish_on_behalf<S: Stage>(
    shared: &Shared<S>,
    version: &VersionKey,
    json: String,
) -> Result<(), Failure> {
    let stage = S::KIND.name();
    let recorded = serde_json::from_str::<OutcomeMessage>(&json).ok();
    let finished_ms = recorded.as_ref().map_or(0, |o| o.timings.finished_ms);
    if shared.ledger.now_ms() - finished_ms < shared.visibility.as_millis() as i64 {
        return Err(Failure::retry(
            "publish_pending",
            format!(
                "{version}: {stage} is done and its outcome is being published by another delivery"
            ),
        ));
    }
    let attributes = recorded
        .map(|o| {
            o.attributes()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect()
        })
        .unwrap_or_default();
    let outbound = Outbound { json, attributes };
    tracing::info!(object = %version, stage, "publishing an outcome recorded by a delivery that did not publish it");
    deliver::publish(shared, version, &outbound).await
}
