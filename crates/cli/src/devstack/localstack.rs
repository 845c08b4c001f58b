//! LocalStack for `intake up` when no endpoint answers: a Docker container from the local
//! image `localstack/localstack:4.13.1` (pulled, or built offline by
//! `localstack/build-image.sh`), else LocalStack on the host through
//! `localstack/run-host.sh`. Whatever is started here is stopped when the handle is
//! dropped; nothing else is ever touched.
//!
//! The container is run with the `docker` command rather than testcontainers: the binary
//! then needs no Docker API client, and a user can see and reproduce exactly what ran.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The LocalStack release Intake is tested against.
pub const IMAGE: &str = "localstack/localstack:4.13.1";
/// Only what Intake uses (STS for the account id in ARNs); fewer services start faster.
const SERVICES: &str = "s3,sqs,sns,cloudwatch,sts,events";
/// The port LocalStack is known by; used when free, so follow-up commands can rely on it.
const DEFAULT_PORT: u16 = 4566;

/// A LocalStack this process started.
pub struct LocalStack {
    pub endpoint: String,
    started: Option<Started>,
}

enum Started {
    Container { id: String },
    Host { child: Child, log: PathBuf },
}

/// What Docker can do for us.
pub enum Docker {
    /// The daemon answers and the image is there.
    Ready,
    /// The daemon answers, the image is missing.
    NoImage,
    /// No `docker` command, or no daemon it can reach (the reason).
    Unavailable(String),
}

pub fn docker() -> Docker {
    let version = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(Stdio::null())
        .output();
    match version {
        Err(e) => return Docker::Unavailable(format!("no docker command ({e})")),
        Ok(out) if !out.status.success() => {
            let why = String::from_utf8_lossy(&out.stderr);
            let why = why.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            return Docker::Unavailable(format!("the Docker daemon does not answer: {why}"));
        }
        Ok(_) => {}
    }
    let image = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", IMAGE])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match image {
        Ok(status) if status.success() => Docker::Ready,
        _ => Docker::NoImage,
    }
}

/// `localstack/run-host.sh` of this checkout: looked for above the current directory and
/// the config file, then in the tree this binary was built from.
pub fn find_host_script(config_path: &Path) -> Option<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Ok(config) = std::path::absolute(config_path) {
        roots.extend(config.ancestors().skip(1).map(Path::to_path_buf));
    }
    roots.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    roots
        .into_iter()
        .map(|root| root.join("localstack/run-host.sh"))
        .find(|p| p.is_file())
}

