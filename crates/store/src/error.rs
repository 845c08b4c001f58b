//! Errors of the state ledger, each naming what failed, on which object or URL, and what
//! to do about it.

use crate::types::VersionKey;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "unsupported ledger URL {url:?}: {reason}. Use sqlite://PATH (created if missing) \
         or postgres://USER:PASSWORD@HOST/DATABASE"
    )]
    UnsupportedUrl { url: String, reason: &'static str },

    #[error(
        "cannot open the state ledger at {url}: {source}. For SQLite check that the directory \
         exists and is writable; for PostgreSQL that the server is reachable and the \
         credentials and database name are right"
    )]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },

    #[error("cannot migrate the state ledger at {url}: {source}. {}", migrate_advice(.source))]
    Migrate {
        url: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    #[error(
        "cannot migrate the state ledger at {url}: another process has held the migration \
         lock ({lock}) for {waited_secs} s. Find the Intake process that is migrating this \
         database (it may be stuck); this one can be started again once it is gone"
    )]
    MigrationLock {
        url: String,
        lock: String,
        waited_secs: u64,
    },

    #[error(
        "cannot open the migration lock file {path} of the state ledger at {url}: {reason}. \
         The directory of the SQLite file must be writable by every Intake process"
    )]
    LockFile {
        url: String,
        path: String,
        reason: String,
    },

    #[error(
        "ledger query failed while {action} for {target}: {source}. The ledger is unchanged \
         by this call; retry it (the message stays on its queue until it succeeds)"
    )]
    Query {
        action: &'static str,
        target: String,
        #[source]
        source: sqlx::Error,
    },

    #[error(
        "ledger row for {target} holds {value} in {column}, which is out of range. The \
         database was written by something other than Intake; inspect that row"
    )]
    Corrupt {
        target: String,
        column: &'static str,
        value: i64,
    },

    #[error(
        "catalog record {target} could not be encoded: {reason}. This is a bug in Intake; \
         the message stays on its queue"
    )]
    Encode { target: String, reason: String },

    #[error(
        "catalog record {target} holds unreadable JSON in {column}: {reason}. The database \
         was written by something other than Intake; inspect that row"
    )]
    Decode {
        target: String,
        column: &'static str,
        reason: String,
    },

    #[error(
        "no outcome was recorded for stage {stage} of {target}, so there is nothing to mark \
         published. Call complete_stage first"
    )]
    NoOutcome { target: String, stage: String },

    #[error(
        "could not settle the claim of stage {stage} for {target}: it changed hands on every \
         one of {tries} tries. Leave the message on its queue; it will be redelivered"
    )]
    Contended {
        target: String,
        stage: String,
        tries: u32,
    },
}

impl StoreError {
    /// A short fixed code for metrics and logs (never includes keys or ids).
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::UnsupportedUrl { .. } => "ledger_url",
            StoreError::Connect { .. } => "ledger_unreachable",
            StoreError::Migrate { source, .. } => migrate_code(source),
            StoreError::MigrationLock { .. } => "ledger_migration_locked",
            StoreError::LockFile { .. } => "ledger_lock_file",
            StoreError::Query { .. } => "ledger_query",
            StoreError::Corrupt { .. } | StoreError::Decode { .. } => "ledger_corrupt",
            StoreError::Encode { .. } => "catalog_encode",
            StoreError::NoOutcome { .. } => "no_outcome",
            StoreError::Contended { .. } => "ledger_contended",
        }
    }

    /// Whether trying the same call again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Connect { .. }
                | StoreError::Query { .. }
                | StoreError::Contended { .. }
                | StoreError::MigrationLock { .. }
        )
    }
}

/// What to do about a failed migration. The advice about edited migrations is given only
/// when sqlx found an applied migration whose checksum changed, never for a statement that
/// failed (a lock, a lost connection, a race).
fn migrate_advice(error: &sqlx::migrate::MigrateError) -> &'static str {
    use sqlx::migrate::MigrateError as E;
    match error {
        E::VersionMismatch(_) => {
            "A migration that was already applied to this database has been edited since: \
             applied migrations must never be edited. Restore that migration's original text \
             and put the change in a new migration"
        }
        E::VersionMissing(_) | E::VersionTooNew(..) => {
            "The database holds a migration this Intake does not know: it was migrated by a \
             newer Intake. Run that version instead"
        }
        E::Dirty(_) => {
            "An earlier migration failed part way and left the database marked dirty. \
             Restore it from a backup, or finish that migration by hand and clear its row in \
             _sqlx_migrations"
        }
        _ => {
            "The database refused a migration statement. Check that the user may create \
             tables and indexes and that the database answers, then start Intake again"
        }
    }
}

fn migrate_code(error: &sqlx::migrate::MigrateError) -> &'static str {
    use sqlx::migrate::MigrateError as E;
    match error {
        E::VersionMismatch(_) => "ledger_migration_edited",
        E::VersionMissing(_) | E::VersionTooNew(..) => "ledger_too_new",
        E::Dirty(_) => "ledger_migration_dirty",
        _ => "ledger_migration",
    }
}

/// Builds the `map_err` closure for a failed query about one version.
pub(crate) fn query_failed<'a>(
    action: &'static str,
    v: &'a VersionKey,
) -> impl FnOnce(sqlx::Error) -> StoreError + 'a {
    move |source| StoreError::Query {
        action,
        target: v.to_string(),
        source,
    }
}
