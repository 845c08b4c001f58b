//! The local stack `intake up` and `intake bench pipeline` run on: an AWS endpoint that
//! answers (a configured one, or a LocalStack started here as a container or on the host),
//! a clamd with the project's test signatures, and the sample files. Whatever it starts,
//! [`DevStack`] stops, on every path out (its parts also stop themselves when dropped).

pub mod clamd;
pub mod localstack;
pub mod samples;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use intake_aws::AwsClients;
use intake_core::config::AwsSection;

use clamd::LocalClamd;
use localstack::{Docker, LocalStack};

/// Everything the local stack started, stopped in reverse order of need: the scanner,
/// then LocalStack, then scratch files.
pub struct DevStack {
    /// The command, for what it says on stderr (`intake up: stopped clamd (pid N)`).
    command: &'static str,
    localstack: Option<LocalStack>,
    clamd: Option<LocalClamd>,
    /// Scratch files (the host-mode LocalStack's log); removed last.
    scratch: Option<tempfile::TempDir>,
}

/// An endpoint to run the pipeline on.
pub struct Endpoint {
    pub aws: AwsClients,
    /// A LocalStack started here (its credentials are `test`).
    pub started_here: bool,
}

/// A clamd started here.
pub struct StartedClamd {
    /// `host:port` it listens on.
    pub address: String,
    pub binary: std::path::PathBuf,
    pub pid: Option<u32>,
}

impl DevStack {
    /// Nothing started yet; `command` prefixes what it says (`intake up`).
    pub fn new(command: &'static str) -> DevStack {
        DevStack {
            command,
            localstack: None,
            clamd: None,
            scratch: None,
        }
    }

    /// `configured` when it answers within 15 s, else a LocalStack of our own (a container
    /// if Docker and the image are there, else host mode from this checkout). `say` prints
    /// one progress line.
    pub async fn endpoint(
        &mut self,
        configured: Option<&str>,
        section: &AwsSection,
        config_path: &Path,
        say: &dyn Fn(String),
    ) -> anyhow::Result<Endpoint> {
        if let Some(endpoint) = configured {
            let aws = clients(section, endpoint, false).await;
            match tokio::time::timeout(Duration::from_secs(15), aws.account_id()).await {
                Ok(Ok(_)) => {
                    say(format!(
                        "endpoint:  {endpoint} answers; starting no LocalStack"
                    ));
                    return Ok(Endpoint {
                        aws,
                        started_here: false,
                    });
                }
                Ok(Err(e)) => say(format!(
                    "endpoint:  {endpoint} does not answer ({e}); starting a LocalStack instead"
                )),
                Err(_) => say(format!(
                    "endpoint:  {endpoint} did not answer within 15 s; starting a LocalStack instead"
                )),
            }
        }
        let stack = self.start_localstack(config_path, say).await?;
        say(format!("started:   {}", stack.describe()));
        let endpoint = stack.endpoint.clone();
        self.localstack = Some(stack);
        let aws = clients(section, &endpoint, true).await;
        wait_answering(&aws).await?;
        Ok(Endpoint {
            aws,
            started_here: true,
        })
    }

    async fn start_localstack(
        &mut self,
        config_path: &Path,
        say: &dyn Fn(String),
    ) -> anyhow::Result<LocalStack> {
        let host_script = localstack::find_host_script(config_path);
        let image = localstack::IMAGE;
        let docker_problem = match localstack::docker() {
            Docker::Ready => {
                say(format!(
                    "starting:  LocalStack container from {image} (Docker)"
                ));
                return LocalStack::start_container().await;
            }
            Docker::NoImage => format!(
                "Docker is there but the image {image} is not; build it offline with \
                 `sudo localstack/build-image.sh` (about 3 minutes), or `docker pull {image}`"
            ),
            Docker::Unavailable(why) => format!("Docker cannot be used: {why}"),
        };
        let Some(script) = host_script else {
            bail!(
                "no LocalStack to use: {docker_problem}. Without Docker, run LocalStack on the \
                 host with localstack/run-host.sh (from a checkout of Intake), or point \
                 AWS_ENDPOINT_URL at a running LocalStack"
            );
        };
        say(format!("note:      {docker_problem}"));
        say(format!(
            "starting:  LocalStack in host mode ({}), no Docker",
            script.display()
        ));
        let scratch = tempfile::Builder::new()
            .prefix("intake-localstack-")
            .tempdir()
            .context("creating a temporary directory for LocalStack's log")?;
        let stack = LocalStack::start_host(&script, scratch.path()).await;
        self.scratch = Some(scratch);
        stack
    }

    /// A clamd of our own with the test signatures (only EICAR), or `None` when clamd is
    /// not installed.
    pub async fn start_clamd(&mut self) -> anyhow::Result<Option<StartedClamd>> {
        let Some(binary) = clamd::find_binary() else {
            return Ok(None);
        };
        let started = LocalClamd::start(&binary).await.with_context(|| {
            format!(
                "clamd ({}) is installed but did not start; fix it, or uninstall it to run the scan stage with kind = \"none\"",
                binary.display()
            )
        })?;
        let found = StartedClamd {
            address: started.tcp_address(),
            pid: started.pid(),
            binary,
        };
        self.clamd = Some(started);
        Ok(Some(found))
    }

    /// Stops what was started (clamd, then LocalStack, then scratch files).
    pub fn stop(&mut self) {
        if let Some(mut clamd) = self.clamd.take() {
            let pid = clamd.pid();
            clamd.stop();
            if let Some(pid) = pid {
                eprintln!("{}: stopped clamd (pid {pid})", self.command);
            }
        }
        if let Some(mut localstack) = self.localstack.take() {
            localstack.stop();
        }
        self.scratch = None;
    }
}

/// Clients for `endpoint`. `test_credentials`: LocalStack's `test`/`test`, for a LocalStack
/// started here; otherwise the usual chain, falling back to them when it finds none (a
/// fresh machine has no AWS credentials, and LocalStack takes any).
pub async fn clients(section: &AwsSection, endpoint: &str, test_credentials: bool) -> AwsClients {
    let local = || {
        SharedCredentialsProvider::new(Credentials::new("test", "test", None, None, "intake-up"))
    };
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(region) = &section.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if test_credentials {
        loader = loader.credentials_provider(local());
    }
    let mut sdk = loader.load().await;
    let found = match sdk.credentials_provider() {
        Some(provider) => provider.provide_credentials().await.is_ok(),
        None => false,
    };
    let mut builder = sdk.clone().into_builder();
    if !found {
        builder = builder.credentials_provider(local());
    }
    if sdk.region().is_none() {
        builder = builder.region(Region::new("us-east-1"));
    }
    sdk = builder.build();
    AwsClients::from_sdk_config(&sdk)
}

/// The health endpoint can answer before the API does; one real call with retries settles it.
async fn wait_answering(aws: &AwsClients) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        match aws.account_id().await {
            Ok(_) => return Ok(()),
            Err(e) if started.elapsed() > Duration::from_secs(60) => {
                return Err(anyhow::Error::from(e).context(format!(
                    "LocalStack at {} is up but its API does not answer",
                    aws.endpoint
                )));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// A time-ordered UUID (v7): unique, and what the key template's `{uuid}` expects.
pub fn new_uuid() -> String {
    uuid::Uuid::now_v7().to_string()
}
