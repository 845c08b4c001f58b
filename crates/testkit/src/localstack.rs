//! A real LocalStack for a test. By default a container started through testcontainers from
//! `localstack/localstack:4.13.1` (the official image, or the one `localstack/build-image.sh`
//! builds offline under the same tag); when `INTAKE_TEST_ENDPOINT` is set, that running
//! LocalStack instead (host mode, machines without Docker). The container stops when the
//! fixture is dropped.

use std::io::Write;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use intake_aws::AwsClients;
use testcontainers::core::WaitFor;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ImageExt};
use testcontainers_modules::localstack::LocalStack as LocalStackImage;

/// The LocalStack release Intake is tested against.
///
/// ```no_run
/// assert_eq!(intake_testkit::localstack::LOCALSTACK_TAG, "4.13.1");
/// ```
pub const LOCALSTACK_TAG: &str = "4.13.1";
/// Services the tests use; fewer services start faster.
///
/// ```no_run
/// assert!(intake_testkit::localstack::LOCALSTACK_SERVICES.contains("sqs"));
/// ```
pub const LOCALSTACK_SERVICES: &str = "s3,sqs,sns,cloudwatch,sts,events";
/// Env var naming an already-running LocalStack (e.g. `http://127.0.0.1:4566`).
///
/// ```no_run
/// // INTAKE_TEST_ENDPOINT=http://127.0.0.1:4566 cargo test
/// assert_eq!(intake_testkit::localstack::ENDPOINT_ENV, "INTAKE_TEST_ENDPOINT");
/// ```
pub const ENDPOINT_ENV: &str = "INTAKE_TEST_ENDPOINT";
/// Env var naming a file where every started container is recorded (CI prints it).
///
/// ```no_run
/// // INTAKE_TESTKIT_LOG=target/containers.log cargo test
/// assert_eq!(intake_testkit::localstack::LOG_ENV, "INTAKE_TESTKIT_LOG");
/// ```
pub const LOG_ENV: &str = "INTAKE_TESTKIT_LOG";

/// Why a LocalStack could not be had; the message says what to check.
///
/// ```no_run
/// # async fn demo() {
/// match intake_testkit::LocalStack::start().await {
///     Ok(localstack) => println!("LocalStack at {}", localstack.endpoint()),
///     Err(e) => panic!("{e}"), // names Docker, the image and INTAKE_TEST_ENDPOINT
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    #[error(
        "could not start LocalStack {LOCALSTACK_TAG} through testcontainers: {0}. Is Docker running, and does the image \
         localstack/localstack:{LOCALSTACK_TAG} exist (`docker pull` it, or build it offline with \
         localstack/build-image.sh)? Or set {ENDPOINT_ENV} to a running LocalStack"
    )]
    Start(String),
    #[error("LocalStack at {endpoint} did not answer within {seconds} s: {last}")]
    NotReady {
        endpoint: String,
        seconds: u64,
        last: String,
    },
}

/// A LocalStack for a test: a container started through testcontainers from the local
/// image, removed when this is dropped, or the running one `INTAKE_TEST_ENDPOINT` names.
///
/// ```no_run
/// # async fn demo() -> Result<(), intake_testkit::TestkitError> {
/// let localstack = intake_testkit::LocalStack::start().await?;
/// let aws = localstack.clients();
/// aws.s3.create_bucket().bucket("my-test-bucket").send().await.unwrap();
/// # Ok(()) }
/// ```
pub struct LocalStack {
    endpoint: String,
    container: Option<ContainerAsync<LocalStackImage>>,
}

impl LocalStack {
    /// Start (or connect to) LocalStack and wait until it answers an API call.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), intake_testkit::TestkitError> {
    /// let localstack = intake_testkit::LocalStack::start().await?;
    /// # Ok(()) }
    /// ```
    pub async fn start() -> Result<Self, TestkitError> {
        let stack = match std::env::var(ENDPOINT_ENV) {
            Ok(endpoint) if !endpoint.is_empty() => LocalStack {
                endpoint,
                container: None,
            },
            _ => Self::start_container().await?,
        };
        stack.probe().await?;
        Ok(stack)
    }

