//! Intake's deletion worker. A deletion request (from `intake delete` or the API) names one
//! upload version; the worker removes its derivatives, its stored versions (all versions of
//! the key, or only this upload's, by `[deletion] versions`) and its catalog record, in that
//! order, then publishes `deleted`. It runs in the stage runtime, so it is claimed in the
//! ledger, retried with backoff and dead-lettered like any stage; every step is idempotent,
//! and the record goes last, so a retry always finds what an interrupted attempt left.
//!
//! - [`stage`]: [`Delete`], the [`intake_runtime::Stage`] implementation.

pub mod stage;

pub use stage::{Delete, DeletionStep};
