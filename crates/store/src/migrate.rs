//! Migrating a ledger when any number of processes open it at once (`intake run` and
//! `intake serve` started together, a fleet restarted): exactly one process migrates at a
//! time, the others wait for it and then find nothing left to do.
//!
//! - PostgreSQL: a session advisory lock on a fixed key ([`PG_MIGRATION_LOCK`]), taken
//!   and released on the one connection the migrations run on. Advisory locks are scoped
//!   to the database, so ledgers in different databases do not wait for each other, and
//!   the server releases the lock if the process dies.
//! - SQLite: an exclusive `flock`-style lock on a sidecar file next to the database
//!   (`PATH-intake-migrate.lock`), held while the journal mode is set and the migrations
//!   run. SQLite's own locks cannot do this job: sqlx reads the applied migrations and
//!   then applies each one in a *deferred* transaction, so two processes that both read
//!   "nothing applied" both run `CREATE TABLE` (one dies with `table objects already
//!   exists`), and a deferred transaction that must upgrade to a write lock gets
//!   `database is locked` at once, busy_timeout notwithstanding. A file lock spans the
//!   whole read-then-apply sequence. It only works between processes on one machine,
//!   which is all SQLite supports anyway (WAL needs shared memory). The lock file is left
//!   in place: deleting it while another process opens it would let two hold "the" lock.
//!
//! Waiting is bounded ([`LOCK_WAIT`]) so a process stuck while migrating is reported
//! rather than waited for forever.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Row};

use crate::backend::Backend;
use crate::error::StoreError;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// The advisory lock key every Intake process takes around migrations ("intake" in ASCII,
/// shifted one byte).
pub const PG_MIGRATION_LOCK: i64 = 0x0069_6e74_616b_6500;

/// How long a process waits for another one's migration before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(300);
/// How often a waiting process tries the lock again. Migrations of a new ledger take tens
/// of milliseconds, so waiters come up shortly after the migrating process.
const LOCK_POLL: Duration = Duration::from_millis(25);

/// Sets SQLite's journal mode and runs the backend's migrations, one process at a time.
pub(crate) async fn migrate(
    pool: &AnyPool,
    backend: Backend,
    shown: &str,
) -> Result<(), StoreError> {
    match backend {
        Backend::Sqlite => migrate_sqlite(pool, shown).await,
        Backend::Postgres => migrate_postgres(pool, shown).await,
    }
}

async fn migrate_sqlite(pool: &AnyPool, shown: &str) -> Result<(), StoreError> {
    let connect_failed = |source| StoreError::Connect {
        url: shown.to_owned(),
        source,
    };
    // SQLite knows where the URL's file really is (relative paths, `sqlite:` vs
    // `sqlite://`, percent-escapes): ask it rather than parse the URL a second time.
    let (file,): (String,) =
        sqlx::query_as("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_one(pool)
            .await
            .map_err(connect_failed)?;
    let _lock = SidecarLock::acquire(&lock_path(Path::new(&file)), shown).await?;
    // WAL lets readers (`intake status`) run beside the one writer. The mode is stored in
    // the file, so it is set once, by the first process, under the lock: switching modes
    // needs the database to itself. synchronous stays FULL: a worker deletes its message
    // once the ledger says the result is durable.
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(pool)
        .await
        .map_err(connect_failed)?;
    if !mode.eq_ignore_ascii_case("wal") {
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(pool)
            .await
            .map_err(connect_failed)?;
    }
    SQLITE_MIGRATIONS
        .run(pool)
        .await
        .map_err(|source| StoreError::Migrate {
            url: shown.to_owned(),
            source,
        })
}

async fn migrate_postgres(pool: &AnyPool, shown: &str) -> Result<(), StoreError> {
    let connect_failed = |source| StoreError::Connect {
        url: shown.to_owned(),
        source,
    };
    // Session locks belong to a connection: take it, migrate and release on this one.
    let mut conn = pool.acquire().await.map_err(connect_failed)?;
    let deadline = tokio::time::Instant::now() + LOCK_WAIT;
    loop {
        // `pg_try_advisory_lock` rather than the blocking form, so the wait is bounded.
        let row = sqlx::query("SELECT pg_try_advisory_lock($1) AS locked")
            .bind(PG_MIGRATION_LOCK)
            .fetch_one(&mut *conn)
            .await
            .map_err(connect_failed)?;
        let locked: bool = row.try_get("locked").map_err(connect_failed)?;
        if locked {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(StoreError::MigrationLock {
                url: shown.to_owned(),
                lock: format!("advisory lock {PG_MIGRATION_LOCK}"),
                waited_secs: LOCK_WAIT.as_secs(),
            });
        }
        tokio::time::sleep(LOCK_POLL).await;
    }
    let migrated = POSTGRES_MIGRATIONS.run_direct(&mut *conn).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(PG_MIGRATION_LOCK)
        .execute(&mut *conn)
        .await;
    migrated.map_err(|source| StoreError::Migrate {
        url: shown.to_owned(),
        source,
    })?;
    if unlocked.is_err() {
        // The lock is the session's: a connection that cannot run the unlock must not go
        // back to the pool still holding it. Closing it ends the session, and the lock.
        drop(conn.detach());
    }
    Ok(())
}

/// `PATH-intake-migrate.lock` beside the database file `PATH`.
pub(crate) fn lock_path(database: &Path) -> PathBuf {
    let mut name = database
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push("-intake-migrate.lock");
    database.with_file_name(name)
}

/// An exclusive lock on a file, released when dropped (or when the process dies).
struct SidecarLock {
    _file: std::fs::File,
}

impl SidecarLock {
    async fn acquire(path: &Path, shown: &str) -> Result<SidecarLock, StoreError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| StoreError::LockFile {
                url: shown.to_owned(),
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(SidecarLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(StoreError::LockFile {
                        url: shown.to_owned(),
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    });
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::MigrationLock {
                    url: shown.to_owned(),
                    lock: path.display().to_string(),
                    waited_secs: LOCK_WAIT.as_secs(),
                });
            }
            tokio::time::sleep(LOCK_POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_file_sits_beside_the_database() {
        assert_eq!(
            lock_path(Path::new("/var/lib/intake/ledger.db")),
            Path::new("/var/lib/intake/ledger.db-intake-migrate.lock")
        );
        assert_eq!(
            lock_path(Path::new("ledger.db")),
            Path::new("ledger.db-intake-migrate.lock")
        );
    }

    #[tokio::test]
    async fn a_held_lock_keeps_others_out_until_it_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db-intake-migrate.lock");
        let held = SidecarLock::acquire(&path, "sqlite://ledger.db")
            .await
            .unwrap();
        // Another open file description conflicts as another process's would.
        let other = std::fs::File::open(&path).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(held);
        other.try_lock().expect("free once the holder is gone");
    }
}
