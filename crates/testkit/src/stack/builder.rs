//! [`IntakeStackBuilder`]: which pipeline config, which scanner, which LocalStack; and
//! [`IntakeStackBuilder::start`], which turns them into a running [`IntakeStack`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use intake_core::PipelineConfig;
use intake_core::config::{
    AlarmsSection, AwsSection, BucketOverrides, ScannerConfig, TopicOverrides,
};
use intake_core::state_machine::StageKind;

use super::{IntakeStack, StackError, run};
use crate::clamd::ClamdFixture;
use crate::localstack::LocalStack;
use crate::names::unique_pipeline_name;

/// The repository's own `pipeline.toml`, the default config of every stack.
pub const DEFAULT_CONFIG: &str = include_str!("../../../../pipeline.toml");

/// The virus scanner the scan stage of a stack uses.
///
/// ```
/// use intake_testkit::stack::Scanner;
///
/// assert_eq!(Scanner::default(), Scanner::Clamd);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scanner {
    /// A real clamd started for the stack ([`ClamdFixture`]) with the project's tiny
    /// signature database: the EICAR test file is found, everything else is clean. Needs
    /// Debian's `clamav-daemon` package (the `clamd` binary), no virus definitions.
    #[default]
    Clamd,
    /// No scanning: every object passes the scan stage as `unscanned`. Faster and needs no
    /// clamd, but an EICAR upload ends `done`; the stack logs a warning when it starts.
    None,
}

#[derive(Clone, Debug)]
enum ConfigSource {
    BuiltIn,
    File(PathBuf),
    Toml(String),
}

/// Configures and starts an [`IntakeStack`]; made by [`IntakeStack::builder`].
///
/// ```no_run
/// # async fn demo() -> Result<(), intake_testkit::stack::StackError> {
/// use intake_testkit::stack::{IntakeStack, Scanner};
///
/// let stack = IntakeStack::builder()
///     .config("pipeline.toml")
///     .scanner(Scanner::Clamd)
///     .start()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until .start().await"]
pub struct IntakeStackBuilder {
    config: ConfigSource,
    scanner: Scanner,
    localstack: Option<Arc<LocalStack>>,
}

impl std::fmt::Debug for IntakeStackBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntakeStackBuilder")
            .field("config", &self.config)
            .field("scanner", &self.scanner)
            .field(
                "localstack",
                &self.localstack.as_ref().map(|l| l.endpoint().to_owned()),
            )
            .finish()
    }
}

impl Default for IntakeStackBuilder {
    fn default() -> Self {
        IntakeStackBuilder {
            config: ConfigSource::BuiltIn,
            scanner: Scanner::Clamd,
            localstack: None,
        }
    }
}

