//! The runtime's test bench: a worker on the in-memory queue and topic, a SQLite ledger in
//! a temporary directory, and a stage whose behaviour each test scripts per object key.
//! No Docker and no AWS endpoint: the AWS clients point at a closed port and are never
//! called (a call would fail the test with a connection error).

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use intake_aws::AwsClients;
use intake_core::config::AwsSection;
use intake_core::names::BucketRole;
use intake_core::state_machine::StageKind;
use intake_core::{PipelineConfig, ResourceNames, StageError};
use intake_runtime::backoff::Backoff;
use intake_runtime::protocol::Publisher;
use intake_runtime::queue::Queue;
use intake_runtime::queue::memory::MemoryQueue;
use intake_runtime::topic::MemoryTopic;
use intake_runtime::{
    Stage, StageCx, StageInput, StageOutput, Worker, WorkerSettings, WorkerStats,
};
use intake_store::{Ledger, ManualClock, VersionKey};
use tokio::sync::{Semaphore, watch};

/// What the scripted stage does for one object key.
#[derive(Clone)]
pub enum Plan {
    Pass,
    /// A retryable error this many times, then `passed`.
    RetryTimes(u32),
    Permanent,
    Poison,
    Panic,
    /// Waits for a permit (never returned), then `passed`.
    Gate(Arc<Semaphore>),
    Sleep(Duration),
}

#[derive(Clone, Default)]
pub struct Scripted {
    plans: Arc<Mutex<HashMap<String, Plan>>>,
    calls: Arc<Mutex<HashMap<String, u32>>>,
}

impl Scripted {
    pub fn plan(&self, key: &str, plan: Plan) {
        self.plans.lock().unwrap().insert(key.to_owned(), plan);
    }

    /// How often the stage was called for `key`.
    pub fn calls(&self, key: &str) -> u32 {
        self.calls.lock().unwrap().get(key).copied().unwrap_or(0)
    }
}

impl Stage for Scripted {
    const KIND: StageKind = StageKind::Validate;

    async fn process(&self, _cx: &StageCx, input: &StageInput) -> Result<StageOutput, StageError> {
        let key = input.object.key.clone();
        let call = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.entry(key.clone()).or_default();
            *n += 1;
            *n
        };
        let plan = self
            .plans
            .lock()
            .unwrap()
            .get(&key)
            .cloned()
            .unwrap_or(Plan::Pass);
        match plan {
            Plan::Pass => {}
            Plan::RetryTimes(n) if call <= n => {
                return Err(StageError::retryable(
                    "s3_unavailable",
                    format!("try {call} of {key}"),
                ));
            }
            Plan::RetryTimes(_) => {}
            Plan::Permanent => {
                return Err(StageError::permanent(
                    "too_large",
                    format!("{key} is too large"),
                ));
            }
            Plan::Poison => {
                return Err(StageError::poison("bad_key", format!("{key} is not a key")));
            }
            Plan::Panic => panic!("scripted panic for {key}"),
            Plan::Gate(gate) => {
                let _permit = gate.acquire().await;
            }
            Plan::Sleep(d) => tokio::time::sleep(d).await,
        }
        Ok(StageOutput::outcome("passed"))
    }
}

pub struct Bench {
    pub queue: MemoryQueue,
    pub topic: MemoryTopic,
    pub ledger: Arc<Ledger>,
    pub clock: Option<ManualClock>,
    pub cx: StageCx,
    pub uploads: String,
    _dir: tempfile::TempDir,
}

pub struct Options {
    pub visibility_secs: u32,
    pub max_receive_count: u32,
    /// A ledger clock the test moves by hand (for lapsed leases), instead of the system's.
    pub manual_clock: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            visibility_secs: 5,
            max_receive_count: 5,
            manual_clock: false,
        }
    }
}

