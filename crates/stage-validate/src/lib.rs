//! The validate stage: the pipeline's entry gate, which decides whether an upload is what
//! it claims to be and may go on to be scanned.
//!
//! - [`judge`]: the decision itself, pure (no IO, no AWS): size, key template, the type
//!   detected from the first bytes against the file name and the declared `Content-Type`,
//!   and the content classes of `pipeline.toml`.
//! - [`stage`]: [`Validate`], the runtime [`Stage`](intake_runtime::Stage): HEAD and a
//!   ranged GET of [`HEAD_BYTES`] of the exact version, the verdict as a `passed` or
//!   `rejected` outcome, rejected objects moved to quarantine.

pub mod judge;
pub mod stage;

pub use judge::{HEAD_BYTES, RejectCode, Rules, Upload, Verdict, detect_type, judge};
pub use stage::Validate;
