//! `[stages.*]`: one stage's routes and queue overrides, and the tables only one stage
//! reads: the scan stage's scanner, the thumbnail stage's image limits and the archive
//! stage's policy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::defaults;
use super::queues::QueueOverrides;
use crate::size::ByteSize;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    #[serde(default)]
    pub queue: QueueOverrides,
    /// outcome -> stage name or terminal state.
    pub on: BTreeMap<String, String>,
    /// The virus scanner (scan stage only).
    #[serde(default)]
    pub scanner: Option<ScannerConfig>,
    /// Decoder limits and memory budget (thumbnail stage only).
    #[serde(default)]
    pub images: Option<ImageLimits>,
    /// Which objects move to which storage class (archive stage only).
    #[serde(default)]
    pub policy: Option<ArchivePolicy>,
}

/// Tag on a version that an archive rule leaves to S3 lifecycle; its value is the rule's
/// id, and the store bucket's lifecycle rule for that archive rule filters on it.
pub const ARCHIVE_TAG: &str = "intake-archive";

/// Where the archive stage leaves promoted objects: the first rule that matches an object
/// decides; objects no rule matches, or smaller than `min_size`, stay STANDARD.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ArchivePolicy {
    /// Smaller objects are kept: S3 bills the IA and Glacier classes for at least 128 KiB
    /// per object, and lifecycle transitions skip smaller objects anyway.
    #[serde(default = "defaults::archive_min_size")]
    pub min_size: ByteSize,
    #[serde(default)]
    pub rules: Vec<ArchiveRule>,
}

impl Default for ArchivePolicy {
    fn default() -> Self {
        ArchivePolicy {
            min_size: defaults::archive_min_size(),
            rules: Vec::new(),
        }
    }
}

/// One archive rule. The filters (`class`, `tenant`, `prefix`) are optional; every one
/// given must match.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveRule {
    /// Names the rule in outcomes, in the `intake-archive` tag and in its lifecycle rule.
    pub id: String,
    /// A content class from `[classes]`.
    pub class: Option<String>,
    pub tenant: Option<String>,
    /// The start of the object's key.
    pub prefix: Option<String>,
    /// STANDARD_IA, INTELLIGENT_TIERING, GLACIER_IR, GLACIER or DEEP_ARCHIVE.
    pub storage_class: String,
    #[serde(default)]
    pub apply: ArchiveApply,
    /// Days after promotion when the lifecycle rule moves the object (`lifecycle` only).
    pub after_days: Option<u32>,
}

impl ArchiveRule {
    /// Id of the store bucket's lifecycle rule for this archive rule (`lifecycle` only).
    /// The `intake-` prefix is reserved, so it cannot collide with `[[lifecycle.transitions]]`.
    pub fn lifecycle_rule_id(&self) -> String {
        format!("{ARCHIVE_TAG}-{}", self.id)
    }
}

/// When an archive rule changes the storage class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveApply {
    /// At once, by copying the version in place in the target class.
    #[default]
    Now,
    /// Later, by S3: the version is tagged and a lifecycle rule moves it `after_days` on.
    Lifecycle,
}

impl ArchiveApply {
    pub fn name(self) -> &'static str {
        match self {
            ArchiveApply::Now => "now",
            ArchiveApply::Lifecycle => "lifecycle",
        }
    }
}

/// What the thumbnail stage accepts before it decodes a pixel, and how much decoded memory
/// one worker may hold at once. Hostile images (decompression bombs, endless animations)
/// fail with a fixed code instead of exhausting the machine.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImageLimits {
    #[serde(default = "defaults::max_image_side")]
    pub max_width: u32,
    #[serde(default = "defaults::max_image_side")]
    pub max_height: u32,
    /// Width × height, checked from the header.
    #[serde(default = "defaults::max_pixels")]
    pub max_pixels: u64,
    /// Frames of an animation (GIF); only the first is rendered.
    #[serde(default = "defaults::max_frames")]
    pub max_frames: u32,
    /// What one decode may allocate.
    #[serde(default = "defaults::max_decoder_memory")]
    pub max_decoder_memory: ByteSize,
    /// Decoded memory all of a worker's images may hold together; concurrent images wait
    /// for room (a task count alone would let a few huge images exhaust the machine).
    #[serde(default = "defaults::image_memory_budget")]
    pub memory_budget: ByteSize,
    /// `Cache-Control` of every rendition (keys are immutable: a new upload gets a new key).
    #[serde(default = "defaults::rendition_cache_control")]
    pub cache_control: String,
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits {
            max_width: defaults::max_image_side(),
            max_height: defaults::max_image_side(),
            max_pixels: defaults::max_pixels(),
            max_frames: defaults::max_frames(),
            max_decoder_memory: defaults::max_decoder_memory(),
            memory_budget: defaults::image_memory_budget(),
            cache_control: defaults::rendition_cache_control(),
        }
    }
}

/// Which scanner the scan stage uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ScannerConfig {
    /// clamd over TCP (`tcp://host:port`) or a unix socket (`unix:///run/clamav/clamd.ctl`).
    Clamd {
        #[serde(default = "defaults::clamd_address")]
        address: String,
        #[serde(default = "defaults::clamd_timeout_secs")]
        timeout_secs: u32,
    },
    /// An external program that reads the object on stdin. Exit 0: clean; 1: infected (first
    /// line of stdout names the signature); 2: unscannable (stdout says why); anything else,
    /// or a timeout: an error, retried.
    Command {
        program: String,
        #[serde(default)]
        args: Vec<String>,
        #[serde(default = "defaults::clamd_timeout_secs")]
        timeout_secs: u32,
    },
    /// No scanning (development only): every object passes as `unscanned`, loudly.
    None,
}

impl Default for ScannerConfig {
    fn default() -> Self {
        ScannerConfig::Clamd {
            address: defaults::clamd_address(),
            timeout_secs: defaults::clamd_timeout_secs(),
        }
    }
}
