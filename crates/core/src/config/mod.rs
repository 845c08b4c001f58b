//! `pipeline.toml`: the types, their defaults (all in [`defaults`]), loading with located
//! errors ([`load`]) and validation without IO ([`validate`]).
//!
//! Loading is the only way to get a [`PipelineConfig`] that the rest of Intake trusts:
//! `PipelineConfig::load` parses, validates and reports every problem with
//! `file:line:column`, the field path and how to fix it.

mod load;
mod validate;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::size::ByteSize;
use crate::state_machine::{Edge, StageKind};

pub use load::{ConfigError, Problem};
pub use validate::RENDERABLE_TYPES;

/// The whole pipeline: names, queues, the state machine, content rules, lifecycle, alarms.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    pub pipeline: PipelineSection,
    #[serde(default)]
    pub aws: AwsSection,
    #[serde(default)]
    pub buckets: BucketOverrides,
    #[serde(default)]
    pub topics: TopicOverrides,
    #[serde(default)]
    pub queue_defaults: QueueSettings,
    pub stages: BTreeMap<String, StageConfig>,
    pub classes: BTreeMap<String, ContentClass>,
    #[serde(default)]
    pub uploads: UploadsSection,
    #[serde(default)]
    pub lifecycle: LifecycleSection,
    #[serde(default)]
    pub alarms: AlarmsSection,
    #[serde(default)]
    pub ledger: LedgerSection,
    #[serde(default)]
    pub workers: WorkersSection,
    #[serde(default)]
    pub deletion: DeletionSection,
    #[serde(default)]
    pub api: ApiSection,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    /// Prefix of every derived resource name.
    pub name: String,
    /// The stage fed by the uploads bucket's notifications.
    #[serde(default = "defaults::entry")]
    pub entry: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSection {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

/// Explicit bucket names; each one left out is `<pipeline.name>-<role>`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BucketOverrides {
    pub uploads: Option<String>,
    pub store: Option<String>,
    pub derivatives: Option<String>,
    pub quarantine: Option<String>,
    pub logs: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TopicOverrides {
    pub events: Option<String>,
    pub alerts: Option<String>,
}

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

/// A family of allowed uploads, judged by detected (magic-byte) type.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ContentClass {
    pub types: Vec<String>,
    pub max_size: ByteSize,
    /// Renditions the thumbnail stage makes of every object of this class (none: `skipped`).
    #[serde(default)]
    pub renditions: Vec<Rendition>,
}

/// One derived image: `thumb` 256×256 `cover`, `preview` 1024×1024 `contain`...
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rendition {
    /// Part of the rendition's key: lowercase letters, digits, `-` and `_`.
    pub name: String,
    pub width: u32,
    pub height: u32,
    #[serde(default)]
    pub fit: Fit,
    #[serde(default)]
    pub format: RenditionFormat,
    /// Encoder quality 1–100 (JPEG and WebP; PNG is lossless).
    #[serde(default = "defaults::rendition_quality")]
    pub quality: u8,
}

/// How the source is fitted into width × height. Neither ever enlarges the source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Scale to fill the box, then crop the overflow around the centre.
    Cover,
    /// Scale to fit inside the box, keeping the whole image.
    #[default]
    Contain,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RenditionFormat {
    /// WebP (it keeps alpha); PNG or JPEG only when the rendition is too large for WebP.
    #[default]
    Auto,
    /// JPEG has no alpha: transparent sources are flattened onto white.
    Jpeg,
    Webp,
    Png,
}

impl RenditionFormat {
    pub fn name(self) -> &'static str {
        match self {
            RenditionFormat::Auto => "auto",
            RenditionFormat::Jpeg => "jpeg",
            RenditionFormat::Webp => "webp",
            RenditionFormat::Png => "png",
        }
    }
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmsSection {
    #[serde(default = "defaults::alarms_enabled")]
    pub enabled: bool,
    #[serde(default = "defaults::alarm_period_secs")]
    pub period_secs: u32,
    #[serde(default = "defaults::failures_threshold")]
    pub failures_threshold: u32,
    #[serde(default = "defaults::oldest_message_age_secs")]
    pub oldest_message_age_secs: u32,
}

impl Default for AlarmsSection {
    fn default() -> Self {
        AlarmsSection {
            enabled: defaults::alarms_enabled(),
            period_secs: defaults::alarm_period_secs(),
            failures_threshold: defaults::failures_threshold(),
            oldest_message_age_secs: defaults::oldest_message_age_secs(),
        }
    }
}

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
/// images is bounded separately, by `[stages.thumbnail.images] memory_budget`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
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
}

