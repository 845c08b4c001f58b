//! clamd client: `zINSTREAM` (4-byte big-endian chunk lengths, a zero length to end),
//! `zPING`, `zVERSION`, over TCP or a unix socket.
//!
//! Written here rather than taken from `clamav-client` because of one behaviour the scan
//! stage depends on: past `StreamMaxLength` clamd answers `INSTREAM size limit exceeded.
//! ERROR` and closes the socket while the client is still sending, so a write fails with a
//! broken pipe. That is a verdict (`unscannable`), not a connection failure: the client
//! stops sending and still reads the reply.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

/// Where clamd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamdAddress {
    /// `host:port`
    Tcp(String),
    Unix(PathBuf),
}

impl ClamdAddress {
    /// From `[stages.scan.scanner] address`: `unix:///path`, or `tcp://host:port` (the
    /// scheme may be left out for TCP).
    pub fn from_config(address: &str) -> Self {
        match address.strip_prefix("unix://") {
            Some(path) => ClamdAddress::Unix(path.into()),
            None => ClamdAddress::Tcp(address.trim_start_matches("tcp://").to_owned()),
        }
    }
}

impl std::fmt::Display for ClamdAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClamdAddress::Tcp(a) => write!(f, "tcp://{a}"),
            ClamdAddress::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

/// What clamd concluded about a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    /// The signature name as clamd reports it (unsigned databases add `.UNOFFICIAL`).
    Infected {
        signature: String,
    },
    /// clamd could not judge the content (over its stream limit, an encrypted archive...):
    /// never a pass; the pipeline routes it by policy (quarantine by default).
    Unscannable {
        reason: String,
    },
}

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

trait Socket: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Socket for T {}

#[derive(Debug, Clone)]
pub struct Clamd {
    pub address: ClamdAddress,
    /// Longest wait for any single step (connect, a write, the reply).
    pub timeout: Duration,
    /// Bytes per INSTREAM chunk: the most this client holds of an object at once.
    pub chunk_size: usize,
}

impl Clamd {
    pub fn new(address: ClamdAddress) -> Self {
        Clamd {
            address,
            timeout: Duration::from_secs(60),
            chunk_size: 64 * 1024,
        }
    }

    async fn step<T>(
        &self,
        f: impl std::future::Future<Output = std::io::Result<T>>,
    ) -> Result<T, ClamdError> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(source)) => Err(ClamdError::Connection {
                address: self.address.clone(),
                source,
            }),
            Err(_) => Err(ClamdError::Timeout {
                address: self.address.clone(),
                seconds: self.timeout.as_secs(),
            }),
        }
    }

    async fn connect(&self) -> Result<Box<dyn Socket>, ClamdError> {
        let connect = async {
            Ok::<Box<dyn Socket>, std::io::Error>(match &self.address {
                ClamdAddress::Tcp(addr) => Box::new(TcpStream::connect(addr).await?),
                ClamdAddress::Unix(path) => Box::new(UnixStream::connect(path).await?),
            })
        };
        match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(socket)) => Ok(socket),
            Ok(Err(source)) => Err(ClamdError::Unreachable {
                address: self.address.clone(),
                source,
            }),
            Err(_) => Err(ClamdError::Timeout {
                address: self.address.clone(),
                seconds: self.timeout.as_secs(),
            }),
        }
    }

    /// Send one `z`-command and read its NUL-terminated reply.
    async fn command(&self, command: &[u8]) -> Result<String, ClamdError> {
        let mut socket = self.connect().await?;
        self.step(socket.write_all(command)).await?;
        self.read_reply(&mut socket).await
    }

    async fn read_reply(&self, socket: &mut Box<dyn Socket>) -> Result<String, ClamdError> {
        let mut reply = Vec::new();
        self.step(async {
            let mut buf = [0u8; 1024];
            loop {
                let n = socket.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                reply.extend_from_slice(&buf[..n]);
                if reply.contains(&0) || reply.len() > 64 * 1024 {
                    break;
                }
            }
            Ok(())
        })
        .await?;
        let end = reply.iter().position(|&b| b == 0).unwrap_or(reply.len());
        Ok(String::from_utf8_lossy(&reply[..end]).trim().to_owned())
    }

    /// `PONG` or an error.
    pub async fn ping(&self) -> Result<(), ClamdError> {
        match self.command(b"zPING\0").await? {
            reply if reply == "PONG" => Ok(()),
            reply => Err(ClamdError::Protocol {
                address: self.address.clone(),
                reply,
            }),
        }
    }

    /// The engine version string, e.g. `ClamAV 1.4.6/27400/...`.
    pub async fn version(&self) -> Result<String, ClamdError> {
        let reply = self.command(b"zVERSION\0").await?;
        if reply.starts_with("ClamAV") {
            Ok(reply)
        } else {
            Err(ClamdError::Protocol {
                address: self.address.clone(),
                reply,
            })
        }
    }

    /// Stream `input` to clamd and return its verdict. Holds at most one chunk in memory.
    pub async fn scan<R: AsyncRead + Unpin>(&self, mut input: R) -> Result<Verdict, ClamdError> {
        let mut socket = self.connect().await?;
        self.step(socket.write_all(b"zINSTREAM\0")).await?;
        let mut chunk = vec![0u8; self.chunk_size.max(1)];
        let mut sent = 0u64;
        let mut cut_off = false;
        loop {
            let n = input
                .read(&mut chunk)
                .await
                .map_err(|source| ClamdError::Input { sent, source })?;
            let frame_len = (n as u32).to_be_bytes();
            let written = tokio::time::timeout(self.timeout, async {
                socket.write_all(&frame_len).await?;
                socket.write_all(&chunk[..n]).await
            })
            .await;
            match written {
                Ok(Ok(())) => {}
                // clamd closed the stream (its size limit): the reply says why.
                Ok(Err(e)) if is_cut_off(&e) => {
                    cut_off = true;
                    break;
                }
                Ok(Err(source)) => {
                    return Err(ClamdError::Connection {
                        address: self.address.clone(),
                        source,
                    });
                }
                Err(_) => {
                    return Err(ClamdError::Timeout {
                        address: self.address.clone(),
                        seconds: self.timeout.as_secs(),
                    });
                }
            }
            if n == 0 {
                break;
            }
            sent += n as u64;
        }
        let reply = match self.read_reply(&mut socket).await {
            Ok(reply) => reply,
            Err(ClamdError::Connection { source, .. }) if cut_off && is_cut_off(&source) => {
                String::new()
            }
            Err(e) => return Err(e),
        };
        parse_reply(&reply).ok_or_else(|| ClamdError::Protocol {
            address: self.address.clone(),
            reply,
        })
    }
}

