//! Why a clamd call failed. None of these is a verdict about the content, so every one is
//! retryable: the stage leaves the message for a later receive.

use crate::address::ClamdAddress;

#[derive(Debug, thiserror::Error)]
pub enum ClamdError {
    #[error("clamd at {address} is unreachable: {source}; check that clamd runs and listens there")]
    Unreachable {
        address: ClamdAddress,
        source: std::io::Error,
    },
    #[error(
        "clamd at {address} did not answer within {seconds} s; it may be overloaded or still loading its database"
    )]
    Timeout { address: ClamdAddress, seconds: u64 },
    #[error("clamd at {address} broke off: {source}")]
    Connection {
        address: ClamdAddress,
        source: std::io::Error,
    },
    #[error("reading the object to scan failed after {sent} bytes: {source}")]
    Input { sent: u64, source: std::io::Error },
    #[error("clamd at {address} gave an answer this client does not understand: {reply:?}")]
    Protocol {
        address: ClamdAddress,
        reply: String,
    },
}

impl ClamdError {
    /// Every clamd error is retryable: none of them is a verdict about the content.
    pub fn code(&self) -> &'static str {
        match self {
            ClamdError::Unreachable { .. } => "scanner_unreachable",
            ClamdError::Timeout { .. } => "scanner_timeout",
            ClamdError::Connection { .. } => "scanner_connection",
            ClamdError::Input { .. } => "source_read_failed",
            ClamdError::Protocol { .. } => "scanner_protocol",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_is_retryable_with_a_fixed_code() {
        let e = ClamdError::Timeout {
            address: ClamdAddress::Tcp("127.0.0.1:3310".into()),
            seconds: 5,
        };
        assert_eq!(e.code(), "scanner_timeout");
        assert!(e.to_string().contains("tcp://127.0.0.1:3310"));
    }
}
