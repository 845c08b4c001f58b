//! Every request's id: a client's own `x-request-id` when it is usable, otherwise a fresh
//! UUID v4; set on the request, echoed on the response, and readable by error bodies
//! through [`current_request_id`]. Depends on nothing else in the crate, so the error type
//! and every middleware can use it.
//!
//! tower-http's `SetRequestIdLayer` makes the fresh ids and `PropagateRequestIdLayer` copies
//! them to the response. `SetRequestIdLayer` keeps whatever `x-request-id` a client sent and
//! asks its `MakeRequestId` only when there is none, so the rule for which client ids are
//! kept lives in [`drop_unusable_request_id`], which runs before it and removes the others.

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::Response;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest client id kept: enough for a UUID, a ULID or a trace id with a prefix.
const MAX_CLIENT_ID_BYTES: usize = 64;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled, when called inside one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The id that [`with_request_ids`] gave `request` (empty outside those layers).
pub fn request_id_of<B>(request: &axum::http::Request<B>) -> &str {
    request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or_default()
}

/// A client's own id is kept when it is short and plain (ASCII letters, digits, `-`, `_`,
/// `.`), so ids can be followed across services; anything else (empty, over 64 bytes,
/// spaces, control or non-ASCII characters) would be copied into logs and answers verbatim,
/// so it is replaced instead.
pub fn is_usable_client_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CLIENT_ID_BYTES
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Removes a client's `x-request-id` that [`is_usable_client_id`] refuses, so that
/// `SetRequestIdLayer` makes a fresh one in its place. A repeated header counts as unusable.
pub async fn drop_unusable_request_id(mut request: Request) -> Request {
    let headers = request.headers_mut();
    let mut sent = headers.get_all(REQUEST_ID_HEADER).iter();
    let usable = match (sent.next(), sent.next()) {
        (Some(id), None) => is_usable_client_id(id.as_bytes()),
        (None, _) => true,
        (Some(_), Some(_)) => false,
    };
    if !usable {
        headers.remove(REQUEST_ID_HEADER);
    }
    request
}

/// Runs the rest of the request with its id in [`current_request_id`]: error bodies carry
/// it, and an error value has no request at hand to read it from.
async fn scope_request_id(request: Request, next: Next) -> Response {
    let id = request_id_of(&request).to_owned();
    REQUEST_ID.scope(id, next.run(request)).await
}

/// Wraps `router` (and whatever layers it already has) in the request-id layers: from the
/// outside in, drop an unusable client id, set one (a UUID v4 when none is left), copy it
/// to the response, and make it the task's current id. Layers added before this call see
/// the id in the request's extensions (see [`request_id_of`]).
pub fn with_request_ids<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    let header = HeaderName::from_static(REQUEST_ID_HEADER);
    router
        .layer(middleware::from_fn(scope_request_id))
        .layer(PropagateRequestIdLayer::new(header.clone()))
        .layer(SetRequestIdLayer::new(header, MakeRequestUuid))
        .layer(middleware::map_request(drop_unusable_request_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_short_client_ids_are_usable_and_nothing_else() {
        for id in ["trace-abc-123", "01HZX3K5Q8", "a.b_c-d", &"x".repeat(64)] {
            assert!(is_usable_client_id(id.as_bytes()), "{id:?}");
        }
        for id in [
            "",
            &"x".repeat(65),
            "has space",
            "tab\there",
            "new\nline",
            "semi;colon",
            "caf\u{e9}",
            "zero\u{200b}width",
        ] {
            assert!(!is_usable_client_id(id.as_bytes()), "{id:?}");
        }
    }
}