impl IntakeStackBuilder {
    /// Use the pipeline config at `path` (your `pipeline.toml`) instead of the built-in
    /// default. Its names are replaced by unique ones, its bucket and topic overrides,
    /// `[aws]` and `[ledger]` are ignored (the stack's own LocalStack and SQLite ledger
    /// are used), and alarms are off; the state machine, classes, renditions, limits and
    /// key template are yours.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), intake_testkit::stack::StackError> {
    /// let stack = intake_testkit::IntakeStack::builder()
    ///     .config(concat!(env!("CARGO_MANIFEST_DIR"), "/pipeline.toml"))
    ///     .start()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn config(mut self, path: impl AsRef<Path>) -> Self {
        self.config = ConfigSource::File(path.as_ref().to_owned());
        self
    }

    /// Use this `pipeline.toml` text (e.g. the default with one setting changed).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), intake_testkit::stack::StackError> {
    /// use intake_testkit::stack::{DEFAULT_CONFIG, IntakeStack};
    ///
    /// let strict = DEFAULT_CONFIG.replace("max_size = \"50MiB\"", "max_size = \"1MiB\"");
    /// let stack = IntakeStack::builder().config_toml(strict).start().await?;
    /// # Ok(()) }
    /// ```
    pub fn config_toml(mut self, text: impl Into<String>) -> Self {
        self.config = ConfigSource::Toml(text.into());
        self
    }

    /// Which scanner the scan stage uses; [`Scanner::Clamd`] by default.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), intake_testkit::stack::StackError> {
    /// use intake_testkit::stack::{IntakeStack, Scanner};
    ///
    /// // Faster, no clamd needed, but nothing is scanned (a warning says so).
    /// let stack = IntakeStack::builder().scanner(Scanner::None).start().await?;
    /// # Ok(()) }
    /// ```
    pub fn scanner(mut self, scanner: Scanner) -> Self {
        self.scanner = scanner;
        self
    }

    /// Run on this LocalStack instead of starting one: several stacks can share one
    /// LocalStack (each has its own uniquely named resources). Without it, each stack
    /// starts its own ([`LocalStack::start`]: a container, or `INTAKE_TEST_ENDPOINT`).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), intake_testkit::stack::StackError> {
    /// use std::sync::Arc;
    /// use intake_testkit::{IntakeStack, LocalStack};
    ///
    /// let localstack = Arc::new(LocalStack::start().await?);
    /// let a = IntakeStack::builder().localstack(localstack.clone()).start().await?;
    /// let b = IntakeStack::builder().localstack(localstack).start().await?;
    /// assert_ne!(a.name(), b.name());
    /// # Ok(()) }
    /// ```
    pub fn localstack(mut self, localstack: Arc<LocalStack>) -> Self {
        self.localstack = Some(localstack);
        self
    }

    /// Start the stack: LocalStack (unless given), the scanner, a uniquely named pipeline
    /// provisioned from the config, a SQLite ledger in a temporary directory, and one
    /// worker per configured stage in this process.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), intake_testkit::stack::StackError> {
    /// let stack = intake_testkit::IntakeStack::builder().start().await?;
    /// println!("pipeline {} on {}", stack.name(), stack.localstack().endpoint());
    /// # Ok(()) }
    /// ```
    pub async fn start(self) -> Result<IntakeStack, StackError> {
        let mut config = self.load_config()?;
        let name = unique_pipeline_name();
        isolate(&mut config, &name);

        let scans = config.has_stage(StageKind::Scan);
        let clamd = match (self.scanner, scans) {
            (Scanner::Clamd, true) => {
                let fixture = ClamdFixture::start("100M").await?;
                set_scanner(
                    &mut config,
                    ScannerConfig::Clamd {
                        address: format!("tcp://{}", fixture.tcp_address()),
                        timeout_secs: 60,
                    },
                );
                Some(fixture)
            }
            (Scanner::None, true) => {
                let warning = format!(
                    "intake-testkit: WARNING: stack {name} runs WITHOUT a virus scanner \
                     (Scanner::None): every object passes scan as `unscanned`; use \
                     Scanner::Clamd to test what your users will see"
                );
                eprintln!("{warning}");
                tracing::warn!("{warning}");
                set_scanner(&mut config, ScannerConfig::None);
                None
            }
            (_, false) => None,
        };

        let localstack = match self.localstack {
            Some(shared) => shared,
            None => Arc::new(LocalStack::start().await?),
        };
        run::start(config, localstack, clamd).await
    }

    fn load_config(&self) -> Result<PipelineConfig, StackError> {
        let (text, path) = match &self.config {
            ConfigSource::BuiltIn => (
                DEFAULT_CONFIG.to_owned(),
                PathBuf::from("<built-in pipeline.toml>"),
            ),
            ConfigSource::Toml(text) => (text.clone(), PathBuf::from("<pipeline.toml text>")),
            ConfigSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| StackError::Config {
                    path: path.clone(),
                    message: format!("cannot read it: {e}"),
                })?;
                (text, path.clone())
            }
        };
        let config = PipelineConfig::from_toml(&text, &path).map_err(|e| StackError::Config {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Ok(config)
    }
}

/// Make `config` this stack's alone: derived names under `name` (no explicit bucket or
/// topic names, which are global), the stack's own endpoint and ledger, no alarms.
fn isolate(config: &mut PipelineConfig, name: &str) {
    config.pipeline.name = name.to_owned();
    config.buckets = BucketOverrides::default();
    config.topics = TopicOverrides::default();
    config.aws = AwsSection::default();
    config.alarms = AlarmsSection {
        enabled: false,
        ..config.alarms
    };
}

fn set_scanner(config: &mut PipelineConfig, scanner: ScannerConfig) {
    if let Some(scan) = config.stage_mut(StageKind::Scan) {
        scan.scanner = Some(scanner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_config_loads_and_is_isolated_under_a_unique_name() {
        let mut config = IntakeStackBuilder::default().load_config().unwrap();
        config.buckets.uploads = Some("acme-uploads".into());
        isolate(&mut config, "it-abc");
        let names = intake_core::ResourceNames::of(&config);
        assert_eq!(
            names.bucket(intake_core::names::BucketRole::Uploads),
            "it-abc-uploads"
        );
        assert_eq!(names.events_topic, "it-abc-events");
        assert!(!config.alarms.enabled);
    }

    #[test]
    fn a_missing_config_file_is_named_in_the_error() {
        let err = IntakeStackBuilder::default()
            .config("/nonexistent/pipeline.toml")
            .load_config()
            .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/pipeline.toml"),
            "{err}"
        );
    }

    #[test]
    fn an_invalid_config_says_what_is_wrong() {
        let err = IntakeStackBuilder::default()
            .config_toml("[pipeline]\nname = \"x\"\nbogus = 1\n")
            .load_config()
            .unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }
}