/// 4566 when free, else any free port.
fn choose_port() -> anyhow::Result<u16> {
    if std::net::TcpListener::bind(("127.0.0.1", DEFAULT_PORT)).is_ok() {
        return Ok(DEFAULT_PORT);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("finding a free local port for LocalStack")?
        .port();
    Ok(port)
}

impl LocalStack {
    /// `docker run -d --rm` the image on 127.0.0.1 and wait for its health endpoint.
    pub async fn start_container() -> anyhow::Result<Self> {
        let port = choose_port()?;
        let name = format!("intake-up-{}", std::process::id());
        let mut cmd = Command::new("docker");
        cmd.args(["run", "-d", "--rm", "--name", &name])
            .args(["--label", "intake.started-by=intake-up"])
            .args(["-p", &format!("127.0.0.1:{port}:4566")]);
        for (k, v) in [
            ("SERVICES", SERVICES),
            // Without this every SQS call queues internal metric work that slows LocalStack.
            ("SQS_DISABLE_CLOUDWATCH_METRICS", "1"),
            ("SKIP_SSL_CERT_DOWNLOAD", "1"),
            ("DISABLE_EVENTS", "1"),
            // Presigned URLs are checked as S3 checks them (length, type, expiry).
            ("S3_SKIP_SIGNATURE_VALIDATION", "0"),
        ] {
            cmd.args(["-e", &format!("{k}={v}")]);
        }
        let out = cmd
            .arg(IMAGE)
            .stdin(Stdio::null())
            .output()
            .context("running docker run")?;
        if !out.status.success() {
            bail!(
                "docker run {IMAGE} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let mut stack = LocalStack {
            endpoint: format!("http://127.0.0.1:{port}"),
            started: Some(Started::Container { id }),
        };
        stack.wait_healthy(port, Duration::from_secs(120)).await?;
        Ok(stack)
    }

    /// Run `script` (`localstack/run-host.sh`) in its own process group, its output in
    /// `scratch/localstack-host.log`, and wait for its health endpoint.
    pub async fn start_host(script: &Path, scratch: &Path) -> anyhow::Result<Self> {
        let port = choose_port()?;
        let log = scratch.join("localstack-host.log");
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out
            .try_clone()
            .with_context(|| format!("opening {}", log.display()))?;
        // The script installs LocalStack into a venv on its first run, which takes minutes.
        let repo = script
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."));
        let venv = std::env::var_os("LOCALSTACK_VENV")
            .map_or_else(|| repo.join("target/localstack-venv"), PathBuf::from);
        let installed = venv.join(".constraints-4.13.1.txt").is_file();
        if !installed {
            println!(
                "  first run of host mode: installing LocalStack into {} (a few minutes; needs PyPI)",
                venv.display()
            );
        }
        let child = Command::new("bash")
            .arg(script)
            .env("PORT", port.to_string())
            .env("SERVICES", SERVICES)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Its own group: Ctrl-C reaches `intake up` only, which stops LocalStack last.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", script.display()))?;
        let mut stack = LocalStack {
            endpoint: format!("http://127.0.0.1:{port}"),
            started: Some(Started::Host { child, log }),
        };
        let deadline = Duration::from_secs(if installed { 120 } else { 900 });
        stack.wait_healthy(port, deadline).await?;
        Ok(stack)
    }

    /// What was started, for people.
    pub fn describe(&self) -> String {
        match &self.started {
            Some(Started::Container { id }) => format!(
                "LocalStack container {} ({IMAGE}) at {}",
                &id[..id.len().min(12)],
                self.endpoint
            ),
            Some(Started::Host { child, .. }) => format!(
                "LocalStack in host mode (localstack/run-host.sh, pid {}) at {}",
                child.id(),
                self.endpoint
            ),
            None => format!("LocalStack at {} (stopped)", self.endpoint),
        }
    }

    async fn wait_healthy(&mut self, port: u16, deadline: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut checked = Instant::now();
        loop {
            if health(port).await {
                return Ok(());
            }
            if started.elapsed() > deadline {
                let what = self.describe();
                let logs = self.logs();
                self.stop();
                bail!(
                    "{what} did not answer on /_localstack/health within {} s; its output:\n{logs}",
                    deadline.as_secs()
                );
            }
            // Not every turn: `docker inspect` is a process start.
            if checked.elapsed() > Duration::from_secs(2) {
                checked = Instant::now();
                if let Some(why) = self.exited() {
                    let logs = self.logs();
                    self.started = None;
                    bail!("LocalStack stopped during startup ({why}); its output:\n{logs}");
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Why the started LocalStack is gone, if it is.
    fn exited(&mut self) -> Option<String> {
        match self.started.as_mut()? {
            Started::Container { id } => {
                let out = Command::new("docker")
                    .args(["inspect", "--format", "{{.State.Running}}", id])
                    .stdin(Stdio::null())
                    .stderr(Stdio::null())
                    .output()
                    .ok()?;
                // `--rm`: an exited container is removed, so inspect fails.
                let running =
                    out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "true";
                (!running).then(|| {
                    format!(
                        "the container exited; run `docker run --rm -p 4566:4566 {IMAGE}` to see why"
                    )
                })
            }
            Started::Host { child, .. } => match child.try_wait() {
                Ok(Some(status)) => Some(format!("run-host.sh exited with {status}")),
                _ => None,
            },
        }
    }

    /// The last lines of its output.
    fn logs(&self) -> String {
        let text = match &self.started {
            Some(Started::Container { id }) => Command::new("docker")
                .args(["logs", "--tail", "40", id])
                .stdin(Stdio::null())
                .output()
                .map(|o| {
                    format!(
                        "{}{}",
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr)
                    )
                })
                .unwrap_or_default(),
            Some(Started::Host { log, .. }) => {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(40)..].join("\n")
            }
            None => String::new(),
        };
        if text.trim().is_empty() {
            "(none)".to_owned()
        } else {
            text
        }
    }

    /// Stops what was started (once); says so.
    pub fn stop(&mut self) {
        match self.started.take() {
            Some(Started::Container { id }) => {
                let short = &id[..id.len().min(12)];
                // `--rm` removes it once stopped.
                let stopped = Command::new("docker")
                    .args(["stop", "--time", "5", &id])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if stopped {
                    eprintln!("intake up: stopped LocalStack container {short}");
                } else {
                    eprintln!(
                        "intake up: could not stop LocalStack container {short}; stop it with `docker stop {short}`"
                    );
                }
            }
            Some(Started::Host { mut child, .. }) => {
                let group = child.id() as i32;
                // SAFETY: signals our own child's process group (it was started with
                // process_group(0), so its group id is its pid); no memory is shared.
                unsafe { libc::kill(-group, libc::SIGTERM) };
                let asked = Instant::now();
                while matches!(child.try_wait(), Ok(None)) {
                    if asked.elapsed() > Duration::from_secs(10) {
                        // SAFETY: as above.
                        unsafe { libc::kill(-group, libc::SIGKILL) };
                        let _ = child.wait();
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                eprintln!("intake up: stopped LocalStack (host mode, pid {group})");
            }
            None => {}
        }
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `GET /_localstack/health` answers 200.
async fn health(port: u16) -> bool {
    let attempt = async {
        let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        socket
            .write_all(b"GET /_localstack/health HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut head = [0u8; 12];
        socket.read_exact(&mut head).await?;
        std::io::Result::Ok(head.starts_with(b"HTTP/1.") && &head[9..12] == b"200")
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Ok(true))
    )
}
