//! `POST /v1/uploads` and the multipart calls: checking a requested upload against the
//! content classes before anything is signed, recording who owns the key, and signing a
//! PUT (length and type in the signature), a POST (policy with `content-length-range`,
//! exact key and type) or a multipart upload (one signed URL per part, each of its exact
//! length). S3 enforces every limit; the API never sees the bytes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
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
use crate::files::{FileSummary, owned_upload, summary};
use crate::state::{AppState, now_ms, rfc3339};

/// The most a single PUT or POST may carry (S3's limit); larger files go in parts.
const MAX_SINGLE_UPLOAD: u64 = 5 * 1024 * 1024 * 1024;
/// Part URLs signed per request: enough for a browser's window of parallel parts.
const MAX_PARTS_PER_REQUEST: usize = 100;
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
    /// The user's name for the file; sanitised into the key (path parts, control
    /// characters and over-long names removed).
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartsRequest {
    /// Part numbers (1-based), at most 100 per request.
    pub part_numbers: Vec<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartsResponse {
    pub parts: Vec<PartUrl>,
    pub expires_at: String,
}

/// PUT exactly `size` bytes to `url`; keep the `ETag` response header for completing.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartUrl {
    pub part_number: u32,
    pub url: String,
    pub size: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    /// Every part, each with the ETag S3 returned for it.
    pub parts: Vec<CompletedPart>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompletedPart {
    pub part_number: u32,
    pub etag: String,
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

/// Signed URLs for some parts of a multipart upload.
#[utoipa::path(
    post, path = "/v1/uploads/{file_id}/parts", tag = "uploads",
    params(("file_id" = String, Path, description = "The file id from POST /v1/uploads")),
    request_body = PartsRequest,
    responses(
        (status = 200, description = "Part URLs", body = PartsResponse),
        (status = 400, description = "Bad part numbers", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such file for this tenant", body = ErrorBody),
        (status = 409, description = "Not a multipart upload, or already completed", body = ErrorBody),
        (status = 413, description = "Request body over the limit", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Body fields missing or of the wrong type", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "The database did not answer", body = ErrorBody),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn sign_parts(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(file_id): Path<String>,
    ApiJson(request): ApiJson<PartsRequest>,
) -> Result<Json<PartsResponse>, ApiError> {
    let entry = owned_upload(&state, &caller, &file_id).await?;
    let (upload_id, part_size, part_count) = open_multipart(&state, &entry)?;
    if request.part_numbers.is_empty() || request.part_numbers.len() > MAX_PARTS_PER_REQUEST {
        return Err(ApiError::bad_request(
            "invalid_parts",
            format!("ask for 1 to {MAX_PARTS_PER_REQUEST} part numbers per request"),
        ));
    }
    let ttl = Duration::from_secs(u64::from(state.config.api.upload_url_ttl_secs));
    let mut parts = Vec::with_capacity(request.part_numbers.len());
    let mut expires_at_ms = i64::MAX;
    for &number in &request.part_numbers {
        if number == 0 || number > part_count {
            return Err(ApiError::bad_request(
                "invalid_parts",
                format!("part {number} does not exist: this upload has parts 1 to {part_count}"),
            ));
        }
        let size = part_length(entry.record.size, part_size, number);
        let signed = presign::presign_part(
            &state.aws,
            &entry.record.bucket,
            &entry.record.key,
            &upload_id,
            number as i32,
            size,
            ttl,
        )
        .await
        .map_err(|e| ApiError::internal("signing a part URL", e))?;
        expires_at_ms = expires_at_ms.min(signed.expires_at_ms);
        parts.push(PartUrl {
            part_number: number,
            url: signed.url,
            size,
        });
    }
    Ok(Json(PartsResponse {
        parts,
        expires_at: rfc3339(expires_at_ms),
    }))
}

/// Size of part `number` (1-based): every part is `part_size` but the last.
fn part_length(total: u64, part_size: u64, number: u32) -> u64 {
    let start = part_size * u64::from(number - 1);
    part_size.min(total.saturating_sub(start))
}

/// The upload id and part plan of a multipart upload still open.
fn open_multipart(
    state: &AppState,
    entry: &intake_store::UploadEntry,
) -> Result<(String, u64, u32), ApiError> {
    let Some(upload_id) = entry.record.multipart_upload_id.clone() else {
        return Err(ApiError::conflict(
            "not_multipart",
            format!(
                "file {} was signed for a single {}; it has no parts",
                entry.record.file_id,
                entry.record.method.to_uppercase()
            ),
        ));
    };
    if entry.completed_ms.is_some() {
        return Err(ApiError::conflict(
            "already_completed",
            format!(
                "the multipart upload of file {} is complete",
                entry.record.file_id
            ),
        ));
    }
    let part_size = state.config.api.multipart_part_size.0;
    let part_count = presign::plan_parts(entry.record.size, part_size)
        .map_err(|e| ApiError::internal("planning parts", e))?;
    Ok((upload_id, part_size, part_count))
}

/// Complete a multipart upload: S3 assembles the parts and the pipeline starts.
#[utoipa::path(
    post, path = "/v1/uploads/{file_id}/complete", tag = "uploads",
    params(("file_id" = String, Path, description = "The file id from POST /v1/uploads")),
    request_body = CompleteRequest,
    responses(
        (status = 200, description = "Completed; the file is processing", body = FileSummary),
        (status = 400, description = "Parts missing, out of order or with a bad ETag", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such file for this tenant", body = ErrorBody),
        (status = 409, description = "Not a multipart upload", body = ErrorBody),
        (status = 413, description = "Request body over the limit", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Body fields missing or of the wrong type", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "S3 or the database did not answer", body = ErrorBody),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn complete_upload(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(file_id): Path<String>,
    ApiJson(request): ApiJson<CompleteRequest>,
) -> Result<Json<FileSummary>, ApiError> {
    let entry = owned_upload(&state, &caller, &file_id).await?;
    if entry.completed_ms.is_some() {
        // A retried completion (the first answer was lost) gets the same answer.
        return Ok(Json(summary(&entry)));
    }
    let (upload_id, _, part_count) = open_multipart(&state, &entry)?;
    let numbers: Vec<u32> = request.parts.iter().map(|p| p.part_number).collect();
    let expected: Vec<u32> = (1..=part_count).collect();
    if numbers != expected {
        return Err(ApiError::bad_request(
            "invalid_parts",
            format!("send every part once, in order: parts 1 to {part_count}"),
        ));
    }
    let parts: Vec<(i32, String)> = request
        .parts
        .into_iter()
        .map(|p| (p.part_number as i32, p.etag))
        .collect();
    presign::complete_multipart(
        &state.aws,
        &entry.record.bucket,
        &entry.record.key,
        &upload_id,
        &parts,
    )
    .await
    .map_err(|e| {
        ApiError::bad_request(
            "complete_failed",
            format!("S3 refused to assemble the parts ({e}); check every part was uploaded and its ETag copied exactly"),
        )
    })?;
    state
        .ledger
        .upload_completed(&file_id, now_ms())
        .await
        .map_err(|e| ApiError::unavailable("recording the completion", e))?;
    let entry = owned_upload(&state, &caller, &file_id).await?;
    Ok(Json(summary(&entry)))
}

/// Abort a multipart upload; its parts are discarded.
#[utoipa::path(
    delete, path = "/v1/uploads/{file_id}", tag = "uploads",
    params(("file_id" = String, Path, description = "The file id from POST /v1/uploads")),
    responses(
        (status = 204, description = "Aborted (or already gone)"),
        (status = 400, description = "Both a token and an API key, or a bad X-Intake-User", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such file for this tenant", body = ErrorBody),
        (status = 409, description = "Not a multipart upload, or already completed", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "S3 or the database did not answer", body = ErrorBody),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn abort_upload(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(file_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let entry = owned_upload(&state, &caller, &file_id).await?;
    let (upload_id, _, _) = open_multipart(&state, &entry)?;
    presign::abort_multipart(
        &state.aws,
        &entry.record.bucket,
        &entry.record.key,
        &upload_id,
    )
    .await
    .map_err(|e| ApiError::unavailable("aborting the multipart upload", e))?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_lengths_cover_the_file_exactly() {
        let mib = 1024 * 1024;
        let total = 64 * mib + 3;
        let lengths: Vec<u64> = (1..=9).map(|n| part_length(total, 8 * mib, n)).collect();
        assert_eq!(lengths[..8], [8 * mib; 8]);
        assert_eq!(lengths[8], 3);
        assert_eq!(lengths.iter().sum::<u64>(), total);
    }

    #[test]
    fn declared_types_are_compared_bare_and_lowercase() {
        assert_eq!(normalise_type("Image/JPEG; charset=binary"), "image/jpeg");
        assert_eq!(normalise_type("  text/plain "), "text/plain");
    }
}
