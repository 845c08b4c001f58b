//! One `SdkConfig`, every client. The endpoint override (`AWS_ENDPOINT_URL` or
//! `[aws] endpoint_url`) applies to all services, and S3 switches to path-style addressing
//! when an endpoint is set, as LocalStack and most S3-compatible stores need.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use intake_core::config::AwsSection;

use crate::error::{AwsError, classify};

#[derive(Clone, Debug)]
pub struct AwsClients {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sts: aws_sdk_sts::Client,
    /// Where calls go, for messages: the endpoint URL or `AWS (region)`.
    pub endpoint: String,
    pub region: String,
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
        let s3_config = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(endpoint_url.is_some())
            .build();
        AwsClients {
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            sqs: aws_sdk_sqs::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            sts: aws_sdk_sts::Client::new(config),
            endpoint: endpoint_url.unwrap_or_else(|| format!("AWS ({region})")),
            region,
        }
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
