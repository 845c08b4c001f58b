//! The `command` scanner hook: an external program reads the object on stdin (streamed,
//! never written to disk by Intake) and answers with its exit code.
//!
//! | exit | verdict | stdout |
//! |---|---|---|
//! | 0 | clean | ignored |
//! | 1 | infected | first line: the signature name |
//! | 2 | unscannable | first line: why |
//! | other, a signal, or over the timeout | error, retried | stderr is logged |

use std::process::Stdio;
use std::time::Duration;

use intake_clamd::Verdict;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

#[derive(Debug, Clone)]
pub struct CommandScanner {
    pub program: String,
    pub args: Vec<String>,
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(
        "could not start scanner program {program}: {source}; check that it exists and is executable"
    )]
    Start {
        program: String,
        source: std::io::Error,
    },
    #[error("scanner program {program} failed ({status}): {stderr}")]
    Failed {
        program: String,
        status: String,
        stderr: String,
    },
    #[error("scanner program {program} did not finish within {seconds} s")]
    Timeout { program: String, seconds: u64 },
    #[error("reading the object for scanner program {program} failed: {source}")]
    Input {
        program: String,
        source: std::io::Error,
    },
}

impl CommandError {
    pub fn code(&self) -> &'static str {
        match self {
            CommandError::Start { .. } => "scanner_unreachable",
            CommandError::Failed { .. } => "scanner_failed",
            CommandError::Timeout { .. } => "scanner_timeout",
            CommandError::Input { .. } => "source_read_failed",
        }
    }
}

impl CommandScanner {
    pub async fn scan<R: AsyncRead + Unpin>(&self, mut input: R) -> Result<Verdict, CommandError> {
        let program = self.program.clone();
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| CommandError::Start {
                program: program.clone(),
                source,
            })?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let run = async {
            // A scanner may stop reading once it has decided; that is not an error.
            let fed = tokio::io::copy(&mut input, &mut stdin).await;
            drop(stdin);
            match fed {
                Err(source) if source.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(CommandError::Input {
                        program: program.clone(),
                        source,
                    });
                }
                _ => {}
            }
            let mut stdout = String::new();
            let mut stderr = String::new();
            let (mut out, mut err) = (
                child.stdout.take().expect("piped"),
                child.stderr.take().expect("piped"),
            );
            let _ = tokio::join!(
                out.read_to_string(&mut stdout),
                err.read_to_string(&mut stderr)
            );
            let status = child.wait().await.map_err(|source| CommandError::Start {
                program: program.clone(),
                source,
            })?;
            let first_line = stdout.lines().next().unwrap_or_default().trim().to_owned();
            match status.code() {
                Some(0) => Ok(Verdict::Clean),
                Some(1) => Ok(Verdict::Infected {
                    signature: if first_line.is_empty() {
                        "unnamed".into()
                    } else {
                        first_line
                    },
                }),
                Some(2) => Ok(Verdict::Unscannable {
                    reason: if first_line.is_empty() {
                        "the scanner could not scan it".into()
                    } else {
                        first_line
                    },
                }),
                _ => Err(CommandError::Failed {
                    program: program.clone(),
                    status: status.to_string(),
                    stderr: stderr.trim().chars().take(500).collect(),
                }),
            }
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok(result) => result,
            Err(_) => Err(CommandError::Timeout {
                program,
                seconds: self.timeout.as_secs(),
            }),
        }
    }
}
