//! The summary `intake up` prints once the samples ended: counts, why each unexpected
//! sample ended where it did, and the commands to look further (with what they need to
//! find this run's ledger).

use std::path::Path;

use anyhow::bail;
use intake_core::names::BucketRole;

use super::follow::Row;
use super::{FOLLOW_DEADLINE, Options, Running, TENANT, USER};
use crate::common::DATABASE_URL_VAR;
use crate::devstack::samples::Expect;

/// How to run this binary again: `intake`, or the `cargo run` that built it when it runs
/// from a checkout's target directory (then `intake` is not on PATH).
fn intake_command() -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().and_then(Path::file_name);
    let in_target = exe
        .ancestors()
        .nth(2)
        .and_then(Path::file_name)
        .is_some_and(|n| n == "target");
    match dir.and_then(|d| d.to_str()) {
        Some("debug") if in_target => "cargo run -q -p intake-cli --".to_owned(),
        Some("release") if in_target => "cargo run -q --release -p intake-cli --".to_owned(),
        _ => "intake".to_owned(),
    }
}

/// The reason in a ledger detail, without the object it names (`<object>: <reason>`).
fn reason(detail: &str) -> &str {
    detail.split_once(": ").map_or(detail, |(_, reason)| reason)
}

/// The summary after the samples ended: what to look at next, and an error naming every
/// sample that did not end as expected.
pub(super) fn report(
    running: &Running,
    config_path: &Path,
    rows: &[Row],
    options: &Options,
) -> anyhow::Result<()> {
    let bucket = running.cx.names.bucket(BucketRole::Uploads);
    let mut counts: Vec<(String, usize)> = Vec::new();
    for row in rows {
        match counts.iter_mut().find(|(s, _)| *s == row.state) {
            Some((_, n)) => *n += 1,
            None => counts.push((row.state.clone(), 1)),
        }
    }
    let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let wrong: Vec<&Row> = rows.iter().filter(|r| !r.as_expected()).collect();
    println!(
        "{} samples: {}; {}.",
        rows.len(),
        counts.join(", "),
        if wrong.is_empty() {
            "every one as expected".to_owned()
        } else {
            format!("{} not as expected", wrong.len())
        }
    );
    for row in rows
        .iter()
        .filter(|r| r.as_expected() && (r.state == "quarantined" || r.state == "failed"))
    {
        if let Some(detail) = row.last.as_ref().and_then(|t| t.detail.as_deref()) {
            println!("  {} {}: {}", row.filename, row.state, reason(detail));
        }
    }
    if !running.scanning {
        println!(
            "Nothing was scanned (scanner \"none\"): eicar.txt passed as `unscanned`. Install clamd to see it quarantined."
        );
    }
    for row in &wrong {
        let why = match &row.last {
            Some(t) => format!(
                "last step {}{}",
                row.step(),
                t.detail
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ),
            None => "the ledger has no record of it: did the uploads notification reach the validate queue?".to_owned(),
        };
        if row.is_terminal() {
            println!(
                "  {} ended `{}`, expected `{}`; {why}",
                row.filename,
                row.state,
                row.expect.state()
            );
        } else {
            println!(
                "  {} is still `{}` after {} s (expected `{}`); {why}",
                row.filename,
                row.state,
                FOLLOW_DEADLINE.as_secs(),
                row.expect.state()
            );
        }
    }

    // The commands to look further, with what they need to find this run's ledger.
    let mut prefix = String::new();
    if !running.ledger.is_from_env() {
        prefix.push_str(&format!("{DATABASE_URL_VAR}={} ", running.ledger.url));
    }
    let mut intake = format!("{prefix}{}", intake_command());
    if config_path != Path::new("pipeline.toml") {
        intake.push_str(&format!(" -c {}", config_path.display()));
    }
    let example = wrong
        .first()
        .copied()
        .or_else(|| rows.iter().find(|r| r.expect == Expect::Quarantined))
        .or(rows.first());
    println!("\nLook further:");
    if let Some(row) = example {
        println!("  {intake} status s3://{bucket}/{}", row.key);
    }
    println!("  {intake} catalog list");
    if !options.exit_when_done && (wrong.is_empty() || options.keep_running) {
        let key = running
            .cx
            .config
            .uploads
            .key_template
            .replace("{tenant}", TENANT)
            .replace("{user}", USER)
            .replace("{uuid}", "$(cat /proc/sys/kernel/random/uuid)")
            .replace("{filename}", "FILE");
        let credentials = if running.own_localstack {
            "AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test "
        } else {
            ""
        };
        println!(
            "  upload more: {credentials}aws --endpoint-url {} s3 cp FILE \"s3://{bucket}/{key}\"",
            running.endpoint
        );
    }
    if wrong.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = wrong.iter().map(|r| r.filename).collect();
    bail!(
        "{} of {} samples did not reach their expected state: {} (see above)",
        wrong.len(),
        rows.len(),
        names.join(", ")
    )
}
