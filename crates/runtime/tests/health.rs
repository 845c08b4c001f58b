//! The workers' health endpoints over real HTTP, on the in-memory queue and a SQLite
//! ledger: a healthy worker answers `/healthz` 200 across its long polls, a worker stuck in
//! a receive fails it (naming the stage) once its long poll and margin have passed,
//! `/readyz` fails on a closed ledger, an unreachable queue or a failing extra check, and
//! `/metrics` counts what the worker did by stage and outcome.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use intake_runtime::batch::BoxFuture;
use intake_runtime::health::{self, Health, HealthSettings};
use intake_runtime::queue::memory::MemoryQueue;
use intake_runtime::queue::{Delivery, Queue, QueueError, VisibilityChange};
use support::{Bench, Options, Plan, Scripted, settings, until};
use tokio::sync::Notify;

const LIMIT: Duration = Duration::from_secs(20);

fn key(n: usize) -> String {
    format!("tenant-1/user-1/01a23bd6-578b-8640-18af-90e7a2ee25b{n}-photo.png")
}

/// A health with a short margin, served on a free port.
async fn serve(settings: HealthSettings) -> (Health, SocketAddr) {
    let health = Health::new(settings);
    let server = health::serve(
        "127.0.0.1:0".parse().unwrap(),
        health.clone(),
        std::future::pending(),
    )
    .await
    .expect("listen on a free port");
    (health, server.local_addr())
}

fn quick(margin_ms: u64) -> HealthSettings {
    HealthSettings {
        margin: Duration::from_millis(margin_ms),
        check_timeout: Duration::from_millis(500),
    }
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{addr}{path}"))
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

async fn get_json(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let (status, body) = get(addr, path).await;
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (status, json)
}

/// The bench's queue, except that receives never return while `hang` is set (as an SQS
/// long poll on a connection that silently died would), until `release` lets them go.
#[derive(Clone)]
struct HangingQueue {
    inner: MemoryQueue,
    hang: Arc<AtomicBool>,
    release: Arc<Notify>,
}

impl Queue for HangingQueue {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<Delivery>, QueueError>> {
        Box::pin(async move {
            if self.hang.load(Ordering::SeqCst) {
                self.release.notified().await;
                return Ok(Vec::new());
            }
            self.inner.receive(max, wait).await
        })
    }

    fn acknowledge(&self, receipts: Vec<String>) -> BoxFuture<'_, Vec<Result<(), QueueError>>> {
        self.inner.acknowledge(receipts)
    }

    fn change_visibility(
        &self,
        changes: Vec<VisibilityChange>,
    ) -> BoxFuture<'_, Vec<Result<(), QueueError>>> {
        self.inner.change_visibility(changes)
    }

    fn probe(&self) -> BoxFuture<'_, Result<u64, QueueError>> {
        self.inner.probe()
    }

    fn dead_letter<'a>(
        &'a self,
        delivery: &'a Delivery,
        code: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        self.inner.dead_letter(delivery, code, reason)
    }
}

