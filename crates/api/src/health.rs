//! `GET /healthz` (the process answers), `GET /readyz` (every dependency answers, each
//! named with its latency, checked concurrently with a short timeout) and `GET /metrics`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use intake_aws::arn::Arns;
use intake_clamd::ClamdAddress;
use intake_core::config::ScannerConfig;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// Longest a dependency may take to answer a readiness check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub checks: Vec<Check>,
}

/// One dependency's check. `latency_ms` and `error` name endpoints, ARNs (with the
/// account id), buckets and queues, so they are only shown to authenticated admins, or to
/// everyone when `[api] readyz_detail = true`; other callers get `name` and `ok`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    /// `s3`, `sqs`, `sns`, `database` or `clamd`.
    pub name: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// What failed, when it did (detail only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

/// Every dependency answers: S3 (the uploads bucket), SQS (the entry stage's queue), SNS
/// (the events topic), the database and, when the scanner is clamd, clamd. Without
/// credentials each check is only named and passed or not; an admin's token (or `[api]
/// readyz_detail = true`) adds latencies and what failed.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "A dependency does not answer", body = Readiness),
    ))]
pub async fn readyz(State(state): State<Arc<AppState>>, headers: HeaderMap) -> impl IntoResponse {
    // Probes send no credentials and must not be refused: a missing or bad credential
    // just means no detail.
    let detail = state.config.api.readyz_detail
        || match headers.contains_key(header::AUTHORIZATION) {
            true => state
                .auth
                .authenticate(&headers)
                .await
                .is_ok_and(|caller| caller.admin),
            false => false,
        };
    let s3 = timed("s3", async {
        state
            .aws
            .s3
            .head_bucket()
            .bucket(state.uploads_bucket())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("HeadBucket {}: {}", state.uploads_bucket(), sdk_message(&e)))
    });
    let entry_queue = &state.names.stage(state.config.entry_stage()).queue;
    let sqs = timed("sqs", async {
        state
            .aws
            .sqs
            .get_queue_url()
            .queue_name(entry_queue)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("GetQueueUrl {entry_queue}: {}", sdk_message(&e)))
    });
    let sns = timed("sns", async {
        let account = state
            .account
            .get_or_try_init(|| state.aws.account_id())
            .await
            .map_err(|e| e.to_string())?;
        let arn =
            Arns::new(account.clone(), state.aws.region.clone()).topic(&state.names.events_topic);
        state
            .aws
            .sns
            .get_topic_attributes()
            .topic_arn(&arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("GetTopicAttributes {arn}: {}", sdk_message(&e)))
    });
    let database = timed("database", async {
        state.ledger.ping().await.map_err(|e| e.to_string())
    });
    let clamd_address = state.config.scanner().and_then(|s| match s {
        ScannerConfig::Clamd { address, .. } => Some(address),
        _ => None,
    });
    let clamd = async {
        match clamd_address {
            Some(address) => Some(
                timed("clamd", async {
                    let address = ClamdAddress::from_config(&address);
                    intake_clamd::ping(&address, CHECK_TIMEOUT)
                        .await
                        .map_err(|e| e.to_string())
                })
                .await,
            ),
            None => None,
        }
    };
    let (s3, sqs, sns, database, clamd) = tokio::join!(s3, sqs, sns, database, clamd);
    let mut checks = vec![s3, sqs, sns, database];
    checks.extend(clamd);
    let ready = checks.iter().all(|c| c.ok);
    for check in checks.iter().filter(|c| !c.ok) {
        // The operators' log always has what the answer may leave out.
        tracing::warn!(
            check = %check.name,
            error = check.error.as_deref().unwrap_or(""),
            "not ready"
        );
    }
    if !detail {
        for check in &mut checks {
            check.latency_ms = None;
            check.error = None;
        }
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(Readiness { ready, checks }))
}

async fn timed(name: &str, check: impl std::future::Future<Output = Result<(), String>>) -> Check {
    let started = Instant::now();
    let result = match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
    };
    Check {
        name: name.to_owned(),
        ok: result.is_ok(),
        latency_ms: Some(started.elapsed().as_millis() as u64),
        error: result.err(),
    }
}

/// The service's own message, not the SDK's generic "service error".
fn sdk_message<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(service) => format!(
            "{} {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or("")
        )
        .trim()
        .to_owned(),
        None => aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
    }
}

/// Prometheus metrics of this server.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "application/openmetrics-text", body = String)))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
