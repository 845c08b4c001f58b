//! A client for clamd, ClamAV's daemon: the scan stage streams uploads through it, the
//! API's readiness check and the local dev stack probe it, the test fixture waits for it.
//!
//! - [`address`]: where clamd listens ([`ClamdAddress`]: TCP or a unix socket) and how
//!   `[stages.scan.scanner] address` names it.
//! - [`client`]: [`Clamd`], `zINSTREAM` (any `AsyncRead`, in bounded chunks, never the whole
//!   object in memory), `zPING` and `zVERSION`.
//! - [`reply`]: clamd's INSTREAM reply as a [`Verdict`].
//! - [`error`]: [`ClamdError`], every variant retryable, each with a fixed `code()`.
//!
//! [`ping`] is the one readiness probe: everything that waits for a clamd or checks one
//! calls it instead of speaking the protocol itself.
//!
//! ```no_run
//! # async fn demo() -> Result<(), intake_clamd::ClamdError> {
//! use std::time::Duration;
//! use intake_clamd::{Clamd, ClamdAddress, Verdict};
//!
//! let address = ClamdAddress::from_config("tcp://127.0.0.1:3310");
//! intake_clamd::ping(&address, Duration::from_secs(2)).await?;
//! let verdict = Clamd::new(address).scan(&b"hello"[..]).await?;
//! assert_eq!(verdict, Verdict::Clean);
//! # Ok(()) }
//! ```

pub mod address;
pub mod client;
pub mod error;
pub mod reply;

use std::time::Duration;

pub use address::ClamdAddress;
pub use client::Clamd;
pub use error::ClamdError;
pub use reply::{Verdict, parse_reply};

/// Whether clamd at `address` answers `PING` with `PONG` within `timeout` (for the
/// connection and again for the reply). `Ok` means it has loaded its database and takes
/// scans; an error says why not (unreachable, timed out, or an answer that is not `PONG`).
pub async fn ping(address: &ClamdAddress, timeout: Duration) -> Result<(), ClamdError> {
    let mut clamd = Clamd::new(address.clone());
    clamd.timeout = timeout;
    clamd.ping().await
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A one-connection stand-in for clamd that answers any command with `reply`.
    async fn answering(reply: &'static [u8]) -> ClamdAddress {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = ClamdAddress::Tcp(listener.local_addr().unwrap().to_string());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut command = [0u8; 6];
            socket.read_exact(&mut command).await.unwrap();
            assert_eq!(&command, b"zPING\0");
            socket.write_all(reply).await.unwrap();
        });
        address
    }

    #[tokio::test]
    async fn ping_wants_pong_and_says_what_else_it_got() {
        let timeout = Duration::from_secs(2);
        ping(&answering(b"PONG\0").await, timeout).await.unwrap();

        let err = ping(&answering(b"LOADING\0").await, timeout)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "scanner_protocol", "{err}");
        assert!(err.to_string().contains("LOADING"), "{err}");

        // A port nobody listens on: bind one, note it, close it.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = ClamdAddress::Tcp(closed.local_addr().unwrap().to_string());
        drop(closed);
        let err = ping(&address, timeout).await.unwrap_err();
        assert_eq!(err.code(), "scanner_unreachable", "{err}");
        assert!(err.to_string().contains(&address.to_string()), "{err}");
    }
}
