//! [`StackError`]: everything that can go wrong starting an [`IntakeStack`](super::IntakeStack),
//! uploading to it or waiting on it. Each variant's message says what was attempted and,
//! for waits, where the object stopped according to the ledger (stage, outcome, code).

use std::path::PathBuf;
use std::time::Duration;

use crate::clamd::ClamdFixtureError;
use crate::localstack::TestkitError;

/// Why a stack could not start, an upload failed, or a wait did not end as expected.
///
/// Every message is meant to be read in a failing test's output: a wait that ends in the
/// wrong state names the stage, the outcome and the code the ledger recorded.
///
/// ```
/// use std::time::Duration;
/// use intake_testkit::stack::StackError;
///
/// let e = StackError::Timeout {
///     object: "s3://it-01j-uploads/tenant-a/user-1/photo.jpg".into(),
///     waited: Duration::from_secs(30),
///     position: "it is waiting for stage scan; last recorded: stage validate, outcome passed".into(),
/// };
/// assert!(e.to_string().contains("did not reach a terminal state within 30s"));
/// assert!(e.to_string().contains("stage validate, outcome passed"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// LocalStack could not be started or reached.
    #[error(transparent)]
    LocalStack(#[from] TestkitError),
    /// The scanner fixture could not be started (e.g. clamd is not installed).
    #[error("{0} (or use Scanner::None to run without a virus scanner)")]
    Clamd(#[from] ClamdFixtureError),
    /// The pipeline config could not be read or is invalid.
    #[error("pipeline config {}: {message}", path.display())]
    Config {
        /// Where the config came from (`<built-in>` for the default).
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Setting up the stack (provisioning, the ledger, a worker) failed.
    #[error("starting the Intake stack: {what}: {message}")]
    Setup {
        /// The step that failed, e.g. `provisioning the pipeline`.
        what: &'static str,
        /// The underlying error.
        message: String,
    },
    /// An upload was refused (bad filename, presigning, or S3 answered with an error).
    #[error("uploading {filename:?}: {message}")]
    Upload {
        /// The filename given to [`IntakeStack::upload`](super::IntakeStack::upload).
        filename: String,
        /// Why it failed.
        message: String,
    },
    /// A call to LocalStack or to the ledger failed while reading results.
    #[error("{what}: {message}")]
    Read {
        /// What was being read, e.g. `reading the ledger`.
        what: String,
        /// The underlying error.
        message: String,
    },
    /// The object did not reach a terminal state in time.
    #[error("{object} did not reach a terminal state within {waited:?}: {position}")]
    Timeout {
        /// `s3://bucket/key (version …)`.
        object: String,
        /// How long was waited.
        waited: Duration,
        /// Where the ledger says the object is, and its last recorded steps.
        position: String,
    },
    /// The object reached a terminal state other than the one expected.
    #[error(
        "{object} ended {actual}, not {expected}: stage {stage}, outcome {outcome}, code {code}{}",
        detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
    )]
    Unexpected {
        /// `s3://bucket/key (version …)`.
        object: String,
        /// The state waited for.
        expected: super::State,
        /// The state reached.
        actual: super::State,
        /// The stage whose outcome decided it.
        stage: String,
        /// That stage's outcome, e.g. `rejected`.
        outcome: String,
        /// The outcome's code from the ledger (`-` when none was recorded).
        code: String,
        /// The stage's explanation, when it recorded one.
        detail: Option<String>,
    },
    /// The object has no rendition of that name (not an image, not cataloged yet, or an
    /// unknown name).
    #[error("{object} has no rendition {name:?}: {why}")]
    NoRendition {
        /// `s3://bucket/key (version …)`.
        object: String,
        /// The rendition asked for.
        name: String,
        /// What the catalog has instead.
        why: String,
    },
}
