//! `intake bench pipeline`: N objects through the whole pipeline on LocalStack, with the
//! workers as separate `intake run` processes (1, 2 and 3 by default), beside the
//! emulator's own ceiling for the same calls (raw S3 PUT and SQS send/receive/delete
//! loops at the same concurrency, no Intake logic: [`ceiling`]) and the replay of the same
//! call mix ([`replay`]), measured in the same run; [`report`] prints.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use intake_aws::AwsClients;
use intake_aws::provision::{apply, plan};
use intake_core::clock::now_ms;
use intake_core::config::AwsSection;
use intake_core::names::BucketRole;
use intake_core::{PipelineConfig, ResourceNames};
use serde_json::json;
use tokio::sync::Semaphore;

mod ceiling;
mod replay;
mod report;

use crate::common::{DATABASE_URL_VAR, LedgerLocation};
use crate::devstack::{DevStack, new_uuid, samples};
use ceiling::ceiling;
use report::{pct, print_report, round};

/// Uploads (and raw ceiling calls) in flight at once.
const CONCURRENCY: usize = 16;
/// How often the ledger is read while waiting for the uploads to end.
const POLL: Duration = Duration::from_millis(200);
const TERMINAL: [&str; 3] = ["done", "quarantined", "failed"];
const TENANT: &str = "bench";
const USER: &str = "user-1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mix {
    /// Camera-like JPEGs (2048×1536, quality 90), about 0.6 MB each.
    Photos,
    /// Tiny text and PNG files.
    Small,
    /// Documents of a few MiB (text).
    Large,
}

pub struct Options {
    pub objects: usize,
    pub workers: Option<u32>,
    pub mix: Mix,
    pub json: bool,
}

pub fn run(config_path: &Path, options: Options) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut started = Started {
        stack: DevStack::new("intake bench pipeline"),
        workers: Vec::new(),
    };
    let result = runtime.block_on(bench(config_path, &options, &mut started));
    started.stop();
    let report = result?;
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

/// What this run started, stopped on the way out whatever happened.
struct Started {
    stack: DevStack,
    workers: Vec<Child>,
}

