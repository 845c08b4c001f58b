//! `GET /v1/files/{file_id}/events`: server-sent events of a file's state, read from the
//! ledger, one `state` event now and one per change, ending after a final state or when
//! the server stops. Open streams are capped per tenant and per process
//! ([`crate::streams`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use intake_store::UploadEntry;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::files::{FileSummary, owned_upload, summary_with_reason};
use crate::state::AppState;
use crate::streams::StreamSlot;

/// How often an event stream looks at the ledger. State changes take a stage's work (tens
/// of milliseconds at least), so half a second shows every step without loading the
/// database.
const EVENTS_POLL: Duration = Duration::from_millis(500);
/// An event stream ends after this long even if the file never settles; clients reconnect.
const EVENTS_MAX: Duration = Duration::from_secs(600);

/// One server-sent event of `GET /v1/files/{file_id}/events`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateEvent {
    /// Always `state`.
    pub event: String,
    /// A [`FileSummary`] as JSON.
    pub data: String,
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
        (status = 429, description = "Rate limited, or too many event streams open (`too_many_streams`)", body = ErrorBody),
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
    // Taken after the ownership check, so unknown ids cost no slot. It lives in the
    // stream's state: dropped when the stream ends or the client disconnects.
    let slot = state.streams.try_open(&caller.tenant).inspect_err(|_| {
        state.metrics.rate_limited("event_streams");
    })?;
    let started = tokio::time::Instant::now();
    struct Follow {
        state: Arc<AppState>,
        file_id: String,
        last: Option<FileSummary>,
        pending: Option<UploadEntry>,
        finished: bool,
        _slot: StreamSlot,
    }
    let follow = Follow {
        state,
        file_id,
        last: None,
        pending: Some(first),
        finished: false,
        _slot: slot,
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
