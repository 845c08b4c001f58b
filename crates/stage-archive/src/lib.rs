//! The archive stage, the last one of a promoted object: the first rule of
//! `[stages.archive.policy]` whose filters (content class, tenant, key prefix) match names a
//! storage class. `apply = "now"` rewrites the exact promoted version in place in that class
//! (metadata and tags kept, multipart above 5 GB) and deletes the STANDARD version it
//! replaces; `apply = "lifecycle"` tags the version `intake-archive=<rule id>` and leaves
//! the move to the store bucket's lifecycle rule for that tag. Both end `archived`; objects
//! no rule matches, or under `min_size`, end `kept` with a reason. The catalog record, when
//! there is one, learns the storage class and the version now current.
//!
//! These writes cannot re-trigger the pipeline: they happen in the store bucket, which
//! sends no event notifications (only the uploads bucket does, and only for Put, Post and
//! CompleteMultipartUpload, never Copy).
//!
//! - [`policy`]: which rule applies and whether the object is worth moving (no IO).
//! - `stage`: the S3 side: copy in place or tag, the catalog, safe retries.

pub mod policy;
mod stage;

pub use policy::{Decision, Facts, decide};
pub use stage::{Archive, SOURCE_VERSION_TAG};
