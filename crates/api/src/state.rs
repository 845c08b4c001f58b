//! What every handler shares: the validated config and the names derived from it, the AWS
//! clients, the ledger, the authenticator, rate limits, event stream slots and metrics.

use intake_aws::AwsClients;
use intake_core::names::BucketRole;
use intake_core::{PipelineConfig, ResourceNames};
use intake_store::Ledger;

use crate::auth::Authenticator;
use crate::limits::RateLimits;
use crate::metrics::ApiMetrics;
use crate::streams::StreamSlots;

pub struct AppState {
    pub config: PipelineConfig,
    pub names: ResourceNames,
    pub aws: AwsClients,
    pub ledger: Ledger,
    pub auth: Authenticator,
    pub limits: RateLimits,
    pub metrics: ApiMetrics,
    /// Open event streams, capped per tenant and per process.
    pub streams: StreamSlots,
    /// The AWS account, read once (STS) for the events topic's ARN.
    pub account: tokio::sync::OnceCell<String>,
    /// Becomes true when the server stops: event streams end.
    pub shutting_down: tokio::sync::watch::Receiver<bool>,
}

impl AppState {
    pub fn uploads_bucket(&self) -> &str {
        self.names.bucket(BucketRole::Uploads)
    }
}

/// Milliseconds since the epoch, as the ledger stores times: Intake's one clock.
pub use intake_core::clock::now_ms;

/// RFC 3339 in UTC, as every time in the API's JSON.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
