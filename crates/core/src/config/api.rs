//! `[api]`: the HTTP API of `intake serve`: its address, presigned URL lifetimes, multipart
//! sizes, bearer-token auth, service keys, rate limits and event-stream limits.

use serde::{Deserialize, Serialize};

use super::defaults;
use crate::size::ByteSize;

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
