//! `[uploads]`: the key template, CORS origins, what validate does with mismatched names
//! and Content-Types, and how S3 tells the entry queue about new uploads.

use serde::{Deserialize, Serialize};

use super::defaults;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UploadsSection {
    #[serde(default = "defaults::key_template")]
    pub key_template: String,
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// What validate does when the file name's extension contradicts the detected type.
    #[serde(default)]
    pub extension_mismatch: MismatchPolicy,
    /// What validate does when the declared Content-Type contradicts the detected type.
    #[serde(default)]
    pub content_type_mismatch: MismatchPolicy,
    /// How S3 tells the entry queue about new uploads.
    #[serde(default)]
    pub notifications: NotificationRoute,
}

/// The route of the uploads bucket's ObjectCreated events to the entry stage's queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationRoute {
    /// A bucket notification (queue configuration) naming Put, Post and
    /// CompleteMultipartUpload, sent straight to the queue.
    #[default]
    Bucket,
    /// The bucket sends every event to EventBridge's default bus; a rule matching the
    /// uploads bucket and the reasons PutObject, PostObject and CompleteMultipartUpload
    /// targets the queue.
    EventBridge,
}

impl Default for UploadsSection {
    fn default() -> Self {
        UploadsSection {
            key_template: defaults::key_template(),
            cors_origins: Vec::new(),
            extension_mismatch: MismatchPolicy::default(),
            content_type_mismatch: MismatchPolicy::default(),
            notifications: NotificationRoute::default(),
        }
    }
}

/// `reject` (the default: the upload is quarantined as `type_mismatch`) or `ignore`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MismatchPolicy {
    #[default]
    Reject,
    Ignore,
}
