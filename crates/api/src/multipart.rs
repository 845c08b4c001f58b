//! The multipart calls after `POST /v1/uploads`: signed URLs for parts (each of its exact
//! length), completion with the parts' ETags, and abort. Only the file's owner may call
//! them, and only while the upload is open: after an abort they answer `409
//! upload_aborted`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use intake_aws::AwsError;
use intake_aws::error::is_code;
use intake_aws::presign;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::files::{FileSummary, owned_upload, summary};
use crate::state::{AppState, now_ms, rfc3339};

/// Part URLs signed per request: enough for a browser's window of parallel parts.
const MAX_PARTS_PER_REQUEST: usize = 100;

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
        (status = 409, description = "Not a multipart upload, already completed, or aborted (`upload_aborted`)", body = ErrorBody),
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
    still_in_s3(&state, &entry, &upload_id).await?;
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

/// Refuses an upload S3 no longer has: aborted (`DELETE /v1/uploads/{id}`, possibly by
/// another client of the same tenant) or expired by the bucket's lifecycle rule. URLs for
/// its parts would only fail later, at the client's PUT, with a less helpful error.
async fn still_in_s3(
    state: &AppState,
    entry: &intake_store::UploadEntry,
    upload_id: &str,
) -> Result<(), ApiError> {
    let listed = state
        .aws
        .s3
        .list_parts()
        .bucket(&entry.record.bucket)
        .key(&entry.record.key)
        .upload_id(upload_id)
        .max_parts(1)
        .send()
        .await;
    match listed {
        Ok(_) => Ok(()),
        Err(e) if is_code(&e, &["NoSuchUpload"]) => Err(aborted(&entry.record.file_id)),
        Err(e) => Err(ApiError::unavailable(
            "checking that the multipart upload is open",
            aws_sdk_s3::error::DisplayErrorContext(e),
        )),
    }
}

fn aborted(file_id: &str) -> ApiError {
    ApiError::conflict(
        "upload_aborted",
        format!(
            "the multipart upload of file {file_id} was aborted (DELETE /v1/uploads/{file_id}, or \
             expired unfinished) and its parts are gone; sign a new upload with POST /v1/uploads"
        ),
    )
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
        (status = 409, description = "Not a multipart upload, or aborted (`upload_aborted`)", body = ErrorBody),
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
    .map_err(|e| match &e {
        AwsError::Call { code: Some(code), .. } if code == "NoSuchUpload" => aborted(&file_id),
        _ => ApiError::bad_request(
            "complete_failed",
            format!("S3 refused to assemble the parts ({e}); check every part was uploaded and its ETag copied exactly"),
        ),
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
}
