//! Errors of AWS calls, classified so callers can tell "cannot reach AWS" from "AWS said no".

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error(
        "cannot reach AWS at {endpoint}: {reason}. Check that the endpoint is running and reachable, \
         and that AWS_ENDPOINT_URL or [aws] endpoint_url in pipeline.toml names it"
    )]
    Unreachable { endpoint: String, reason: String },
    #[error("{operation} on {resource} failed{}: {message}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Call {
        operation: &'static str,
        resource: String,
        code: Option<String>,
        message: String,
    },
    #[error("{resource}: {message}")]
    Conflict { resource: String, message: String },
    #[error(
        "cannot sign {what}: no usable AWS credentials ({reason}). Give the process credentials: \
         AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile (AWS_PROFILE), or an instance or task role"
    )]
    Credentials { what: String, reason: String },
    /// A presign request S3 would refuse anyway (e.g. over a limit); the message says which.
    #[error("cannot presign {what}: {problem}")]
    InvalidRequest { what: String, problem: String },
}

impl AwsError {
    /// A short fixed code for metrics and exit handling.
    pub fn code(&self) -> &'static str {
        match self {
            AwsError::Unreachable { .. } => "unreachable",
            AwsError::Call { .. } => "aws_call_failed",
            AwsError::Conflict { .. } => "conflict",
            AwsError::Credentials { .. } => "credentials",
            AwsError::InvalidRequest { .. } => "invalid_request",
        }
    }
}

/// The service error code of a failed call, if AWS answered at all.
pub fn service_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

/// Does the error carry one of these service codes (e.g. a "not found" answer)?
pub fn is_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>, codes: &[&str]) -> bool {
    service_code(err).is_some_and(|c| codes.contains(&c))
}

/// Classify an SDK error: no answer at all becomes [`AwsError::Unreachable`].
pub fn classify<E, R>(
    endpoint: &str,
    operation: &'static str,
    resource: &str,
    err: SdkError<E, R>,
) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::DispatchFailure(d) => AwsError::Unreachable {
            endpoint: endpoint.to_owned(),
            reason: if d.is_timeout() {
                "connection timed out".to_owned()
            } else if d.is_io() {
                "connection failed (refused or reset)".to_owned()
            } else {
                root_cause(&err)
            },
        },
        SdkError::TimeoutError(_) => AwsError::Unreachable {
            endpoint: endpoint.to_owned(),
            reason: "no answer in time".to_owned(),
        },
        SdkError::ServiceError(service) => AwsError::Call {
            operation,
            resource: resource.to_owned(),
            code: service.err().code().map(str::to_owned),
            message: service
                .err()
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| root_cause(&err)),
        },
        _ => AwsError::Call {
            operation,
            resource: resource.to_owned(),
            code: None,
            message: root_cause(&err),
        },
    }
}

pub(crate) fn root_cause(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    message
}

/// The endpoint and resource of a series of calls, so each call site only names its operation:
/// `.map_err(site.fail("GetBucketPolicy"))`.
pub struct CallSite<'a> {
    endpoint: &'a str,
    resource: String,
}

impl<'a> CallSite<'a> {
    pub fn new(endpoint: &'a str, resource: impl Into<String>) -> Self {
        CallSite {
            endpoint,
            resource: resource.into(),
        }
    }

    pub fn fail<E, R>(
        &self,
        operation: &'static str,
    ) -> impl FnOnce(SdkError<E, R>) -> AwsError + '_
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        move |e| classify(self.endpoint, operation, &self.resource, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::get_bucket_policy::GetBucketPolicyError;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_types::body::SdkBody;

    type Err = SdkError<GetBucketPolicyError, HttpResponse>;

    fn service(code: &str, status: u16) -> Err {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("the service said no")
            .build();
        let response = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        SdkError::service_error(GetBucketPolicyError::generic(meta), response)
    }

    #[test]
    fn no_answer_is_unreachable_and_names_the_endpoint() {
        let refused: Err =
            SdkError::dispatch_failure(ConnectorError::io("connection refused".into()));
        let err = classify("http://127.0.0.1:9", "GetBucketPolicy", "bucket b", refused);
        assert!(matches!(err, AwsError::Unreachable { .. }), "{err:?}");
        assert_eq!(err.code(), "unreachable");
        assert!(
            err.to_string().contains("http://127.0.0.1:9") && err.to_string().contains("refused"),
            "{err}"
        );

        let slow: Err =
            SdkError::timeout_error(Box::<dyn std::error::Error + Send + Sync>::from("deadline"));
        assert!(matches!(
            classify("e", "Op", "r", slow),
            AwsError::Unreachable { .. }
        ));
    }

    #[test]
    fn a_service_answer_keeps_its_code_operation_and_resource() {
        let err = classify(
            "e",
            "GetBucketPolicy",
            "bucket b",
            service("AccessDenied", 403),
        );
        assert_eq!(err.code(), "aws_call_failed");
        let text = err.to_string();
        assert!(
            text.contains("GetBucketPolicy on bucket b failed (AccessDenied): the service said no"),
            "{text}"
        );
    }

    #[test]
    fn not_found_codes_are_recognised() {
        let err = service("NoSuchBucketPolicy", 404);
        assert!(is_code(&err, &["NoSuchBucketPolicy"]));
        assert!(!is_code(&err, &["NoSuchKey"]));
        assert_eq!(service_code(&err), Some("NoSuchBucketPolicy"));
    }
}
