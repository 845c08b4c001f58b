//! What a test knows about one upload: [`UploadedFile`] (which version of which key),
//! [`FileStatus`] (where the ledger says it ended, and how it got there) and [`State`].
//! Waiting polls the ledger every [`POLL_INTERVAL`] until a deadline; failures are built
//! here from the ledger's transitions, so they say which stage stopped the object and why.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use intake_store::{Ledger, Transition, VersionHistory};

use super::StackError;

/// How often a wait reads the ledger.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The terminal states of an upload: no stage runs after them.
///
/// ```
/// use intake_testkit::stack::State;
///
/// assert_eq!("quarantined".parse::<State>(), Ok(State::Quarantined));
/// assert_eq!(State::Done.to_string(), "done");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Every stage passed: the object is promoted, cataloged, its renditions made.
    Done,
    /// Rejected by validation or found infected (or unscannable) by the scanner.
    Quarantined,
    /// A stage failed permanently (e.g. a corrupt image), with a code saying why.
    Failed,
}

impl State {
    /// The state's name in the ledger and in outcomes: `done`, `quarantined`, `failed`.
    ///
    /// ```
    /// assert_eq!(intake_testkit::stack::State::Failed.name(), "failed");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            State::Done => "done",
            State::Quarantined => "quarantined",
            State::Failed => "failed",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for State {
    type Err = ();
    fn from_str(s: &str) -> Result<State, ()> {
        [State::Done, State::Quarantined, State::Failed]
            .into_iter()
            .find(|state| state.name() == s)
            .ok_or(())
    }
}

/// One uploaded version, as [`IntakeStack::upload`](super::IntakeStack::upload) returns it.
///
/// ```
/// use intake_testkit::stack::UploadedFile;
///
/// // An upload made some other way (e.g. by your app through its own presigned URL).
/// let file = UploadedFile::new("it-01j-uploads", "tenant-a/user-1/0190-photo.jpg", "3HL4kqtJ");
/// assert_eq!(file.to_string(), "s3://it-01j-uploads/tenant-a/user-1/0190-photo.jpg (version 3HL4kqtJ)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UploadedFile {
    /// The uploads bucket.
    pub bucket: String,
    /// The key the key template made (`{tenant}/{user}/{uuid}-{filename}` by default).
    pub key: String,
    /// The S3 version id of this upload (the uploads bucket is versioned).
    pub version_id: String,
}

impl UploadedFile {
    /// A handle on a version uploaded some other way, e.g. through your app.
    ///
    /// ```
    /// let file = intake_testkit::stack::UploadedFile::new("b", "k", "v");
    /// assert_eq!(file.key, "k");
    /// ```
    pub fn new(
        bucket: impl Into<String>,
        key: impl Into<String>,
        version_id: impl Into<String>,
    ) -> UploadedFile {
        UploadedFile {
            bucket: bucket.into(),
            key: key.into(),
            version_id: version_id.into(),
        }
    }
}

impl fmt::Display for UploadedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "s3://{}/{} (version {})",
            self.bucket, self.key, self.version_id
        )
    }
}

/// One step the ledger recorded for a version: a stage's outcome, or a retry.
///
/// ```
/// use intake_testkit::stack::Step;
///
/// let step = Step { stage: "validate".into(), outcome: "rejected".into(), code: Some("type_not_allowed".into()), detail: None };
/// assert_eq!(step.to_string(), "stage validate, outcome rejected, code type_not_allowed");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The stage, e.g. `scan`.
    pub stage: String,
    /// Its outcome (`passed`, `infected`, …) or `retry` for a retryable failure.
    pub outcome: String,
    /// The fixed code of the outcome or failure, when there is one.
    pub code: Option<String>,
    /// The stage's explanation, when it recorded one.
    pub detail: Option<String>,
}

impl From<&Transition> for Step {
    fn from(t: &Transition) -> Step {
        Step {
            stage: t.stage.clone(),
            outcome: t.outcome.clone(),
            code: t.code.clone(),
            detail: t.detail.clone(),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stage {}, outcome {}, code {}",
            self.stage,
            self.outcome,
            self.code.as_deref().unwrap_or("-")
        )
    }
}

/// Where an upload ended: its terminal state and the step that decided it.
///
/// ```
/// use intake_testkit::stack::{FileStatus, State, Step};
///
/// let status = FileStatus {
///     state: State::Quarantined,
///     stage: "scan".into(),
///     outcome: "infected".into(),
///     code: Some("infected".into()),
///     detail: Some("Intake.Test.EICAR.UNOFFICIAL".into()),
///     steps: vec![],
/// };
/// assert_eq!(status.state, State::Quarantined);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStatus {
    /// The terminal state.
    pub state: State,
    /// The stage whose outcome led there (`archive` for a file that is done).
    pub stage: String,
    /// That outcome, e.g. `archived`, `rejected`, `infected`.
    pub outcome: String,
    /// Its code, when the stage gave one (quarantines and failures do).
    pub code: Option<String>,
    /// The stage's explanation, when it recorded one.
    pub detail: Option<String>,
    /// Every step the ledger recorded for this version, oldest first (retries included).
    pub steps: Vec<Step>,
}

/// The newest recorded history of `file`'s version, if the ledger has seen it.
async fn version_history(
    ledger: &Ledger,
    file: &UploadedFile,
) -> Result<Option<VersionHistory>, StackError> {
    let versions = ledger
        .history(&file.bucket, &file.key)
        .await
        .map_err(|e| StackError::Read {
            what: format!("reading the ledger for {file}"),
            message: e.to_string(),
        })?;
    Ok(versions.into_iter().find(|v| v.version == file.version_id))
}

