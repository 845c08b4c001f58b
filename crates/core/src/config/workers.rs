//! What `intake run` needs beyond the stages: `[ledger]` (where the ledger lives),
//! `[workers]` (the bounds of one process) and `[deletion]` (the deletion worker).

use serde::{Deserialize, Serialize};

use super::defaults;
use super::queues::QueueOverrides;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerSection {
    #[serde(default = "defaults::database_url")]
    pub database_url: String,
}

impl Default for LedgerSection {
    fn default() -> Self {
        LedgerSection {
            database_url: defaults::database_url(),
        }
    }
}

/// The bounds of one `intake run` process: messages in flight per stage (memory for
/// images is bounded separately, by `[stages.thumbnail.images] memory_budget`), and where
/// it serves its health endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkersSection {
    /// Messages each stage worker handles at once; more wait in the queue.
    #[serde(default = "defaults::worker_concurrency")]
    pub concurrency: u32,
    /// How long in-flight work may run on after SIGTERM before it is handed back.
    #[serde(default = "defaults::shutdown_grace_secs")]
    pub shutdown_grace_secs: u32,
    /// How long a worker's first acknowledgement, visibility change or outcome publish
    /// waits for others to share its batch call (up to 10 per call). 0 sends at once.
    #[serde(default = "defaults::batch_window_ms")]
    pub batch_window_ms: u32,
    /// Where `intake run` serves `/healthz`, `/readyz` and `/metrics` (a socket address such
    /// as `0.0.0.0:9464`); none by default: no health server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_bind: Option<String>,
}

impl WorkersSection {
    /// [`Self::health_bind`] as an address (validation refuses one that is not).
    pub fn health_addr(&self) -> Option<std::net::SocketAddr> {
        self.health_bind.as_deref().and_then(|a| a.parse().ok())
    }
}

impl Default for WorkersSection {
    fn default() -> Self {
        WorkersSection {
            concurrency: defaults::worker_concurrency(),
            shutdown_grace_secs: defaults::shutdown_grace_secs(),
            batch_window_ms: defaults::batch_window_ms(),
            health_bind: None,
        }
    }
}

/// The deletion worker: what a deletion removes, and its queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeletionSection {
    #[serde(default)]
    pub versions: DeleteVersions,
    #[serde(default)]
    pub queue: QueueOverrides,
}

/// Which stored versions a deletion removes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeleteVersions {
    /// Every version of the key in the store, uploads and quarantine buckets: the file
    /// and its whole history are gone.
    #[default]
    All,
    /// Only the versions this upload produced (its promoted copy and what the archive stage
    /// made of it); older versions of the same key stay.
    Current,
}
