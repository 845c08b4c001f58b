//! SQLite specifics: the database file is created when missing and put in WAL mode, and
//! URLs that cannot work are refused with a clear error.

use intake_store::Ledger;

#[tokio::test]
async fn missing_file_is_created_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intake.db");
    assert!(!path.exists());
    let ledger = Ledger::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    ledger.close().await;
    assert!(path.exists());

    // Read the mode back through a plain connection that does not set it.
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn unusable_urls_are_refused_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("sqlite::memory:", "ledger_url", "in-memory"),
        (
            "mysql://localhost/intake",
            "ledger_url",
            "neither sqlite nor postgres",
        ),
        (
            &format!("sqlite://{}/missing-dir/intake.db", dir.path().display()),
            "ledger_unreachable",
            "directory exists",
        ),
    ];
    for (url, code, says) in cases {
        let err = Ledger::connect(url).await.unwrap_err();
        assert_eq!(err.code(), code, "{url}: {err}");
        assert!(err.to_string().contains(says), "{url}: {err}");
    }
}
