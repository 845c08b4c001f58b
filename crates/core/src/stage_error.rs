//! Every failure of a stage has a class (DESIGN.md §3) and a fixed code:
//! retryable (leave the message, back off), permanent (publish `failed`/`rejected` with the
//! code, delete), poison (to the DLQ at once).

/// How the runtime must treat a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Retryable,
    Permanent,
    Poison,
}

/// A stage failure: class, a code from a small fixed set, and a message that says what
/// failed on which object and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StageError {
    pub class: ErrorClass,
    pub code: &'static str,
    pub message: String,
}

impl StageError {
    pub fn retryable(code: &'static str, message: impl Into<String>) -> Self {
        StageError {
            class: ErrorClass::Retryable,
            code,
            message: message.into(),
        }
    }
    pub fn permanent(code: &'static str, message: impl Into<String>) -> Self {
        StageError {
            class: ErrorClass::Permanent,
            code,
            message: message.into(),
        }
    }
    pub fn poison(code: &'static str, message: impl Into<String>) -> Self {
        StageError {
            class: ErrorClass::Poison,
            code,
            message: message.into(),
        }
    }
}