impl Default for WorkersSection {
    fn default() -> Self {
        WorkersSection {
            concurrency: defaults::worker_concurrency(),
            shutdown_grace_secs: defaults::shutdown_grace_secs(),
            batch_window_ms: defaults::batch_window_ms(),
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

/// `[api]`: the HTTP API and web page of `intake serve`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Address `intake serve` listens on.
    #[serde(default = "defaults::api_bind")]
    pub bind: String,
    /// How long a presigned upload URL (PUT, POST or one part) stays valid.
    #[serde(default = "defaults::upload_url_ttl_secs")]
    pub upload_url_ttl_secs: u32,
    /// How long a presigned download URL stays valid.
    #[serde(default = "defaults::download_url_ttl_secs")]
    pub download_url_ttl_secs: u32,
    /// Files of at least this size are uploaded in parts (multipart) when the caller does
    /// not choose a method.
    #[serde(default = "defaults::multipart_threshold")]
    pub multipart_threshold: ByteSize,
    /// Size of every part but the last; S3 allows 5 MiB to 5 GiB and at most 10,000 parts.
    #[serde(default = "defaults::multipart_part_size")]
    pub multipart_part_size: ByteSize,
    /// Longest sanitised filename kept in a key, in bytes; longer names are shortened
    /// (keeping the extension).
    #[serde(default = "defaults::max_filename_bytes")]
    pub max_filename_bytes: u32,
    /// Largest request body the API reads (JSON requests only: files go to S3 directly).
    #[serde(default = "defaults::api_body_limit")]
    pub body_limit: ByteSize,
    /// Development only: `POST /v1/dev/token` issues a token for any tenant, and the web
    /// page shows a button for it. Never enable this where real users can reach the API.
    #[serde(default)]
    pub dev_tokens: bool,
    #[serde(default)]
    pub auth: ApiAuth,
    /// Service API keys, one or more per tenant, for server-to-server calls.
    #[serde(default)]
    pub keys: Vec<ApiKey>,
    #[serde(default)]
    pub rate_limits: ApiRateLimits,
    /// Most `GET /v1/files/{id}/events` streams open at once in this process; beyond it
    /// a new stream is refused (`429 too_many_streams`). Each open stream reads the
    /// ledger twice a second.
    #[serde(default = "defaults::max_event_streams")]
    pub max_event_streams: u32,
    /// Most event streams one tenant may hold open at once in this process.
    #[serde(default = "defaults::max_event_streams_per_tenant")]
    pub max_event_streams_per_tenant: u32,
    /// Whether `GET /readyz` tells every caller what failed (endpoints, ARNs, bucket and
    /// queue names). Off: only authenticated admins see it; others get each check's
    /// name and whether it passed.
    #[serde(default)]
    pub readyz_detail: bool,
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection {
            bind: defaults::api_bind(),
            upload_url_ttl_secs: defaults::upload_url_ttl_secs(),
            download_url_ttl_secs: defaults::download_url_ttl_secs(),
            multipart_threshold: defaults::multipart_threshold(),
            multipart_part_size: defaults::multipart_part_size(),
            max_filename_bytes: defaults::max_filename_bytes(),
            body_limit: defaults::api_body_limit(),
            dev_tokens: false,
            auth: ApiAuth::default(),
            keys: Vec::new(),
            rate_limits: ApiRateLimits::default(),
            max_event_streams: defaults::max_event_streams(),
            max_event_streams_per_tenant: defaults::max_event_streams_per_tenant(),
            readyz_detail: false,
        }
    }
}

/// `[api.auth]`: which bearer tokens (JWT) the API accepts and where the tenant, user and
/// admin role are in them.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiAuth {
    /// Required `iss` claim, when set.
    pub issuer: Option<String>,
    /// Required `aud` claim (one of), when set.
    pub audience: Option<String>,
    /// Name of the environment variable that holds the HS256 shared secret (the secret
    /// itself never goes in this file).
    pub hs256_secret_env: Option<String>,
    /// RS256/ES256 public keys as a JWKS document on disk (relative to the working directory).
    pub jwks_file: Option<String>,
    /// RS256/ES256 public keys fetched from a JWKS URL (refetched for an unknown `kid`).
    pub jwks_url: Option<String>,
    #[serde(default = "defaults::tenant_claim")]
    pub tenant_claim: String,
    #[serde(default = "defaults::user_claim")]
    pub user_claim: String,
    /// Claim holding the caller's roles (a string or a list of strings).
    #[serde(default = "defaults::roles_claim")]
    pub roles_claim: String,
    /// The role that may read and delete any tenant's files.
    #[serde(default = "defaults::admin_role")]
    pub admin_role: String,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(default = "defaults::jwt_leeway_secs")]
    pub leeway_secs: u32,
}

