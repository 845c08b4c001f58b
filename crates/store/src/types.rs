//! The values callers exchange with the ledger: which version, what a stage did, and
//! the answers to "may I run?" and "did my result count?".

use std::fmt;

/// One version of one object: the unit of idempotency. `version` is the S3 version id,
/// or the ETag when the bucket is unversioned.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct VersionKey {
    pub bucket: String,
    pub key: String,
    pub version: String,
}

impl VersionKey {
    pub fn new(
        bucket: impl Into<String>,
        key: impl Into<String>,
        version: impl Into<String>,
    ) -> VersionKey {
        VersionKey {
            bucket: bucket.into(),
            key: key.into(),
            version: version.into(),
        }
    }
}

impl fmt::Display for VersionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "s3://{}/{} (version {})",
            self.bucket, self.key, self.version
        )
    }
}

/// The answer to [`Ledger::begin_stage`](crate::Ledger::begin_stage).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Begin {
    /// The caller holds the claim and should do the work. `attempt` counts claims of
    /// this stage for this version, starting at 1.
    Claimed { attempt: u32 },
    /// The stage already completed: acknowledge the message without redoing the work.
    /// If `unpublished_outcome` is set, the outcome message was recorded but never
    /// published (the worker died in between): publish it, then call
    /// [`Ledger::mark_published`](crate::Ledger::mark_published).
    AlreadyDone {
        outcome: String,
        unpublished_outcome: Option<String>,
    },
    /// Another worker holds an unexpired claim: leave the message for redelivery.
    HeldElsewhere { worker: String, until_ms: i64 },
}

/// What a stage did, recorded by [`Ledger::complete_stage`](crate::Ledger::complete_stage).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageResult {
    /// The outcome name routed by the state machine (`passed`, `rejected`, ...).
    pub outcome: String,
    pub code: Option<String>,
    pub detail: Option<String>,
    /// The outcome message to publish, kept in the outbox until it is marked published.
    pub outcome_json: String,
    pub started_ms: i64,
    pub finished_ms: i64,
}

/// The answer to [`Ledger::complete_stage`](crate::Ledger::complete_stage).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Result, outbox row, transition and state were written together.
    Recorded,
    /// The caller no longer held the claim (its lease lapsed and another worker took the
    /// stage over, or it was released): nothing was written; do not publish.
    LostClaim,
}
