//! Every default of `pipeline.toml`, in one place: the `#[serde(default = ...)]` functions
//! and `Default` impls of the section types call these, and so do crates that need a
//! default without a config (a worker built in a test, a replay without a key template).

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