impl Default for ApiAuth {
    fn default() -> Self {
        ApiAuth {
            issuer: None,
            audience: None,
            hs256_secret_env: None,
            jwks_file: None,
            jwks_url: None,
            tenant_claim: defaults::tenant_claim(),
            user_claim: defaults::user_claim(),
            roles_claim: defaults::roles_claim(),
            admin_role: defaults::admin_role(),
            leeway_secs: defaults::jwt_leeway_secs(),
        }
    }
}

/// One service API key (`[[api.keys]]`), sent as `X-Api-Key`. Only its SHA-256 is stored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// Names the key in logs, e.g. "billing-backend".
    pub name: String,
    pub tenant: String,
    /// Lowercase hex SHA-256 of the key (`printf %s "$KEY" | sha256sum`).
    pub sha256: String,
}

/// `[api.rate_limits]`: token buckets per client IP and per tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiRateLimits {
    #[serde(default = "defaults::per_ip_per_minute")]
    pub per_ip_per_minute: u32,
    #[serde(default = "defaults::per_tenant_per_minute")]
    pub per_tenant_per_minute: u32,
    /// Requests allowed at once above the steady rate.
    #[serde(default = "defaults::rate_burst")]
    pub burst: u32,
}

impl Default for ApiRateLimits {
    fn default() -> Self {
        ApiRateLimits {
            per_ip_per_minute: defaults::per_ip_per_minute(),
            per_tenant_per_minute: defaults::per_tenant_per_minute(),
            burst: defaults::rate_burst(),
        }
    }
}

/// Every default of `pipeline.toml`, in one place.
pub mod defaults {
    use crate::size::ByteSize;

    pub fn entry() -> String {
        "validate".into()
    }
    pub fn visibility_timeout_secs() -> u32 {
        120
    }
    pub fn wait_time_secs() -> u32 {
        20
    }
    pub fn max_receive_count() -> u32 {
        5
    }
    pub fn retention_secs() -> u32 {
        4 * 24 * 3600
    }
    pub fn dlq_retention_secs() -> u32 {
        14 * 24 * 3600
    }
    pub fn key_template() -> String {
        "{tenant}/{user}/{uuid}-{filename}".into()
    }
    pub fn abort_incomplete_multipart_days() -> u32 {
        1
    }
    pub fn uploads_noncurrent_days() -> u32 {
        7
    }
    pub fn quarantine_expiry_days() -> u32 {
        30
    }
    pub fn logs_expiry_days() -> u32 {
        90
    }
    pub fn alarms_enabled() -> bool {
        true
    }
    pub fn alarm_period_secs() -> u32 {
        300
    }
    pub fn failures_threshold() -> u32 {
        1
    }
    pub fn oldest_message_age_secs() -> u32 {
        900
    }
    pub fn clamd_address() -> String {
        "tcp://127.0.0.1:3310".into()
    }
    pub fn clamd_timeout_secs() -> u32 {
        120
    }
    pub fn worker_concurrency() -> u32 {
        8
    }
    /// Short enough that a lone object is not held up noticeably (five stages each wait
    /// at most three windows), long enough that a burst shares its calls.
    pub fn batch_window_ms() -> u32 {
        20
    }
    pub fn shutdown_grace_secs() -> u32 {
        25
    }
    pub fn database_url() -> String {
        "sqlite://intake.db".into()
    }
    pub fn rendition_quality() -> u8 {
        80
    }
    pub fn max_image_side() -> u32 {
        32_768
    }
    pub fn max_pixels() -> u64 {
        100_000_000
    }
    pub fn max_frames() -> u32 {
        256
    }
    pub fn max_decoder_memory() -> ByteSize {
        ByteSize(1024 * 1024 * 1024)
    }
    pub fn image_memory_budget() -> ByteSize {
        ByteSize(2 * 1024 * 1024 * 1024)
    }
    pub fn rendition_cache_control() -> String {
        "public, max-age=31536000, immutable".into()
    }
    pub fn archive_min_size() -> ByteSize {
        ByteSize(128 * 1024)
    }
    pub fn api_bind() -> String {
        "127.0.0.1:8080".into()
    }
    pub fn upload_url_ttl_secs() -> u32 {
        900
    }
    pub fn download_url_ttl_secs() -> u32 {
        300
    }
    pub fn multipart_threshold() -> ByteSize {
        ByteSize(64 * 1024 * 1024)
    }
    pub fn multipart_part_size() -> ByteSize {
        ByteSize(16 * 1024 * 1024)
    }
    pub fn max_filename_bytes() -> u32 {
        200
    }
    pub fn api_body_limit() -> ByteSize {
        ByteSize(256 * 1024)
    }
    pub fn tenant_claim() -> String {
        "tenant".into()
    }
    pub fn user_claim() -> String {
        "sub".into()
    }
    pub fn roles_claim() -> String {
        "roles".into()
    }
    pub fn admin_role() -> String {
        "intake-admin".into()
    }
    pub fn jwt_leeway_secs() -> u32 {
        30
    }
    pub fn per_ip_per_minute() -> u32 {
        600
    }
    pub fn per_tenant_per_minute() -> u32 {
        1200
    }
    pub fn rate_burst() -> u32 {
        60
    }
    /// The web page follows at most 3 files by stream per tab (it polls the rest), so 16
    /// leaves room for several tabs and a backend; 256 at two ledger reads a second each
    /// is a load SQLite takes in its stride.
    pub fn max_event_streams() -> u32 {
        256
    }
    pub fn max_event_streams_per_tenant() -> u32 {
        16
    }
}

