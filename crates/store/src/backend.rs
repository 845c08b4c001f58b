//! Opening the ledger database named by a URL: which backend it is, the SQLite settings
//! Intake relies on; [`crate::migrate`] runs that backend's migrations.

use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

use crate::error::StoreError;

/// The database behind a ledger. The SQL is shared; only DDL and transaction start differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend, StoreError> {
        let unsupported = |reason| StoreError::UnsupportedUrl {
            url: redact(url),
            reason,
        };
        let scheme = url
            .split_once(':')
            .map(|(s, _)| s.to_ascii_lowercase())
            .ok_or_else(|| unsupported("it has no scheme"))?;
        match scheme.as_str() {
            "sqlite" if url.contains(":memory:") || url.contains("mode=memory") => Err(
                // Each pooled connection would open its own empty database, so claims
                // made on one connection would be invisible to the next.
                unsupported("an in-memory SQLite database is not shared between connections"),
            ),
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(unsupported("the scheme is neither sqlite nor postgres")),
        }
    }

    /// The statement that opens a write transaction.
    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            // A deferred SQLite transaction that reads before it writes cannot wait for
            // the write lock (SQLITE_BUSY at once, busy_timeout notwithstanding); taking
            // the lock up front makes concurrent writers queue instead of fail.
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }
}

/// How long a ledger call waits for a pooled connection before it fails (retryably).
/// A database that stops answering (a network partition leaves TCP connections hanging,
/// not refused) then shows up as `ledger_query` errors within seconds instead of a
/// worker that silently waits; sqlx's default is 30 s.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(8);

/// Connects, configures and migrates (one process at a time: [`crate::migrate`]). The pool is ready for the ledger's queries.
pub(crate) async fn open(url: &str, backend: Backend) -> Result<AnyPool, StoreError> {
    sqlx::any::install_default_drivers();
    let shown = redact(url);
    let connect_url = match backend {
        Backend::Sqlite => with_create_if_missing(url),
        Backend::Postgres => url.to_owned(),
    };
    // SQLite connections already wait up to 5 s for a busy database (sqlx's default
    // busy_timeout), which is what Intake wants; it cannot be set through an Any URL.
    let pool = AnyPoolOptions::new()
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(move |connection, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // sqlx opens SQLite in WAL mode. With synchronous = NORMAL a commit
                    // appends to the WAL without an fsync (checkpoints still sync): a
                    // process crash or SIGKILL loses nothing, an OS crash or power cut may
                    // lose the last commits. docs/architecture.md says why that is the
                    // right default for a single-host ledger.
                    sqlx::Executor::execute(&mut *connection, "PRAGMA synchronous = NORMAL")
                        .await?;
                }
                Ok(())
            })
        })
        .connect(&connect_url)
        .await
        .map_err(|source| StoreError::Connect {
            url: shown.clone(),
            source,
        })?;
    crate::migrate::migrate(&pool, backend, &shown).await?;
    Ok(pool)
}

/// A SQLite URL that creates the file when it is missing, unless the caller chose a mode.
fn with_create_if_missing(url: &str) -> String {
    match url.split_once('?') {
        Some((_, query)) if query.split('&').any(|p| p.starts_with("mode=")) => url.to_owned(),
        Some(_) => format!("{url}&mode=rwc"),
        None => format!("{url}?mode=rwc"),
    }
}

/// The URL with any password replaced, fit for error messages and logs.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_select_the_backend() {
        assert_eq!(Backend::from_url("sqlite://a.db").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::from_url("sqlite:a.db").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::from_url("postgres://h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::from_url("postgresql://h/db").unwrap(),
            Backend::Postgres
        );
        for bad in ["mysql://h/db", "intake.db", "sqlite::memory:"] {
            let err = Backend::from_url(bad).unwrap_err();
            assert_eq!(err.code(), "ledger_url", "{bad}");
        }
    }

    #[test]
    fn sqlite_urls_create_the_file_unless_a_mode_is_given() {
        assert_eq!(
            with_create_if_missing("sqlite://a.db"),
            "sqlite://a.db?mode=rwc"
        );
        assert_eq!(
            with_create_if_missing("sqlite://a.db?cache=private"),
            "sqlite://a.db?cache=private&mode=rwc"
        );
        assert_eq!(
            with_create_if_missing("sqlite://a.db?mode=ro"),
            "sqlite://a.db?mode=ro"
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://intake:s3cret@db:5432/intake?sslmode=require"),
            "postgres://intake:***@db:5432/intake?sslmode=require"
        );
        assert_eq!(
            redact("postgres://intake@db/intake"),
            "postgres://intake@db/intake"
        );
        assert_eq!(redact("sqlite://intake.db"), "sqlite://intake.db");
    }
}
