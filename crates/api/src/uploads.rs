//! `POST /v1/uploads`: checking a requested upload against the
//! content classes before anything is signed, recording who owns the key, and signing a
//! PUT (length and type in the signature), a POST (policy with `content-length-range`,
//! exact key and type) or a multipart upload (one signed URL per part, each of its exact
//! length; see [`crate::multipart`]). S3 enforces every limit; the API never sees the
//! bytes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use intake_aws::presign;
use intake_core::key_template::{fill_key, sanitize_filename};
use intake_store::UploadRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::state::{AppState, now_ms, rfc3339};

/// The most a single PUT or POST may carry (S3's limit); larger files go in parts.
const MAX_SINGLE_UPLOAD: u64 = 5 * 1024 * 1024 * 1024;
/// S3 keys hold at most 1024 bytes.
const MAX_KEY_BYTES: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UploadMethod {
    /// One PUT of the whole file, Content-Length and Content-Type signed.
    Put,
    /// A browser form POST with a signed policy.
    Post,
    /// Parts uploaded separately (in parallel), then completed.
    Multipart,
}

impl UploadMethod {
    fn name(self) -> &'static str {
        match self {
            UploadMethod::Put => "put",
            UploadMethod::Post => "post",
            UploadMethod::Multipart => "multipart",
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// The user's name for the file; sanitised into the key: path parts and leading dots
    /// removed, control, quote, shell-special and invisible characters replaced by `_`,
    /// over-long names shortened.
    #[schema(example = "photo.jpg")]
    pub filename: String,
    /// Exact size in bytes; the signature holds the upload to it.
    #[schema(example = 123456, minimum = 1)]
    pub size: u64,
    /// The file's type; it must be in one of the content classes, and validate later
    /// quarantines a file whose content is another type.
    #[schema(example = "image/jpeg")]
    pub content_type: String,
    /// `put` (default below the multipart threshold), `post` or `multipart` (default at and
    /// above it).
    pub method: Option<UploadMethod>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadResponse {
    /// Names the file in every other call.
    pub file_id: String,
    pub bucket: String,
    pub key: String,
    /// The filename as it is in the key.
    pub filename: String,
    pub method: UploadMethod,
    /// When the signed URLs stop working (RFC 3339).
    pub expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub put: Option<PutInstructions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post: Option<PostInstructions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multipart: Option<MultipartInstructions>,
}

/// PUT the file's bytes to `url` with exactly these headers.
#[derive(Debug, Serialize, ToSchema)]
pub struct PutInstructions {
    pub url: String,
    pub headers: BTreeMap<String, String>,
}

/// POST `multipart/form-data` to `url`: these fields first, then the file as `file`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PostInstructions {
    pub url: String,
    pub fields: BTreeMap<String, String>,
}

/// Ask for part URLs with `POST /v1/uploads/{file_id}/parts`, PUT every part, then
/// `POST /v1/uploads/{file_id}/complete` with the ETags.
#[derive(Debug, Serialize, ToSchema)]
pub struct MultipartInstructions {
    pub upload_id: String,
    /// Size of every part but the last.
    pub part_size: u64,
    pub part_count: u32,
}

/// Ask for an upload URL.
#[utoipa::path(
    post, path = "/v1/uploads", tag = "uploads",
    request_body = UploadRequest,
    responses(
        (status = 201, description = "Upload URL(s) signed", body = UploadResponse),
        (status = 400, description = "Bad filename, size or type", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 413, description = "Request body over the limit", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Body fields missing or of the wrong type", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "S3 or the database did not answer", body = ErrorBody),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn create_upload(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiJson(request): ApiJson<UploadRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let api = &state.config.api;
    let filename =
        sanitize_filename(&request.filename, api.max_filename_bytes as usize).map_err(|e| {
            ApiError::bad_request(
                "invalid_filename",
                format!(
                    "filename {:?}: {e}; send the file's own name, e.g. \"photo.jpg\"",
                    request.filename
                ),
            )
        })?;
    let content_type = normalise_type(&request.content_type);
    check_against_classes(&state, &content_type, request.size)?;
    let method = request
        .method
        .unwrap_or(if request.size >= api.multipart_threshold.0 {
            UploadMethod::Multipart
        } else {
            UploadMethod::Put
        });
    if method != UploadMethod::Multipart && request.size > MAX_SINGLE_UPLOAD {
        return Err(ApiError::bad_request(
            "too_large_for_single_upload",
            format!(
                "{} bytes is over S3's 5 GiB limit for one PUT or POST; use \"method\": \"multipart\"",
                request.size
            ),
        ));
    }
    let part_plan = if method == UploadMethod::Multipart {
        let part_size = api.multipart_part_size.0;
        let count = presign::plan_parts(request.size, part_size)
            .map_err(|e| ApiError::bad_request("invalid_size", e.to_string()))?;
        Some((part_size, count))
    } else {
        None
    };

    let file_id = uuid::Uuid::new_v4().to_string();
    let key = fill_key(
        &state.config.uploads.key_template,
        &caller.tenant,
        &caller.user,
        &file_id,
        &filename,
    );
    if key.len() > MAX_KEY_BYTES {
        return Err(ApiError::bad_request(
            "invalid_filename",
            "the key made from tenant, user and filename is over S3's 1024 bytes; use a shorter filename",
        ));
    }
    let bucket = state.uploads_bucket().to_owned();
    let ttl = Duration::from_secs(u64::from(api.upload_url_ttl_secs));
    let upload_id = match method {
        UploadMethod::Multipart => Some(
            presign::create_multipart(&state.aws, &bucket, &key, &content_type)
                .await
                .map_err(|e| ApiError::unavailable("starting a multipart upload", e))?,
        ),
        _ => None,
    };
    // The owner is recorded before any URL leaves the server, so a file that lands is
    // always findable by its owner.
    let record = UploadRecord {
        file_id: file_id.clone(),
        tenant: caller.tenant.clone(),
        user: caller.user.clone(),
        bucket: bucket.clone(),
        key: key.clone(),
        filename: filename.clone(),
        content_type: content_type.clone(),
        size: request.size,
        method: method.name().to_owned(),
        multipart_upload_id: upload_id.clone(),
        created_ms: now_ms(),
    };
    state
        .ledger
        .upload_insert(&record)
        .await
        .map_err(|e| ApiError::unavailable("recording the upload", e))?;

    let mut response = UploadResponse {
        file_id,
        bucket: bucket.clone(),
        key: key.clone(),
        filename,
        method,
        expires_at: String::new(),
        put: None,
        post: None,
        multipart: None,
    };
    let expires_at_ms = match method {
        UploadMethod::Put => {
            let put =
                presign::presign_put(&state.aws, &bucket, &key, &content_type, request.size, ttl)
                    .await
                    .map_err(|e| ApiError::internal("signing the upload URL", e))?;
            response.put = Some(PutInstructions {
                url: put.url,
                headers: put.headers.into_iter().collect(),
            });
            put.expires_at_ms
        }
        UploadMethod::Post => {
            let post = presign::presign_post(
                &state.aws,
                &bucket,
                &key,
                &content_type,
                request.size,
                request.size,
                ttl,
            )
            .await
            .map_err(|e| ApiError::internal("signing the upload form", e))?;
            response.post = Some(PostInstructions {
                url: post.url,
                fields: post.fields.into_iter().collect(),
            });
            post.expires_at_ms
        }
        UploadMethod::Multipart => {
            let (part_size, part_count) = part_plan.expect("planned above for multipart");
            response.multipart = Some(MultipartInstructions {
                upload_id: upload_id.unwrap_or_default(),
                part_size,
                part_count,
            });
            now_ms() + i64::from(api.upload_url_ttl_secs) * 1000
        }
    };
    response.expires_at = rfc3339(expires_at_ms);
    state.metrics.upload_signed(method.name());
    tracing::info!(file_id = %response.file_id, key = %response.key, method = method.name(), size = request.size, "upload signed");
    Ok((StatusCode::CREATED, Json(response)))
}

/// `image/JPEG; charset=x` → `image/jpeg`: classes list bare lowercase types.
fn normalise_type(declared: &str) -> String {
    declared
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The declared type must belong to a class, and the size fit that class, before anything
/// is signed: a file the pipeline would reject is refused here, where the user can be told.
fn check_against_classes(state: &AppState, content_type: &str, size: u64) -> Result<(), ApiError> {
    if size == 0 {
        return Err(ApiError::bad_request(
            "invalid_size",
            "size 0: an empty file has nothing to process; send the file's size in bytes",
        ));
    }
    let class = state
        .config
        .classes
        .iter()
        .find(|(_, class)| class.types.iter().any(|t| t == content_type));
    let Some((name, class)) = class else {
        let mut allowed: Vec<&str> = state
            .config
            .classes
            .values()
            .flat_map(|c| c.types.iter().map(String::as_str))
            .collect();
        allowed.sort_unstable();
        return Err(ApiError::bad_request(
            "type_not_allowed",
            format!(
                "content type {content_type:?} is not accepted; allowed: {}",
                allowed.join(", ")
            ),
        ));
    };
    if size > class.max_size.0 {
        return Err(ApiError::bad_request(
            "too_large",
            format!(
                "{size} bytes is over the {} limit of class {name} ({content_type})",
                class.max_size
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_are_compared_bare_and_lowercase() {
        assert_eq!(normalise_type("Image/JPEG; charset=binary"), "image/jpeg");
        assert_eq!(normalise_type("  text/plain "), "text/plain");
    }
}
