//! The `intake` binary as a user runs it: exit codes and messages for broken configs and an
//! unreachable endpoint, and `provision --dry-run` before and after `provision` on LocalStack.

use std::path::PathBuf;
use std::process::{Command, Output};

use intake_testkit::{LocalStack, unique_pipeline_name};

const REPO_CONFIG: &str = include_str!("../../../pipeline.toml");

fn intake(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_intake"));
    cmd.args(args)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("INTAKE_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run intake")
}

fn write_config(text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}.toml", unique_pipeline_name()));
    std::fs::write(&path, text).expect("write temp config");
    path
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn broken_configs_exit_2_with_one_located_error_each() {
    let cases = [
        (
            "unknown key",
            "wait_time_secs = 20",
            "wait_time_secs = 20\nmax_recieve_count = 3",
            "unknown field `max_recieve_count`",
        ),
        (
            "route to a missing stage",
            "on.passed = \"scan\"",
            "on.passed = \"scna\"",
            "unknown route target \"scna\"",
        ),
        (
            "unreachable stage",
            "on.cataloged = \"archive\"",
            "on.cataloged = \"done\"",
            "stage archive is unreachable",
        ),
        (
            "bad size",
            "max_size = \"100MiB\"",
            "max_size = \"a lot\"",
            "`a lot` is not a size",
        ),
        (
            "missing required field",
            "[classes.archive]\ntypes = [\"application/zip\", \"application/gzip\"]\n",
            "[classes.archive]\n",
            "missing field `types`",
        ),
    ];
    for (name, find, replace, message) in cases {
        assert!(REPO_CONFIG.contains(find), "{name}: fixture drifted");
        let path = write_config(&REPO_CONFIG.replacen(find, replace, 1));
        let out = intake(&["check", "--config", path.to_str().unwrap()], &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        let located = format!("{}:", path.display());
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with(&located)).collect();
        assert_eq!(
            lines.len(),
            1,
            "{name}: want exactly one located error, got:\n{err}"
        );
        // file:line:column: path: message
        let rest = &lines[0][located.len()..];
        let mut parts = rest.splitn(3, ':');
        assert!(
            parts.next().unwrap().parse::<usize>().is_ok(),
            "{name}: no line in {rest}"
        );
        assert!(
            parts.next().unwrap().parse::<usize>().is_ok(),
            "{name}: no column in {rest}"
        );
        assert!(lines[0].contains(message), "{name}: {err}");
        assert!(err.contains("help: "), "{name}: no fix offered: {err}");
        std::fs::remove_file(path).ok();
    }
}

#[test]
fn missing_config_file_exits_2_and_names_the_path() {
    let out = intake(&["check", "--config", "/nonexistent/pipeline.toml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/pipeline.toml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unreachable_endpoint_gives_one_clear_line_and_exit_1() {
    // Port 9 (discard) on loopback: nothing listens there, so the connection is refused.
    let endpoint = "http://127.0.0.1:9".to_owned();
    let path = write_config(REPO_CONFIG);
    let out = intake(
        &["provision", "--dry-run", "--config", path.to_str().unwrap()],
        &[
            ("AWS_ENDPOINT_URL", endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line, not a trace: {err}");
    assert!(
        lines[0].contains(&endpoint) && lines[0].contains("Check that the endpoint is running"),
        "{err}"
    );
    std::fs::remove_file(path).ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_lists_all_create_then_all_unchanged_after_provision() {
    let localstack = LocalStack::start().await.expect("LocalStack");
    let name = unique_pipeline_name();
    let path =
        write_config(&REPO_CONFIG.replacen("name = \"intake\"", &format!("name = \"{name}\""), 1));
    let config = path.to_str().unwrap().to_owned();
    let env = localstack.env();
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.clone())).collect();

    let rows = |out: &Output| -> Vec<(String, String)> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line
                    .trim_matches(|c| c == '│' || c == ' ')
                    .split_whitespace()
                    .collect();
                let action = cells
                    .iter()
                    .find(|c| ["create", "update", "unchanged", "delete"].contains(c))?;
                Some((
                    cells.iter().find(|c| c.contains(&name))?.to_string(),
                    action.to_string(),
                ))
            })
            .collect()
    };

    let before = intake(&["provision", "--dry-run", "--config", &config], &env);
    assert_eq!(before.status.code(), Some(0), "{}", stderr(&before));
    let before_rows = rows(&before);
    assert!(
        before_rows.len() >= 30,
        "{}",
        String::from_utf8_lossy(&before.stdout)
    );
    assert!(
        before_rows.iter().all(|(_, a)| a == "create"),
        "{before_rows:?}"
    );

    let apply = intake(&["provision", "--config", &config], &env);
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));

    let after = intake(&["provision", "--dry-run", "--config", &config], &env);
    assert_eq!(after.status.code(), Some(0), "{}", stderr(&after));
    let after_rows = rows(&after);
    assert_eq!(after_rows.len(), before_rows.len());
    assert!(
        after_rows.iter().all(|(_, a)| a == "unchanged"),
        "{after_rows:?}"
    );
    std::fs::remove_file(path).ok();
}