fn is_cut_off(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
    )
}

/// clamd's INSTREAM reply as a verdict; `None` for an answer that is not one.
pub fn parse_reply(reply: &str) -> Option<Verdict> {
    let reply = reply.trim_end_matches('\0').trim();
    if reply.contains("size limit exceeded") {
        return Some(Verdict::Unscannable {
            reason: format!("over clamd's stream size limit ({reply})"),
        });
    }
    let body = reply.strip_prefix("stream:").map(str::trim)?;
    if body == "OK" {
        return Some(Verdict::Clean);
    }
    if let Some(signature) = body.strip_suffix(" FOUND") {
        let signature = signature.trim();
        // Encrypted archives are reported as "Heuristics.Encrypted.*" when AlertEncrypted is
        // on: clamd could not look inside, which is not the same as finding malware.
        if signature.starts_with("Heuristics.Encrypted") {
            return Some(Verdict::Unscannable {
                reason: format!("encrypted content clamd cannot inspect ({signature})"),
            });
        }
        return Some(Verdict::Infected {
            signature: signature.to_owned(),
        });
    }
    if let Some(error) = body.strip_suffix(" ERROR") {
        return Some(Verdict::Unscannable {
            reason: format!("clamd could not scan it: {}", error.trim()),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_seen_from_clamd_1_4_6_map_to_verdicts() {
        let cases = [
            ("stream: OK\0", Some(Verdict::Clean)),
            (
                "stream: Intake.Test.EICAR.UNOFFICIAL FOUND\0",
                Some(Verdict::Infected {
                    signature: "Intake.Test.EICAR.UNOFFICIAL".into(),
                }),
            ),
            (
                "stream: Win.Test.EICAR_HDB-1 FOUND",
                Some(Verdict::Infected {
                    signature: "Win.Test.EICAR_HDB-1".into(),
                }),
            ),
            (
                "INSTREAM size limit exceeded. ERROR\0",
                Some(Verdict::Unscannable {
                    reason: "over clamd's stream size limit (INSTREAM size limit exceeded. ERROR)"
                        .into(),
                }),
            ),
            (
                "stream: Heuristics.Encrypted.Zip FOUND",
                Some(Verdict::Unscannable {
                    reason: "encrypted content clamd cannot inspect (Heuristics.Encrypted.Zip)"
                        .into(),
                }),
            ),
            (
                "stream: Can't allocate memory ERROR",
                Some(Verdict::Unscannable {
                    reason: "clamd could not scan it: Can't allocate memory".into(),
                }),
            ),
            ("PONG", None),
            ("", None),
        ];
        for (reply, verdict) in cases {
            assert_eq!(parse_reply(reply), verdict, "{reply:?}");
        }
    }

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
