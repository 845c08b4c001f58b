//! `upload-app`: a small photo service built on Intake, the example of how an app uses it
//! and tests itself with `intake-testkit` (see `tests/photos.rs`).
//!
//! It uses only what an app team gets: Intake's HTTP API (`intake serve`, `docs/api.md`),
//! called as a backend with a service key. It never touches Intake's buckets, queues or
//! database, and never sees a photo's bytes: the browser uploads straight to S3 with the URL
//! Intake signed, and downloads with URLs Intake signs once the photo is scanned clean.
//!
//! - `POST /photos` `{"user", "filename", "size", "content_type"}`: asks Intake to sign a
//!   PUT for that user. Answers `201 {"id", "expires_at", "upload": {"url", "headers"}}`;
//!   the browser PUTs the bytes to `url` with those headers.
//! - `GET /photos/{id}[?wait_secs=N]`: the photo's state as Intake reports it
//!   (`awaiting_upload`, `processing`, `done`, `quarantined`, `failed`, ...), the reason for
//!   a quarantine or failure, and once it is downloadable, download URLs of the photo and
//!   its `thumb` rendition. With `wait_secs` (at most 120) the app first follows Intake's
//!   event stream of the file until it is final or the time is up (a long poll).
//!
//! Modules: [`intake`] (the API client), [`sse`] (reading the event stream).

pub mod intake;
pub mod sse;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::intake::{FileSummary, UploadRequest};
pub use crate::intake::{IntakeClient, IntakeError};

/// The longest `GET /photos/{id}?wait_secs=` holds a request.
pub const MAX_WAIT: Duration = Duration::from_secs(120);

/// The app: an Intake API client and the app's own record of its photos.
#[derive(Clone)]
pub struct App {
    intake: IntakeClient,
    /// Photo id (Intake's file id) -> the user who uploaded it. A real app keeps this in
    /// its own database; it is also what stops the app asking Intake about ids it never
    /// made.
    photos: Arc<Mutex<HashMap<String, String>>>,
}

impl App {
    /// An app talking to Intake through `intake`.
    pub fn new(intake: IntakeClient) -> App {
        App {
            intake,
            photos: Arc::default(),
        }
    }

    /// The HTTP routes.
    pub fn router(self) -> Router {
        Router::new()
            .route("/photos", post(create_photo))
            .route("/photos/{id}", get(show_photo))
            .with_state(self)
    }
}

/// Serve `app` on `listener` until `shutdown` completes (tests bind port 0).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app.router())
        .with_graceful_shutdown(shutdown)
        .await
}

/// `POST /photos`.
#[derive(Debug, Deserialize, Serialize)]
pub struct NewPhoto {
    pub user: String,
    pub filename: String,
    pub size: u64,
    pub content_type: String,
}

/// Where and how to upload.
#[derive(Debug, Deserialize, Serialize)]
pub struct Created {
    /// The photo's id, which is Intake's file id.
    pub id: String,
    /// When the upload URL stops working (RFC 3339).
    pub expires_at: String,
    pub upload: Upload,
}

/// A presigned PUT: send exactly these headers (Content-Length comes from the body).
#[derive(Debug, Deserialize, Serialize)]
pub struct Upload {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// `GET /photos/{id}`.
#[derive(Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Photo {
    pub id: String,
    /// The filename as Intake keeps it (sanitised).
    pub filename: String,
    /// Intake's state: `awaiting_upload` (nothing uploaded yet), `processing`, `done`,
    /// `quarantined`, `failed`, `deleting` or `deleted`.
    pub state: String,
    /// While processing: the stage that runs next.
    pub stage: Option<String>,
    /// For a quarantine or failure: `stage/outcome/code`.
    pub reason: Option<String>,
    /// Once downloadable: a presigned GET of the photo (valid a few minutes).
    pub download_url: Option<String>,
    /// Once downloadable, for images: a presigned GET of the `thumb` rendition.
    pub thumbnail_url: Option<String>,
}

