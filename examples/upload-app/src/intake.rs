//! [`IntakeClient`]: what this app knows of Intake, which is only its HTTP API
//! (`docs/api.md`): sign an upload (`POST /v1/uploads`), read a file's state
//! (`GET /v1/files/{id}`), follow it until it settles (`GET /v1/files/{id}/events`,
//! server-sent events) and get download URLs of the promoted file and its renditions
//! (`GET /v1/files/{id}/download`).
//!
//! It calls as a backend service: a service key of `[[api.keys]]` (`X-Api-Key`), which fixes
//! the tenant, and `X-Intake-User` naming the app user it acts for. The types below mirror
//! the API's JSON, only the fields this app reads (unknown fields are ignored, so new ones
//! on the server side break nothing).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sse::SseParser;

/// Longest a plain call may take. Event streams are not bound by it: they end on their own
/// deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// A client of one Intake API, acting with one service key.
#[derive(Clone)]
pub struct IntakeClient {
    http: reqwest::Client,
    /// Without a trailing `/`, e.g. `http://127.0.0.1:8080`.
    base: String,
    api_key: String,
}

/// What went wrong calling Intake's API.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(
        "{what}: Intake's API did not answer ({source}); is `intake serve` (or `intake up`) running at INTAKE_API_URL?"
    )]
    Unreachable {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    /// The API answered with its error shape; `code` is fixed per failure (docs/api.md).
    #[error("{what}: Intake answered {status} {code}: {message} (request id {request_id})")]
    Refused {
        what: String,
        status: u16,
        code: String,
        message: String,
        request_id: String,
    },
    #[error(
        "{what}: Intake's answer is not what this app understands ({message}); is INTAKE_API_URL an Intake API of a matching version?"
    )]
    Malformed { what: String, message: String },
}

impl IntakeError {
    /// The API's error code, for a refusal.
    pub fn code(&self) -> Option<&str> {
        match self {
            IntakeError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// `POST /v1/uploads` body.
#[derive(Debug, Serialize)]
pub struct UploadRequest<'a> {
    pub filename: &'a str,
    pub size: u64,
    pub content_type: &'a str,
    /// Always `put` here: one request the browser can make with the headers given.
    pub method: &'a str,
}

/// `POST /v1/uploads` answer, for `method: put`.
#[derive(Debug, Deserialize)]
pub struct SignedUpload {
    pub file_id: String,
    pub expires_at: String,
    pub put: Option<PutInstructions>,
}

/// PUT the bytes to `url` with exactly these headers (they are signed).
#[derive(Debug, Deserialize)]
pub struct PutInstructions {
    pub url: String,
    pub headers: BTreeMap<String, String>,
}

/// A file's state as the API reports it (`FileSummary`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct FileSummary {
    pub file_id: String,
    pub filename: String,
    /// `awaiting_upload`, `processing`, `done`, `quarantined`, `failed`, `deleting` or
    /// `deleted`.
    pub state: String,
    /// The stage that runs next, while `processing`.
    pub stage: Option<String>,
    /// Downloads work (scanned clean, promoted, cataloged); true before `done`.
    pub ready: bool,
    /// Why a file ended `quarantined` or `failed`.
    pub reason: Option<Reason>,
}

impl FileSummary {
    /// Nothing will change any more (the API's event stream ends after these).
    pub fn is_final(&self) -> bool {
        matches!(
            self.state.as_str(),
            "done" | "quarantined" | "failed" | "deleted"
        )
    }
}

/// The step that ended a file.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Reason {
    pub stage: String,
    pub outcome: String,
    pub code: Option<String>,
}

/// `GET /v1/files/{id}/download` answer: a presigned GET.
#[derive(Debug, Deserialize)]
pub struct Download {
    pub url: String,
    pub expires_at: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
    #[serde(default)]
    request_id: String,
}