#[tokio::test]
async fn a_healthy_worker_answers_healthz_200_across_its_long_polls() {
    // The bench's long poll is 1 s: 1 s + 10 ms batch window + 300 ms margin.
    let bench = Bench::new(Options::default()).await;
    let (health, addr) = serve(quick(300)).await;
    let mut with_health = settings("w1");
    with_health.health = Some(health.clone());
    let worker = bench.start(Scripted::default(), with_health);

    // Several empty long polls come and go; every answer is 200 and names the loop.
    let started = Instant::now();
    let mut phases = Vec::new();
    while started.elapsed() < Duration::from_millis(3500) {
        let (status, body) = get_json(addr, "/healthz").await;
        assert_eq!(status, 200, "{body:#}");
        assert_eq!(body["status"], "ok", "{body:#}");
        let loops = body["loops"].as_array().expect("loops");
        assert_eq!(loops.len(), 1, "{body:#}");
        assert_eq!(loops[0]["stage"], "validate");
        assert_eq!(loops[0]["worker"], "w1");
        assert_eq!(loops[0]["ok"], true);
        phases.push(loops[0]["phase"].as_str().unwrap().to_owned());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(phases.iter().all(|p| p == "receiving"), "{phases:?}");
    let receives = health.liveness().loops[0].receives;
    assert!(
        receives >= 3,
        "3.5 s of 1 s long polls returned {receives} times"
    );

    // Work flows through as usual.
    bench.queue.send(&bench.event(&key(1)));
    until("the outcome", LIMIT, async || bench.published(&key(1)) == 1).await;
    worker.stop().await;
    let (status, body) = get_json(addr, "/healthz").await;
    assert_eq!(
        status, 200,
        "a loop stopped on purpose is not stuck: {body:#}"
    );
    assert_eq!(body["loops"][0]["phase"], "stopped");
}

#[tokio::test]
async fn a_worker_stuck_in_a_receive_fails_its_healthcheck_naming_the_stage() {
    let bench = Bench::new(Options::default()).await;
    let (health, addr) = serve(quick(300)).await;
    let queue = HangingQueue {
        inner: bench.queue.clone(),
        hang: Arc::new(AtomicBool::new(true)),
        release: Arc::new(Notify::new()),
    };
    let mut with_health = settings("stuck-1");
    with_health.health = Some(health.clone());
    let started = Instant::now();
    let worker = bench.start_on(Scripted::default(), with_health, Arc::new(queue.clone()));

    // Within its long poll (1 s) + batch window (10 ms) + margin (300 ms): healthy.
    let (status, body) = get_json(addr, "/healthz").await;
    assert!(started.elapsed() < Duration::from_millis(1310));
    assert_eq!(status, 200, "{body:#}");

    // Past it: 503, naming the stage, the worker and how long.
    let mut answer = None;
    while started.elapsed() < Duration::from_secs(5) {
        let (status, body) = get(addr, "/healthz").await;
        if status == 503 {
            answer = Some((started.elapsed(), body));
            break;
        }
        assert_eq!(status, 200, "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (after, body) = answer.expect("/healthz turned 503 within 5 s");
    assert!(
        after >= Duration::from_millis(1310),
        "503 after {after:?}, before the threshold: {body}"
    );
    assert!(
        after < Duration::from_millis(2500),
        "503 only after {after:?}"
    );
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "stuck", "{json:#}");
    let problem = json["problems"][0].as_str().expect("a problem");
    assert!(
        problem.starts_with("stage validate (worker stuck-1, queue ")
            && problem.contains("in a receive that has not returned for ")
            && problem.contains("limit of 1.3 s")
            && problem.contains("no receive has returned yet"),
        "{problem}"
    );
    assert_eq!(json["loops"][0]["phase"], "receiving");
    assert_eq!(json["loops"][0]["ok"], false);
    assert!(json["loops"][0]["phase_secs"].as_f64().unwrap() > 1.31);

    // Asked to stop, it drains: healthy (the process is exiting on purpose), not ready.
    worker.request_stop();
    until("the loop to drain", LIMIT, async || {
        health.liveness().loops[0].phase.name() == "draining"
    })
    .await;
    let (status, body) = get_json(addr, "/healthz").await;
    assert_eq!(status, 200, "{body:#}");
    let (status, body) = get_json(addr, "/readyz").await;
    assert_eq!(status, 503, "{body:#}");
    let check = find(&body, "loop/validate");
    assert!(
        check["error"].as_str().unwrap().contains("draining"),
        "{body:#}"
    );
    // The receive returns at last, and the worker stops.
    queue.hang.store(false, Ordering::SeqCst);
    queue.release.notify_waiters();
    worker.stop().await;
    assert_eq!(health.liveness().loops[0].phase.name(), "stopped");
}

fn find<'a>(readiness: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    readiness["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {readiness:#}"))
}

#[tokio::test]
async fn readyz_fails_on_an_unreachable_queue_a_failing_check_or_a_closed_ledger() {
    let bench = Bench::new(Options::default()).await;
    let (health, addr) = serve(quick(300)).await;
    let scanner_up = Arc::new(AtomicBool::new(true));
    let up = scanner_up.clone();
    health.add_check("clamd", move || {
        let up = up.load(Ordering::SeqCst);
        async move {
            if up {
                Ok(())
            } else {
                Err("PING to tcp://127.0.0.1:3310: connection refused")
            }
        }
    });
    let mut with_health = settings("r1");
    with_health.health = Some(health.clone());
    let worker = bench.start(Scripted::default(), with_health);
    bench.queue.send(&bench.event(&key(2)));
    bench.queue.send(&bench.event(&key(3)));

    let (status, body) = get_json(addr, "/readyz").await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["ready"], true);
    let names: Vec<&str> = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["ledger", "queue/validate", "clamd", "loop/validate"]
    );
    let queue = find(&body, "queue/validate");
    assert!(
        queue["detail"]
            .as_str()
            .unwrap()
            .contains("messages waiting"),
        "{body:#}"
    );

    // The queue does not answer.
    bench.queue.set_unreachable(true);
    let (status, body) = get_json(addr, "/readyz").await;
    assert_eq!(status, 503, "{body:#}");
    assert_eq!(body["ready"], false);
    let queue = find(&body, "queue/validate");
    assert_eq!(queue["ok"], false);
    assert!(
        queue["error"]
            .as_str()
            .unwrap()
            .contains("GetQueueAttributes"),
        "{body:#}"
    );
    assert_eq!(find(&body, "ledger")["ok"], true);
    bench.queue.set_unreachable(false);
    until("ready again", LIMIT, async || {
        get(addr, "/readyz").await.0 == 200
    })
    .await;

    // The scanner check the caller added fails.
    scanner_up.store(false, Ordering::SeqCst);
    let (status, body) = get_json(addr, "/readyz").await;
    assert_eq!(status, 503, "{body:#}");
    assert!(
        find(&body, "clamd")["error"]
            .as_str()
            .unwrap()
            .contains("connection refused")
    );
    scanner_up.store(true, Ordering::SeqCst);

    // A check that never answers fails by its timeout, without holding up the others.
    let slow = Health::new(quick(300));
    slow.add_check("hangs", || async {
        std::future::pending::<Result<(), String>>().await
    });
    let started = Instant::now();
    let readiness = slow.readiness().await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(!readiness.ready());
    assert!(
        readiness.checks[0]
            .error
            .as_deref()
            .unwrap()
            .contains("no answer within 0.5 s")
    );

    // The ledger is closed.
    let (status, _) = get_json(addr, "/readyz").await;
    assert_eq!(status, 200);
    bench.ledger.close().await;
    let (status, body) = get_json(addr, "/readyz").await;
    assert_eq!(status, 503, "{body:#}");
    let ledger = find(&body, "ledger");
    assert_eq!(ledger["ok"], false, "{body:#}");
    assert!(!ledger["error"].as_str().unwrap().is_empty());
    assert_eq!(find(&body, "queue/validate")["ok"], true);
    drop(worker);
}

