//! Test fixtures: a fresh ledger per test, in a SQLite file under a tempdir or (when
//! `INTAKE_TEST_POSTGRES_URL` is set) in a PostgreSQL database created for the test,
//! with a manual clock so leases expire without sleeping.

use std::time::Duration;

use intake_store::{Ledger, ManualClock, StageResult, VersionKey};

/// Where every test's clock starts: an ordinary recent time, far from zero and overflow.
pub const START_MS: i64 = 1_700_000_000_000;

pub struct Fixture {
    pub ledger: Ledger,
    pub clock: ManualClock,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    #[cfg_attr(not(intake_pg_tests), allow(dead_code))]
    postgres: Option<PgDatabase>,
}

#[cfg_attr(not(intake_pg_tests), allow(dead_code))]
struct PgDatabase {
    admin_url: String,
    name: String,
}

impl Fixture {
    pub async fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().expect("create a tempdir");
        // A subpath that does not exist yet: connect must create the file.
        let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
        Fixture::open(url, Some(dir), None).await
    }

    #[cfg(intake_pg_tests)]
    pub async fn postgres() -> Fixture {
        use sqlx::Connection;
        let admin_url = std::env::var("INTAKE_TEST_POSTGRES_URL")
            .expect("INTAKE_TEST_POSTGRES_URL was set when these tests were built; set it again");
        let name = format!("intake_test_{}", uuid::Uuid::now_v7().simple());
        sqlx::any::install_default_drivers();
        let mut admin = sqlx::AnyConnection::connect(&admin_url)
            .await
            .expect("connect to INTAKE_TEST_POSTGRES_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create a database for this test");
        admin.close().await.ok();
        let url = with_database(&admin_url, &name);
        Fixture::open(url, None, Some(PgDatabase { admin_url, name })).await
    }

    async fn open(
        url: String,
        dir: Option<tempfile::TempDir>,
        postgres: Option<PgDatabase>,
    ) -> Fixture {
        let clock = ManualClock::new(START_MS);
        let ledger = Ledger::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .with_clock(clock.clone());
        Fixture {
            ledger,
            clock,
            url,
            _dir: dir,
            postgres,
        }
    }

    /// A second, independent connection to the same database, on the same clock.
    pub async fn reconnect(&self) -> Ledger {
        Ledger::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .with_clock(self.clock.clone())
    }

    /// Closes the ledger; a test's PostgreSQL database is dropped when the test passed
    /// (a failed test leaves it behind for inspection).
    pub async fn finish(self) {
        self.ledger.close().await;
        #[cfg(intake_pg_tests)]
        if let Some(db) = self.postgres {
            use sqlx::Connection;
            let mut admin = sqlx::AnyConnection::connect(&db.admin_url)
                .await
                .expect("reconnect to INTAKE_TEST_POSTGRES_URL");
            sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name))
                .execute(&mut admin)
                .await
                .expect("drop the test database");
        }
    }
}

/// `url` with its database name replaced.
#[cfg(intake_pg_tests)]
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map(|i| &tail[i..]).unwrap_or("");
    format!("{scheme}://{authority}/{name}{query}")
}

pub fn version(v: &str) -> VersionKey {
    VersionKey::new("uploads", "tenant-a/red flower.jpg", v)
}

pub fn result(stage: &str, outcome: &str) -> StageResult {
    StageResult {
        outcome: outcome.to_owned(),
        code: None,
        detail: None,
        outcome_json: format!(r#"{{"stage":"{stage}","outcome":"{outcome}"}}"#),
        started_ms: START_MS,
        finished_ms: START_MS + 10,
    }
}

pub const LEASE: Duration = Duration::from_secs(30);

/// Generates one test per backend (SQLite always; PostgreSQL when configured) for each body `async fn name(fx: &Fixture)`.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let fx = crate::support::Fixture::sqlite().await;
                    crate::$name(&fx).await;
                    fx.finish().await;
                }
            )*
        }

        // Only generated when INTAKE_TEST_POSTGRES_URL was set at build time (build.rs
        // sets the cfg): without a server these tests do not exist, rather than passing
        // without having checked anything.
        #[cfg(intake_pg_tests)]
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let fx = crate::support::Fixture::postgres().await;
                    crate::$name(&fx).await;
                    fx.finish().await;
                }
            )*
        }
    };
}
