//! The `command` scanner hook with real programs: the exit-code contract, a stream larger
//! than any pipe buffer, and the failures that must be errors rather than verdicts.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use intake_stage_scan::Verdict;
use intake_stage_scan::command::{CommandError, CommandScanner};

fn script(dir: &tempfile::TempDir, name: &str, body: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_str().unwrap().to_owned()
}

fn scanner(program: String) -> CommandScanner {
    CommandScanner {
        program,
        args: Vec::new(),
        timeout: Duration::from_secs(20),
    }
}

#[tokio::test]
async fn the_exit_code_contract() {
    let dir = tempfile::tempdir().unwrap();
    // A toy scanner: reads everything from stdin, judges by content.
    let toy = scanner(script(
        &dir,
        "toy-scanner",
        r#"data=$(cat)
case "$data" in
  *BAD-MARKER*) echo "Toy.Bad.Marker"; exit 1 ;;
  *LOCKED*) echo "encrypted, cannot look inside"; exit 2 ;;
  *CRASH*) echo "segfault" >&2; exit 70 ;;
esac
exit 0"#,
    ));
    assert_eq!(toy.scan(&b"hello"[..]).await.unwrap(), Verdict::Clean);
    assert_eq!(
        toy.scan(&b"xx BAD-MARKER xx"[..]).await.unwrap(),
        Verdict::Infected {
            signature: "Toy.Bad.Marker".into()
        }
    );
    assert_eq!(
        toy.scan(&b"LOCKED"[..]).await.unwrap(),
        Verdict::Unscannable {
            reason: "encrypted, cannot look inside".into()
        }
    );
    let err = toy.scan(&b"CRASH"[..]).await.unwrap_err();
    assert!(matches!(err, CommandError::Failed { .. }), "{err:?}");
    assert!(err.to_string().contains("segfault"), "{err}");
    assert_eq!(err.code(), "scanner_failed");
}

#[tokio::test]
async fn large_inputs_stream_through_and_early_exits_are_not_errors() {
    let dir = tempfile::tempdir().unwrap();
    let counter = scanner(script(&dir, "count", "test \"$(wc -c)\" -eq 20971520"));
    let big = vec![b'z'; 20 * 1024 * 1024];
    assert_eq!(counter.scan(&big[..]).await.unwrap(), Verdict::Clean);
    // A scanner that decides after the first bytes and stops reading.
    let quick = scanner(script(
        &dir,
        "quick",
        "head -c 10 >/dev/null; echo Early.Decision; exit 1",
    ));
    assert_eq!(
        quick.scan(&big[..]).await.unwrap(),
        Verdict::Infected {
            signature: "Early.Decision".into()
        }
    );
}

#[tokio::test]
async fn a_missing_or_hanging_program_is_an_error_not_a_verdict() {
    let missing = scanner("/nonexistent/scanner".into());
    let err = missing.scan(&b"x"[..]).await.unwrap_err();
    assert!(matches!(err, CommandError::Start { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/scanner"));

    let dir = tempfile::tempdir().unwrap();
    let mut hanging = scanner(script(&dir, "hang", "cat >/dev/null; sleep 30"));
    hanging.timeout = Duration::from_millis(500);
    let err = hanging.scan(&b"x"[..]).await.unwrap_err();
    assert!(matches!(err, CommandError::Timeout { .. }), "{err:?}");
    assert_eq!(err.code(), "scanner_timeout");
}