/// `GET /photos/{id}` query.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShowQuery {
    /// Wait up to this many seconds (capped at [`MAX_WAIT`]) for the photo to be final.
    pub wait_secs: Option<u64>,
}

type Failure = (StatusCode, String);

/// What the app's own caller gets when Intake said no or did not answer.
fn intake_failure(e: IntakeError) -> Failure {
    let status = match &e {
        // Name, size or type refused: the caller's request is what to fix.
        IntakeError::Refused {
            status: 400 | 413 | 422,
            ..
        } => StatusCode::BAD_REQUEST,
        IntakeError::Refused { status: 429, .. } | IntakeError::Unreachable { .. } => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        // A refused service key (401), a photo Intake does not know (404), ...: the app's
        // setup is wrong, not the request.
        _ => StatusCode::BAD_GATEWAY,
    };
    (status, e.to_string())
}

async fn create_photo(
    State(app): State<App>,
    Json(new): Json<NewPhoto>,
) -> Result<(StatusCode, Json<Created>), Failure> {
    // Intake checks the rest of the user id (X-Intake-User); this keeps it a valid header.
    if new.user.is_empty() || new.user.chars().any(char::is_control) {
        return Err((
            StatusCode::BAD_REQUEST,
            "user must be non-empty, without control characters".into(),
        ));
    }
    let request = UploadRequest {
        filename: &new.filename,
        size: new.size,
        content_type: &new.content_type,
        method: "put",
    };
    let signed = app
        .intake
        .create_upload(&new.user, &request)
        .await
        .map_err(intake_failure)?;
    let Some(put) = signed.put else {
        return Err((
            StatusCode::BAD_GATEWAY,
            format!(
                "Intake signed file {} without PUT instructions although this app asked for method put; is the API of a matching version?",
                signed.file_id
            ),
        ));
    };
    app.photos
        .lock()
        .expect("the photo map is never left poisoned")
        .insert(signed.file_id.clone(), new.user);
    // Browsers refuse to set Content-Length (they derive it from the body), so it is not
    // handed to them; the signature still holds the upload to the declared size.
    let headers = put
        .headers
        .into_iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(Created {
            id: signed.file_id,
            expires_at: signed.expires_at,
            upload: Upload {
                url: put.url,
                headers,
            },
        }),
    ))
}

async fn show_photo(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Result<Json<Photo>, Failure> {
    let user = app
        .photos
        .lock()
        .expect("the photo map is never left poisoned")
        .get(&id)
        .cloned();
    let Some(user) = user else {
        return Err((StatusCode::NOT_FOUND, format!("no photo {id}")));
    };
    let file = match query.wait_secs {
        Some(secs) if secs > 0 => {
            let wait = Duration::from_secs(secs).min(MAX_WAIT);
            app.intake.wait_final(&user, &id, wait).await
        }
        _ => app.intake.file(&user, &id).await,
    }
    .map_err(intake_failure)?;
    app.photo(&user, file).await.map(Json)
}

impl App {
    /// What the app shows of `file`: its state, and download URLs once it is ready.
    async fn photo(&self, user: &str, file: FileSummary) -> Result<Photo, Failure> {
        let mut photo = Photo {
            reason: file.reason.as_ref().map(|r| {
                format!(
                    "{}/{}/{}",
                    r.stage,
                    r.outcome,
                    r.code.as_deref().unwrap_or("-")
                )
            }),
            id: file.file_id,
            filename: file.filename,
            state: file.state,
            stage: file.stage,
            download_url: None,
            thumbnail_url: None,
        };
        if !file.ready {
            return Ok(photo);
        }
        let original = self.intake.download(user, &photo.id, None).await;
        photo.download_url = Some(original.map_err(intake_failure)?.url);
        photo.thumbnail_url = match self.intake.download(user, &photo.id, Some("thumb")).await {
            Ok(thumb) => Some(thumb.url),
            // Only images get renditions.
            Err(e) if e.code() == Some("rendition_not_found") => None,
            Err(e) => return Err(intake_failure(e)),
        };
        Ok(photo)
    }
}
