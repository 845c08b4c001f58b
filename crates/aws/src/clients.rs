//! One `SdkConfig`, every client. The endpoint override (`AWS_ENDPOINT_URL` or
//! `[aws] endpoint_url`) applies to all services, and S3 switches to path-style addressing
//! when an endpoint is set, as LocalStack and most S3-compatible stores need. The same
//! config's credentials, cached, sign what Intake presigns ([`crate::presign`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use intake_core::config::AwsSection;

use crate::calls::CallCounts;
use crate::error::{AwsError, classify};

#[derive(Clone, Debug)]
pub struct AwsClients {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// EventBridge: only provisioning uses it, for `[uploads] notifications = "eventbridge"`.
    pub events: aws_sdk_eventbridge::Client,
    pub sts: aws_sdk_sts::Client,
    /// Where calls go, for messages: the endpoint URL or `AWS (region)`.
    pub endpoint: String,
    /// The endpoint override when one is set (LocalStack, an S3-compatible store); `None`
    /// means AWS itself. Presigned POST forms need the real URL, not the message above.
    pub endpoint_url: Option<String>,
    pub region: String,
    /// The config's credentials for signatures Intake makes or asks the presigner for.
    pub(crate) signing: SigningCredentials,
    /// Every request these clients made, by operation.
    pub calls: CallCounts,
}

impl AwsClients {
    /// Load the default credential and region chain, then apply `[aws]` overrides.
    pub async fn load(settings: &AwsSection) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(60))
                    .build(),
            );
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &settings.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        let mut config = loader.load().await;
        if config.region().is_none() {
            // Without a region every call fails with a confusing message; us-east-1 is what
            // LocalStack and the AWS CLI assume.
            config = config
                .into_builder()
                .region(Region::new("us-east-1"))
                .build();
        }
        Self::from_sdk_config(&config)
    }

    pub fn from_sdk_config(config: &SdkConfig) -> Self {
        let endpoint_url = config.endpoint_url().map(str::to_owned);
        let region = config
            .region()
            .map_or_else(|| "us-east-1".to_owned(), |r| r.to_string());
        let calls = CallCounts::default();
        let s3_config = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(endpoint_url.is_some())
            .interceptor(calls.interceptor())
            .build();
        let sqs = aws_sdk_sqs::config::Builder::from(config).interceptor(calls.interceptor());
        let sns = aws_sdk_sns::config::Builder::from(config).interceptor(calls.interceptor());
        let cloudwatch =
            aws_sdk_cloudwatch::config::Builder::from(config).interceptor(calls.interceptor());
        let events =
            aws_sdk_eventbridge::config::Builder::from(config).interceptor(calls.interceptor());
        let sts = aws_sdk_sts::config::Builder::from(config).interceptor(calls.interceptor());
        AwsClients {
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            sqs: aws_sdk_sqs::Client::from_conf(sqs.build()),
            sns: aws_sdk_sns::Client::from_conf(sns.build()),
            cloudwatch: aws_sdk_cloudwatch::Client::from_conf(cloudwatch.build()),
            events: aws_sdk_eventbridge::Client::from_conf(events.build()),
            sts: aws_sdk_sts::Client::from_conf(sts.build()),
            endpoint: endpoint_url
                .clone()
                .unwrap_or_else(|| format!("AWS ({region})")),
            endpoint_url,
            region,
            signing: SigningCredentials::new(config.credentials_provider()),
            calls,
        }
    }

    /// Credentials to sign a presigned request with, from the config's provider chain.
    /// `what` names the request for the error message.
    pub(crate) async fn signing_credentials(&self, what: &str) -> Result<Credentials, AwsError> {
        self.signing.get(what).await
    }

    /// One cheap call that proves the endpoint answers and the credentials work; returns the
    /// account id that ARNs need.
    pub async fn account_id(&self) -> Result<String, AwsError> {
        let identity = self.sts.get_caller_identity().send().await.map_err(|e| {
            classify(
                &self.endpoint,
                "GetCallerIdentity",
                "the caller's identity",
                e,
            )
        })?;
        identity.account.ok_or_else(|| AwsError::Call {
            operation: "GetCallerIdentity",
            resource: "the caller's identity".into(),
            code: None,
            message: "the answer carried no account id".into(),
        })
    }
}

/// The credentials that presigned requests are signed with, cached: the SDK caches identities
/// only inside its own calls, and the provider chain behind a bare `provide_credentials` may
/// reach IMDS or STS every time, which an API presigning per request must not do.
#[derive(Clone)]
pub(crate) struct SigningCredentials {
    provider: Option<SharedCredentialsProvider>,
    cached: Arc<tokio::sync::Mutex<Option<Credentials>>>,
}

/// Temporary credentials are refreshed this long before they expire, so a URL signed with
/// them stays usable for a useful while (a URL dies with the credentials that signed it).
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

impl SigningCredentials {
    fn new(provider: Option<SharedCredentialsProvider>) -> Self {
        SigningCredentials {
            provider,
            cached: Arc::default(),
        }
    }

    async fn get(&self, what: &str) -> Result<Credentials, AwsError> {
        let Some(provider) = &self.provider else {
            return Err(AwsError::Credentials {
                what: what.to_owned(),
                reason: "the AWS config has no credentials provider".to_owned(),
            });
        };
        // One lock across the refresh, so concurrent presigns wait for one fetch.
        let mut cached = self.cached.lock().await;
        if let Some(credentials) = cached.as_ref()
            && credentials
                .expiry()
                .is_none_or(|expiry| expiry > SystemTime::now() + REFRESH_BEFORE_EXPIRY)
        {
            return Ok(credentials.clone());
        }
        let fresh = provider
            .provide_credentials()
            .await
            .map_err(|e| AwsError::Credentials {
                what: what.to_owned(),
                reason: crate::error::root_cause(&e),
            })?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }
}

impl std::fmt::Debug for SigningCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys; whether there is a provider is what helps debugging.
        f.debug_struct("SigningCredentials")
            .field("provider", &self.provider.is_some())
            .finish_non_exhaustive()
    }
}
