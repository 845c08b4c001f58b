//! Many processes opening one ledger at once, as when `intake run` and `intake serve`
//! start together or a fleet restarts: every one comes up, one migrates while the others
//! wait, and the schema is whole. Real processes (the `intake-ledger-open` helper of this
//! crate), released at the same moment. Also: the advice about edited migrations is given
//! only when a migration really was edited.

use std::process::{Command, Stdio};

use intake_store::Ledger;
use sqlx::Connection;

const PROCESSES: usize = 12;

/// Starts `PROCESSES` helpers on `url`, releases them together (by closing their stdin)
/// and asserts that every one exited 0.
fn open_at_once(url: &str) {
    let exe = env!("CARGO_BIN_EXE_intake-ledger-open");
    let mut children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(exe)
                .args([url, "--after-stdin-closes"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start intake-ledger-open")
        })
        .collect();
    // Closing every stdin in one sweep releases them within microseconds of each other.
    for child in &mut children {
        drop(child.stdin.take());
    }
    let failures: Vec<String> = children
        .into_iter()
        .enumerate()
        .filter_map(|(i, child)| {
            let out = child
                .wait_with_output()
                .expect("wait for intake-ledger-open");
            (!out.status.success()).then(|| {
                format!(
                    "process {i}: {} {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {PROCESSES} processes failed to open {url}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The versions of the migrations shipped for `backend` (`sqlite` or `postgres`).
fn shipped_migrations(backend: &str) -> Vec<i64> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut versions: Vec<i64> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.split('_').next()?.parse().ok()
        })
        .collect();
    versions.sort();
    assert!(!versions.is_empty(), "no migrations in {}", dir.display());
    versions
}

/// The tables the migrations create, and one successful row per migration.
async fn assert_schema(url: &str, backend: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    for table in [
        "objects",
        "stage_claims",
        "outbox",
        "transitions",
        "catalog",
        "replays",
        "uploads",
    ] {
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("table {table}: {e}"));
        assert_eq!(n, 0, "{table} is new and empty");
    }
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        versions,
        shipped_migrations(backend),
        "every migration applied exactly once"
    );
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn twelve_processes_start_at_once_on_a_new_sqlite_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    open_at_once(&url);
    assert_schema(&url, "sqlite").await;
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    conn.close().await.unwrap();
    // And again on the ledger they made: nothing to migrate, nobody fails.
    open_at_once(&url);
    assert_schema(&url, "sqlite").await;
}

/// Opens a migrated SQLite ledger after `tamper` changed its migration records.
async fn reopen_after(tamper: &str) -> intake_store::StoreError {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    Ledger::connect(&url).await.unwrap().close().await;
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::query(tamper).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    Ledger::connect(&url).await.unwrap_err()
}

#[tokio::test]
async fn only_an_edited_migration_gets_the_advice_about_editing() {
    let edited =
        reopen_after("UPDATE _sqlx_migrations SET checksum = X'00' WHERE version = 2").await;
    assert_eq!(edited.code(), "ledger_migration_edited", "{edited}");
    assert!(
        edited.to_string().contains("must never be edited"),
        "{edited}"
    );

    let newer = reopen_after(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', TRUE, X'00', 1)",
    )
    .await;
    assert_eq!(newer.code(), "ledger_too_new", "{newer}");
    assert!(newer.to_string().contains("newer Intake"), "{newer}");
    assert!(!newer.to_string().contains("edited"), "{newer}");
}

#[cfg(intake_pg_tests)]
#[tokio::test(flavor = "multi_thread")]
async fn twelve_processes_start_at_once_on_a_new_postgres_ledger() {
    let admin_url = std::env::var("INTAKE_TEST_POSTGRES_URL")
        .expect("INTAKE_TEST_POSTGRES_URL was set when these tests were built; set it again");
    let name = format!("intake_race_{}", uuid::Uuid::now_v7().simple());
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&admin_url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create a database for this test");
    let (scheme, rest) = admin_url.split_once("://").expect("a postgres:// URL");
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map(|i| &tail[i..]).unwrap_or("");
    let url = format!("{scheme}://{authority}/{name}{query}");

    open_at_once(&url);
    assert_schema(&url, "postgres").await;
    open_at_once(&url);
    assert_schema(&url, "postgres").await;

    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .expect("drop the test database");
}
