//! Intake's state ledger: the durable record that turns at-least-once deliveries into
//! exactly-once effects. One row per (object version, stage) is claimed by a conditional
//! write; a stage's result and its outcome message are recorded in one transaction.
//!
//! - [`ledger`]: [`Ledger`] — connect, claim ([`Ledger::begin_stage`]), heartbeat,
//!   complete with the outbox row, release for retry, count completions.
//! - [`outbox`]: outcomes recorded but not yet published; marking them published, one at
//!   a time or a publish batch in one transaction.
//! - [`files`]: one file, one version: which version of an uploads key is the file
//!   ([`Ledger::accept_file_version`]).
//! - [`catalog`]: one record per promoted version ([`CatalogRecord`]), what apps read.
//! - [`reprocess`]: forgetting stages for an operator's reprocess ([`Ledger::reset_stages`]).
//! - [`replays`]: the record of DLQ replays operators ran ([`ReplayRecord`]).
//! - [`uploads`]: uploads the HTTP API signed, with their owner and file state.
//! - [`history`]: every version's state and transitions, for `intake status`.
//! - [`stats`]: per-stage completions, failures, retries and durations in a time window,
//!   for `intake stats`.
//! - [`types`]: [`VersionKey`] and the answers the ledger gives ([`Begin`],
//!   [`Completion`]).
//! - [`backend`]: SQLite (default, `sqlite://PATH`) or PostgreSQL (`postgres://...`),
//!   chosen by URL; settings per backend.
//! - [`migrate`]: migrations, one process at a time (an advisory lock on PostgreSQL, a
//!   lock file beside a SQLite database), so any number may start at once.
//! - [`Clock`]: where "now" comes from (a manual clock in tests); it lives in `intake_core::clock`.
//! - [`error`]: the one error type, [`StoreError`], with a fixed `code()` per failure.
//!
//! Both backends run the same SQL through `sqlx::AnyPool`: `$N` placeholders (SQLite
//! takes them as numbered parameters), BIGINT epoch milliseconds, TEXT ids, and
//! `INSERT ... ON CONFLICT ... DO UPDATE ... WHERE` for claims.

pub mod backend;
pub mod catalog;
pub mod error;
pub mod files;
pub mod history;
pub mod ledger;
pub mod migrate;
pub mod outbox;
pub mod replays;
pub mod reprocess;
pub mod stats;
pub mod types;
pub mod uploads;

pub use backend::Backend;
pub use catalog::{
    CatalogEntry, CatalogFilter, CatalogRecord, RenditionRecord, ScanRecord, StageTime, StoredAt,
};
pub use error::StoreError;
pub use files::FileVersion;
pub use history::{Transition, VersionHistory};
pub use intake_core::clock::{Clock, ManualClock};
pub use ledger::Ledger;
pub use replays::ReplayRecord;
pub use stats::StageActivity;
pub use types::{Begin, Completion, StageResult, VersionKey};
pub use uploads::{FILE_STATES, UploadEntry, UploadFilter, UploadRecord};