impl Started {
    fn stop(&mut self) {
        for child in &mut self.workers {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.workers.clear();
        self.stack.stop();
    }
}

struct Object {
    key: String,
    body: Arc<Vec<u8>>,
    content_type: &'static str,
}

fn objects(mix: Mix, n: usize) -> Vec<Object> {
    let photo =
        (mix == Mix::Photos).then(|| Arc::new(intake_imaging::samples::photo_jpeg(2048, 1536, 90)));
    let png = Arc::new(
        samples::all(false)
            .into_iter()
            .find(|s| s.filename == "logo.png")
            .map(|s| s.bytes.to_vec())
            .unwrap_or_default(),
    );
    (0..n)
        .map(|i| {
            let (filename, body, content_type) = match mix {
                Mix::Photos => (
                    format!("photo-{i}.jpg"),
                    photo.clone().unwrap(),
                    "image/jpeg",
                ),
                Mix::Small if i % 2 == 0 && !png.is_empty() => {
                    (format!("logo-{i}.png"), png.clone(), "image/png")
                }
                Mix::Small => (
                    format!("note-{i}.txt"),
                    Arc::new(format!("bench note {i}\n").repeat(8).into_bytes()),
                    "text/plain",
                ),
                Mix::Large => (
                    format!("document-{i}.txt"),
                    Arc::new(
                        format!("line {i} of a large bench document\n")
                            .repeat(3 << 20 >> 5)
                            .into_bytes(),
                    ),
                    "text/plain",
                ),
            };
            let key = format!("{TENANT}/{USER}/{}-{filename}", new_uuid());
            Object {
                key,
                body,
                content_type,
            }
        })
        .collect()
}

async fn bench(
    config_path: &Path,
    options: &Options,
    started: &mut Started,
) -> anyhow::Result<serde_json::Value> {
    let say = |s: String| {
        if !options.json {
            println!("{s}");
        } else {
            eprintln!("{s}");
        }
    };
    let repo_config = std::fs::read_to_string(config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    let name = format!("bench-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let scratch = tempfile::Builder::new()
        .prefix("intake-bench-pipeline-")
        .tempdir()?;

    // 1. An endpoint that answers, or a LocalStack of our own.
    let configured = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|e| !e.is_empty());
    let found = started
        .stack
        .endpoint(
            configured.as_deref(),
            &AwsSection::default(),
            config_path,
            &say,
        )
        .await?;
    let aws = found.aws;
    let own_localstack = found.started_here;
    let endpoint = aws
        .endpoint_url
        .clone()
        .unwrap_or_else(|| aws.endpoint.clone());

    // 2. The scanner: a clamd of our own with the test signatures, else none.
    let scan_block = "[stages.scan.scanner]\nkind = \"clamd\"\naddress = \"tcp://127.0.0.1:3310\"\ntimeout_secs = 120\n";
    let mut text = repo_config.replacen("name = \"intake\"", &format!("name = \"{name}\""), 1);
    let scanner = match started.stack.start_clamd().await? {
        Some(clamd) => {
            let address = clamd.address;
            text = text.replacen("tcp://127.0.0.1:3310", &format!("tcp://{address}"), 1);
            format!("clamd at {address} (test signatures)")
        }
        None => {
            text = text.replacen(scan_block, "[stages.scan.scanner]\nkind = \"none\"\n", 1);
            "none (clamd not installed: nothing scanned)".to_owned()
        }
    };
    say(format!("scanner:   {scanner}"));
    let config_file = scratch.path().join("pipeline.toml");
    std::fs::write(&config_file, &text)?;
    let config = PipelineConfig::load(&config_file).map_err(|e| anyhow::anyhow!("{e}"))?;
    if config.pipeline.name != name {
        bail!(
            "could not give the pipeline a unique name: {} has no `name = \"intake\"`",
            config_path.display()
        );
    }

    // 3. The ledger.
    let location = LedgerLocation::or_else(|| {
        Ok(format!(
            "sqlite://{}",
            scratch.path().join("ledger.db").display()
        ))
    })?;
    let ledger_url = location.url.clone();
    let ledger = location.open().await?;
    say(format!("ledger:    {ledger_url}\npipeline:  {name}"));

    // 4. Provision.
    let p = plan(&aws, &config).await.context("planning")?;
    apply(&aws, &p).await.context("provisioning")?;
    let names = ResourceNames::of(&config);
    let bucket = names.bucket(BucketRole::Uploads).to_owned();
    let kinds = config.queue_kinds().len();

    // 5. The measured runs.
    let worker_counts: Vec<u32> = options.workers.map_or(vec![1, 2, 3], |w| vec![w]);
    let exe = std::env::current_exe()?;
    let mut runs = Vec::new();
    let mut replay_mix = None;
    for &w in &worker_counts {
        say(format!(
            "run:       {w} worker process(es), {} objects",
            options.objects
        ));
        let objs = objects(options.mix, options.objects);
        let mut logs = Vec::new();
        let mut call_files = Vec::new();
        for i in 0..w {
            let log = scratch.path().join(format!("worker-{w}-{i}.log"));
            let calls_file = scratch.path().join(format!("calls-{w}-{i}.json"));
            let mut cmd = Command::new(&exe);
            cmd.arg("--config")
                .arg(&config_file)
                .args(["run", "--concurrency", "8"])
                .env("AWS_ENDPOINT_URL", &endpoint)
                .env(DATABASE_URL_VAR, &ledger_url)
                .env("INTAKE_METRICS", "0")
                .env("INTAKE_CALL_COUNTS", &calls_file)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log)?);
            if own_localstack || std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
                cmd.env("AWS_ACCESS_KEY_ID", "test")
                    .env("AWS_SECRET_ACCESS_KEY", "test");
            }
            if std::env::var_os("AWS_REGION").is_none()
                && std::env::var_os("AWS_DEFAULT_REGION").is_none()
            {
                cmd.env("AWS_REGION", &aws.region);
            }
            started
                .workers
                .push(cmd.spawn().context("starting `intake run`")?);
            logs.push(log);
            call_files.push(calls_file);
        }
        // Ready when each process says every stage worker runs.
        let t = Instant::now();
        loop {
            let ready = logs.iter().all(|l| {
                std::fs::read_to_string(l).map_or(0, |s| s.matches("worker running").count())
                    >= kinds
            });
            if ready {
                break;
            }
            for (child, log) in started.workers.iter_mut().zip(&logs) {
                if let Some(status) = child.try_wait()? {
                    bail!(
                        "`intake run` exited ({status}): {}",
                        std::fs::read_to_string(log).unwrap_or_default()
                    );
                }
            }
            if t.elapsed() > Duration::from_secs(60) {
                bail!(
                    "the workers did not start within 60 s (logs in {})",
                    scratch.path().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let run_start_ms = now_ms();
        let t0 = Instant::now();
        let uploaded = upload(&aws, &bucket, &objs).await?;
        let upload_secs = t0.elapsed().as_secs_f64();

        // Poll the ledger until every object is terminal: one query per poll for the
        // whole run (the poller must not compete with what it measures), the transitions
        // once at the end.
        let deadline = Duration::from_secs(120 + options.objects as u64 * 2);
        let index: HashMap<&str, usize> = objs
            .iter()
            .enumerate()
            .map(|(i, o)| (o.key.as_str(), i))
            .collect();
        let mut terminal: HashMap<usize, String> = HashMap::new();
        loop {
            for (key, _version, state) in ledger
                .latest_versions(&bucket, &format!("{TENANT}/{USER}/"))
                .await?
            {
                if let Some(&i) = index.get(key.as_str())
                    && TERMINAL.contains(&state.as_str())
                {
                    terminal.insert(i, state);
                }
            }
            if terminal.len() == objs.len() || t0.elapsed() > deadline {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        let mut ended: HashMap<usize, (String, i64, Vec<intake_store::Transition>)> =
            HashMap::new();
        for &i in terminal.keys() {
            if let Some(v) = ledger.history(&bucket, &objs[i].key).await?.first() {
                ended.insert(i, (v.state.clone(), v.updated_ms, v.transitions.clone()));
            }
        }

        // Peak RSS, then a graceful stop.
        let mut rss = Vec::new();
        for child in &started.workers {
            rss.push(vm_hwm_kib(child.id()));
        }
        // SIGTERM to all at once (each finishes its in-flight work and long polls), then
        // wait for all, killing what is still there after 30 s.
        for child in &started.workers {
            // SAFETY: signalling our own child process.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        }
        let t = Instant::now();
        for mut child in std::mem::take(&mut started.workers) {
            while child.try_wait()?.is_none() {
                if t.elapsed() > Duration::from_secs(30) {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }

        let (calls, call_totals) = call_counts(&call_files, objs.len());
        if replay_mix.is_none() {
            // The first run's call mix is the one the replay ceiling repeats.
            replay_mix = call_totals.map(|totals| (totals, w, objs[0].body.clone()));
        }

        let mut count: BTreeMap<String, usize> = BTreeMap::new();
        let mut latencies = Vec::new();
        let mut stages: BTreeMap<String, (f64, usize)> = BTreeMap::new();
        let mut last_ms = run_start_ms;
        for (i, (state, updated, transitions)) in &ended {
            *count.entry(state.clone()).or_default() += 1;
            latencies.push((updated - uploaded[*i]) as f64);
            last_ms = last_ms.max(*updated);
            for tr in transitions {
                let e = stages.entry(tr.stage.clone()).or_default();
                e.0 += (tr.finished_ms - tr.started_ms) as f64;
                e.1 += 1;
            }
        }
        latencies.sort_by(f64::total_cmp);
        let secs = ((last_ms - run_start_ms) as f64 / 1000.0).max(0.001);
        let bytes: usize = objs.iter().map(|o| o.body.len()).sum();
        let stage_mean: BTreeMap<String, f64> = stages
            .into_iter()
            .map(|(k, (sum, n))| (k, round(sum / n as f64)))
            .collect();
        runs.push(json!({
            "workers": w,
            "objects": objs.len(),
            "done": count.get("done").copied().unwrap_or(0),
            "quarantined": count.get("quarantined").copied().unwrap_or(0),
            "failed": count.get("failed").copied().unwrap_or(0),
            "not_ended": objs.len() - ended.len(),
            "seconds": round(secs),
            "upload_seconds": round(upload_secs),
            "objects_per_s": round(ended.len() as f64 / secs),
            "mb_per_s": round(bytes as f64 / 1e6 / secs),
            "latency_ms": {"p50": pct(&latencies, 50.0), "p95": pct(&latencies, 95.0), "p99": pct(&latencies, 99.0)},
            "stage_mean_ms": stage_mean,
            "peak_rss_kib": rss,
            "calls_per_object": calls,
        }));
    }

    // 6. The emulator's ceiling, same objects, same concurrency, no Intake logic.
    say("ceiling:   raw S3 PUT and SQS send/receive/delete loops".to_owned());
    let ceiling = ceiling(&aws, &name, &objects(options.mix, options.objects)).await?;
    let replay = match &replay_mix {
        Some((calls, workers, body)) => {
            say(format!(
                "ceiling:   the same call mix as the {workers}-worker run, replayed with no Intake logic"
            ));
            let mix = replay::CallMix {
                calls,
                objects: options.objects,
                body,
                // Each worker process runs every stage at `--concurrency 8`.
                concurrency: 8 * kinds * *workers as usize,
            };
            replay::replay(&aws, &name, mix).await?
        }
        None => json!({"error": "no call counts to replay"}),
    };
    ledger.close().await;

    Ok(json!({
        "pipeline": name,
        "endpoint": endpoint,
        "own_localstack": own_localstack,
        "scanner": scanner,
        "ledger": ledger_url,
        "mix": format!("{:?}", options.mix).to_lowercase(),
        "objects": options.objects,
        "concurrency": CONCURRENCY,
        "cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "runs": runs,
        "ceiling": ceiling,
        "replay": replay,
    }))
}

/// The AWS requests the worker processes made (each wrote its counts on shutdown), per
/// object, by operation, and their total under `"total"`. Includes the idle long polls
/// and the start-up lookups: what the endpoint saw while the run lasted.
fn call_counts(
    files: &[std::path::PathBuf],
    objects: usize,
) -> (serde_json::Value, Option<BTreeMap<String, u64>>) {
    let mut sum: BTreeMap<String, u64> = BTreeMap::new();
    let mut missing = 0;
    for file in files {
        let counts: Option<BTreeMap<String, u64>> = std::fs::read_to_string(file)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        match counts {
            Some(counts) => {
                for (operation, n) in counts {
                    *sum.entry(operation).or_default() += n;
                }
            }
            None => missing += 1,
        }
    }
    if missing > 0 {
        let error =
            format!("{missing} worker(s) wrote no call counts (killed before a graceful stop?)");
        return (json!({ "error": error }), None);
    }
    let per = |n: u64| round(n as f64 / objects.max(1) as f64);
    let total: u64 = sum.values().sum();
    let mut out: serde_json::Map<String, serde_json::Value> = sum
        .iter()
        .map(|(op, n)| (op.clone(), json!(per(*n))))
        .collect();
    out.insert("total".into(), json!(per(total)));
    (serde_json::Value::Object(out), Some(sum))
}

/// PUT every object with at most CONCURRENCY in flight; the time each PUT returned.
async fn upload(aws: &AwsClients, bucket: &str, objs: &[Object]) -> anyhow::Result<Vec<i64>> {
    let sem = Arc::new(Semaphore::new(CONCURRENCY));
    let mut set = tokio::task::JoinSet::new();
    for (i, o) in objs.iter().enumerate() {
        let permit = sem.clone().acquire_owned().await?;
        let s3 = aws.s3.clone();
        let (bucket, key, body, ct) = (
            bucket.to_owned(),
            o.key.clone(),
            o.body.clone(),
            o.content_type,
        );
        set.spawn(async move {
            let r = s3
                .put_object()
                .bucket(&bucket)
                .key(&key)
                .content_type(ct)
                .body(body.to_vec().into())
                .send()
                .await;
            drop(permit);
            r.map(|_| (i, now_ms()))
                .with_context(|| format!("PUT s3://{bucket}/{key}"))
        });
    }
    let mut times = vec![0; objs.len()];
    while let Some(r) = set.join_next().await {
        let (i, t) = r??;
        times[i] = t;
    }
    Ok(times)
}

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmHWM:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}
