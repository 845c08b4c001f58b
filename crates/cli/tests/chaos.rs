//! Chaos: 1,000 mixed objects (clean images, documents, EICAR, rejects) through three
//! `intake run` processes that share one ledger (PostgreSQL when `INTAKE_TEST_POSTGRES_URL`
//! is set, as in `.ci/run`; else one SQLite file), while a controller SIGKILLs a random
//! worker process 50 times at random moments and restarts it, and clamd is stopped for
//! 60 s in the middle.
//!
//! At the end every object must be in its expected terminal state, the ledger must hold
//! exactly one completion per stage on each object's path (and none off it), every key in
//! the store, quarantine and derivatives buckets exactly one version, the events topic (a
//! test subscription) at least one final outcome per object and never two different ones,
//! and every DLQ nothing. It prints `lost=… duplicated=…` and fails on any non-zero.
//!
//! The configuration is the repository's `pipeline.toml` with two changes a deployment that
//! expects killed workers and scanner outages makes too: a 15 s visibility timeout (a dead
//! worker's messages come back in 15 s instead of 2–5 minutes; live workers extend it by
//! heartbeat) and 10 receives before a DLQ (with the default backoff a message survives
//! about two minutes of scanner outage plus a few kills). `CHAOS_SEED` replays a run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use intake_aws::AwsClients;
use intake_aws::provision::{apply, plan};
use intake_core::names::BucketRole;
use intake_core::state_machine::{StageKind, Target};
use intake_core::{OutcomeMessage, PipelineConfig, ResourceNames};
use intake_store::{Ledger, VersionKey};
use intake_testkit::clamd::{ClamdFixture, eicar};
use intake_testkit::{LocalStack, queues, unique_pipeline_name};
use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio::task::JoinSet;

const OBJECTS: usize = 1_000;
const WORKER_PROCESSES: usize = 3;
const KILLS: usize = 50;
const CLAMD_OUTAGE: Duration = Duration::from_secs(60);
/// From the first upload until every object must be terminal.
const DEADLINE: Duration = Duration::from_secs(480);
const UPLOADS_IN_FLIGHT: usize = 16;
const REPO_CONFIG: &str = include_str!("../../../pipeline.toml");
const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples");

/// What one object is, and where it must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    /// An image: done, with every rendition of the image class.
    Image,
    /// A PDF or text document: done, no rendition.
    Document,
    /// EICAR: quarantined by scan.
    Infected,
    /// A shell script posing as a PDF, or an ELF executable: quarantined by validate.
    Rejected,
}

impl Kind {
    fn terminal(self) -> &'static str {
        match self {
            Kind::Image | Kind::Document => "done",
            Kind::Infected | Kind::Rejected => "quarantined",
        }
    }

    /// The stages that must complete exactly once for this kind; the others never.
    fn path(self) -> &'static [StageKind] {
        use StageKind::*;
        match self {
            Kind::Image | Kind::Document => &[Validate, Scan, Thumbnail, Catalog, Archive],
            Kind::Infected => &[Validate, Scan],
            Kind::Rejected => &[Validate],
        }
    }
}

