//! A real clamd for a test, on a free port and a unix socket of its own, with a tiny
//! signature database the project ships: the EICAR test signature (its string assembled
//! here at run time, never stored whole in the repository) and a project test marker.
//! clamd is Debian's `clamav-daemon`; no definitions are downloaded.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use intake_clamd::ClamdAddress;

/// A marker that the test database flags as `Intake.Test.Marker.UNOFFICIAL`.
///
/// ```no_run
/// let infected = [b"hello ".as_slice(), intake_testkit::clamd::TEST_MARKER].concat();
/// // clamd with the test database reports Intake.Test.Marker.UNOFFICIAL for `infected`.
/// ```
pub const TEST_MARKER: &[u8] = b"INTAKE-TEST-SIGNATURE-3f9c1e";

/// The EICAR anti-virus test file, assembled from parts so that no file in the repository
/// holds it (scanners on developer machines would otherwise flag the source tree).
///
/// ```no_run
/// let body = intake_testkit::clamd::eicar();
/// assert_eq!(body.len(), 68);
/// ```
pub fn eicar() -> Vec<u8> {
    let parts = [
        "X5O!P%@AP[4\\PZX54(P^)7CC)7}$",
        "EICAR-STANDARD-",
        "ANTIVIRUS-TEST-",
        "FILE!$H+H*",
    ];
    parts.concat().into_bytes()
}

/// Why the clamd fixture could not start; the message names the package or shows clamd's log.
///
/// ```no_run
/// # async fn demo() {
/// use intake_testkit::clamd::{ClamdFixture, ClamdFixtureError};
/// match ClamdFixture::start("100M").await {
///     Ok(clamd) => println!("clamd on {}", clamd.tcp_address()),
///     Err(ClamdFixtureError::NotInstalled) => panic!("apt-get install clamav-daemon"),
///     Err(e) => panic!("{e}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ClamdFixtureError {
    #[error(
        "clamd is not installed: install Debian's clamav-daemon package (apt-get install clamav-daemon)"
    )]
    NotInstalled,
    #[error("could not prepare clamd's files in {dir}: {source}")]
    Files {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("could not start clamd: {0}")]
    Spawn(std::io::Error),
    #[error("clamd did not answer PING within {seconds} s; its log:\n{log}")]
    NotReady { seconds: u64, log: String },
}

/// A clamd of this test's own (stopped when dropped), knowing only the test signatures.
///
/// ```no_run
/// # async fn demo() -> Result<(), intake_testkit::clamd::ClamdFixtureError> {
/// let clamd = intake_testkit::clamd::ClamdFixture::start("100M").await?;
/// let address = format!("tcp://{}", clamd.tcp_address()); // for [stages.scan.scanner] address
/// # Ok(()) }
/// ```
pub struct ClamdFixture {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    stream_max: String,
}

