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
//! heartbeat) and 10 receives before a DLQ (12 for scan, whose default of 8 outlasts about
//! two minutes of scanner outage), so that a message also survives a few kills.
//! `CHAOS_SEED` replays a run.

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
    let (seed, mut rng) = kill_schedule();

    let localstack = LocalStack::start().await.expect("LocalStack");
    let aws = localstack.clients();
    let mut clamd = ClamdFixture::start("100M").await.expect("clamd fixture");
    let dir = tempfile::tempdir().unwrap();
    let database = Database::create(dir.path()).await;

    let name = unique_pipeline_name();
    let text = chaos_config(&name, &clamd.tcp_address());
    let config_path = dir.path().join("pipeline.toml");
    std::fs::write(&config_path, &text).unwrap();
    let (config, names) = provision(&aws, &text).await;
    // Migrated here, once, before three processes open it at the same moment.
    let ledger = Ledger::connect(&database.url).await.expect("ledger");

    let (outcomes, collector) = subscribe_outcomes(&aws, &names).await;

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
    let uploads = tokio::spawn(upload_all(aws.clone(), names.clone(), OBJECTS));
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

    let states = wait_terminal(&ledger, &uploads, started, DEADLINE).await;
    let terminal_after = started.elapsed();
    let finals = final_outcomes(&config);
    wait_published(&aws, &names, &config, &outcomes, &finals, states.len()).await;
    terminate_all(&mut workers);
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

/// The seed of this run's random choices (`CHAOS_SEED` replays one) and its generator.
fn kill_schedule() -> (u64, StdRng) {
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("chaos: seed {seed} (CHAOS_SEED={seed} replays the same kill schedule)");
    (seed, StdRng::seed_from_u64(seed))
}

/// Parses and provisions the chaos pipeline on LocalStack.
async fn provision(aws: &AwsClients, text: &str) -> (PipelineConfig, ResourceNames) {
    let config = PipelineConfig::from_toml(text, "chaos pipeline.toml").expect("chaos config");
    apply(aws, &plan(aws, &config).await.expect("plan"))
        .await
        .expect("provision");
    let names = ResourceNames::of(&config);
    (config, names)
}

/// A test queue subscribed to the events topic, and a task that collects every body.
async fn subscribe_outcomes(
    aws: &AwsClients,
    names: &ResourceNames,
) -> (Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
    let account = aws.account_id().await.unwrap();
    let events_arn = format!("arn:aws:sns:us-east-1:{account}:{}", names.events_topic);
    let queue = format!("{}-chaos-outcomes", names.prefix);
    let url = queues::subscribe_test_queue(aws, &events_arn, &queue)
        .await
        .expect("test subscriber");
    let outcomes = Arc::new(Mutex::new(Vec::<String>::new()));
    let collector = tokio::spawn(collect(aws.clone(), url, outcomes.clone()));
    (outcomes, collector)
}

