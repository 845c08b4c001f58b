//! `intake run` as an operator runs it: SIGTERM in the middle of a batch loses nothing.
//! The first worker stops receiving, finishes or releases what it holds and exits 0; a
//! second worker finishes every object; each object is validated exactly once and has
//! exactly one outcome on the events topic.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use intake_core::names::BucketRole;
use intake_core::{OutcomeMessage, PipelineConfig, ResourceNames};
use intake_store::{Ledger, VersionKey};
use intake_testkit::{LocalStack, eventually, queues, unique_pipeline_name};

const REPO_CONFIG: &str = include_str!("../../../pipeline.toml");
const OBJECTS: usize = 80;

fn png() -> Vec<u8> {
    // A PNG signature and IHDR are all validate reads; the rest is padding.
    let mut bytes = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90\x77\x53\xde".to_vec();
    bytes.resize(2048, 0);
    bytes
}

async fn completions(ledger: &Ledger, versions: &HashMap<String, String>, uploads: &str) -> u64 {
    let mut n = 0;
    for (key, version) in versions {
        n += ledger
            .completions(&VersionKey::new(uploads, key, version), "validate")
            .await
            .unwrap_or(0);
    }
    n
}

fn start_worker(env: &[(&'static str, String)], config: &str) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_intake"));
    cmd.args([
        "--config",
        config,
        "run",
        "--stages",
        "validate",
        "--concurrency",
        "4",
    ])
    .env_remove("INTAKE_CONFIG")
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start intake run")
}

fn sigterm_and_wait(mut child: Child) -> (i32, String) {
    let pid = i32::try_from(child.id()).expect("pid fits");
    // SAFETY: sending a signal to our own child process; no memory is shared.
    assert_eq!(
        unsafe { libc::kill(pid, libc::SIGTERM) },
        0,
        "kill -TERM {pid}"
    );
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut stderr = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .ok();
            return (status.code().unwrap_or(-1), stderr);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "worker did not exit within 60 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_batch_loses_nothing_and_a_second_worker_finishes() {
    let localstack = LocalStack::start().await.expect("LocalStack");
    let aws = localstack.clients();
    let name = unique_pipeline_name();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("pipeline.toml");
    std::fs::write(
        &config_path,
        REPO_CONFIG.replacen("name = \"intake\"", &format!("name = \"{name}\""), 1),
    )
    .unwrap();
    let config_arg = config_path.to_str().unwrap().to_owned();
    let config = PipelineConfig::load(&config_path).unwrap();
    let names = ResourceNames::of(&config);
    let ledger_url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let mut env = localstack.env();
    env.push(("INTAKE_DATABASE_URL", ledger_url.clone()));
    env.push(("INTAKE_METRICS", "0".into()));

    let provision = Command::new(env!("CARGO_BIN_EXE_intake"))
        .args(["--config", &config_arg, "provision"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(
        provision.status.success(),
        "{}",
        String::from_utf8_lossy(&provision.stderr)
    );

    // An app backend's view: every outcome on the events topic.
    let account = aws.account_id().await.unwrap();
    let events_arn = format!("arn:aws:sns:us-east-1:{account}:{}", names.events_topic);
    let outcomes_url =
        queues::subscribe_test_queue(&aws, &events_arn, &format!("{name}-test-outcomes"))
            .await
            .unwrap();

    let uploads = names.bucket(BucketRole::Uploads).to_owned();
    let mut versions = HashMap::new();
    for i in 0..OBJECTS {
        let uuid = uuid::Uuid::now_v7();
        let key = format!("tenant-a/user-1/{uuid}-photo-{i}.png");
        let out = aws
            .s3
            .put_object()
            .bucket(&uploads)
            .key(&key)
            .content_type("image/png")
            .body(png().into())
            .send()
            .await
            .unwrap();
        versions.insert(key, out.version_id.unwrap());
    }

    let ledger = Ledger::connect(&ledger_url).await.unwrap();
    let completed = |ledger| completions(ledger, &versions, &uploads);

    let first = start_worker(&env, &config_arg);
    eventually(
        "the first worker to complete some objects",
        Duration::from_secs(90),
        || async {
            match completed(&ledger).await {
                0 => Err("none yet".to_owned()),
                _ => Ok(()),
            }
        },
    )
    .await;
    let (code, stderr) = sigterm_and_wait(first);
    assert_eq!(code, 0, "graceful shutdown exits 0:\n{stderr}");
    assert!(stderr.contains("shutting down"), "{stderr}");
    let after_first = completed(&ledger).await;
    assert!(
        after_first < OBJECTS as u64,
        "SIGTERM came after the whole batch; the test proves nothing ({after_first})"
    );

    let second = start_worker(&env, &config_arg);
    eventually(
        "every object validated",
        Duration::from_secs(120),
        || async {
            let n = completed(&ledger).await;
            if n >= OBJECTS as u64 {
                Ok(())
            } else {
                Err(format!("{n} of {OBJECTS}"))
            }
        },
    )
    .await;
    let (code, stderr) = sigterm_and_wait(second);
    assert_eq!(code, 0, "{stderr}");

    for (key, version) in &versions {
        let v = VersionKey::new(&uploads, key, version);
        assert_eq!(
            ledger.completions(&v, "validate").await.unwrap(),
            1,
            "{key}"
        );
    }
    let outcomes: std::sync::Mutex<HashMap<String, usize>> = Default::default();
    eventually(
        "one outcome per object",
        Duration::from_secs(60),
        || async {
            for m in queues::take(&aws, &outcomes_url, 1).await? {
                let outcome: OutcomeMessage = serde_json::from_str(m.body().unwrap()).unwrap();
                assert_eq!(
                    outcome.outcome, "passed",
                    "every upload is a valid PNG: {outcome:?}"
                );
                *outcomes
                    .lock()
                    .unwrap()
                    .entry(outcome.object.key)
                    .or_default() += 1;
            }
            let n = outcomes.lock().unwrap().len();
            if n >= OBJECTS {
                Ok(())
            } else {
                Err(format!("{n} of {OBJECTS}"))
            }
        },
    )
    .await;
    let outcomes = outcomes.into_inner().unwrap();
    let duplicated: Vec<_> = outcomes.iter().filter(|(_, n)| **n > 1).collect();
    println!(
        "objects={OBJECTS} done_by_first={after_first} lost={} duplicated={}",
        OBJECTS - outcomes.len(),
        duplicated.len()
    );
    assert!(duplicated.is_empty(), "{duplicated:?}");

    // An operator asks where one object is.
    let (key, version) = versions.iter().next().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_intake"))
        .args([
            "--config",
            &config_arg,
            "status",
            &format!("s3://{uploads}/{key}"),
            "--json",
        ])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let history: serde_json::Value =
        serde_json::from_slice(&status.stdout).expect("status --json is JSON");
    assert_eq!(history[0]["version"], version.as_str());
    assert_eq!(
        history[0]["state"], "scan",
        "passed routes to scan: {history}"
    );
    let last = history[0]["transitions"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["stage"].as_str(), last["outcome"].as_str()),
        (Some("validate"), Some("passed")),
        "{history}"
    );

    let unknown = Command::new(env!("CARGO_BIN_EXE_intake"))
        .args([
            "--config",
            &config_arg,
            "status",
            &format!("s3://{uploads}/no/such/key"),
        ])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no record in the ledger"));
}
