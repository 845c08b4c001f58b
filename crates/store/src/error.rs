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

    #[error(
        "cannot migrate the state ledger at {url}: {source}. A migration that was already \
         applied must never be edited; if this database belongs to a newer Intake, run that \
         version instead"
    )]
    Migrate {
        url: String,
        #[source]
        source: sqlx::migrate::MigrateError,
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
            StoreError::Migrate { .. } => "ledger_migration",
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
            StoreError::Connect { .. } | StoreError::Query { .. } | StoreError::Contended { .. }
        )
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
