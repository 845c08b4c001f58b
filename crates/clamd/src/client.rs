//! [`Clamd`]: one connection per command. `zINSTREAM` (4-byte big-endian chunk lengths, a
//! zero length to end), `zPING`, `zVERSION`, over TCP or a unix socket.
//!
//! Written here rather than taken from `clamav-client` because of one behaviour the scan
//! stage depends on: past `StreamMaxLength` clamd answers `INSTREAM size limit exceeded.
//! ERROR` and closes the socket while the client is still sending, so a write fails with a
//! broken pipe. That is a verdict (`unscannable`), not a connection failure: the client
//! stops sending and still reads the reply.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use crate::address::ClamdAddress;
use crate::error::ClamdError;
use crate::reply::{Verdict, parse_reply};

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
