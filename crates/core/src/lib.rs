//! Intake's core: everything that is true of a pipeline without talking to AWS.
//!
//! - [`clock`]: the one clock: "now" in epoch milliseconds, moved by hand in tests.
//! - [`config`]: `pipeline.toml` types, defaults, loading with located errors, validation.
//! - [`size`]: byte sizes written with units (`10MB`, `1.5GiB`).
//! - [`state_machine`]: stages, their outcomes, terminal states and the routing table.
//! - [`names`]: the concrete names of every bucket, queue and topic of a pipeline.
//! - [`s3_key`]: decoding object keys as S3 notifications encode them.
//! - [`object`]: [`ObjectRef`], one version of one object.
//! - [`event`]: SQS bodies to [`event::Incoming`] (S3 events, test events, outcomes) or poison.
//! - [`s3_event`]: S3 notification records and EventBridge `aws.s3` events, checked field by field.
//! - [`outcome`]: the outcome message every stage publishes, and its filter attributes.
//! - [`deletion`]: the deletion request `intake delete` queues for the deletion worker.
//! - [`key_template`]: reading tenant, user and filename back out of an upload key.
//! - [`stage_error`]: the three failure classes and their fixed codes.

pub mod clock;
pub mod config;
pub mod deletion;
pub mod event;
pub mod key_template;
pub mod names;
pub mod object;
pub mod outcome;
pub mod s3_event;
pub mod s3_key;
pub mod size;
pub mod stage_error;
pub mod state_machine;

pub use config::{ConfigError, PipelineConfig, Problem};
pub use deletion::DeletionRequest;
pub use names::ResourceNames;
pub use object::ObjectRef;
pub use outcome::OutcomeMessage;
pub use size::ByteSize;
pub use stage_error::{ErrorClass, StageError};
pub use state_machine::{StageKind, Target, Terminal};
