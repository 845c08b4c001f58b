//! `upload-app`: a small photo service built on Intake, the example of how an app uses it
//! and tests itself with `intake-testkit` (see `tests/photos.rs`).
//!
//! - `POST /photos` `{"user", "filename", "size", "content_type"}`: the app makes the
//!   object key from Intake's key template and asks Intake for a presigned PUT URL; the
//!   browser uploads straight to S3. Answers `201 {"id", "key", "upload": {"url", "headers"}}`.
//! - `GET /photos/{id}`: the photo's state as Intake's ledger has it (`pending`,
//!   `processing`, `done`, `quarantined`, `failed`), the reason for a quarantine or
//!   failure, and, once done, a presigned URL of its `thumb` rendition.
//!
//! The app reads Intake's ledger (the same database the workers write) and never reads the
//! uploads bucket: a photo is only shown once the pipeline has scanned and promoted it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use intake_aws::AwsClients;
use intake_core::PipelineConfig;
use intake_core::key_template::{fill_key, sanitize_filename};
use intake_core::names::{BucketRole, ResourceNames};
use intake_store::Ledger;
use serde::{Deserialize, Serialize};

/// What the app needs from Intake: AWS clients, the pipeline config and its ledger.
#[derive(Clone)]
pub struct App {
    aws: AwsClients,
    uploads_bucket: String,
    key_template: String,
    max_filename_bytes: usize,
    ledger: Arc<Ledger>,
    /// The tenant this app uploads for.
    tenant: String,
    /// Photo id -> object key. A real app keeps this in its own database.
    photos: Arc<Mutex<HashMap<String, String>>>,
}

impl App {
    /// An app uploading for `tenant` into the pipeline `config` describes.
    pub fn new(aws: AwsClients, config: &PipelineConfig, ledger: Arc<Ledger>, tenant: &str) -> App {
        App {
            aws,
            uploads_bucket: ResourceNames::of(config)
                .bucket(BucketRole::Uploads)
                .to_owned(),
            key_template: config.uploads.key_template.clone(),
            max_filename_bytes: config.api.max_filename_bytes as usize,
            ledger,
            tenant: tenant.to_owned(),
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
    pub id: String,
    pub key: String,
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
    /// `pending` (not uploaded yet), `processing`, `done`, `quarantined` or `failed`.
    pub state: String,
    /// For a quarantine or failure: `stage/outcome/code` from Intake's ledger.
    pub reason: Option<String>,
    /// Once done: a presigned GET of the `thumb` rendition.
    pub thumbnail_url: Option<String>,
}

type Failure = (StatusCode, String);

fn unavailable(what: &str, e: impl std::fmt::Display) -> Failure {
    (StatusCode::SERVICE_UNAVAILABLE, format!("{what}: {e}"))
}

async fn create_photo(
    State(app): State<App>,
    Json(new): Json<NewPhoto>,
) -> Result<(StatusCode, Json<Created>), Failure> {
    let filename = sanitize_filename(&new.filename, app.max_filename_bytes)
        .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    if new.user.is_empty() || new.user.contains('/') {
        return Err((
            StatusCode::BAD_REQUEST,
            "user must be non-empty, without '/'".into(),
        ));
    }
    let id = ulid::Ulid::new();
    let hex = format!("{:032x}", id.0);
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    let key = fill_key(&app.key_template, &app.tenant, &new.user, &uuid, &filename);
    let put = intake_aws::presign::presign_put(
        &app.aws,
        &app.uploads_bucket,
        &key,
        &new.content_type,
        new.size,
        Duration::from_secs(900),
    )
    .await
    .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    let id = id.to_string().to_lowercase();
    app.photos.lock().unwrap().insert(id.clone(), key.clone());
    let headers = put
        .headers
        .into_iter()
        .filter(|(name, _)| name != "content-length")
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(Created {
            id,
            key,
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
) -> Result<Json<Photo>, Failure> {
    let key = app.photos.lock().unwrap().get(&id).cloned();
    let Some(key) = key else {
        return Err((StatusCode::NOT_FOUND, format!("no photo {id}")));
    };
    let versions = app
        .ledger
        .history(&app.uploads_bucket, &key)
        .await
        .map_err(|e| unavailable("reading Intake's ledger", e))?;
    // Newest version first; a photo key is uploaded once.
    let Some(latest) = versions.into_iter().next() else {
        return Ok(Json(Photo {
            id,
            state: "pending".into(),
            reason: None,
            thumbnail_url: None,
        }));
    };
    let mut photo = Photo {
        id,
        state: "processing".into(),
        reason: None,
        thumbnail_url: None,
    };
    match latest.state.as_str() {
        "done" => {
            photo.state = "done".into();
            photo.thumbnail_url = app.thumbnail_url(&key, &latest.version).await?;
        }
        state @ ("quarantined" | "failed") => {
            photo.state = state.into();
            photo.reason = latest
                .transitions
                .iter()
                .rev()
                .find(|t| t.outcome != "retry")
                .map(|t| {
                    format!(
                        "{}/{}/{}",
                        t.stage,
                        t.outcome,
                        t.code.as_deref().unwrap_or("-")
                    )
                });
        }
        _ => {}
    }
    Ok(Json(photo))
}

impl App {
    /// A presigned GET of the version's `thumb` rendition, from Intake's catalog.
    async fn thumbnail_url(&self, key: &str, version: &str) -> Result<Option<String>, Failure> {
        let records = self
            .ledger
            .catalog_find(&self.uploads_bucket, key)
            .await
            .map_err(|e| unavailable("reading Intake's catalog", e))?;
        let Some(thumb) = records
            .into_iter()
            .find(|e| e.record.upload.version == version)
            .and_then(|e| e.record.renditions.into_iter().find(|r| r.name == "thumb"))
        else {
            return Ok(None);
        };
        let expires = PresigningConfig::expires_in(Duration::from_secs(300))
            .map_err(|e| unavailable("presigning", e))?;
        let request = self
            .aws
            .s3
            .get_object()
            .bucket(&thumb.bucket)
            .key(&thumb.key)
            .presigned(expires)
            .await
            .map_err(|e| unavailable("presigning the thumbnail", e))?;
        Ok(Some(request.uri().to_owned()))
    }
}
