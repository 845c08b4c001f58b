//! `intake up --exit-when-done` as a user runs it, against a LocalStack the test starts
//! (so `up` must use the endpoint it is given and start none of its own) and with clamd
//! installed (so `up` starts its own, with the test signatures): every sample ends where
//! it should, the infected one `quarantined`, and what `up` started is stopped on exit.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use intake_testkit::{LocalStack, unique_pipeline_name};

const REPO_CONFIG: &str = include_str!("../../../pipeline.toml");

/// Every sample `intake up` uploads and where it must end.
const EXPECTED: [(&str, &str); 6] = [
    ("photo.jpg", "done"),
    ("logo.png", "done"),
    ("report.pdf", "done"),
    ("notes.txt", "done"),
    ("invoice.pdf", "quarantined"),
    ("eicar.txt", "quarantined"),
];

/// Waits for `child` to exit within `limit`, killing it past that; returns its exit code,
/// stdout and stderr.
fn wait_with_deadline(mut child: Child, limit: Duration) -> (Option<i32>, String, String) {
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    // Read both pipes while waiting, so a full pipe cannot stall the child.
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).ok();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).ok();
        s
    });
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait for intake up") {
            break status.code();
        }
        if started.elapsed() > limit {
            // SIGINT first: `intake up` then stops the clamd and anything else it started.
            let pid = i32::try_from(child.id()).expect("pid fits");
            // SAFETY: signalling our own child process; no memory is shared.
            unsafe { libc::kill(pid, libc::SIGINT) };
            std::thread::sleep(Duration::from_secs(30));
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (code, out.join().unwrap(), err.join().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn up_runs_every_sample_to_its_expected_end_and_stops_what_it_started() {
    let localstack = LocalStack::start().await.expect("LocalStack");
    let dir = tempfile::tempdir().unwrap();
    let name = unique_pipeline_name();
    let config = dir.path().join("pipeline.toml");
    std::fs::write(
        &config,
        REPO_CONFIG.replacen("name = \"intake\"", &format!("name = \"{name}\""), 1),
    )
    .unwrap();
    let ledger = format!("sqlite://{}", dir.path().join("ledger.db").display());

    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_intake"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "up",
            "--exit-when-done",
        ])
        .env_remove("INTAKE_CONFIG")
        .envs(localstack.env())
        .env("INTAKE_DATABASE_URL", &ledger)
        .env("INTAKE_METRICS", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start intake up");
    let (code, stdout, stderr) = wait_with_deadline(child, Duration::from_secs(150));
    let shown = format!("--- stdout\n{stdout}\n--- stderr\n{stderr}");
    assert_eq!(code, Some(0), "intake up did not exit 0\n{shown}");
    eprintln!("intake up took {:?}", started.elapsed());

    assert!(
        stdout.contains(&format!(
            "{} answers; starting no LocalStack",
            localstack.endpoint()
        )),
        "it must use the endpoint it was given\n{shown}"
    );
    assert!(
        stdout.contains("started:   clamd"),
        "clamd is installed, so intake up starts one\n{shown}"
    );
    assert!(
        stdout.contains("web page:  http://127.0.0.1:")
            && stdout.contains("(sign in with a dev token as any tenant)"),
        "the API and page are served on loopback with dev tokens\n{shown}"
    );
    let results = stdout
        .split_once("Results:")
        .unwrap_or_else(|| panic!("no results table\n{shown}"))
        .1;
    for (file, state) in EXPECTED {
        assert!(
            results.lines().any(|line| {
                let cells: Vec<&str> = line.split_whitespace().collect();
                cells.get(1) == Some(&file)
                    && cells.get(2) == Some(&state)
                    && line.contains("as expected")
            }),
            "{file} should end {state}\n{shown}"
        );
    }
    assert!(
        stdout.contains("eicar.txt quarantined: found Intake.Test.EICAR"),
        "the infected sample is quarantined by the scan, naming the signature\n{shown}"
    );

    // The clamd it started is gone (it was waited for, so no zombie either).
    let clamd_pid = stderr
        .lines()
        .find_map(|l| l.strip_prefix("intake up: stopped clamd (pid "))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("intake up did not say it stopped clamd\n{shown}"));
    assert!(
        !std::path::Path::new(&format!("/proc/{clamd_pid}")).exists(),
        "clamd (pid {clamd_pid}) still runs after intake up exited"
    );
}
