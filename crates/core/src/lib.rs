//! Intake's core: everything that is true of a pipeline without talking to AWS.
//!
//! - [`config`]: `pipeline.toml` types, defaults, loading with located errors, validation.
//! - [`size`]: byte sizes written with units (`10MB`, `1.5GiB`).
//! - [`state_machine`]: stages, their outcomes, terminal states and the routing table.
//! - [`names`]: the concrete names of every bucket, queue and topic of a pipeline.
//! - [`s3_key`]: decoding object keys as S3 notifications encode them.

pub mod config;
pub mod names;
pub mod s3_key;
pub mod size;
pub mod state_machine;

pub use config::{ConfigError, PipelineConfig, Problem};
pub use names::ResourceNames;
pub use size::ByteSize;
pub use state_machine::{StageKind, Target, Terminal};
