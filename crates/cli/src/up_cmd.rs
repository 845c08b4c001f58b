//! `intake up`: Intake end to end on one machine with one command. It starts what is
//! missing (LocalStack as a container or on the host, a clamd with the project's test
//! signatures), provisions, runs every stage in this process, uploads the sample files
//! and shows each one moving through the stages until all have ended. Then it keeps
//! serving uploads until Ctrl-C (or exits, with `--exit-when-done`), and stops exactly
//! what it started.

// Also used by `intake bench pipeline`, which starts the same LocalStack and clamd.
pub(crate) mod clamd;
pub(crate) mod localstack;
pub(crate) mod samples;
mod web;

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use comfy_table::{ContentArrangement, Table, presets::UTF8_BORDERS_ONLY};
use intake_aws::AwsClients;
use intake_aws::provision::{apply, plan};
use intake_core::config::{AwsSection, ScannerConfig};
use intake_core::key_template::parse_key;
use intake_core::names::BucketRole;
use intake_core::{PipelineConfig, ResourceNames};
use intake_runtime::StageCx;
use intake_store::Transition;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::Failure;
use crate::run_cmd::{self, Workers};
use clamd::LocalClamd;
use localstack::{Docker, LocalStack};
use samples::Sample;

pub struct Options {
    pub exit_when_done: bool,
    pub keep_running: bool,
}

/// States after which nothing more happens to an upload.
const TERMINAL: [&str; 3] = ["done", "quarantined", "failed"];
/// How often the ledger is read while following the samples.
const POLL: Duration = Duration::from_millis(500);
/// Longer than any sample needs (seconds on LocalStack), short enough that a stuck sample
/// (e.g. retried into its DLQ) is reported rather than waited on forever.
const FOLLOW_DEADLINE: Duration = Duration::from_secs(300);
/// Messages each stage works on at once; the samples need no more.
const CONCURRENCY: usize = 4;
const TENANT: &str = "demo";
const USER: &str = "sample";

/// Everything `intake up` started, stopped in reverse order of need: the scanner, then
/// LocalStack. The handles also stop their process or container when dropped, so an
/// error path cannot leak them.
#[derive(Default)]
struct Started {
    localstack: Option<LocalStack>,
    clamd: Option<LocalClamd>,
    /// Scratch files (the host-mode LocalStack's log); removed last.
    scratch: Option<tempfile::TempDir>,
}

impl Started {
    fn stop(&mut self) {
        if let Some(mut clamd) = self.clamd.take() {
            let pid = clamd.pid();
            clamd.stop();
            if let Some(pid) = pid {
                eprintln!("intake up: stopped clamd (pid {pid})");
            }
        }
        if let Some(mut localstack) = self.localstack.take() {
            localstack.stop();
        }
        self.scratch = None;
    }
}

/// SIGINT and SIGTERM, listened to from the first moment: until tokio's handlers are in
/// place a Ctrl-C would kill the process and leave a container running.
struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// The pipeline, running.
struct Running {
    cx: StageCx,
    workers: Workers,
    ledger_url: String,
    /// False when the scan stage runs with `kind = "none"`.
    scanning: bool,
    endpoint: String,
    /// The endpoint is a LocalStack started here (so its credentials are `test`).
    own_localstack: bool,
    /// The API and web page.
    web: web::Web,
}

pub async fn run(
    config_path: &Path,
    mut config: PipelineConfig,
    options: Options,
) -> Result<(), Failure> {
    let mut signals = Signals::install()?;
    let mut started = Started::default();

    let setup = tokio::select! {
        result = setup(config_path, &mut config, &mut started) => Some(result),
        () = signals.recv() => None,
    };
    let running = match setup {
        Some(Ok(running)) => running,
        Some(Err(e)) => {
            started.stop();
            return Err(e.into());
        }
        None => {
            eprintln!("intake up: interrupted during startup; stopping what was started");
            started.stop();
            return Ok(());
        }
    };

    let samples = samples::all(running.scanning);
    let followed = tokio::select! {
        result = follow(&running, &samples) => Some(result),
        () = signals.recv() => None,
    };
    let verdict = match followed {
        Some(Ok(rows)) => Some(report(&running, config_path, &rows, &options)),
        Some(Err(e)) => {
            shut_down(running, &mut started, &mut signals).await?;
            return Err(e.into());
        }
        None => None,
    };
    // Serve on unless interrupted, told to exit, or a sample went wrong and not told to
    // keep going regardless.
    let serve = match &verdict {
        None => false,
        Some(_) if options.exit_when_done => false,
        Some(Ok(())) => true,
        Some(Err(_)) => options.keep_running,
    };
    if serve {
        println!(
            "\nServing: the workers process every new upload to s3://{}; drop files on {} to upload through the API. Ctrl-C stops everything intake up started.",
            running.cx.names.bucket(BucketRole::Uploads),
            running.web.url,
        );
        signals.recv().await;
    }
    shut_down(running, &mut started, &mut signals).await?;
    match verdict {
        Some(Err(e)) => Err(e.into()),
        _ => Ok(()),
    }
}