    async fn start_container() -> Result<Self, TestkitError> {
        let container = LocalStackImage::default()
            .with_tag(LOCALSTACK_TAG)
            .with_env_var("SERVICES", LOCALSTACK_SERVICES)
            // Without this every SQS call queues internal metric work that slows later tests.
            .with_env_var("SQS_DISABLE_CLOUDWATCH_METRICS", "1")
            .with_env_var("SKIP_SSL_CERT_DOWNLOAD", "1")
            .with_env_var("DISABLE_EVENTS", "1")
            // Check presigned URLs' signatures and expiry as S3 does (LocalStack's default skips
            // them), so a URL that signs the size really refuses another size.
            .with_env_var("S3_SKIP_SIGNATURE_VALIDATION", "0")
            // The module's fixed 3 s pause after `Ready.` is replaced by one real probe.
            .with_ready_conditions(vec![WaitFor::message_on_stdout("Ready.")])
            .with_startup_timeout(Duration::from_secs(180))
            .start()
            .await
            .map_err(|e| TestkitError::Start(e.to_string()))?;
        let host = container
            .get_host()
            .await
            .map_err(|e| TestkitError::Start(e.to_string()))?;
        let port = container
            .get_host_port_ipv4(4566)
            .await
            .map_err(|e| TestkitError::Start(e.to_string()))?;
        let endpoint = format!("http://{host}:{port}");
        record(&format!(
            "LocalStack container {} (localstack/localstack:{LOCALSTACK_TAG}) started by testcontainers at {endpoint}",
            &container.id()[..12]
        ));
        Ok(LocalStack {
            endpoint,
            container: Some(container),
        })
    }

    /// `Ready.` can precede the gateway accepting connections; one call with retries settles it.
    async fn probe(&self) -> Result<(), TestkitError> {
        let clients = self.clients();
        let deadline = Duration::from_secs(30);
        let started = std::time::Instant::now();
        loop {
            match clients.account_id().await {
                Ok(_) => return Ok(()),
                Err(e) if started.elapsed() >= deadline => {
                    return Err(TestkitError::NotReady {
                        endpoint: self.endpoint.clone(),
                        seconds: deadline.as_secs(),
                        last: e.to_string(),
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// The endpoint URL, e.g. `http://localhost:32771`.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), intake_testkit::TestkitError> {
    /// let localstack = intake_testkit::LocalStack::start().await?;
    /// assert!(localstack.endpoint().starts_with("http://"));
    /// # Ok(()) }
    /// ```
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The container id when this fixture started one; `None` with `INTAKE_TEST_ENDPOINT`.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), intake_testkit::TestkitError> {
    /// let localstack = intake_testkit::LocalStack::start().await?;
    /// if let Some(id) = localstack.container_id() {
    ///     println!("docker logs {id}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn container_id(&self) -> Option<&str> {
        self.container.as_ref().map(|c| c.id())
    }

    /// An `SdkConfig` for LocalStack: credentials `test`/`test`, us-east-1, this endpoint.
    /// LocalStack checks presigned URLs against the secret `test`, so URLs these clients
    /// sign (the API's uploads and downloads) are accepted, and wrong ones refused.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), intake_testkit::TestkitError> {
    /// let localstack = intake_testkit::LocalStack::start().await?;
    /// let sqs = aws_sdk_sqs::Client::new(&localstack.sdk_config());
    /// # Ok(()) }
    /// ```
    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
                    "test",
                    "test",
                    None,
                    None,
                    "intake-testkit",
                )),
            )
            .build()
    }

    /// Every Intake AWS client, pointed at this LocalStack.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), intake_testkit::TestkitError> {
    /// let localstack = intake_testkit::LocalStack::start().await?;
    /// let aws = localstack.clients();
    /// let queues = aws.sqs.list_queues().send().await.unwrap();
    /// # Ok(()) }
    /// ```
    pub fn clients(&self) -> AwsClients {
        AwsClients::from_sdk_config(&self.sdk_config())
    }

    /// Environment for a child process (`intake` binary) to use this LocalStack.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), intake_testkit::TestkitError> {
    /// let localstack = intake_testkit::LocalStack::start().await?;
    /// let status = std::process::Command::new("intake")
    ///     .args(["provision"])
    ///     .envs(localstack.env())
    ///     .status();
    /// # Ok(()) }
    /// ```
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }
}

fn record(line: &str) {
    eprintln!("intake-testkit: {line}");
    if let Ok(path) = std::env::var(LOG_ENV)
        && let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = writeln!(file, "{line}");
    }
}