fn clamd_binary() -> Option<PathBuf> {
    ["/usr/sbin/clamd", "/usr/bin/clamd", "/usr/local/sbin/clamd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

impl ClamdFixture {
    /// Start clamd with the test database; `stream_max` is its `StreamMaxLength`
    /// (e.g. `"1M"`, or `"100M"`, clamd's default).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), intake_testkit::clamd::ClamdFixtureError> {
    /// let clamd = intake_testkit::clamd::ClamdFixture::start("1M").await?;
    /// # Ok(()) }
    /// ```
    pub async fn start(stream_max: &str) -> Result<Self, ClamdFixtureError> {
        let binary = clamd_binary().ok_or(ClamdFixtureError::NotInstalled)?;
        let dir = tempfile::tempdir().map_err(|source| ClamdFixtureError::Files {
            dir: std::env::temp_dir(),
            source,
        })?;
        let dir_path = dir.path().to_owned();
        let files = |source| ClamdFixtureError::Files {
            dir: dir_path.clone(),
            source,
        };
        let db = dir.path().join("db");
        std::fs::create_dir(&db).map_err(files)?;
        std::fs::write(
            db.join("intake-test.ndb"),
            format!(
                "Intake.Test.EICAR:0:*:{}\nIntake.Test.Marker:0:*:{}\n",
                hex::encode(eicar()),
                hex::encode(TEST_MARKER)
            ),
        )
        .map_err(files)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(files)?
            .port();
        let mut fixture = ClamdFixture {
            child: None,
            dir,
            port,
            stream_max: stream_max.to_owned(),
        };
        fixture.write_config().map_err(files)?;
        fixture.spawn(&binary)?;
        fixture.wait_ready().await?;
        Ok(fixture)
    }

    fn write_config(&self) -> std::io::Result<()> {
        let d = self.dir.path();
        std::fs::write(
            d.join("clamd.conf"),
            format!(
                "Foreground yes\nDatabaseDirectory {db}\nTCPSocket {port}\nTCPAddr 127.0.0.1\nLocalSocket {sock}\n\
                 StreamMaxLength {max}\nLogFile {log}\nLogTime yes\nScanArchive yes\nAlertEncrypted yes\n",
                db = d.join("db").display(),
                port = self.port,
                sock = d.join("clamd.sock").display(),
                max = self.stream_max,
                log = d.join("clamd.log").display(),
            ),
        )
    }

    fn spawn(&mut self, binary: &Path) -> Result<(), ClamdFixtureError> {
        let child = Command::new(binary)
            .arg("-c")
            .arg(self.dir.path().join("clamd.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(ClamdFixtureError::Spawn)?;
        self.child = Some(child);
        Ok(())
    }

    async fn wait_ready(&self) -> Result<(), ClamdFixtureError> {
        let deadline = Duration::from_secs(60);
        let started = Instant::now();
        while started.elapsed() < deadline {
            let address = ClamdAddress::Tcp(self.tcp_address());
            if intake_clamd::ping(&address, Duration::from_secs(2))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(ClamdFixtureError::NotReady {
            seconds: deadline.as_secs(),
            log: self.log(),
        })
    }

    /// `127.0.0.1:PORT`
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), intake_testkit::clamd::ClamdFixtureError> {
    /// let clamd = intake_testkit::clamd::ClamdFixture::start("100M").await?;
    /// assert!(clamd.tcp_address().starts_with("127.0.0.1:"));
    /// # Ok(()) }
    /// ```
    pub fn tcp_address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), intake_testkit::clamd::ClamdFixtureError> {
    /// let clamd = intake_testkit::clamd::ClamdFixture::start("100M").await?;
    /// let address = format!("unix://{}", clamd.socket_path().display());
    /// # Ok(()) }
    /// ```
    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join("clamd.sock")
    }

    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), intake_testkit::clamd::ClamdFixtureError> {
    /// let clamd = intake_testkit::clamd::ClamdFixture::start("100M").await?;
    /// println!("{}", clamd.log());
    /// # Ok(()) }
    /// ```
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("clamd.log")).unwrap_or_default()
    }

    /// Stop clamd (as if it crashed or was taken down for maintenance).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), intake_testkit::clamd::ClamdFixtureError> {
    /// let mut clamd = intake_testkit::clamd::ClamdFixture::start("100M").await?;
    /// clamd.stop(); // scans now fail with a retryable scanner_connection error
    /// # Ok(()) }
    /// ```
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port and socket.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), intake_testkit::clamd::ClamdFixtureError> {
    /// let mut clamd = intake_testkit::clamd::ClamdFixture::start("100M").await?;
    /// clamd.stop();
    /// clamd.restart().await?; // same port and socket
    /// # Ok(()) }
    /// ```
    pub async fn restart(&mut self) -> Result<(), ClamdFixtureError> {
        self.stop();
        let binary = clamd_binary().ok_or(ClamdFixtureError::NotInstalled)?;
        self.spawn(&binary)?;
        self.wait_ready().await
    }
}

impl Drop for ClamdFixture {
    fn drop(&mut self) {
        self.stop();
    }
}