/// Stops the workers gracefully (a second signal aborts them), then what was started.
async fn shut_down(
    running: Running,
    started: &mut Started,
    signals: &mut Signals,
) -> anyhow::Result<()> {
    let Running {
        cx, workers, web, ..
    } = running;
    web.stop().await;
    eprintln!(
        "intake up: stopping the workers (they finish or release in-flight work, up to ~20 s; Ctrl-C again to abort)"
    );
    let stopped = tokio::select! {
        result = workers.stop() => result,
        () = signals.recv() => {
            eprintln!("intake up: workers aborted; their messages return to the queues");
            Ok(())
        }
    };
    cx.ledger.close().await;
    started.stop();
    stopped
}

/// Steps 1–4: endpoint, scanner, ledger, provisioning, workers.
async fn setup(
    config_path: &Path,
    config: &mut PipelineConfig,
    started: &mut Started,
) -> anyhow::Result<Running> {
    println!(
        "intake up: pipeline \"{}\" from {}",
        config.pipeline.name,
        config_path.display()
    );

    // 1. An endpoint that answers, or a LocalStack of our own.
    let configured = config.aws.endpoint_url.clone().or_else(|| {
        std::env::var("AWS_ENDPOINT_URL")
            .ok()
            .filter(|e| !e.is_empty())
    });
    let mut aws = None;
    if let Some(endpoint) = &configured {
        let clients = clients(&config.aws, endpoint, false).await;
        match tokio::time::timeout(Duration::from_secs(15), clients.account_id()).await {
            Ok(Ok(_)) => {
                println!("  endpoint:  {endpoint} answers; starting no LocalStack");
                aws = Some(clients);
            }
            Ok(Err(e)) => println!(
                "  endpoint:  {endpoint} does not answer ({e}); starting a LocalStack instead"
            ),
            Err(_) => println!(
                "  endpoint:  {endpoint} did not answer within 15 s; starting a LocalStack instead"
            ),
        }
    }
    let aws = match aws {
        Some(aws) => aws,
        None => {
            let stack = start_localstack(config_path, started).await?;
            let endpoint = stack.endpoint.clone();
            println!("  started:   {}", stack.describe());
            started.localstack = Some(stack);
            config.aws.endpoint_url = Some(endpoint.clone());
            let aws = clients(&config.aws, &endpoint, true).await;
            wait_answering(&aws).await?;
            aws
        }
    };
    let endpoint = aws.endpoint.clone();
    let own_localstack = started.localstack.is_some();

    // 2. The scanner.
    let scanning = start_scanner(config, started).await?;

    // 3. The ledger.
    let ledger_url = match std::env::var("INTAKE_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let dir = std::path::absolute(config_path)
                .context("resolving the config file's directory")?
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
                .join(".intake");
            std::fs::create_dir_all(&dir).with_context(|| {
                format!(
                    "creating {} for the ledger (or set INTAKE_DATABASE_URL)",
                    dir.display()
                )
            })?;
            format!("sqlite://{}", dir.join("ledger.db").display())
        }
    };
    let ledger = run_cmd::open_ledger(&ledger_url).await?;
    println!("  ledger:    {ledger_url}");

    // 4. Resources (with the page's origin in the bucket's CORS), then the workers and
    // the API.
    let listener = web::prepare(config).await?;
    let plan = plan(&aws, config)
        .await
        .context("planning the pipeline's resources")?;
    if plan.is_converged() {
        println!("  provision: nothing to do ({})", plan.summary());
    } else {
        apply(&aws, &plan)
            .await
            .context("provisioning the pipeline's resources")?;
        println!("  provision: applied: {}", plan.summary());
    }
    let cx = StageCx {
        aws,
        names: Arc::new(ResourceNames::of(config)),
        config: Arc::new(config.clone()),
        ledger,
    };
    let kinds = cx.config.queue_kinds();
    let workers = run_cmd::start_all(&cx, &kinds, CONCURRENCY, run_cmd::metrics_enabled()).await?;
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    println!(
        "  workers:   {} ({CONCURRENCY} messages at once each)",
        names.join(", ")
    );
    let web = web::start(listener, config, &cx).await?;
    println!(
        "  web page:  {}{}",
        web.url,
        if config.api.dev_tokens {
            " (sign in with a dev token as any tenant)"
        } else {
            ""
        }
    );
    Ok(Running {
        web,
        cx,
        workers,
        ledger_url,
        scanning,
        endpoint,
        own_localstack,
    })
}

