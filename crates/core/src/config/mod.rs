//! `pipeline.toml`: the types, their defaults (all in [`defaults`]), loading with located
//! errors and validation without IO.
//!
//! Loading is the only way to get a [`PipelineConfig`] that the rest of Intake trusts:
//! `PipelineConfig::load` parses, validates and reports every problem with
//! `file:line:column`, the field path and how to fix it.
//!
//! Imports flow one way: `load` → `validate` → `problem` and the section types.
//!
//! - `pipeline`: [`PipelineConfig`], the whole file, and the questions asked of it.
//! - `resources`, `queues`, `stages`, `classes`, `uploads`, `lifecycle`, `alarms`,
//!   `workers`, `api`: the sections' types, one module per concern.
//! - [`defaults`]: every default value.
//! - `problem`: [`Problem`] and [`ConfigError`].
//! - `validate`: the semantic checks, one module per concern.
//! - `load`: reading, parsing, validating and locating problems in the document.

mod alarms;
mod api;
mod classes;
pub mod defaults;
mod lifecycle;
mod load;
mod pipeline;
mod problem;
mod queues;
mod resources;
mod stages;
mod uploads;
mod validate;
mod workers;

pub use alarms::AlarmsSection;
pub use api::{ApiAuth, ApiKey, ApiRateLimits, ApiSection};
pub use classes::{ContentClass, Fit, Rendition, RenditionFormat};
pub use lifecycle::{LifecycleSection, Transition};
pub use pipeline::PipelineConfig;
pub use problem::{ConfigError, Problem};
pub use queues::{QueueOverrides, QueueSettings};
pub use resources::{AwsSection, BucketOverrides, PipelineSection, TopicOverrides};
pub use stages::{
    ARCHIVE_TAG, ArchiveApply, ArchivePolicy, ArchiveRule, ImageLimits, ScannerConfig, StageConfig,
};
pub use uploads::{MismatchPolicy, NotificationRoute, UploadsSection};
pub use validate::RENDERABLE_TYPES;
pub use workers::{DeleteVersions, DeletionSection, LedgerSection, WorkersSection};