impl IntakeClient {
    /// A client of the API at `base_url` (e.g. `http://127.0.0.1:8080`) using the service
    /// key `api_key`.
    pub fn new(base_url: &str, api_key: &str) -> Result<IntakeClient, IntakeError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|source| IntakeError::Unreachable {
                what: "building the HTTP client for Intake".into(),
                source,
            })?;
        Ok(IntakeClient {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
        })
    }

    fn get(&self, user: &str, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base))
            .header("x-api-key", &self.api_key)
            .header("x-intake-user", user)
    }

    /// Signs a PUT upload of `request` for `user`; the API checks name, size and type
    /// against the content classes first.
    pub async fn create_upload(
        &self,
        user: &str,
        request: &UploadRequest<'_>,
    ) -> Result<SignedUpload, IntakeError> {
        let what = format!("signing an upload of {:?}", request.filename);
        let response = self
            .http
            .post(format!("{}/v1/uploads", self.base))
            .header("x-api-key", &self.api_key)
            .header("x-intake-user", user)
            .timeout(CALL_TIMEOUT)
            .json(request)
            .send()
            .await;
        json(&what, response).await
    }

    /// The file's state now.
    pub async fn file(&self, user: &str, file_id: &str) -> Result<FileSummary, IntakeError> {
        let what = format!("reading file {file_id}");
        let response = self
            .get(user, &format!("/v1/files/{file_id}"))
            .timeout(CALL_TIMEOUT)
            .send()
            .await;
        json(&what, response).await
    }

    /// A download URL of the promoted file, or of its rendition `rendition` (e.g. `thumb`).
    pub async fn download(
        &self,
        user: &str,
        file_id: &str,
        rendition: Option<&str>,
    ) -> Result<Download, IntakeError> {
        let what = match rendition {
            Some(name) => format!("a download of file {file_id}'s rendition {name}"),
            None => format!("a download of file {file_id}"),
        };
        // Rendition names come from pipeline.toml ([a-z0-9_-]), never from users.
        let query = rendition
            .map(|n| format!("?rendition={n}"))
            .unwrap_or_default();
        let response = self
            .get(user, &format!("/v1/files/{file_id}/download{query}"))
            .timeout(CALL_TIMEOUT)
            .send()
            .await;
        json(&what, response).await
    }

    /// The file's state once it is final, or its latest state when `wait` runs out first:
    /// follows the API's event stream, which sends the state now and at every change. When
    /// the API has too many streams open (`429 too_many_streams`), answers with the state
    /// now instead; the caller asks again later.
    pub async fn wait_final(
        &self,
        user: &str,
        file_id: &str,
        wait: Duration,
    ) -> Result<FileSummary, IntakeError> {
        let what = format!("following file {file_id}'s events");
        let deadline = tokio::time::Instant::now() + wait;
        let sent = tokio::time::timeout_at(
            deadline,
            self.get(user, &format!("/v1/files/{file_id}/events"))
                .header("accept", "text/event-stream")
                .send(),
        )
        .await;
        let Ok(sent) = sent else {
            return self.file(user, file_id).await;
        };
        let mut response = match checked(&what, sent).await {
            Ok(response) => response,
            Err(e) if e.code() == Some("too_many_streams") => {
                return self.file(user, file_id).await;
            }
            Err(e) => return Err(e),
        };
        let mut parser = SseParser::default();
        let mut latest = None;
        loop {
            let chunk = match tokio::time::timeout_at(deadline, response.chunk()).await {
                Err(_elapsed) => break,
                Ok(Ok(Some(chunk))) => chunk,
                // The stream ended: the file settled, the server is stopping, or the
                // stream's own time limit passed.
                Ok(Ok(None)) => break,
                Ok(Err(source)) => return Err(IntakeError::Unreachable { what, source }),
            };
            for event in parser
                .push(&chunk)
                .into_iter()
                .filter(|e| e.event == "state")
            {
                let summary: FileSummary =
                    serde_json::from_str(&event.data).map_err(|e| IntakeError::Malformed {
                        what: what.clone(),
                        message: format!("a state event: {e}"),
                    })?;
                if summary.is_final() {
                    return Ok(summary);
                }
                latest = Some(summary);
            }
        }
        match latest {
            Some(summary) => Ok(summary),
            None => self.file(user, file_id).await,
        }
    }
}

/// The response if it is a success; the API's error (code and message) otherwise.
async fn checked(
    what: &str,
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<reqwest::Response, IntakeError> {
    let response = sent.map_err(|source| IntakeError::Unreachable {
        what: what.to_owned(),
        source,
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    Err(match serde_json::from_str::<ErrorBody>(&body) {
        Ok(ErrorBody { error }) => IntakeError::Refused {
            what: what.to_owned(),
            status: status.as_u16(),
            code: error.code,
            message: error.message,
            request_id: error.request_id,
        },
        Err(_) => IntakeError::Malformed {
            what: what.to_owned(),
            message: format!("{status} with a body that is not Intake's error shape: {body:.200}"),
        },
    })
}

async fn json<T: serde::de::DeserializeOwned>(
    what: &str,
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<T, IntakeError> {
    checked(what, sent)
        .await?
        .json()
        .await
        .map_err(|e| IntakeError::Malformed {
            what: what.to_owned(),
            message: e.to_string(),
        })
}
