//! A clamd for `intake up`: Debian's `clamav-daemon` binary, started on a free local port
//! with the project's tiny signature database (only EICAR), so nothing is downloaded and
//! the verdicts are the ones the samples expect. The same recipe as the test fixture
//! `intake_testkit::clamd`, without depending on the testkit (which would pull
//! testcontainers into the binary); readiness is `intake_clamd::ping`, as everywhere.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::samples::eicar;

/// clamd's `StreamMaxLength`: larger objects are `unscannable` (and so quarantined).
pub const STREAM_MAX: &str = "100M";

pub struct LocalClamd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
}

/// clamd on `PATH`, else where Debian and source installs put it (`/usr/sbin` is often not
/// on a user's `PATH`).
pub fn find_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("clamd"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(
            ["/usr/sbin/clamd", "/usr/local/sbin/clamd"]
                .into_iter()
                .map(PathBuf::from),
        )
        .find(|p| p.is_file())
}

impl LocalClamd {
    pub async fn start(binary: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("intake-up-clamd-")
            .tempdir()
            .context("creating a temporary directory for clamd's files")?;
        let d = dir.path();
        let db = d.join("db");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free local port for clamd")?
            .port();
        std::fs::create_dir(&db)
            .and_then(|()| {
                std::fs::write(
                    db.join("intake-test.ndb"),
                    format!("Intake.Test.EICAR:0:*:{}\n", hex::encode(eicar())),
                )
            })
            .and_then(|()| {
                std::fs::write(
                    d.join("clamd.conf"),
                    format!(
                        "Foreground yes\nDatabaseDirectory {db}\nTCPSocket {port}\nTCPAddr 127.0.0.1\n\
                         StreamMaxLength {STREAM_MAX}\nLogFile {log}\nLogTime yes\nScanArchive yes\n",
                        db = db.display(),
                        log = d.join("clamd.log").display(),
                    ),
                )
            })
            .with_context(|| format!("writing clamd's configuration in {}", d.display()))?;
        let child = Command::new(binary)
            .arg("-c")
            .arg(d.join("clamd.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C in the terminal reaches `intake up`, which
            // stops clamd after the workers, not clamd in the middle of a scan.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut clamd = LocalClamd {
            child: Some(child),
            dir,
            port,
        };
        clamd.wait_ready().await?;
        Ok(clamd)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Duration::from_secs(60);
        let started = Instant::now();
        while started.elapsed() < deadline {
            let address = intake_clamd::ClamdAddress::Tcp(self.tcp_address());
            if intake_clamd::ping(&address, Duration::from_secs(2))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                bail!(
                    "clamd exited during startup ({status}); its log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "clamd did not answer PING on {} within {} s; its log:\n{}",
            self.tcp_address(),
            deadline.as_secs(),
            self.log()
        )
    }

    /// `127.0.0.1:PORT`
    pub fn tcp_address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("clamd.log"))
            .unwrap_or_else(|e| format!("(no log: {e})"))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for LocalClamd {
    fn drop(&mut self) {
        self.stop();
    }
}