/// Poll the ledger until `file` is in a terminal state or `timeout` has passed.
pub(super) async fn wait_terminal(
    ledger: &Ledger,
    file: &UploadedFile,
    timeout: Duration,
) -> Result<FileStatus, StackError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let history = version_history(ledger, file).await?;
        if let Some(status) = history.as_ref().and_then(terminal_status) {
            return Ok(status);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(StackError::Timeout {
                object: file.to_string(),
                waited: timeout,
                position: position(history.as_ref()),
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The status of a version in a terminal state; `None` while it is still moving.
fn terminal_status(history: &VersionHistory) -> Option<FileStatus> {
    let state: State = history.state.parse().ok()?;
    let steps: Vec<Step> = history.transitions.iter().map(Step::from).collect();
    let deciding = steps
        .iter()
        .rev()
        .find(|s| s.outcome != "retry")
        .cloned()
        .unwrap_or(Step {
            stage: "-".into(),
            outcome: "-".into(),
            code: None,
            detail: None,
        });
    Some(FileStatus {
        state,
        stage: deciding.stage,
        outcome: deciding.outcome,
        code: deciding.code,
        detail: deciding.detail,
        steps,
    })
}

/// Where a version still moving is, for a timeout's message.
fn position(history: Option<&VersionHistory>) -> String {
    let Some(history) = history else {
        return "the ledger has no record of this version: no stage has picked it up \
                (did the upload land in this stack's uploads bucket?)"
            .to_owned();
    };
    let mut out = match history.state.as_str() {
        "stale" => {
            "the ledger marked this version stale: a newer upload of the key overtook it".to_owned()
        }
        next => format!("it is waiting for stage {next}"),
    };
    let steps: Vec<Step> = history.transitions.iter().map(Step::from).collect();
    match steps.iter().rev().find(|s| s.outcome != "retry") {
        Some(last) => out.push_str(&format!("; last recorded: {last}")),
        None => out.push_str("; no stage has completed yet"),
    }
    if let Some(retry) = steps.iter().rev().find(|s| s.outcome == "retry") {
        let count = steps.iter().filter(|s| s.outcome == "retry").count();
        out.push_str(&format!(
            "; {count} retr{} so far, the last: {retry}{}",
            if count == 1 { "y" } else { "ies" },
            retry
                .detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        ));
    }
    out
}

/// `status` as a result: `Ok` in state `expected`, else the error naming the deciding step.
pub(super) fn expect_state(
    file: &UploadedFile,
    status: FileStatus,
    expected: State,
) -> Result<FileStatus, StackError> {
    if status.state == expected {
        return Ok(status);
    }
    Err(StackError::Unexpected {
        object: file.to_string(),
        expected,
        actual: status.state,
        stage: status.stage,
        outcome: status.outcome,
        code: status.code.unwrap_or_else(|| "-".into()),
        detail: status.detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transition(stage: &str, outcome: &str, code: Option<&str>) -> Transition {
        Transition {
            stage: stage.into(),
            outcome: outcome.into(),
            code: code.map(Into::into),
            detail: Some("why".into()),
            attempt: 1,
            worker: "w".into(),
            started_ms: 0,
            finished_ms: 0,
        }
    }

    fn history(state: &str, transitions: Vec<Transition>) -> VersionHistory {
        VersionHistory {
            version: "v1".into(),
            state: state.into(),
            updated_ms: 0,
            transitions,
        }
    }

    #[test]
    fn a_terminal_status_names_the_deciding_step_not_a_retry() {
        let h = history(
            "quarantined",
            vec![
                transition("validate", "passed", None),
                transition("scan", "infected", Some("infected")),
                transition("scan", "retry", Some("clamd_unreachable")),
            ],
        );
        let status = terminal_status(&h).unwrap();
        assert_eq!(status.state, State::Quarantined);
        assert_eq!(
            (status.stage.as_str(), status.outcome.as_str()),
            ("scan", "infected")
        );
        assert_eq!(status.steps.len(), 3);
        assert!(terminal_status(&history("scan", vec![])).is_none());
    }

    #[test]
    fn a_timeout_says_where_the_object_waits_and_why_it_retries() {
        let h = history(
            "scan",
            vec![
                transition("validate", "passed", None),
                transition("scan", "retry", Some("scanner_unavailable")),
                transition("scan", "retry", Some("scanner_unavailable")),
            ],
        );
        let text = position(Some(&h));
        assert!(text.contains("waiting for stage scan"), "{text}");
        assert!(
            text.contains("last recorded: stage validate, outcome passed, code -"),
            "{text}"
        );
        assert!(text.contains("2 retries so far, the last: stage scan, outcome retry, code scanner_unavailable (why)"), "{text}");
        assert!(position(None).contains("no record"));
    }

    #[test]
    fn an_unexpected_state_names_stage_outcome_and_code() {
        let file = UploadedFile::new("b", "t/u/x-tool.png", "v1");
        let status = terminal_status(&history(
            "quarantined",
            vec![transition("validate", "rejected", Some("type_not_allowed"))],
        ))
        .unwrap();
        let err = expect_state(&file, status, State::Done)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "s3://b/t/u/x-tool.png (version v1) ended quarantined, not done: stage validate, \
             outcome rejected, code type_not_allowed (why)"
        );
    }
}
