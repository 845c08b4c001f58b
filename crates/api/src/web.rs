//! The web page (plain HTML, CSS and JavaScript embedded in the binary: no build step),
//! what it reads before sign-in (`GET /v1/client-config`), and development tokens.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::id_problem;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::state::{AppState, rfc3339};

const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const APP_CSS: &str = include_str!("../web/app.css");
/// Parts a browser uploads at once: more gains little on one connection pool and costs
/// memory in the tab.
const MAX_PARALLEL_PARTS: u32 = 4;
const DEV_TOKEN_TTL: Duration = Duration::from_secs(8 * 3600);

/// Headers of every page asset: no framing, no sniffing, no referrer, and a content
/// security policy that lets the page talk to the API and to S3 only.
fn page_headers(state: &AppState, content_type: &'static str) -> HeaderMap {
    let s3_origin = match &state.config.aws.endpoint_url {
        Some(endpoint) => endpoint.trim_end_matches('/').to_owned(),
        None => match state.aws.endpoint.strip_prefix("http") {
            Some(_) => state.aws.endpoint.trim_end_matches('/').to_owned(),
            None => "https://*.amazonaws.com".to_owned(),
        },
    };
    let csp = format!(
        "default-src 'self'; connect-src 'self' {s3_origin}; img-src 'self' data: blob: {s3_origin}; \
         style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self' {s3_origin}"
    );
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers
}

pub async fn index(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (page_headers(&state, "text/html; charset=utf-8"), INDEX_HTML)
}

pub async fn app_js(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        page_headers(&state, "text/javascript; charset=utf-8"),
        APP_JS,
    )
}

pub async fn app_css(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (page_headers(&state, "text/css; charset=utf-8"), APP_CSS)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientConfig {
    /// `POST /v1/dev/token` works (development only).
    pub dev_tokens: bool,
    /// Files of at least this many bytes are uploaded in parts.
    pub multipart_threshold: u64,
    pub multipart_part_size: u64,
    pub max_parallel_parts: u32,
    /// What may be uploaded: declared types and the largest size, per class.
    pub classes: BTreeMap<String, ClassLimits>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClassLimits {
    pub types: Vec<String>,
    pub max_size: u64,
}

/// What a client needs before sign-in: upload limits and whether dev tokens exist.
#[utoipa::path(get, path = "/v1/client-config", tag = "web",
    responses((status = 200, description = "Client settings", body = ClientConfig)))]
pub async fn client_config(State(state): State<Arc<AppState>>) -> Json<ClientConfig> {
    let api = &state.config.api;
    Json(ClientConfig {
        dev_tokens: api.dev_tokens,
        multipart_threshold: api.multipart_threshold.0,
        multipart_part_size: api.multipart_part_size.0,
        max_parallel_parts: MAX_PARALLEL_PARTS,
        classes: state
            .config
            .classes
            .iter()
            .map(|(name, class)| {
                (
                    name.clone(),
                    ClassLimits {
                        types: class.types.clone(),
                        max_size: class.max_size.0,
                    },
                )
            })
            .collect(),
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevTokenRequest {
    #[schema(example = "tenant-a")]
    pub tenant: String,
    #[schema(example = "user-1")]
    pub user: String,
    #[serde(default)]
    pub admin: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DevToken {
    pub token: String,
    pub expires_at: String,
}

/// A token for any tenant and user, only when `[api] dev_tokens = true` (development).
#[utoipa::path(post, path = "/v1/dev/token", tag = "web",
    request_body = DevTokenRequest,
    responses(
        (status = 200, description = "A bearer token", body = DevToken),
        (status = 400, description = "Bad tenant or user", body = ErrorBody),
        (status = 404, description = "Dev tokens are off", body = ErrorBody),
        (status = 413, description = "Request body over the limit", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Body fields missing or of the wrong type", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn dev_token(
    State(state): State<Arc<AppState>>,
    ApiJson(request): ApiJson<DevTokenRequest>,
) -> Result<Json<DevToken>, ApiError> {
    if !state.config.api.dev_tokens {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "dev tokens are off; sign in with a token from your identity provider (or set [api] dev_tokens = true in development)",
        ));
    }
    for (field, value) in [("tenant", &request.tenant), ("user", &request.user)] {
        if let Some(problem) = id_problem(value) {
            return Err(ApiError::bad_request(
                "invalid_identity",
                format!("{field} {value:?} {problem}; use letters, digits, '-' or '_'"),
            ));
        }
    }
    let (token, expires) = state
        .auth
        .dev_token(&request.tenant, &request.user, request.admin, DEV_TOKEN_TTL)
        .ok_or_else(|| ApiError::internal("issuing a dev token", "dev tokens are not set up"))?;
    tracing::warn!(tenant = %request.tenant, user = %request.user, "issued a development token");
    Ok(Json(DevToken {
        token,
        expires_at: rfc3339(expires * 1000),
    }))
}
