//! Shared fixture of the end-to-end tests: a provisioned pipeline on its own LocalStack, a
//! SQLite ledger in a temp dir, and a test queue subscribed to the events topic (raw
//! delivery) that collects every outcome the stages publish.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use intake_aws::AwsClients;
use intake_aws::provision::{apply, plan};
use intake_core::names::BucketRole;
use intake_core::state_machine::StageKind;
use intake_core::{OutcomeMessage, PipelineConfig, ResourceNames};
use intake_runtime::backoff::Backoff;
use intake_runtime::{Stage, StageCx, Worker, WorkerSettings, WorkerStats};
use intake_store::Ledger;
use intake_testkit::{LocalStack, eventually, queues, unique_pipeline_name};
use tokio::sync::oneshot;

pub const REPO_CONFIG: &str = include_str!("../../pipeline.toml");

pub struct Pipeline {
    pub localstack: LocalStack,
    pub aws: AwsClients,
    pub config: Arc<PipelineConfig>,
    pub names: Arc<ResourceNames>,
    pub ledger: Arc<Ledger>,
    pub ledger_url: String,
    pub outcomes_url: String,
    _dir: tempfile::TempDir,
}

/// A running worker; `stop` asks it to shut down gracefully and returns its stats.
pub struct RunningWorker {
    stop: oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<WorkerStats>,
}

impl RunningWorker {
    pub async fn stop(self) -> WorkerStats {
        let _ = self.stop.send(());
        self.handle.await.expect("worker task")
    }
}

impl Pipeline {
    /// The repo's pipeline.toml under a unique name, with `edit` applied to its text.
    pub async fn start_with(edit: impl FnOnce(String) -> String) -> Pipeline {
        // Worker logs appear with a failing test's output (RUST_LOG overrides the level).
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| "intake_runtime=info,intake_stage_validate=info".into());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
        let localstack = LocalStack::start().await.expect("LocalStack");
        let aws = localstack.clients();
        let name = unique_pipeline_name();
        let text =
            edit(REPO_CONFIG.replacen("name = \"intake\"", &format!("name = \"{name}\""), 1));
        let config = PipelineConfig::from_toml(&text, "test-pipeline.toml").expect("test config");
        apply(&aws, &plan(&aws, &config).await.expect("plan"))
            .await
            .expect("provision");
        let names = ResourceNames::of(&config);

        let dir = tempfile::tempdir().expect("temp dir");
        let ledger_url = format!("sqlite://{}", dir.path().join("ledger.db").display());
        let ledger = Arc::new(Ledger::connect(&ledger_url).await.expect("ledger"));

