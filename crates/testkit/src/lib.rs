//! Test fixtures for Intake, used by its own tests and by app teams' integration tests.
//!
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
pub mod wait;

pub use localstack::{LocalStack, TestkitError};
pub use names::unique_pipeline_name;
pub use wait::eventually;
