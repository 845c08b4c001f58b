//! The caller's files: list, detail (state, history, renditions) and deletion through the
//! deletion worker ([`crate::events`] streams their states, [`crate::downloads`] signs
//! their downloads). Every lookup goes through [`owned_upload`], so another tenant's file
//! answers exactly like a file that does not exist.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use intake_core::ObjectRef;
use intake_store::{CatalogEntry, FILE_STATES, UploadEntry, UploadFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::state::{AppState, now_ms, rfc3339};

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
pub(crate) async fn summary_with_reason(
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

pub(crate) async fn catalog_entry(
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
}