impl Bench {
    pub async fn new(options: Options) -> Bench {
        let text = format!(
            "{}\n[stages.validate.queue]\nvisibility_timeout_secs = {}\nmax_receive_count = {}\nwait_time_secs = 1\n",
            include_str!("../../../../pipeline.toml"),
            options.visibility_secs,
            options.max_receive_count
        );
        let config =
            PipelineConfig::from_toml(&text, "pipeline.toml").expect("test config is valid");
        let names = ResourceNames::of(&config);
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
        let mut ledger = Ledger::connect(&url).await.expect("open a SQLite ledger");
        let clock = options
            .manual_clock
            .then(|| ManualClock::new(1_800_000_000_000));
        if let Some(clock) = &clock {
            ledger = ledger.with_clock(clock.clone());
        }
        let aws = AwsClients::load(&AwsSection {
            region: Some("us-east-1".into()),
            endpoint_url: Some("http://127.0.0.1:9".into()),
        })
        .await;
        let queue = MemoryQueue::with_dlq(
            &names.stage(StageKind::Validate).queue,
            Duration::from_secs(u64::from(options.visibility_secs)),
            options.max_receive_count,
        );
        let ledger = Arc::new(ledger);
        Bench {
            uploads: names.bucket(BucketRole::Uploads).to_owned(),
            cx: StageCx {
                aws,
                config: Arc::new(config),
                names: Arc::new(names),
                ledger: ledger.clone(),
            },
            queue,
            topic: MemoryTopic::default(),
            ledger,
            clock,
            _dir: dir,
        }
    }

    /// An S3 `ObjectCreated:Put` event for `key` (version `v1`) in the uploads bucket, as S3 sends it.
    pub fn event(&self, key: &str) -> String {
        serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-11-25T02:36:05.633Z", "eventName": "ObjectCreated:Put",
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "intake-entry",
                "bucket": {"name": self.uploads, "arn": format!("arn:aws:s3:::{}", self.uploads)},
                "object": {"key": key, "size": 12, "eTag": "45e9f346258a3242fc5d2cc7c61e2d5d",
                    "versionId": "v1", "sequencer": "0055AED6DCD90281E5"}}
        }]})
        .to_string()
    }

    pub fn version(&self, key: &str) -> VersionKey {
        VersionKey::new(&self.uploads, key, "v1")
    }

    /// Outcomes published for `key`.
    pub fn published(&self, key: &str) -> usize {
        let needle = format!("\"key\":\"{key}\"");
        self.topic
            .published()
            .iter()
            .filter(|o| o.json.contains(&needle))
            .count()
    }

    pub fn start(&self, stage: Scripted, settings: WorkerSettings) -> Running {
        self.start_on(stage, settings, Arc::new(self.queue.clone()))
    }

    /// [`Bench::start`] on another queue (a wrapper of the bench's, in tests that break it).
    pub fn start_on(
        &self,
        stage: Scripted,
        settings: WorkerSettings,
        queue: Arc<dyn Queue>,
    ) -> Running {
        let publisher = Publisher::start(
            Arc::new(self.topic.clone()),
            self.ledger.clone(),
            settings.batch_window,
        );
        let worker = Worker::with_transport(stage, self.cx.clone(), settings, queue, publisher);
        let (stop, mut stopped) = watch::channel(false);
        let task =
            tokio::spawn(worker.run(async move {
                while stopped.changed().await.is_ok() && !*stopped.borrow() {}
            }));
        Running { stop, task }
    }
}

/// Fast settings for tests: short backoff, no CloudWatch.
pub fn settings(worker_id: &str) -> WorkerSettings {
    WorkerSettings {
        concurrency: 8,
        shutdown_grace: Duration::from_secs(5),
        backoff: Backoff {
            base: Duration::from_millis(50),
            max: Duration::from_millis(200),
        },
        metrics: false,
        worker_id: worker_id.into(),
        batch_window: Duration::from_millis(10),
        health: None,
    }
}

pub struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<WorkerStats>,
}

impl Running {
    /// Asks the worker to stop without waiting for it.
    pub fn request_stop(&self) {
        let _ = self.stop.send(true);
    }

    pub async fn stop(self) -> WorkerStats {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the worker stops within 30 s")
            .expect("the worker task does not panic")
    }
}

/// Polls `done` every 10 ms until it holds; fails the test with `what` after `limit`.
pub async fn until(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let started = tokio::time::Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