impl PipelineConfig {
    /// Stage kinds in the config, in pipeline order. Only meaningful after validation, which
    /// guarantees every stage name is a known kind.
    pub fn stage_kinds(&self) -> Vec<StageKind> {
        StageKind::ALL
            .into_iter()
            .filter(|k| self.stages.contains_key(k.name()))
            .collect()
    }

    pub fn entry_stage(&self) -> StageKind {
        self.pipeline
            .entry
            .parse()
            .expect("validated: entry is a known stage")
    }

    /// The thumbnail stage's limits (defaults when `[stages.thumbnail.images]` is absent).
    pub fn image_limits(&self) -> ImageLimits {
        self.stages
            .get(StageKind::Thumbnail.name())
            .and_then(|s| s.images.clone())
            .unwrap_or_default()
    }

    /// The archive stage's policy (keep everything when `[stages.archive.policy]` is absent).
    pub fn archive_policy(&self) -> ArchivePolicy {
        self.stages
            .get(StageKind::Archive.name())
            .and_then(|s| s.policy.clone())
            .unwrap_or_default()
    }

    /// Effective queue settings of a stage (defaults plus its overrides).
    pub fn queue_settings(&self, stage: StageKind) -> QueueSettings {
        if stage == StageKind::Delete {
            return self.deletion.queue.apply_to(self.queue_defaults);
        }
        self.stages
            .get(stage.name())
            .map(|s| s.queue.apply_to(self.queue_defaults))
            .unwrap_or(self.queue_defaults)
    }

    /// Where `outcome` of `stage` leads: a stage or terminal state from `pipeline.toml`, or
    /// the deletion worker's fixed route. `None` when nothing routes it.
    pub fn route(&self, stage: StageKind, outcome: &str) -> Option<String> {
        if let Some(fixed) = stage.fixed_route(outcome) {
            return Some(fixed.to_owned());
        }
        self.stages.get(stage.name())?.on.get(outcome).cloned()
    }

    /// Kinds with a queue to provision and consume: the configured stages and the
    /// deletion worker.
    pub fn queue_kinds(&self) -> Vec<StageKind> {
        let mut kinds = self.stage_kinds();
        kinds.push(StageKind::Delete);
        kinds
    }

    /// All edges of the state machine. Only meaningful after validation.
    pub fn edges(&self) -> Vec<Edge> {
        let mut edges = Vec::new();
        for kind in self.stage_kinds() {
            for (outcome, target) in &self.stages[kind.name()].on {
                edges.push(Edge {
                    from: kind,
                    outcome: outcome.clone(),
                    to: target
                        .parse()
                        .expect("validated: targets are stages or terminals"),
                });
            }
        }
        edges
    }

    /// The same pipeline under another name: every derived resource name changes with it.
    /// Tests use this to give each run its own buckets, queues and topics.
    pub fn renamed(mut self, name: &str) -> Self {
        self.pipeline.name = name.to_owned();
        self.buckets = BucketOverrides::default();
        self.topics = TopicOverrides::default();
        self
    }
}