        // A test subscriber of the events topic, as an app backend would be.
        let account = aws.account_id().await.unwrap();
        let events_arn = format!("arn:aws:sns:us-east-1:{account}:{}", names.events_topic);
        let outcomes_url =
            queues::subscribe_test_queue(&aws, &events_arn, &format!("{name}-test-outcomes"))
                .await
                .expect("test subscriber");
        Pipeline {
            localstack,
            aws,
            config: Arc::new(config),
            names: Arc::new(names),
            ledger,
            ledger_url,
            outcomes_url,
            _dir: dir,
        }
    }

    pub async fn start() -> Pipeline {
        Self::start_with(|t| t).await
    }

    pub fn cx(&self) -> StageCx {
        StageCx {
            aws: self.aws.clone(),
            config: self.config.clone(),
            names: self.names.clone(),
            ledger: self.ledger.clone(),
        }
    }

    pub fn bucket(&self, role: BucketRole) -> &str {
        self.names.bucket(role)
    }

    /// Test settings: quick backoff, no CloudWatch traffic.
    pub fn settings(&self, worker_id: &str) -> WorkerSettings {
        WorkerSettings {
            concurrency: 4,
            shutdown_grace: Duration::from_secs(10),
            backoff: Backoff {
                base: Duration::from_secs(1),
                max: Duration::from_secs(2),
            },
            metrics: false,
            worker_id: worker_id.into(),
            batch_window: Duration::from_millis(10),
            health: None,
        }
    }

    /// One worker of each of the five stages, as `intake run` starts them.
    pub async fn spawn_stages(&self) -> Vec<RunningWorker> {
        use intake_stage_archive::Archive;
        use intake_stage_catalog::Catalog;
        use intake_stage_scan::Scan;
        use intake_stage_thumbnail::Thumbnail;
        use intake_stage_validate::Validate;
        vec![
            self.spawn_worker(Validate::new(&self.config), "validate-1")
                .await,
            self.spawn_worker(Scan::from_config(&self.config), "scan-1")
                .await,
            self.spawn_worker(Thumbnail::from_config(&self.config), "thumbnail-1")
                .await,
            self.spawn_worker(Catalog::new(), "catalog-1").await,
            self.spawn_worker(Archive::from_config(&self.config), "archive-1")
                .await,
        ]
    }

    pub async fn spawn_worker<S: Stage>(&self, stage: S, worker_id: &str) -> RunningWorker {
        self.spawn_worker_with(stage, self.settings(worker_id))
            .await
    }

    pub async fn spawn_worker_with<S: Stage>(
        &self,
        stage: S,
        settings: WorkerSettings,
    ) -> RunningWorker {
        let worker = Worker::new(stage, self.cx(), settings)
            .await
            .expect("worker");
        let (stop, stopped) = oneshot::channel();
        let handle = tokio::spawn(worker.run(async move {
            let _ = stopped.await;
        }));
        RunningWorker { stop, handle }
    }

    pub async fn upload(&self, key: &str, body: Vec<u8>, content_type: &str) -> String {
        self.aws
            .s3
            .put_object()
            .bucket(self.bucket(BucketRole::Uploads))
            .key(key)
            .content_type(content_type)
            .body(body.into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("upload {key}: {e}"))
            .version_id
            .expect("uploads is versioned")
    }

    pub async fn queue_url(&self, name: &str) -> String {
        self.aws
            .sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap()
    }

    pub async fn stage_queue_url(&self, stage: StageKind) -> String {
        self.queue_url(&self.names.stage(stage).queue).await
    }

    pub async fn dlq_url(&self, stage: StageKind) -> String {
        self.queue_url(&self.names.stage(stage).dlq).await
    }

    /// Visible plus in-flight messages of a queue.
    pub async fn depth(&self, url: &str) -> u64 {
        let attrs = self
            .aws
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        let get = |k| {
            attrs
                .get(&k)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        get(QueueAttributeName::ApproximateNumberOfMessages)
            + get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
    }

    /// Drain the test subscriber until `want` outcomes have arrived (then a short extra
    /// poll, so a duplicate that would follow is caught too).
    pub async fn outcomes(&self, want: usize) -> Vec<OutcomeMessage> {
        let collected = std::sync::Mutex::new(Vec::new());
        eventually(
            &format!("{want} outcomes on the events topic"),
            Duration::from_secs(90),
            || async {
                self.receive_outcomes(&collected, 2).await;
                let n = collected.lock().unwrap().len();
                if n >= want {
                    Ok(())
                } else {
                    Err(format!("{n} outcomes so far"))
                }
            },
        )
        .await;
        self.receive_outcomes(&collected, 2).await;
        collected.into_inner().unwrap()
    }

    async fn receive_outcomes(&self, into: &std::sync::Mutex<Vec<OutcomeMessage>>, wait: i32) {
        for m in queues::take(&self.aws, &self.outcomes_url, wait)
            .await
            .expect("receive outcomes")
        {
            let outcome: OutcomeMessage =
                serde_json::from_str(m.body().unwrap()).expect("outcome JSON");
            into.lock().unwrap().push(outcome);
        }
    }

    /// Take the raw S3 event bodies off the validate queue (test events skipped), so a
    /// test can deliver them again as it likes.
    pub async fn take_s3_events(&self, want: usize) -> Vec<String> {
        let url = self.stage_queue_url(StageKind::Validate).await;
        let bodies = std::sync::Mutex::new(Vec::new());
        eventually(
            &format!("{want} S3 events"),
            Duration::from_secs(60),
            || async {
                for m in queues::take(&self.aws, &url, 2).await? {
                    let body = m.body().unwrap().to_owned();
                    if !body.contains("s3:TestEvent") {
                        bodies.lock().unwrap().push(body);
                    }
                }
                let n = bodies.lock().unwrap().len();
                if n >= want {
                    Ok(())
                } else {
                    Err(format!("{n} events so far"))
                }
            },
        )
        .await;
        bodies.into_inner().unwrap()
    }

    pub async fn send(&self, url: &str, body: &str) {
        self.aws
            .sqs
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    /// Messages in a DLQ with their attributes (not consumed for long: visibility 0 after).
    pub async fn dlq_messages(
        &self,
        stage: StageKind,
        want: usize,
    ) -> Vec<(String, HashMap<String, String>)> {
        let url = self.dlq_url(stage).await;
        let found = std::sync::Mutex::new(Vec::new());
        eventually(
            &format!("{want} messages in the {stage} DLQ"),
            Duration::from_secs(60),
            || async {
                for m in queues::take(&self.aws, &url, 1).await? {
                    let attributes = m
                        .message_attributes()
                        .map(|a| {
                            a.iter()
                                .map(|(k, v)| {
                                    (k.clone(), v.string_value().unwrap_or_default().to_owned())
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    found
                        .lock()
                        .unwrap()
                        .push((m.body().unwrap_or_default().to_owned(), attributes));
                }
                let n = found.lock().unwrap().len();
                if n >= want {
                    Ok(())
                } else {
                    Err(format!("{n} so far"))
                }
            },
        )
        .await;
        found.into_inner().unwrap()
    }
}

/// A minimal valid PNG (1×1, RGB).
pub fn png() -> Vec<u8> {
    fn chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc_input = kind.to_vec();
        crc_input.extend_from_slice(data);
        out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
        out
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]));
    // zlib stream of one scanline: filter 0 + one RGB pixel, stored (uncompressed) block.
    let raw = [0u8, 255, 0, 0];
    let mut idat = vec![0x78, 0x01, 0x01, 4, 0, !4u8, 0xff];
    idat.extend_from_slice(&raw);
    idat.extend_from_slice(&adler32(&raw).to_be_bytes());
    png.extend(chunk(b"IDAT", &idat));
    png.extend(chunk(b"IEND", &[]));
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &d in data {
        a = (a + u32::from(d)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

/// The start of a real ELF executable (this test binary's own first 4 KiB).
pub fn elf() -> Vec<u8> {
    let bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF");
    bytes[..4096].to_vec()
}

/// A key made from the default template.
pub fn key(tenant: &str, filename: &str) -> String {
    format!("{tenant}/user-1/{}-{filename}", uuid::Uuid::now_v7())
}

/// Wait until a queue holds no message, visible or in flight.
pub async fn wait_for_empty(p: &Pipeline, url: &str) {
    eventually("an empty queue", Duration::from_secs(60), || async {
        match p.depth(url).await {
            0 => Ok(()),
            n => Err(format!("{n} messages left")),
        }
    })
    .await;
}

/// CloudWatch metrics of this pipeline with the given name, once at least one exists.
pub async fn eventually_metrics(
    p: &Pipeline,
    name: &str,
) -> Vec<aws_sdk_cloudwatch::types::Metric> {
    eventually(
        &format!("metric {name} in CloudWatch"),
        Duration::from_secs(30),
        || async {
            let out = p
                .aws
                .cloudwatch
                .list_metrics()
                .namespace("Intake")
                .metric_name(name)
                .dimensions(
                    aws_sdk_cloudwatch::types::DimensionFilter::builder()
                        .name("pipeline")
                        .value(&p.names.prefix)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let metrics = out.metrics().to_vec();
            if metrics.is_empty() {
                Err("none yet".to_owned())
            } else {
                Ok(metrics)
            }
        },
    )
    .await
}

/// A zip archive with one stored (uncompressed) entry, built by hand so the test controls
/// every byte.
pub fn stored_zip(name: &str, content: &[u8]) -> Vec<u8> {
    let crc = crc32(content);
    let (size, name_len) = (content.len() as u32, name.len() as u16);
    let mut zip = Vec::new();
    let local = [
        &0x0403_4b50u32.to_le_bytes()[..],
        &20u16.to_le_bytes(),
        &0u16.to_le_bytes(),
        &0u16.to_le_bytes(),
        &0u16.to_le_bytes(),
        &0u16.to_le_bytes(),
        &crc.to_le_bytes(),
        &size.to_le_bytes(),
        &size.to_le_bytes(),
        &name_len.to_le_bytes(),
        &0u16.to_le_bytes(),
    ]
    .concat();
    zip.extend_from_slice(&local);
    zip.extend_from_slice(name.as_bytes());
    zip.extend_from_slice(content);
    let central_offset = zip.len() as u32;
    let central = [
        &0x0201_4b50u32.to_le_bytes()[..],
        &20u16.to_le_bytes(),
        &20u16.to_le_bytes(),
        &0u16.to_le_bytes(),
        &0u16.to_le_bytes(),
        &0u16.to_le_bytes(),
        &0u16.to_le_bytes(),
        &crc.to_le_bytes(),
        &size.to_le_bytes(),
        &size.to_le_bytes(),
        &name_len.to_le_bytes(),
        &0u16.to_le_bytes(),
        &0u16.to_le_bytes(),
        &0u16.to_le_bytes(),
        &0u16.to_le_bytes(),
        &0u32.to_le_bytes(),
        &0u32.to_le_bytes(),
    ]
    .concat();
    zip.extend_from_slice(&central);
    zip.extend_from_slice(name.as_bytes());
    let central_len = zip.len() as u32 - central_offset;
    let end = [
        &0x0605_4b50u32.to_le_bytes()[..],
        &0u16.to_le_bytes(),
        &0u16.to_le_bytes(),
        &1u16.to_le_bytes(),
        &1u16.to_le_bytes(),
        &central_len.to_le_bytes(),
        &central_offset.to_le_bytes(),
        &0u16.to_le_bytes(),
    ]
    .concat();
    zip.extend_from_slice(&end);
    zip
}
