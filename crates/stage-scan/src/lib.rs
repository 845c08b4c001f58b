//! The scan stage (being built). So far:
//!
//! - [`clamd`]: a client for clamd's INSTREAM, PING and VERSION commands over TCP or a unix
//!   socket, streaming any `AsyncRead` (an S3 GET body) in bounded chunks, never holding
//!   the object in memory or on disk, and turning clamd's reply into a [`clamd::Verdict`].

pub mod clamd;

pub use clamd::{Clamd, ClamdAddress, ClamdError, Verdict};
