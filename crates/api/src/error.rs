//! The API's one error shape: an HTTP status and `{"error": {"code", "message",
//! "request_id"}}`, where `code` is fixed per failure (clients branch on it) and `message`
//! says what is wrong and how to fix it. Internal failures are logged in full and answered
//! with a message that leaks no detail.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::request_id::current_request_id;

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for `Retry-After` (429 and 503).
    pub retry_after: Option<u64>,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Fixed per failure, e.g. `token_expired`, `file_not_found`, `too_large`.
    pub code: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// The request's id, also in the `x-request-id` header and every log line of it.
    pub request_id: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// The file does not exist, or belongs to another tenant: the two are indistinguishable
    /// on purpose, so ids cannot be probed across tenants.
    pub fn file_not_found(file_id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "file_not_found",
            format!("no file {file_id} for this tenant; list your files with GET /v1/files"),
        )
    }

    /// A failure of ours or of a service underneath: logged with its cause, answered
    /// without it.
    pub fn internal(what: &str, cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "{what}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!(
                "{what} failed on the server; retry, and give the request id to the operators if it persists"
            ),
        )
    }

    /// A dependency (S3, SQS, the database) did not answer: worth retrying.
    pub fn unavailable(what: &str, cause: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "{what}");
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: format!("{what} is not possible right now; retry in a few seconds"),
            retry_after: Some(5),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = current_request_id().unwrap_or_default();
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, code = self.code, "request failed");
        } else {
            tracing::info!(status = %self.status, code = self.code, "request refused");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                request_id,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"intake\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::routing::get;

    use super::*;
    use crate::request_id::{REQUEST_ID_HEADER, with_request_ids};

    /// The id layers around a route that fails, served on a free port.
    async fn serve() -> String {
        let app = with_request_ids(Router::new().route(
            "/fail",
            get(|| async { ApiError::bad_request("test_failure", "it failed on purpose") }),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    }

    #[tokio::test]
    async fn the_id_is_kept_or_made_and_is_in_the_header_and_the_error_body() {
        let base = serve().await;
        let http = reqwest::Client::new();
        let call = |id: Option<&str>| {
            let mut request = http.get(format!("{base}/fail"));
            if let Some(id) = id {
                request = request.header(REQUEST_ID_HEADER, id);
            }
            async move {
                let response = request.send().await.unwrap();
                let header = response.headers()[REQUEST_ID_HEADER]
                    .to_str()
                    .unwrap()
                    .to_owned();
                let body: serde_json::Value = response.json().await.unwrap();
                assert_eq!(body["error"]["request_id"], header.as_str(), "{body}");
                header
            }
        };
        assert_eq!(call(Some("trace-abc-123")).await, "trace-abc-123");
        for refused in [None, Some("x".repeat(65)), Some("two words".into())] {
            let id = call(refused.as_deref()).await;
            assert_ne!(Some(id.as_str()), refused.as_deref());
            let uuid = uuid::Uuid::parse_str(&id).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(uuid.get_version_num(), 4, "{id}");
        }
    }
}