/// A LocalStack container if Docker and the image are there, else host mode if this
/// checkout has `localstack/run-host.sh`, else an error that says what to do.
async fn start_localstack(config_path: &Path, started: &mut Started) -> anyhow::Result<LocalStack> {
    let host_script = localstack::find_host_script(config_path);
    let image = localstack::IMAGE;
    let docker_problem = match localstack::docker() {
        Docker::Ready => {
            println!("  starting:  LocalStack container from {image} (Docker)");
            return LocalStack::start_container().await;
        }
        Docker::NoImage => format!(
            "Docker is there but the image {image} is not; build it offline with \
             `sudo localstack/build-image.sh` (about 3 minutes), or `docker pull {image}`"
        ),
        Docker::Unavailable(why) => format!("Docker cannot be used: {why}"),
    };
    let Some(script) = host_script else {
        bail!(
            "no LocalStack to use: {docker_problem}. Without Docker, run LocalStack on the host \
             with localstack/run-host.sh (from a checkout of Intake), or point AWS_ENDPOINT_URL \
             at a running LocalStack"
        );
    };
    println!("  note:      {docker_problem}");
    println!(
        "  starting:  LocalStack in host mode ({}), no Docker",
        script.display()
    );
    let scratch = tempfile::Builder::new()
        .prefix("intake-up-")
        .tempdir()
        .context("creating a temporary directory for LocalStack's log")?;
    let stack = LocalStack::start_host(&script, scratch.path()).await;
    started.scratch = Some(scratch);
    stack
}

/// Clients for `endpoint`. `test_credentials`: LocalStack's `test`/`test`, for a LocalStack
/// started here; otherwise the usual chain, falling back to them when it finds none (a
/// fresh machine has no AWS credentials, and LocalStack takes any).
pub(crate) async fn clients(
    section: &AwsSection,
    endpoint: &str,
    test_credentials: bool,
) -> AwsClients {
    let local = || {
        SharedCredentialsProvider::new(Credentials::new("test", "test", None, None, "intake-up"))
    };
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(region) = &section.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if test_credentials {
        loader = loader.credentials_provider(local());
    }
    let mut sdk = loader.load().await;
    let found = match sdk.credentials_provider() {
        Some(provider) => provider.provide_credentials().await.is_ok(),
        None => false,
    };
    let mut builder = sdk.clone().into_builder();
    if !found {
        builder = builder.credentials_provider(local());
    }
    if sdk.region().is_none() {
        builder = builder.region(Region::new("us-east-1"));
    }
    sdk = builder.build();
    AwsClients::from_sdk_config(&sdk)
}

