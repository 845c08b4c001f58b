//! `intake bench pipeline` as a user runs it, small: 6 small objects through one worker
//! process against a LocalStack the test starts (so the bench must use the endpoint it
//! is given), with the JSON report checked for the objects done, a rate and a ceiling.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use intake_testkit::LocalStack;

#[tokio::test(flavor = "multi_thread")]
async fn bench_pipeline_runs_six_small_objects_through_one_worker() {
    let localstack = LocalStack::start().await.expect("LocalStack");
    let dir = tempfile::tempdir().unwrap();
    let ledger = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../pipeline.toml");

    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_intake"))
            .args(["--config", config, "bench", "pipeline"])
            .args([
                "--objects",
                "6",
                "--workers",
                "1",
                "--mix",
                "small",
                "--json",
            ])
            .env_remove("INTAKE_CONFIG")
            .envs(localstack.env())
            .env("INTAKE_DATABASE_URL", &ledger)
            .env("INTAKE_METRICS", "0")
            .stdin(Stdio::null())
            .output()
            .expect("run intake bench pipeline")
    })
    .await
    .unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let shown = format!(
        "--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "bench pipeline failed\n{shown}");
    assert!(took < Duration::from_secs(90), "took {took:?}\n{shown}");

    let report: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON: {e}\n{shown}"));
    assert!(
        stderr_or(&out.stderr).contains("answers; starting no LocalStack"),
        "it must use the endpoint it was given\n{shown}"
    );
    let runs = report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1, "--workers 1 measures one run\n{shown}");
    assert_eq!(runs[0]["workers"], 1);
    assert_eq!(runs[0]["done"], 6, "every small object ends done\n{shown}");
    assert!(
        runs[0]["objects_per_s"].as_f64().unwrap_or(0.0) > 0.0,
        "{shown}"
    );
    assert!(
        runs[0]["peak_rss_kib"][0].as_u64().unwrap_or(0) > 0,
        "peak RSS of the worker\n{shown}"
    );
    let ceiling = &report["ceiling"];
    assert!(
        ceiling["s3_put_per_s"].as_f64().unwrap_or(0.0) > 0.0,
        "{shown}"
    );
    assert!(
        ceiling["sqs_send_per_s"].as_f64().unwrap_or(0.0) > 0.0,
        "{shown}"
    );
    assert_eq!(ceiling["sqs_messages_received"], 6, "{shown}");

    // The workers' own count of their requests: every clean small object is promoted by
    // exactly one copy, and the outcomes went out in batch calls only.
    let calls = &runs[0]["calls_per_object"];
    assert_eq!(calls["S3.CopyObject"].as_f64(), Some(1.0), "{shown}");
    assert!(
        calls["SNS.PublishBatch"].as_f64().unwrap_or(0.0) > 0.0,
        "{shown}"
    );
    assert!(
        calls.get("SNS.Publish").is_none(),
        "no single publishes\n{shown}"
    );
    assert!(
        calls.get("SQS.DeleteMessage").is_none(),
        "no single deletes\n{shown}"
    );
    assert!(calls["total"].as_f64().unwrap_or(0.0) > 0.0, "{shown}");
    // ... and their replay with no Intake logic, in the same run.
    let replay = &report["replay"];
    assert!(replay["calls"].as_u64().unwrap_or(0) > 0, "{shown}");
    assert_eq!(replay["failed_calls"], 0, "{shown}");
    assert!(
        replay["objects_per_s"].as_f64().unwrap_or(0.0) > 0.0,
        "{shown}"
    );
}

fn stderr_or(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
