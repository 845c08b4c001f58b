//! The scan stage.
//!
//! - [`stage`]: [`Scan`], the runtime stage: stream the upload into the scanner, promote
//!   clean versions to the store bucket, quarantine infected and unscannable ones.
//! - [`command`]: the `command` hook: an external program judges the object from stdin.
//! - [`digest`]: SHA-256 of the bytes as they stream to the scanner, for the catalog.
//! - [`clamd`]: a client for clamd's INSTREAM, PING and VERSION commands over TCP or a unix
//!   socket, streaming any `AsyncRead` (an S3 GET body) in bounded chunks, never holding
//!   the object in memory or on disk, and turning clamd's reply into a [`clamd::Verdict`].

pub mod clamd;
pub mod command;
pub mod digest;
pub mod stage;

pub use clamd::{Clamd, ClamdAddress, ClamdError, Verdict};
pub use command::CommandScanner;
pub use stage::{Scan, Scanner};
