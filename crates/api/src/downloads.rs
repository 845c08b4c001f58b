//! `GET /v1/files/{file_id}/download`: a presigned GET of the promoted original (exact
//! store version, `attachment` with the user's filename) or of a rendition, only once the
//! file is scanned clean and cataloged; never of the uploads or quarantine buckets.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::files::{catalog_entry, owned_upload, summary};
use crate::state::{AppState, now_ms, rfc3339};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DownloadQuery {
    /// A rendition's name (e.g. `thumb`); the original when absent.
    pub rendition: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DownloadResponse {
    /// A presigned GET, valid until `expires_at`.
    pub url: String,
    pub expires_at: String,
    pub filename: String,
}

/// A presigned download of the original or a rendition, for a promoted file only.
#[utoipa::path(
    get, path = "/v1/files/{file_id}/download", tag = "files",
    params(("file_id" = String, Path, description = "The file id from POST /v1/uploads"), DownloadQuery),
    responses(
        (status = 200, description = "A presigned GET", body = DownloadResponse),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such file for this tenant, or no such rendition", body = ErrorBody),
        (status = 409, description = "Not promoted yet, or never will be (quarantined, failed, deleted)", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "The database did not answer", body = ErrorBody),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn download(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(file_id): Path<String>,
    ApiQuery(query): ApiQuery<DownloadQuery>,
) -> Result<Json<DownloadResponse>, ApiError> {
    let entry = owned_upload(&state, &caller, &file_id).await?;
    let summary = summary(&entry);
    if !summary.ready {
        let (code, why) = match summary.state.as_str() {
            "awaiting_upload" | "processing" => (
                "not_ready",
                "it is not promoted yet (scanned clean and cataloged); follow GET /v1/files/{id}/events and retry when `ready` is true",
            ),
            _ => (
                "not_downloadable",
                "only promoted files can be downloaded, and this one never will be",
            ),
        };
        return Err(ApiError::conflict(
            code,
            format!("file {file_id} is {}: {why}", summary.state),
        ));
    }
    let record = catalog_entry(&state, &entry)
        .await?
        .map(|c| c.record)
        .ok_or_else(|| {
            ApiError::conflict(
                "not_ready",
                format!("file {file_id} is being cataloged; retry shortly"),
            )
        })?;
    let (bucket, key, version, filename, disposition) = match &query.rendition {
        None => (
            record.store.bucket.clone(),
            record.store.key.clone(),
            record.store.version.clone(),
            entry.record.filename.clone(),
            "attachment",
        ),
        Some(name) => {
            let Some(r) = record.renditions.iter().find(|r| &r.name == name) else {
                let names: Vec<&str> = record.renditions.iter().map(|r| r.name.as_str()).collect();
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "rendition_not_found",
                    if names.is_empty() {
                        format!("file {file_id} has no renditions (only images get them)")
                    } else {
                        format!("no rendition {name:?}; this file has {}", names.join(", "))
                    },
                ));
            };
            let ext = r.key.rsplit_once('.').map_or("", |(_, e)| e);
            let stem = entry
                .record
                .filename
                .rsplit_once('.')
                .map_or(entry.record.filename.as_str(), |(s, _)| s);
            (
                r.bucket.clone(),
                r.key.clone(),
                None,
                format!("{stem}-{name}.{ext}"),
                "inline",
            )
        }
    };
    let ttl = Duration::from_secs(u64::from(state.config.api.download_url_ttl_secs));
    let mut get = state
        .aws
        .s3
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .response_content_disposition(content_disposition(disposition, &filename));
    if let Some(version) = version {
        get = get.version_id(version);
    }
    let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(ttl)
        .map_err(|e| ApiError::internal("signing the download", e))?;
    let signed = get
        .presigned(config)
        .await
        .map_err(|e| ApiError::internal("signing the download", e))?;
    Ok(Json(DownloadResponse {
        url: signed.uri().to_owned(),
        expires_at: rfc3339(now_ms() + ttl.as_millis() as i64),
        filename,
    }))
}

/// Bytes escaped in `filename*`: all but RFC 3986's unreserved characters.
const FILENAME_ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `attachment; filename="photo.jpg"; filename*=UTF-8''photo.jpg` (RFC 6266): the ASCII
/// fallback for old clients, the exact UTF-8 name for the rest.
fn content_disposition(kind: &str, filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = utf8_percent_encode(filename, FILENAME_ESCAPED);
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_has_an_ascii_fallback_and_the_exact_name() {
        assert_eq!(
            content_disposition("attachment", "photo.jpg"),
            "attachment; filename=\"photo.jpg\"; filename*=UTF-8''photo.jpg"
        );
        assert_eq!(
            content_disposition("inline", "写真 1.jpg"),
            "inline; filename=\"__ 1.jpg\"; filename*=UTF-8''%E5%86%99%E7%9C%9F%201.jpg"
        );
    }
}