/// The health endpoint can answer before the API does; one real call with retries settles it.
async fn wait_answering(aws: &AwsClients) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        match aws.account_id().await {
            Ok(_) => return Ok(()),
            Err(e) if started.elapsed() > Duration::from_secs(60) => {
                return Err(anyhow::Error::from(e).context(format!(
                    "LocalStack at {} is up but its API does not answer",
                    aws.endpoint
                )));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// Points the scan stage at a clamd of our own, or at `none` with a loud warning. A
/// config that already says `none` is left alone. Returns whether uploads are scanned.
async fn start_scanner(config: &mut PipelineConfig, started: &mut Started) -> anyhow::Result<bool> {
    let Some(scan) = config.stages.get_mut("scan") else {
        println!("  scanner:   no scan stage in this pipeline");
        return Ok(false);
    };
    if matches!(scan.scanner, Some(ScannerConfig::None)) {
        warn_unscanned("the config sets [stages.scan.scanner] kind = \"none\"");
        return Ok(false);
    }
    let timeout_secs = match &scan.scanner {
        Some(
            ScannerConfig::Clamd { timeout_secs, .. } | ScannerConfig::Command { timeout_secs, .. },
        ) => *timeout_secs,
        _ => intake_core::config::defaults::clamd_timeout_secs(),
    };
    let Some(binary) = clamd::find_binary() else {
        scan.scanner = Some(ScannerConfig::None);
        warn_unscanned("clamd is not installed");
        return Ok(false);
    };
    let clamd = LocalClamd::start(&binary).await.with_context(|| {
        format!(
            "clamd ({}) is installed but did not start; fix it, or uninstall it to run the scan stage with kind = \"none\"",
            binary.display()
        )
    })?;
    let address = clamd.tcp_address();
    println!(
        "  started:   clamd ({}, pid {}) on {address}, test signatures only (EICAR), StreamMaxLength {}",
        binary.display(),
        clamd.pid().unwrap_or_default(),
        clamd::STREAM_MAX
    );
    started.clamd = Some(clamd);
    scan.scanner = Some(ScannerConfig::Clamd {
        address: format!("tcp://{address}"),
        timeout_secs,
    });
    Ok(true)
}

fn warn_unscanned(why: &str) {
    let bar = "!".repeat(78);
    eprintln!(
        "{bar}\n\
         !! WARNING: NOTHING IS SCANNED FOR MALWARE ({why}).\n\
         !! The scan stage runs with kind = \"none\": every upload is promoted as `unscanned`,\n\
         !! including the infected sample eicar.txt, which will end `done` instead of\n\
         !! `quarantined`. Install clamd (Debian: sudo apt-get install clamav-daemon) and run\n\
         !! `intake up` again; it starts its own clamd, no definitions needed.\n\
         {bar}"
    );
}

/// One sample on its way through the pipeline.
struct Row {
    filename: &'static str,
    expect: samples::Expect,
    key: String,
    uploaded_ms: i64,
    state: String,
    last: Option<Transition>,
    /// When the ledger recorded the terminal state.
    ended_ms: Option<i64>,
}

impl Row {
    fn is_terminal(&self) -> bool {
        TERMINAL.contains(&self.state.as_str())
    }

    fn as_expected(&self) -> bool {
        self.state == self.expect.state()
    }

    fn step(&self) -> String {
        self.last.as_ref().map_or_else(String::new, |t| {
            match t.code.as_deref().filter(|c| *c != t.outcome) {
                Some(code) => format!("{} {} ({code})", t.stage, t.outcome),
                None => format!("{} {}", t.stage, t.outcome),
            }
        })
    }

    fn elapsed(&self) -> String {
        let end = self.ended_ms.unwrap_or_else(now_ms);
        format!("{:.1}s", (end - self.uploaded_ms).max(0) as f64 / 1000.0)
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A ULID in a UUID's 8-4-4-4-12 shape: as unique, and what the key template expects.
pub(crate) fn new_uuid() -> String {
    let hex = format!("{:032x}", ulid::Ulid::new().0);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Step 5: upload every sample, then read the ledger until all have ended (or the deadline).
async fn follow(running: &Running, samples: &[Sample]) -> anyhow::Result<Vec<Row>> {
    let cx = &running.cx;
    let bucket = cx.names.bucket(BucketRole::Uploads);
    let template = &cx.config.uploads.key_template;
    println!(
        "\nUploading {} samples to s3://{bucket}/ (tenant {TENANT}, user {USER}):",
        samples.len()
    );
    let mut rows = Vec::with_capacity(samples.len());
    for sample in samples {
        let key = template
            .replace("{tenant}", TENANT)
            .replace("{user}", USER)
            .replace("{uuid}", &new_uuid())
            .replace("{filename}", sample.filename);
        if parse_key(template, &key).is_none() {
            bail!(
                "the key template `{template}` cannot be filled from tenant, user, uuid and filename \
                 alone; intake up needs a template using only those placeholders"
            );
        }
        let uploaded_ms = now_ms();
        cx.aws
            .s3
            .put_object()
            .bucket(bucket)
            .key(&key)
            .content_type(sample.content_type)
            .body(sample.bytes.to_vec().into())
            .send()
            .await
            .with_context(|| {
                format!(
                    "uploading {} to s3://{bucket}/{key} at {}",
                    sample.filename, running.endpoint
                )
            })?;
        rows.push(Row {
            filename: sample.filename,
            expect: sample.expect,
            key,
            uploaded_ms,
            state: "uploaded".to_owned(),
            last: None,
            ended_ms: None,
        });
    }

    let mut screen = Screen::new();
    let started = Instant::now();
    loop {
        for row in rows.iter_mut().filter(|r| !r.is_terminal()) {
            let versions =
                cx.ledger.history(bucket, &row.key).await.with_context(|| {
                    format!("reading {}'s history from the ledger", row.filename)
                })?;
            if let Some(version) = versions.first() {
                row.state = version.state.clone();
                row.last = version.transitions.last().cloned();
                if row.is_terminal() {
                    row.ended_ms = Some(version.updated_ms);
                }
            }
        }
        screen.show(&rows);
        if rows.iter().all(Row::is_terminal) || started.elapsed() > FOLLOW_DEADLINE {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    screen.finish(&rows);
    Ok(rows)
}

/// The live view: a table redrawn in place on a terminal, else one line per change.
struct Screen {
    tty: bool,
    /// Lines of the table last drawn (terminal only).
    drawn: usize,
    seen: HashMap<&'static str, (String, String)>,
}

impl Screen {
    fn new() -> Self {
        Screen {
            tty: std::io::stdout().is_terminal(),
            drawn: 0,
            seen: HashMap::new(),
        }
    }

    fn show(&mut self, rows: &[Row]) {
        let mut out = std::io::stdout().lock();
        if self.tty {
            let table = table(rows, false, true);
            self.erase(&mut out);
            let _ = writeln!(out, "{table}");
            self.drawn = table.lines().count();
        } else {
            for row in rows {
                let now = (row.state.clone(), row.step());
                if self.seen.get(row.filename) != Some(&now) {
                    let _ = writeln!(
                        out,
                        "  {:>7}  {:<12} {:<12} {}",
                        row.elapsed(),
                        row.filename,
                        row.state,
                        now.1
                    );
                    self.seen.insert(row.filename, now);
                }
            }
        }
        let _ = out.flush();
    }

    /// Replaces the live table with the final one (with the verdict per sample).
    fn finish(&mut self, rows: &[Row]) {
        let mut out = std::io::stdout().lock();
        self.erase(&mut out);
        self.drawn = 0;
        let _ = writeln!(out, "\nResults:\n{}", table(rows, true, self.tty));
        let _ = out.flush();
    }

    /// Moves the cursor up over the last table and clears to the end of the screen.
    fn erase(&self, out: &mut impl Write) {
        if self.tty && self.drawn > 0 {
            let _ = write!(out, "\x1b[{}A\x1b[J", self.drawn);
        }
    }
}

fn table(rows: &[Row], verdict: bool, fit: bool) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    // Wrapped by the terminal, a line would break the cursor arithmetic of a redraw; a
    // terminal that reports no usable width (a bare pty) gets the table unwrapped.
    if fit && table.width().is_some_and(|w| w >= 40) {
        table.set_content_arrangement(ContentArrangement::Dynamic);
    }
    let mut header = vec!["file", "state", "last step", "time"];
    if verdict {
        header.push("result");
    }
    table.set_header(header);
    for row in rows {
        let mut cells = vec![
            row.filename.to_owned(),
            row.state.clone(),
            row.step(),
            row.elapsed(),
        ];
        if verdict {
            cells.push(if row.as_expected() {
                "as expected".to_owned()
            } else {
                format!("EXPECTED {}", row.expect.state())
            });
        }
        table.add_row(cells);
    }
    table.to_string()
}

/// How to run this binary again: `intake`, or the `cargo run` that built it when it runs
/// from a checkout's target directory (then `intake` is not on PATH).
fn intake_command() -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().and_then(Path::file_name);
    let in_target = exe
        .ancestors()
        .nth(2)
        .and_then(Path::file_name)
        .is_some_and(|n| n == "target");
    match dir.and_then(|d| d.to_str()) {
        Some("debug") if in_target => "cargo run -q -p intake-cli --".to_owned(),
        Some("release") if in_target => "cargo run -q --release -p intake-cli --".to_owned(),
        _ => "intake".to_owned(),
    }
}

/// The reason in a ledger detail, without the object it names (`<object>: <reason>`).
fn reason(detail: &str) -> &str {
    detail.split_once(": ").map_or(detail, |(_, reason)| reason)
}

/// The summary after the samples ended: what to look at next, and an error naming every
/// sample that did not end as expected.
fn report(
    running: &Running,
    config_path: &Path,
    rows: &[Row],
    options: &Options,
) -> anyhow::Result<()> {
    let bucket = running.cx.names.bucket(BucketRole::Uploads);
    let mut counts: Vec<(String, usize)> = Vec::new();
    for row in rows {
        match counts.iter_mut().find(|(s, _)| *s == row.state) {
            Some((_, n)) => *n += 1,
            None => counts.push((row.state.clone(), 1)),
        }
    }
    let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let wrong: Vec<&Row> = rows.iter().filter(|r| !r.as_expected()).collect();
    println!(
        "{} samples: {}; {}.",
        rows.len(),
        counts.join(", "),
        if wrong.is_empty() {
            "every one as expected".to_owned()
        } else {
            format!("{} not as expected", wrong.len())
        }
    );
    for row in rows
        .iter()
        .filter(|r| r.as_expected() && (r.state == "quarantined" || r.state == "failed"))
    {
        if let Some(detail) = row.last.as_ref().and_then(|t| t.detail.as_deref()) {
            println!("  {} {}: {}", row.filename, row.state, reason(detail));
        }
    }
    if !running.scanning {
        println!(
            "Nothing was scanned (scanner \"none\"): eicar.txt passed as `unscanned`. Install clamd to see it quarantined."
        );
    }
    for row in &wrong {
        let why = match &row.last {
            Some(t) => format!(
                "last step {}{}",
                row.step(),
                t.detail
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ),
            None => "the ledger has no record of it: did the uploads notification reach the validate queue?".to_owned(),
        };
        if row.is_terminal() {
            println!(
                "  {} ended `{}`, expected `{}`; {why}",
                row.filename,
                row.state,
                row.expect.state()
            );
        } else {
            println!(
                "  {} is still `{}` after {} s (expected `{}`); {why}",
                row.filename,
                row.state,
                FOLLOW_DEADLINE.as_secs(),
                row.expect.state()
            );
        }
    }

    // The commands to look further, with what they need to find this run's ledger.
    let mut prefix = String::new();
    if std::env::var("INTAKE_DATABASE_URL").is_err() {
        prefix.push_str(&format!("INTAKE_DATABASE_URL={} ", running.ledger_url));
    }
    let mut intake = format!("{prefix}{}", intake_command());
    if config_path != Path::new("pipeline.toml") {
        intake.push_str(&format!(" -c {}", config_path.display()));
    }
    let example = wrong
        .first()
        .copied()
        .or_else(|| {
            rows.iter()
                .find(|r| r.expect == samples::Expect::Quarantined)
        })
        .or(rows.first());
    println!("\nLook further:");
    if let Some(row) = example {
        println!("  {intake} status s3://{bucket}/{}", row.key);
    }
    println!("  {intake} catalog list");
    if !options.exit_when_done && (wrong.is_empty() || options.keep_running) {
        let key = running
            .cx
            .config
            .uploads
            .key_template
            .replace("{tenant}", TENANT)
            .replace("{user}", USER)
            .replace("{uuid}", "$(cat /proc/sys/kernel/random/uuid)")
            .replace("{filename}", "FILE");
        let credentials = if running.own_localstack {
            "AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test "
        } else {
            ""
        };
        println!(
            "  upload more: {credentials}aws --endpoint-url {} s3 cp FILE \"s3://{bucket}/{key}\"",
            running.endpoint
        );
    }
    if wrong.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = wrong.iter().map(|r| r.filename).collect();
    bail!(
        "{} of {} samples did not reach their expected state: {} (see above)",
        wrong.len(),
        rows.len(),
        names.join(", ")
    )
}
