//! The caller's files: list, detail (state, history, renditions), a server-sent event
//! stream of state changes, downloads of promoted versions only, and deletion through the
//! deletion worker. Every lookup goes through [`owned_upload`], so another tenant's file
//! answers exactly like a file that does not exist.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use intake_core::ObjectRef;
use intake_store::{CatalogEntry, FILE_STATES, UploadEntry, UploadFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::state::{AppState, now_ms, rfc3339};

/// How often an event stream looks at the ledger. State changes take a stage's work (tens
/// of milliseconds at least), so half a second shows every step without loading the
/// database.
const EVENTS_POLL: Duration = Duration::from_millis(500);
/// An event stream ends after this long even if the file never settles; clients reconnect.
const EVENTS_MAX: Duration = Duration::from_secs(600);
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

/// Where a file is, as clients see it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct FileSummary {
    pub file_id: String,
    pub filename: String,
    /// The type the uploader declared.
    pub content_type: String,
    pub size: u64,
    pub user: String,
    pub created_at: String,
    /// `awaiting_upload`, `processing`, `done`, `quarantined`, `failed`, `deleting` or
    /// `deleted`.
    #[schema(example = "processing")]
    pub state: String,
    /// The stage that runs next while `processing` (validate, scan, thumbnail, ...).
    pub stage: Option<String>,
    /// Downloadable: scanned clean, promoted and cataloged.
    pub ready: bool,
    /// Why a file is `quarantined` or `failed`.
    pub reason: Option<Reason>,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Reason {
    pub stage: String,
    pub outcome: String,
    pub code: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FileDetail {
    #[serde(flatten)]
    pub summary: FileSummary,
    /// Every recorded step of the current version, oldest first.
    pub history: Vec<Step>,
    pub renditions: Vec<Rendition>,
    /// Detected from the content (magic bytes), once cataloged.
    pub detected_type: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub sha256: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Step {
    pub stage: String,
    pub outcome: String,
    pub code: Option<String>,
    pub detail: Option<String>,
    pub at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Rendition {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub content_type: String,
}

/// One server-sent event of `GET /v1/files/{file_id}/events`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateEvent {
    /// Always `state`.
    pub event: String,
    /// A [`FileSummary`] as JSON.
    pub data: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FileList {
    pub files: Vec<FileSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only files in this state.
    pub state: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Another tenant's files (admin role only).
    pub tenant: Option<String>,
}

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

/// The upload `file_id` if the caller may see it (its tenant's, or any for an admin).
pub async fn owned_upload(
    state: &AppState,
    caller: &Caller,
    file_id: &str,
) -> Result<UploadEntry, ApiError> {
    if uuid::Uuid::parse_str(file_id).is_err() {
        return Err(ApiError::file_not_found(file_id));
    }
    let entry = state
        .ledger
        .upload_get(file_id)
        .await
        .map_err(|e| ApiError::unavailable("reading the file", e))?;
    match entry {
        Some(entry) if entry.record.tenant == caller.tenant || caller.admin => Ok(entry),
        Some(entry) => {
            tracing::warn!(
                file_id,
                owner = %entry.record.tenant,
                "a caller asked for another tenant's file"
            );
            Err(ApiError::file_not_found(file_id))
        }
        None => Err(ApiError::file_not_found(file_id)),
    }
}

pub fn summary(entry: &UploadEntry) -> FileSummary {
    let r = &entry.record;
    FileSummary {
        file_id: r.file_id.clone(),
        filename: r.filename.clone(),
        content_type: r.content_type.clone(),
        size: r.size,
        user: r.user.clone(),
        created_at: rfc3339(r.created_ms),
        state: entry.file_state.clone(),
        stage: (entry.file_state == "processing")
            .then(|| entry.ledger_state.clone())
            .flatten(),
        ready: entry.catalog_object_id.is_some()
            && matches!(entry.file_state.as_str(), "processing" | "done"),
        reason: None,
    }
}

/// The summary with the reason of a quarantine or failure, from the ledger's history.
async fn summary_with_reason(
    state: &AppState,
    entry: &UploadEntry,
) -> Result<FileSummary, ApiError> {
    let mut out = summary(entry);
    if matches!(out.state.as_str(), "quarantined" | "failed") {
        let steps = history(state, entry).await?;
        out.reason = steps
            .iter()
            .rev()
            .find(|t| t.outcome != "retry")
            .map(|t| Reason {
                stage: t.stage.clone(),
                outcome: t.outcome.clone(),
                code: t.code.clone(),
                detail: t.detail.as_deref().map(public_detail),
            });
    }
    Ok(out)
}

async fn history(
    state: &AppState,
    entry: &UploadEntry,
) -> Result<Vec<intake_store::Transition>, ApiError> {
    let Some(version) = &entry.version else {
        return Ok(Vec::new());
    };
    let versions = state
        .ledger
        .history(&entry.record.bucket, &entry.record.key)
        .await
        .map_err(|e| ApiError::unavailable("reading the file's history", e))?;
    Ok(versions
        .into_iter()
        .find(|v| &v.version == version)
        .map(|v| v.transitions)
        .unwrap_or_default())
}

async fn catalog_entry(
    state: &AppState,
    entry: &UploadEntry,
) -> Result<Option<CatalogEntry>, ApiError> {
    let Some(object_id) = &entry.catalog_object_id else {
        return Ok(None);
    };
    state
        .ledger
        .catalog_get(object_id)
        .await
        .map_err(|e| ApiError::unavailable("reading the catalog", e))
}

/// The caller's files, newest first.
#[utoipa::path(
    get, path = "/v1/files", tag = "files",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of files", body = FileList),
        (status = 400, description = "Bad state, limit or cursor", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Another tenant's files without the admin role", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "The database did not answer", body = ErrorBody),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list_files(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<FileList>, ApiError> {
    let tenant = match query.tenant {
        Some(tenant) if tenant != caller.tenant && !caller.admin => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden_tenant",
                "this token may only list its own tenant's files; leave out `tenant`",
            ));
        }
        Some(tenant) => tenant,
        None => caller.tenant.clone(),
    };
    if let Some(s) = &query.state
        && !FILE_STATES.contains(&s.as_str())
    {
        return Err(ApiError::bad_request(
            "invalid_state",
            format!("state {s:?} is none of {}", FILE_STATES.join(", ")),
        ));
    }
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit {limit}: use 1 to {MAX_PAGE}"),
        ));
    }
    if let Some(cursor) = &query.cursor
        && uuid::Uuid::parse_str(cursor).is_err()
    {
        return Err(ApiError::bad_request(
            "invalid_cursor",
            "cursor is not one this API returned; pass `next_cursor` from the previous page",
        ));
    }
    // One more than asked tells whether there is a next page.
    let mut entries = state
        .ledger
        .uploads_list(&UploadFilter {
            tenant,
            state: query.state,
            limit: limit + 1,
            before: query.cursor,
        })
        .await
        .map_err(|e| ApiError::unavailable("listing files", e))?;
    let more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    let mut files = Vec::with_capacity(entries.len());
    for entry in &entries {
        files.push(summary_with_reason(&state, entry).await?);
    }
    let next_cursor = more
        .then(|| files.last().map(|f| f.file_id.clone()))
        .flatten();
    Ok(Json(FileList { files, next_cursor }))
}