#[tokio::test]
async fn metrics_count_messages_by_stage_and_outcome() {
    let bench = Bench::new(Options::default()).await;
    let (health, addr) = serve(quick(300)).await;
    let stage = Scripted::default();
    stage.plan(&key(5), Plan::RetryTimes(1));
    for n in 1..=3 {
        bench.queue.send(&bench.event(&key(n)));
    }
    bench.queue.send(&bench.event(&key(5)));
    bench.queue.send("{ this is not JSON");
    let mut with_health = settings("worker-m-77");
    with_health.health = Some(health.clone());
    let worker = bench.start(stage, with_health);

    let deleted = r#"intake_messages_total{stage="validate",outcome="deleted"} 4"#;
    let poisoned = r#"intake_messages_total{stage="validate",outcome="poisoned"} 1"#;
    until("4 deleted and 1 poisoned in /metrics", LIMIT, async || {
        let text = get(addr, "/metrics").await.1;
        text.contains(deleted) && text.contains(poisoned)
    })
    .await;
    let (status, text) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    for line in [
        r#"intake_messages_total{stage="validate",outcome="retried"} 1"#,
        r#"intake_messages_total{stage="validate",outcome="panicked"} 0"#,
        r#"intake_processed_total{stage="validate",outcome="passed"} 4"#,
        r#"intake_retried_total{stage="validate",code="s3_unavailable"} 1"#,
        r#"intake_in_flight{stage="validate"} 0"#,
        r#"intake_message_duration_seconds_count{stage="validate"} 6"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    assert!(
        text.contains(r#"intake_poison_total{stage="validate",code=""#),
        "{text}"
    );
    // Six messages came in (five, then the retried one again), in one or more receives.
    let received = text
        .lines()
        .find_map(|l| l.strip_prefix(r#"intake_receive_batch_size_sum{stage="validate"} "#))
        .expect("the batch size histogram");
    assert_eq!(received.parse::<f64>().unwrap(), 6.0, "{text}");
    // Labels are bounded: no key, tenant or worker id.
    for leak in ["tenant-1", "photo.png", "worker-m-77"] {
        assert!(!text.contains(leak), "{leak} in\n{text}");
    }
    let stats = worker.stop().await;
    assert_eq!((stats.deleted, stats.retried, stats.poisoned), (4, 1, 1));
}
