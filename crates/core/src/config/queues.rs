//! `[queue_defaults]` and each stage's `[stages.*.queue]`: SQS settings shared by every
//! stage queue, and the per-stage overrides laid over them.

use serde::{Deserialize, Serialize};

use super::defaults;

/// Queue settings shared by every stage unless the stage overrides them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    #[serde(default = "defaults::visibility_timeout_secs")]
    pub visibility_timeout_secs: u32,
    #[serde(default = "defaults::wait_time_secs")]
    pub wait_time_secs: u32,
    #[serde(default = "defaults::max_receive_count")]
    pub max_receive_count: u32,
    #[serde(default = "defaults::retention_secs")]
    pub retention_secs: u32,
    #[serde(default = "defaults::dlq_retention_secs")]
    pub dlq_retention_secs: u32,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            visibility_timeout_secs: defaults::visibility_timeout_secs(),
            wait_time_secs: defaults::wait_time_secs(),
            max_receive_count: defaults::max_receive_count(),
            retention_secs: defaults::retention_secs(),
            dlq_retention_secs: defaults::dlq_retention_secs(),
        }
    }
}

/// Per-stage overrides of [`QueueSettings`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueueOverrides {
    pub visibility_timeout_secs: Option<u32>,
    pub wait_time_secs: Option<u32>,
    pub max_receive_count: Option<u32>,
    pub retention_secs: Option<u32>,
    pub dlq_retention_secs: Option<u32>,
}

impl QueueOverrides {
    pub fn apply_to(&self, base: QueueSettings) -> QueueSettings {
        QueueSettings {
            visibility_timeout_secs: self
                .visibility_timeout_secs
                .unwrap_or(base.visibility_timeout_secs),
            wait_time_secs: self.wait_time_secs.unwrap_or(base.wait_time_secs),
            max_receive_count: self.max_receive_count.unwrap_or(base.max_receive_count),
            retention_secs: self.retention_secs.unwrap_or(base.retention_secs),
            dlq_retention_secs: self.dlq_retention_secs.unwrap_or(base.dlq_retention_secs),
        }
    }
}
