//! Test fixtures for Intake, used by its own tests and by app teams' integration tests.
//!
//! The one-line version for an app team is [`IntakeStack`]: the whole pipeline
//! (LocalStack, provisioned resources, every stage worker, a real clamd) inside a test,
//! uploads through presigned URLs, and waits on the ledger that fail with the stage, the
//! outcome and the code that stopped an object. `docs/testing.md` is the guide.
//!
//! ```no_run
//! use std::time::Duration;
//! use intake_testkit::{IntakeStack, Scanner, State, samples};
//!
//! # async fn demo() -> Result<(), intake_testkit::StackError> {
//! let stack = IntakeStack::builder().scanner(Scanner::Clamd).start().await?;
//! let file = stack.upload("tenant-a", "user-1", "photo.jpg", samples::jpeg()).await?;
//! let done = stack.wait_terminal(&file, Duration::from_secs(60)).await?;
//! assert_eq!(done.state, State::Done);
//! let thumb = stack.rendition(&file, "thumb").await?;
//! stack.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Modules:
//! - [`stack`]: [`IntakeStack`] and its builder, uploads, waits, renditions, teardown.
//! - [`samples`]: files to upload: a clean JPEG, the EICAR test file, an executable.
//! - [`localstack`]: a real LocalStack through testcontainers (pinned tag), or the one that
//!   `INTAKE_TEST_ENDPOINT` names; AWS clients pointed at it.
//! - [`names`]: unique (ULID) resource names so tests never share buckets or queues.
//! - [`wait`]: poll a condition until a deadline, instead of sleeping.
//! - [`queues`]: a test queue subscribed to a topic; taking messages off a queue.
//! - [`clamd`]: a real clamd with the project's tiny signature database (EICAR, a test marker).

pub mod clamd;
pub mod localstack;
pub mod names;
pub mod queues;
pub mod samples;
pub mod stack;
pub mod wait;

pub use localstack::{LocalStack, TestkitError};
pub use names::unique_pipeline_name;
pub use stack::{
    FileStatus, IntakeStack, IntakeStackBuilder, Rendition, Scanner, StackError, State,
    UploadedFile,
};
pub use wait::eventually;
