//! Intake's AWS side.
//!
//! - [`calls`]: requests counted by operation, in the clients themselves.
//! - [`clients`]: every AWS client built from one `SdkConfig` (endpoint override, path-style S3).
//! - [`error`]: [`AwsError`], which says which call failed on what and what to check.
//! - [`provision`]: compute a plan (create / update / unchanged / delete per resource) from a
//!   [`PipelineConfig`](intake_core::PipelineConfig) and apply it, idempotently.
//! - [`arn`]: ARNs of a pipeline's resources in one account and region.
//! - [`iam`]: least-privilege IAM policies for the worker and API roles.
//! - [`objects`]: moving one exact object version between buckets (copy with tags, delete).
//! - [`purge`]: listing and deleting every version under a prefix (deletions).
//! - [`presign`]: presigned uploads (PUTs with signed size and type, parts with signed size, POST
//!   policies with a size range), multipart create/complete/abort, S3's part limits.

pub mod arn;
pub mod calls;
pub mod clients;
pub mod error;
pub mod iam;
pub mod objects;
pub mod presign;
pub mod provision;
pub mod purge;

pub use clients::AwsClients;
pub use error::AwsError;
