//! The scan stage.
//!
//! - [`stage`]: [`Scan`], the runtime stage: stream the upload into the scanner, promote
//!   clean versions to the store bucket, quarantine infected and unscannable ones.
//! - [`command`]: the `command` hook: an external program judges the object from stdin.
//! - [`digest`]: SHA-256 of the bytes as they stream to the scanner, for the catalog.
//!
//! The clamd client (INSTREAM, PING, VERSION and the verdicts) is its own crate,
//! `intake-clamd`, so the API's readiness check can use it without depending on a stage;
//! its types are re-exported here for the stage's callers.

pub mod command;
pub mod digest;
pub mod stage;

pub use command::CommandScanner;
pub use intake_clamd::{Clamd, ClamdAddress, ClamdError, Verdict};
pub use stage::{Scan, Scanner};