/// Polls the shared ledger until every upload is terminal or `deadline` after `started`;
/// returns the terminal state of each upload that got one (by index).
async fn wait_terminal(
    ledger: &Ledger,
    uploads: &[Upload],
    started: Instant,
    deadline: Duration,
) -> HashMap<usize, String> {
    let mut pending: Vec<usize> = (0..uploads.len()).collect();
    let mut states: HashMap<usize, String> = HashMap::new();
    while !pending.is_empty() && started.elapsed() < deadline {
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
    eprintln!(
        "chaos: {} of {} objects terminal after {:.1} s",
        states.len(),
        uploads.len(),
        started.elapsed().as_secs_f64()
    );
    states
}

/// A final outcome recorded by a worker that was killed before publishing goes out when
/// its message comes back (one visibility timeout later): waits (up to 90 s) until the
/// stage queues are empty and `terminal` objects have a final outcome on the topic.
async fn wait_published(
    aws: &AwsClients,
    names: &ResourceNames,
    config: &PipelineConfig,
    outcomes: &Mutex<Vec<String>>,
    finals: &HashSet<(String, String)>,
    terminal: usize,
) {
    let stage_queues = stage_queue_urls(aws, names, config).await;
    let drain_deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let in_queues = total_depth(aws, &stage_queues).await;
        let published = objects_with_final(&outcomes.lock().unwrap(), finals);
        if (in_queues == 0 && published >= terminal) || Instant::now() > drain_deadline {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
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
        .replace("max_receive_count = 5 ", "max_receive_count = 10 ")
        .replace("max_receive_count = 8\n", "max_receive_count = 12\n");
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
    assert!(text.contains("max_receive_count = 10 ") && text.contains("max_receive_count = 12\n"));
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
        let db = format!("intake_chaos_{}", uuid::Uuid::now_v7().simple());
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

/// SIGTERM to every worker at once (each may wait out its pending long poll), then
/// SIGKILL to any that has not exited within 30 s.
fn terminate_all(children: &mut [Child]) {
    for child in children.iter() {
        // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for child in children.iter_mut() {
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The objects of the run, uploaded to the uploads bucket 16 at a time.
async fn upload_all(aws: AwsClients, names: ResourceNames, objects: usize) -> Vec<Upload> {
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
    let plan: Vec<(Kind, &str, &str, Vec<u8>)> = (0..objects)
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
    format!("{tenant}/user-1/{}-{filename}", uuid::Uuid::now_v7())
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

/// Objects of the container run.
const CONTAINER_OBJECTS: usize = 300;
const CONTAINER_KILLS: usize = 12;
const CUT_OFF: Duration = Duration::from_secs(30);
const BASE_IMAGE: &str = "intake-base:bookworm";
const CLAMD_IMAGE: &str = "intake-clamd:local";
const POSTGRES_IMAGE: &str = "intake-postgres:local";

/// The same checks with the workers as containers on private Docker networks: three
/// `intake run` containers (the test's own binary, mounted into the project's Debian base
/// image) on an `aws` network with LocalStack and clamd, and a `db` network with
/// PostgreSQL. `docker kill` and `docker start` them 12 times, and cut worker 0 off the
/// `db` network for 30 s with `docker network disconnect`: its messages go to the others,
/// and what it held when cut off is not applied twice when it comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_containers_survive_docker_kill_and_a_database_partition_exactly_once() {
    for image in [BASE_IMAGE, CLAMD_IMAGE, POSTGRES_IMAGE] {
        assert!(
            docker(&["image", "inspect", "--format", "{{.Id}}", image]).is_ok(),
            "image {image} is missing: build it with `deploy/build-image.sh clamd postgres` (no registry needed; .ci/run does)"
        );
    }
    let (seed, mut rng) = kill_schedule();

    let localstack = LocalStack::start().await.expect("LocalStack");
    let localstack_id = localstack
        .container_id()
        .expect("this test connects its LocalStack container to a private network: unset INTAKE_TEST_ENDPOINT")
        .to_owned();
    let aws = localstack.clients();
    let name = unique_pipeline_name();
    let mut docker_objects = DockerObjects::new(&name);
    let aws_net = docker_objects.network("aws");
    let db_net = docker_objects.network("db");
    docker(&[
        "network",
        "connect",
        "--alias",
        "localstack",
        &aws_net,
        &localstack_id,
    ])
    .expect("connect LocalStack to the aws network");
    docker_objects
        .connected
        .push((aws_net.clone(), localstack_id.clone()));
    docker_objects.run(&[
        "--network",
        &aws_net,
        "--network-alias",
        "clamd",
        "--name",
        &format!("{name}-clamd"),
        CLAMD_IMAGE,
    ]);
    let password = "chaos-ledger";
    docker_objects.run(&[
        "--network",
        &db_net,
        "--network-alias",
        "postgres",
        "--name",
        &format!("{name}-postgres"),
        "-e",
        &format!("POSTGRES_PASSWORD={password}"),
        "-p",
        "127.0.0.1::5432",
        POSTGRES_IMAGE,
    ]);
    let port = docker(&["port", &format!("{name}-postgres"), "5432/tcp"])
        .expect("PostgreSQL's port")
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .expect("a published port")
        .trim()
        .to_owned();
    let host_url = format!("postgres://intake:{password}@127.0.0.1:{port}/intake");
    let ledger = connect_when_up(&host_url).await;

    let dir = tempfile::tempdir().unwrap();
    let text = chaos_config(&name, "clamd:3310");
    let config_path = dir.path().join("pipeline.toml");
    std::fs::write(&config_path, &text).unwrap();
    let (config, names) = provision(&aws, &text).await;
    let (outcomes, collector) = subscribe_outcomes(&aws, &names).await;

    let binary = env!("CARGO_BIN_EXE_intake");
    let workers: Vec<String> = (0..WORKER_PROCESSES)
        .map(|i| format!("{name}-worker-{i}"))
        .collect();
    for worker in &workers {
        docker(&[
            "create",
            "--name",
            worker,
            "--network",
            &aws_net,
            "-v",
            &format!("{binary}:/usr/local/bin/intake:ro"),
            "-v",
            &format!("{}:/etc/intake/pipeline.toml:ro", config_path.display()),
            "-e",
            "AWS_ENDPOINT_URL=http://localstack:4566",
            "-e",
            "AWS_ACCESS_KEY_ID=test",
            "-e",
            "AWS_SECRET_ACCESS_KEY=test",
            "-e",
            "AWS_REGION=us-east-1",
            "-e",
            &format!("INTAKE_DATABASE_URL=postgres://intake:{password}@postgres:5432/intake"),
            "-e",
            "INTAKE_METRICS=0",
            "-e",
            "RUST_LOG=warn",
            "-e",
            &format!("HOSTNAME={worker}"),
            BASE_IMAGE,
            "intake",
            "--config",
            "/etc/intake/pipeline.toml",
            "run",
        ])
        .expect("create a worker container");
        docker_objects.containers.push(worker.clone());
        docker(&["network", "connect", &db_net, worker]).expect("connect a worker to db");
        docker(&["start", worker]).expect("start a worker container");
    }
    wait_containers_running(&workers).await;

    let started = Instant::now();
    let uploads = tokio::spawn(upload_all(aws.clone(), names.clone(), CONTAINER_OBJECTS));
    let cut_at = Duration::from_secs(8);
    let mut cut: Option<(Duration, Duration)> = None;
    let mut kills = Vec::new();
    while kills.len() < CONTAINER_KILLS || cut.is_none_or(|(_, until)| until.is_zero()) {
        tokio::time::sleep(Duration::from_millis(rng.random_range(1_000..5_000))).await;
        let now = started.elapsed();
        if cut.is_none() && now >= cut_at {
            docker(&["network", "disconnect", "--force", &db_net, &workers[0]])
                .expect("cut worker 0 off the database");
            eprintln!(
                "chaos: worker 0 cut off PostgreSQL at {:.1} s",
                now.as_secs_f64()
            );
            cut = Some((now, Duration::ZERO));
        } else if let Some((from, until)) = cut.as_mut()
            && until.is_zero()
            && now >= *from + CUT_OFF
        {
            docker(&["network", "connect", &db_net, &workers[0]])
                .expect("reconnect worker 0 to the database");
            *until = now;
            eprintln!(
                "chaos: worker 0 back on PostgreSQL at {:.1} s",
                now.as_secs_f64()
            );
        }
        if kills.len() < CONTAINER_KILLS {
            // Worker 0 is left alone while it is cut off, so that it comes back with
            // whatever it held when the cut came.
            let cut_now = cut.is_some_and(|(_, until)| until.is_zero());
            let victim = rng.random_range(usize::from(cut_now)..WORKER_PROCESSES);
            docker(&["kill", "--signal", "KILL", &workers[victim]]).expect("docker kill");
            docker(&["start", &workers[victim]]).expect("docker start");
            kills.push((started.elapsed(), victim));
        }
    }
    let (cut_from, cut_until) = cut.unwrap();
    let uploads = uploads.await.expect("uploads task");
    let states = wait_terminal(&ledger, &uploads, started, DEADLINE).await;
    let terminal_after = started.elapsed();
    let finals = final_outcomes(&config);
    wait_published(&aws, &names, &config, &outcomes, &finals, states.len()).await;

    // Worker 0's own account of the cut: the ledger calls that failed while it lasted.
    let worker0_log = docker(&["logs", &workers[0]]).unwrap_or_default();
    let ledger_errors = worker0_log
        .lines()
        .filter(|l| l.contains("ledger") || l.contains("database") || l.contains("postgres"))
        .count();
    // One `docker stop` stops them all at once.
    let mut stop = vec!["stop", "--time", "30"];
    stop.extend(workers.iter().map(String::as_str));
    let _ = docker(&stop);
    tokio::time::sleep(Duration::from_secs(3)).await;
    collector.abort();

    let bodies = outcomes.lock().unwrap().clone();
    let report = Report::check(&aws, &ledger, &names, &uploads, &states, &bodies, &finals).await;
    ledger.close().await;
    println!(
        "chaos (containers): objects={CONTAINER_OBJECTS} worker_containers={WORKER_PROCESSES} docker_kills={} worker0_cut_off_db={:.0}s ({:.1}–{:.1} s) worker0_ledger_error_lines={ledger_errors} terminal_after={:.1}s seed={seed}",
        kills.len(),
        (cut_until - cut_from).as_secs_f64(),
        cut_from.as_secs_f64(),
        cut_until.as_secs_f64(),
        terminal_after.as_secs_f64(),
    );
    println!(
        "{}",
        report
            .summary()
            .replacen("chaos:", "chaos (containers):", 1)
    );
    let mut problems = report.problems;
    if ledger_errors == 0 {
        problems.push(
            "worker 0 logged no ledger error while cut off PostgreSQL: the cut did not take"
                .to_owned(),
        );
    }
    if !problems.is_empty() {
        let logs: String = workers
            .iter()
            .map(|w| {
                let log = docker(&["logs", "--tail", "40", w]).unwrap_or_default();
                format!("[{w}]\n{log}\n")
            })
            .collect();
        panic!(
            "chaos (containers): {} problem(s):\n{}\n--- worker logs (tails)\n{logs}",
            problems.len(),
            problems.join("\n")
        );
    }
    drop(docker_objects);
}

/// Runs `docker` with `args`; stdout and stderr together on success, stderr on failure.
fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("docker {}: {e}", args.join(" ")))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("docker {}: {text}", args.join(" ")))
    }
}

/// Containers, networks and connections this test made, removed when it ends (also
/// when it fails).
struct DockerObjects {
    prefix: String,
    containers: Vec<String>,
    networks: Vec<String>,
    connected: Vec<(String, String)>,
}

impl DockerObjects {
    fn new(prefix: &str) -> Self {
        DockerObjects {
            prefix: prefix.to_owned(),
            containers: Vec::new(),
            networks: Vec::new(),
            connected: Vec::new(),
        }
    }

    fn network(&mut self, role: &str) -> String {
        let name = format!("{}-{role}", self.prefix);
        docker(&["network", "create", &name]).expect("create a network");
        self.networks.push(name.clone());
        name
    }

    /// `docker run -d` with `args`; the container is removed at the end.
    fn run(&mut self, args: &[&str]) {
        let mut all = vec!["run", "-d"];
        all.extend_from_slice(args);
        let id = docker(&all).expect("docker run").trim().to_owned();
        self.containers.push(id);
    }
}

impl Drop for DockerObjects {
    fn drop(&mut self) {
        for container in &self.containers {
            let _ = docker(&["rm", "--force", "--volumes", container]);
        }
        for (network, container) in &self.connected {
            let _ = docker(&["network", "disconnect", "--force", network, container]);
        }
        for network in &self.networks {
            let _ = docker(&["network", "rm", network]);
        }
    }
}

/// The ledger through the published port, once PostgreSQL accepts connections (it
/// initialises its data directory first); migrated here before the workers start.
async fn connect_when_up(url: &str) -> Ledger {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Ledger::connect(url).await {
            Ok(ledger) => return ledger,
            Err(e) if Instant::now() < deadline => {
                tracing::debug!("PostgreSQL not up yet: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("PostgreSQL container did not accept connections in 60 s: {e}"),
        }
    }
}

/// Until every worker container has logged each stage worker running.
async fn wait_containers_running(workers: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = workers
            .iter()
            .filter(|w| {
                docker(&["logs", w.as_str()])
                    .map(|l| l.matches("worker running").count() >= 6)
                    .unwrap_or(false)
            })
            .count();
        if ready == workers.len() {
            return;
        }
        if Instant::now() > deadline {
            let logs: String = workers
                .iter()
                .map(|w| format!("[{w}]\n{}\n", docker(&["logs", w]).unwrap_or_default()))
                .collect();
            panic!("worker containers not running after 60 s:\n{logs}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
