//! `[lifecycle]`: expiry periods of the uploads, quarantine and logs buckets, and the store
//! bucket's own storage-class transitions.

use serde::{Deserialize, Serialize};

use super::defaults;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleSection {
    #[serde(default = "defaults::abort_incomplete_multipart_days")]
    pub abort_incomplete_multipart_days: u32,
    #[serde(default = "defaults::uploads_noncurrent_days")]
    pub uploads_noncurrent_days: u32,
    #[serde(default = "defaults::quarantine_expiry_days")]
    pub quarantine_expiry_days: u32,
    #[serde(default = "defaults::logs_expiry_days")]
    pub logs_expiry_days: u32,
    #[serde(default)]
    pub transitions: Vec<Transition>,
}

impl Default for LifecycleSection {
    fn default() -> Self {
        LifecycleSection {
            abort_incomplete_multipart_days: defaults::abort_incomplete_multipart_days(),
            uploads_noncurrent_days: defaults::uploads_noncurrent_days(),
            quarantine_expiry_days: defaults::quarantine_expiry_days(),
            logs_expiry_days: defaults::logs_expiry_days(),
            transitions: Vec::new(),
        }
    }
}

/// A storage-class transition rule of the store bucket.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    pub id: String,
    #[serde(default)]
    pub prefix: String,
    pub after_days: u32,
    pub storage_class: String,
}