/// One file: state, history and renditions.
#[utoipa::path(
    get, path = "/v1/files/{file_id}", tag = "files",
    params(("file_id" = String, Path, description = "The file id from POST /v1/uploads")),
    responses(
        (status = 200, description = "The file", body = FileDetail),
        (status = 400, description = "Both a token and an API key, or a bad X-Intake-User", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such file for this tenant", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "The database did not answer", body = ErrorBody),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get_file(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(file_id): Path<String>,
) -> Result<Json<FileDetail>, ApiError> {
    let entry = owned_upload(&state, &caller, &file_id).await?;
    let summary = summary_with_reason(&state, &entry).await?;
    let history = history(&state, &entry)
        .await?
        .into_iter()
        .map(|t| Step {
            stage: t.stage,
            outcome: t.outcome,
            code: t.code,
            detail: t.detail.as_deref().map(public_detail),
            at: rfc3339(t.finished_ms),
        })
        .collect();
    let catalog = catalog_entry(&state, &entry).await?.map(|c| c.record);
    Ok(Json(FileDetail {
        summary,
        history,
        renditions: catalog
            .as_ref()
            .map(|c| {
                c.renditions
                    .iter()
                    .map(|r| Rendition {
                        name: r.name.clone(),
                        width: r.width,
                        height: r.height,
                        content_type: r.content_type.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        detected_type: catalog.as_ref().and_then(|c| c.content_type.clone()),
        width: catalog.as_ref().and_then(|c| c.width),
        height: catalog.as_ref().and_then(|c| c.height),
        sha256: catalog.map(|c| c.sha256),
    }))
}

fn is_final(state: &str) -> bool {
    matches!(state, "done" | "quarantined" | "failed" | "deleted")
}

/// Server-sent events of the file's state: one `state` event now and one per change,
/// ending after a final state.
#[utoipa::path(
    get, path = "/v1/files/{file_id}/events", tag = "files",
    params(("file_id" = String, Path, description = "The file id from POST /v1/uploads")),
    responses(
        (status = 200, description = "`text/event-stream` of `state` events, each a FileSummary", content_type = "text/event-stream", body = StateEvent),
        (status = 400, description = "Both a token and an API key, or a bad X-Intake-User", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such file for this tenant", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "The database did not answer", body = ErrorBody),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn file_events(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(file_id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let first = owned_upload(&state, &caller, &file_id).await?;
    let started = tokio::time::Instant::now();
    struct Follow {
        state: Arc<AppState>,
        file_id: String,
        last: Option<FileSummary>,
        pending: Option<UploadEntry>,
        finished: bool,
    }
    let follow = Follow {
        state,
        file_id,
        last: None,
        pending: Some(first),
        finished: false,
    };
    let stream = futures_util::stream::unfold(follow, move |mut f| async move {
        loop {
            if f.finished || started.elapsed() > EVENTS_MAX {
                return None;
            }
            let entry = match f.pending.take() {
                Some(entry) => Some(entry),
                None => {
                    let mut stopping = f.state.shutting_down.clone();
                    if *stopping.borrow() {
                        return None;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(EVENTS_POLL) => {}
                        _ = stopping.changed() => return None,
                    }
                    f.state.ledger.upload_get(&f.file_id).await.ok().flatten()
                }
            };
            // A database hiccup skips a beat rather than ending the stream.
            let Some(entry) = entry else { continue };
            let Ok(now) = summary_with_reason(&f.state, &entry).await else {
                continue;
            };
            if f.last.as_ref() == Some(&now) {
                continue;
            }
            f.finished = is_final(&now.state);
            let event = Event::default()
                .event("state")
                .json_data(&now)
                .unwrap_or_else(|_| Event::default().event("state"));
            f.last = Some(now);
            return Some((Ok(event), f));
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
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
    let mut encoded = String::new();
    for b in filename.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// A stage's detail as a client may see it: details often start with the internal object
/// (`s3://<bucket>/<key>?versionId=...: found Eicar-Signature`), which names buckets the
/// client has no business knowing; only what follows is kept.
fn public_detail(detail: &str) -> String {
    match detail
        .strip_prefix("s3://")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((_, reason)) => reason.to_owned(),
        None => detail.to_owned(),
    }
}

/// Delete a file: its stored versions, renditions and record, by the deletion worker.
#[utoipa::path(
    delete, path = "/v1/files/{file_id}", tag = "files",
    params(("file_id" = String, Path, description = "The file id from POST /v1/uploads")),
    responses(
        (status = 202, description = "Deletion queued (or already done)", body = FileSummary),
        (status = 400, description = "Both a token and an API key, or a bad X-Intake-User", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such file for this tenant", body = ErrorBody),
        (status = 409, description = "Nothing has been uploaded yet", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "SQS or the database did not answer", body = ErrorBody),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn delete_file(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(file_id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let entry = owned_upload(&state, &caller, &file_id).await?;
    if matches!(entry.file_state.as_str(), "deleting" | "deleted") {
        // Asked before: the first request is on its way; a second would do nothing more.
        return Ok((StatusCode::ACCEPTED, Json(summary(&entry))));
    }
    let Some(version) = entry.version.clone() else {
        return Err(ApiError::conflict(
            "not_uploaded",
            format!(
                "nothing has been uploaded for file {file_id} yet; an unused upload URL simply expires"
            ),
        ));
    };
    let object = ObjectRef {
        bucket: entry.record.bucket.clone(),
        key: entry.record.key.clone(),
        version_id: Some(version),
        etag: None,
        size: entry.record.size,
        tenant: Some(entry.record.tenant.clone()),
        user: Some(entry.record.user.clone()),
        sequencer: None,
    };
    let requested_by = format!("api:{}/{}", caller.tenant, caller.user);
    let now = now_ms();
    // Queued first, recorded second: a request that reached SQS is done even if the note
    // below fails, while a note without a request would show `deleting` forever.
    intake_ops::deletion::queue_deletion(&state.aws, &state.names, object, &requested_by, now)
        .await
        .map_err(|e| ApiError::unavailable("queueing the deletion", e))?;
    state.metrics.deletion_queued();
    state
        .ledger
        .upload_deletion_requested(&file_id, now)
        .await
        .map_err(|e| ApiError::unavailable("recording the deletion request", e))?;
    tracing::info!(file_id, "deletion queued");
    let entry = owned_upload(&state, &caller, &file_id).await?;
    Ok((StatusCode::ACCEPTED, Json(summary(&entry))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_lose_the_internal_object_name() {
        assert_eq!(
            public_detail("s3://p-quarantine/t/u/x.txt?versionId=abc: found Eicar: test"),
            "found Eicar: test"
        );
        assert_eq!(public_detail("size 0: empty"), "size 0: empty");
    }

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