struct Upload {
    kind: Kind,
    version: VersionKey,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_objects_survive_fifty_sigkills_and_a_clamd_outage_exactly_once() {
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("chaos: seed {seed} (CHAOS_SEED={seed} replays the same kill schedule)");
    let mut rng = StdRng::seed_from_u64(seed);

    let localstack = LocalStack::start().await.expect("LocalStack");
    let aws = localstack.clients();
    let mut clamd = ClamdFixture::start("100M").await.expect("clamd fixture");
    let dir = tempfile::tempdir().unwrap();
    let database = Database::create(dir.path()).await;

    let name = unique_pipeline_name();
    let text = chaos_config(&name, &clamd.tcp_address());
    let config_path = dir.path().join("pipeline.toml");
    std::fs::write(&config_path, &text).unwrap();
    let config = PipelineConfig::from_toml(&text, "chaos pipeline.toml").expect("chaos config");
    apply(&aws, &plan(&aws, &config).await.expect("plan"))
        .await
        .expect("provision");
    let names = ResourceNames::of(&config);
    // Migrated here, once, before three processes open it at the same moment.
    let ledger = Ledger::connect(&database.url).await.expect("ledger");

    let account = aws.account_id().await.unwrap();
    let events_arn = format!("arn:aws:sns:us-east-1:{account}:{}", names.events_topic);
    let outcomes_url =
        queues::subscribe_test_queue(&aws, &events_arn, &format!("{name}-chaos-outcomes"))
            .await
            .expect("test subscriber");
    let outcomes = Arc::new(Mutex::new(Vec::<String>::new()));
    let collector = tokio::spawn(collect(aws.clone(), outcomes_url, outcomes.clone()));

    let spawner = Spawner {
        binary: PathBuf::from(env!("CARGO_BIN_EXE_intake")),
        config: config_path,
        env: localstack
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .chain([
                ("INTAKE_DATABASE_URL".to_owned(), database.url.clone()),
                ("INTAKE_METRICS".to_owned(), "0".to_owned()),
                ("RUST_LOG".to_owned(), "warn".to_owned()),
            ])
            .collect(),
        logs: dir.path().to_owned(),
    };
    let mut workers: Vec<Child> = (0..WORKER_PROCESSES).map(|i| spawner.spawn(i)).collect();
    spawner.wait_running(&mut workers).await;

    // The run: uploads, the kill controller and the clamd outage all at once.
    let started = Instant::now();
    let uploads = tokio::spawn(upload_all(aws.clone(), names.clone()));
    let mut kills = Vec::new();
    let mut outage: Option<(Duration, Duration)> = None;
    let outage_at = Duration::from_secs(20);
    while kills.len() < KILLS {
        let pause = Duration::from_millis(rng.random_range(500..4_000));
        tokio::time::sleep(pause).await;
        if outage.is_none() && started.elapsed() >= outage_at {
            clamd.stop();
            let from = started.elapsed();
            eprintln!("chaos: clamd stopped at {:.1} s", from.as_secs_f64());
            outage = Some((from, Duration::ZERO));
        }
        if let Some((from, until)) = outage.as_mut()
            && until.is_zero()
            && started.elapsed() >= *from + CLAMD_OUTAGE
        {
            clamd.restart().await.expect("restart clamd");
            *until = started.elapsed();
            eprintln!("chaos: clamd back at {:.1} s", until.as_secs_f64());
        }
        let victim = rng.random_range(0..WORKER_PROCESSES);
        workers[victim].kill().expect("SIGKILL a worker");
        let _ = workers[victim].wait();
        kills.push((started.elapsed(), victim));
        workers[victim] = spawner.spawn(victim);
    }
    if let Some((from, until)) = outage.as_mut()
        && until.is_zero()
    {
        let back_at = *from + CLAMD_OUTAGE;
        tokio::time::sleep(back_at.saturating_sub(started.elapsed())).await;
        clamd.restart().await.expect("restart clamd");
        *until = started.elapsed();
        eprintln!("chaos: clamd back at {:.1} s", until.as_secs_f64());
    }
    let (outage_from, outage_until) = outage.expect("the kills outlast the outage's start");
    eprintln!(
        "chaos: {} SIGKILLs between {:.1} s and {:.1} s (per process: {:?})",
        kills.len(),
        kills[0].0.as_secs_f64(),
        kills[kills.len() - 1].0.as_secs_f64(),
        (0..WORKER_PROCESSES)
            .map(|i| kills.iter().filter(|(_, v)| *v == i).count())
            .collect::<Vec<_>>()
    );
    let uploads = uploads.await.expect("uploads task");
    assert_eq!(uploads.len(), OBJECTS);

    // Every object terminal, read from the shared ledger.
    let mut pending: Vec<usize> = (0..OBJECTS).collect();
    let mut states: HashMap<usize, String> = HashMap::new();
    while !pending.is_empty() && started.elapsed() < DEADLINE {
        let mut still = Vec::new();
        for i in pending {
            match ledger.state(&uploads[i].version).await.expect("read state") {
                Some(s) if ["done", "quarantined", "failed"].contains(&s.as_str()) => {
                    states.insert(i, s);
                }
                _ => still.push(i),
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    let terminal_after = started.elapsed();
    eprintln!(
        "chaos: {} of {OBJECTS} objects terminal after {:.1} s",
        states.len(),
        terminal_after.as_secs_f64()
    );

    // A final outcome recorded by a worker that was killed before publishing goes out when
    // its message comes back (one visibility timeout later): wait for the queues to drain.
    let finals = final_outcomes(&config);
    let stage_queues = stage_queue_urls(&aws, &names, &config).await;
    let drain_deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let in_queues = total_depth(&aws, &stage_queues).await;
        let published = objects_with_final(&outcomes.lock().unwrap(), &finals);
        if (in_queues == 0 && published >= states.len()) || Instant::now() > drain_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for worker in &mut workers {
        terminate(worker);
    }
    // The collector takes whatever is still on the way.
    tokio::time::sleep(Duration::from_secs(3)).await;
    collector.abort();

    let bodies = outcomes.lock().unwrap().clone();
    let report = Report::check(&aws, &ledger, &names, &uploads, &states, &bodies, &finals).await;
    ledger.close().await;
    database.drop_it().await;

    let by_kind = {
        let mut counts = BTreeMap::new();
        for u in &uploads {
            *counts.entry(format!("{:?}", u.kind)).or_insert(0) += 1;
        }
        counts
    };
    println!(
        "chaos: objects={OBJECTS} {by_kind:?} worker_processes={WORKER_PROCESSES} kills={} clamd_down={:.0}s ({:.1}–{:.1} s) ledger={} terminal_after={:.1}s seed={seed}",
        kills.len(),
        (outage_until - outage_from).as_secs_f64(),
        outage_from.as_secs_f64(),
        outage_until.as_secs_f64(),
        database.backend,
        terminal_after.as_secs_f64(),
    );
    println!("{}", report.summary());
    if !report.problems.is_empty() {
        let logs = spawner.tail_logs();
        panic!(
            "chaos: {} problem(s):\n{}\n--- worker logs (tails)\n{logs}",
            report.problems.len(),
            report.problems.join("\n")
        );
    }
}

/// The repository's pipeline with this run's name, clamd, visibility and receive limits.
fn chaos_config(name: &str, clamd: &str) -> String {
    let mut text = REPO_CONFIG
        .split("\n[api]\n")
        .next()
        .unwrap()
        .replacen("name = \"intake\"", &format!("name = \"{name}\""), 1)
        .replace(
            "address = \"tcp://127.0.0.1:3310\"",
            &format!("address = \"tcp://{clamd}\""),
        )
        .replace("max_receive_count = 5 ", "max_receive_count = 10 ");
    for (from, to) in [
        (
            "visibility_timeout_secs = 120 ",
            "visibility_timeout_secs = 15 ",
        ),
        (
            "visibility_timeout_secs = 300 ",
            "visibility_timeout_secs = 15 ",
        ),
    ] {
        assert!(text.contains(from), "pipeline.toml no longer has `{from}`");
        text = text.replace(from, to);
    }
    assert!(text.contains("max_receive_count = 10 "));
    assert!(text.contains(clamd));
    text
}

/// The ledger database: a fresh PostgreSQL database when `INTAKE_TEST_POSTGRES_URL` is
/// set, else a SQLite file in the test's directory.
struct Database {
    url: String,
    backend: &'static str,
    postgres: Option<(String, String)>,
}

impl Database {
    async fn create(dir: &Path) -> Database {
        use sqlx::Connection;
        let Some(admin_url) = std::env::var("INTAKE_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            eprintln!(
                "chaos: INTAKE_TEST_POSTGRES_URL is not set: the three workers share a SQLite file (CI uses PostgreSQL)"
            );
            return Database {
                url: format!("sqlite://{}", dir.join("ledger.db").display()),
                backend: "sqlite",
                postgres: None,
            };
        };
        let db = format!(
            "intake_chaos_{}",
            ulid::Ulid::new().to_string().to_lowercase()
        );
        sqlx::any::install_default_drivers();
        let mut admin = sqlx::AnyConnection::connect(&admin_url)
            .await
            .expect("connect to INTAKE_TEST_POSTGRES_URL");
        sqlx::query(&format!("CREATE DATABASE {db}"))
            .execute(&mut admin)
            .await
            .expect("create the chaos database");
        admin.close().await.ok();
        let (base, query) = match admin_url.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (admin_url.as_str(), String::new()),
        };
        let prefix = base.rsplit_once('/').map_or(base, |(p, _)| p);
        Database {
            url: format!("{prefix}/{db}{query}"),
            backend: "postgres",
            postgres: Some((admin_url.clone(), db)),
        }
    }

    async fn drop_it(&self) {
        use sqlx::Connection;
        if let Some((admin_url, db)) = &self.postgres
            && let Ok(mut admin) = sqlx::AnyConnection::connect(admin_url).await
        {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .execute(&mut admin)
                .await;
        }
    }
}

/// Starts `intake run` processes; each slot's output goes to its own log file.
struct Spawner {
    binary: PathBuf,
    config: PathBuf,
    env: Vec<(String, String)>,
    logs: PathBuf,
}

impl Spawner {
    fn log_path(&self, slot: usize) -> PathBuf {
        self.logs.join(format!("worker-{slot}.log"))
    }

    fn spawn(&self, slot: usize) -> Child {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path(slot))
            .expect("worker log file");
        Command::new(&self.binary)
            .arg("--config")
            .arg(&self.config)
            .args(["run", "--concurrency", "8"])
            .env_remove("INTAKE_CONFIG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("HOSTNAME", format!("chaos-{slot}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start intake run")
    }

    /// Until each process has logged every stage worker running (or one exited).
    async fn wait_running(&self, workers: &mut [Child]) {
        let stages = 6; // the five stages and the deletion worker
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = (0..workers.len())
                .filter(|&i| {
                    std::fs::read_to_string(self.log_path(i))
                        .map(|l| l.matches("worker running").count() >= stages)
                        .unwrap_or(false)
                })
                .count();
            if ready == workers.len() {
                return;
            }
            for (i, w) in workers.iter_mut().enumerate() {
                if let Ok(Some(status)) = w.try_wait() {
                    panic!(
                        "worker process {i} exited at start ({status}):\n{}",
                        self.tail_logs()
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "worker processes not running after 60 s:\n{}",
                self.tail_logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn tail_logs(&self) -> String {
        (0..WORKER_PROCESSES)
            .map(|i| {
                let log = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(40)..].join("\n");
                format!("[worker {i}]\n{tail}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// SIGTERM, then SIGKILL if it has not exited within 30 s.
fn terminate(child: &mut Child) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The objects of the run, uploaded to the uploads bucket 16 at a time.
async fn upload_all(aws: AwsClients, names: ResourceNames) -> Vec<Upload> {
    let bucket = names.bucket(BucketRole::Uploads).to_owned();
    let sample = |name: &str| std::fs::read(format!("{SAMPLES}/{name}")).expect("sample file");
    let images: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "photo-a.jpg",
            "image/jpeg",
            intake_imaging::samples::photo_jpeg(480, 360, 85),
        ),
        (
            "photo-b.jpg",
            "image/jpeg",
            intake_imaging::samples::photo_jpeg(640, 427, 80),
        ),
        ("logo.png", "image/png", sample("logo.png")),
        (
            "photo-c.jpg",
            "image/jpeg",
            intake_imaging::samples::photo_jpeg(360, 640, 90),
        ),
    ];
    let documents = [
        ("report.pdf", "application/pdf", sample("report.pdf")),
        ("notes.txt", "text/plain", sample("notes.txt")),
    ];
    let elf = std::fs::read(env!("CARGO_BIN_EXE_intake")).expect("read the intake binary")[..8192]
        .to_vec();
    let rejects = [
        ("invoice.pdf", "application/pdf", sample("invoice.pdf")),
        ("setup.exe", "application/octet-stream", elf),
    ];
    let plan: Vec<(Kind, &str, &str, Vec<u8>)> = (0..OBJECTS)
        .map(|i| {
            let (kind, (file, content_type, body)) = match i % 20 {
                0..8 => (Kind::Image, images[i % images.len()].clone()),
                8..13 => (Kind::Document, documents[i % documents.len()].clone()),
                13..16 => (Kind::Infected, ("eicar.txt", "text/plain", eicar())),
                _ => (Kind::Rejected, rejects[i % rejects.len()].clone()),
            };
            (kind, file, content_type, body)
        })
        .collect();

    let gate = Arc::new(tokio::sync::Semaphore::new(UPLOADS_IN_FLIGHT));
    let mut tasks = JoinSet::new();
    for (i, (kind, file, content_type, body)) in plan.into_iter().enumerate() {
        let (aws, bucket, gate) = (aws.clone(), bucket.clone(), gate.clone());
        let key = key(&format!("tenant-{}", i % 3), file);
        let content_type = content_type.to_owned();
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            let version = aws
                .s3
                .put_object()
                .bucket(&bucket)
                .key(&key)
                .content_type(content_type)
                .body(body.into())
                .send()
                .await
                .unwrap_or_else(|e| panic!("upload {key}: {e}"))
                .version_id
                .expect("uploads is versioned");
            (
                i,
                Upload {
                    kind,
                    version: VersionKey::new(bucket, key, version),
                },
            )
        });
    }
    let mut done: Vec<(usize, Upload)> = tasks.join_all().await;
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, u)| u).collect()
}

/// A key from the default template: `{tenant}/{user}/{uuid}-{filename}`.
fn key(tenant: &str, filename: &str) -> String {
    let hex = format!("{:032x}", ulid::Ulid::new().0);
    format!(
        "{tenant}/user-1/{}-{}-{}-{}-{}-{filename}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Everything the test subscriber receives, as raw bodies, until aborted.
async fn collect(aws: AwsClients, url: String, into: Arc<Mutex<Vec<String>>>) {
    loop {
        match queues::take(&aws, &url, 2).await {
            Ok(messages) => into
                .lock()
                .unwrap()
                .extend(messages.iter().filter_map(|m| m.body().map(str::to_owned))),
            Err(e) => {
                eprintln!("chaos: receiving outcomes: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// `(stage, outcome)` pairs that end an object, from the state machine.
fn final_outcomes(config: &PipelineConfig) -> HashSet<(String, String)> {
    config
        .edges()
        .into_iter()
        .filter(|e| matches!(e.to, Target::Terminal(_)))
        .map(|e| (e.from.name().to_owned(), e.outcome))
        .collect()
}

fn objects_with_final(bodies: &[String], finals: &HashSet<(String, String)>) -> usize {
    bodies
        .iter()
        .filter_map(|b| serde_json::from_str::<OutcomeMessage>(b).ok())
        .filter(|o| finals.contains(&(o.stage.clone(), o.outcome.clone())))
        .map(|o| (o.object.key, o.object.version_id))
        .collect::<HashSet<_>>()
        .len()
}

async fn stage_queue_urls(
    aws: &AwsClients,
    names: &ResourceNames,
    config: &PipelineConfig,
) -> Vec<(String, String)> {
    let mut urls = Vec::new();
    for kind in config.queue_kinds() {
        let q = names.stage(kind);
        for queue in [&q.queue, &q.dlq] {
            let url = aws
                .sqs
                .get_queue_url()
                .queue_name(queue)
                .send()
                .await
                .unwrap_or_else(|e| panic!("queue {queue}: {e}"))
                .queue_url
                .unwrap();
            urls.push((queue.clone(), url));
        }
    }
    urls
}

/// Visible plus in-flight messages of a queue.
async fn depth(aws: &AwsClients, url: &str) -> u64 {
    let attrs = aws
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    attrs
        .values()
        .filter_map(|v| v.parse::<u64>().ok())
        .sum::<u64>()
}

async fn total_depth(aws: &AwsClients, queues: &[(String, String)]) -> u64 {
    let mut total = 0;
    for (_, url) in queues {
        total += depth(aws, url).await;
    }
    total
}

/// The end-of-run checks, as counts and a list of problems.
struct Report {
    lost: usize,
    duplicated: usize,
    republished: usize,
    in_dlqs: u64,
    completions: usize,
    versions_checked: usize,
    states: BTreeMap<String, usize>,
    problems: Vec<String>,
}

impl Report {
    async fn check(
        aws: &AwsClients,
        ledger: &Ledger,
        names: &ResourceNames,
        uploads: &[Upload],
        states: &HashMap<usize, String>,
        bodies: &[String],
        finals: &HashSet<(String, String)>,
    ) -> Report {
        let mut r = Report {
            lost: 0,
            duplicated: 0,
            republished: 0,
            in_dlqs: 0,
            completions: 0,
            versions_checked: 0,
            states: BTreeMap::new(),
            problems: Vec::new(),
        };

        // 1. Terminal states.
        for (i, u) in uploads.iter().enumerate() {
            let state = states.get(&i).map_or("not terminal", String::as_str);
            *r.states.entry(state.to_owned()).or_default() += 1;
            if state != u.kind.terminal() {
                r.lost += 1;
                r.problems.push(format!(
                    "lost: {} ({:?}) is {state}, expected {}",
                    u.version,
                    u.kind,
                    u.kind.terminal()
                ));
            }
        }

        // 2. The ledger: one completion per stage on the path, none off it.
        for u in uploads {
            for stage in StageKind::WITH_QUEUES {
                if stage == StageKind::Delete {
                    continue;
                }
                let n = ledger
                    .completions(&u.version, stage.name())
                    .await
                    .expect("count completions");
                r.completions += n as usize;
                let want = u64::from(u.kind.path().contains(&stage));
                if n > want {
                    r.duplicated += 1;
                    r.problems.push(format!(
                        "duplicated: {} completed {stage} {n} times",
                        u.version
                    ));
                } else if n < want {
                    r.lost += 1;
                    r.problems
                        .push(format!("lost: {} never completed {stage}", u.version));
                }
            }
        }

        // 3. Buckets: exactly one version per key where Intake writes.
        let expected_keys = [
            (
                BucketRole::Store,
                uploads
                    .iter()
                    .filter(|u| u.kind.terminal() == "done")
                    .count(),
            ),
            (
                BucketRole::Quarantine,
                uploads
                    .iter()
                    .filter(|u| u.kind.terminal() == "quarantined")
                    .count(),
            ),
            (
                BucketRole::Derivatives,
                uploads.iter().filter(|u| u.kind == Kind::Image).count() * 2,
            ),
        ];
        for (role, want_keys) in expected_keys {
            let bucket = names.bucket(role);
            let entries = intake_aws::purge::list_versions(aws, bucket, "")
                .await
                .unwrap_or_else(|e| panic!("list {bucket}: {e}"));
            let mut per_key: HashMap<&str, usize> = HashMap::new();
            for e in &entries {
                *per_key.entry(e.key.as_str()).or_default() += 1;
            }
            r.versions_checked += entries.len();
            for (key, n) in &per_key {
                if *n > 1 {
                    r.duplicated += 1;
                    r.problems
                        .push(format!("duplicated: s3://{bucket}/{key} has {n} versions"));
                }
            }
            if per_key.len() < want_keys {
                r.lost += want_keys - per_key.len();
                r.problems.push(format!(
                    "lost: {bucket} ({role:?}) has {} keys, expected {want_keys}",
                    per_key.len()
                ));
            } else if per_key.len() > want_keys {
                r.duplicated += per_key.len() - want_keys;
                r.problems.push(format!(
                    "duplicated: {bucket} ({role:?}) has {} keys, expected {want_keys}",
                    per_key.len()
                ));
            }
        }

        // 4. The events topic: a final outcome for every object; a second one only as an
        // identical republication (a worker killed between publish and marking it
        // published; subscribers dedupe on object version and stage, docs/events.md).
        let mut finals_of: HashMap<(String, String), Vec<&str>> = HashMap::new();
        for body in bodies {
            let Ok(o) = serde_json::from_str::<OutcomeMessage>(body) else {
                r.problems
                    .push(format!("an event that is not an outcome: {body}"));
                continue;
            };
            if finals.contains(&(o.stage.clone(), o.outcome.clone())) {
                finals_of
                    .entry((
                        o.object.key.clone(),
                        o.object.version_id.unwrap_or_default(),
                    ))
                    .or_default()
                    .push(body);
            }
        }
        for u in uploads {
            match finals_of.get(&(u.version.key.clone(), u.version.version.clone())) {
                None => {
                    r.lost += 1;
                    r.problems.push(format!(
                        "lost: no final outcome published for {}",
                        u.version
                    ));
                }
                Some(list) => {
                    let distinct: HashSet<&&str> = list.iter().collect();
                    if distinct.len() > 1 {
                        r.duplicated += 1;
                        r.problems.push(format!(
                            "duplicated: {} different final outcomes for {}: {list:?}",
                            distinct.len(),
                            u.version
                        ));
                    }
                    r.republished += list.len() - distinct.len();
                }
            }
        }

        // 5. DLQs: nothing that a retry should have handled.
        for kind in StageKind::WITH_QUEUES {
            let dlq = &names.stage(kind).dlq;
            let Ok(out) = aws.sqs.get_queue_url().queue_name(dlq).send().await else {
                continue;
            };
            let n = depth(aws, out.queue_url().unwrap_or_default()).await;
            if n > 0 {
                r.in_dlqs += n;
                r.problems
                    .push(format!("{n} message(s) in the {kind} DLQ {dlq}"));
            }
        }
        r
    }

    fn summary(&self) -> String {
        format!(
            "chaos: lost={} duplicated={} in_dlqs={} republished_identical={} states={:?} ledger_completions={} bucket_versions_checked={}",
            self.lost,
            self.duplicated,
            self.in_dlqs,
            self.republished,
            self.states,
            self.completions,
            self.versions_checked
        )
    }
}
