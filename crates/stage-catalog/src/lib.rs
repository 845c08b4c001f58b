//! Intake's catalog stage: the record applications read. For every promoted version it
//! streams the stored bytes once through SHA-256 and writes one catalog record that joins
//! what every earlier stage published (detected type, class, tenant and user from
//! validate; verdict and engine from scan; dimensions and rendition keys from thumbnail).
//!
//! - [`stage`]: [`Catalog`], the [`intake_runtime::Stage`] implementation.
//! - [`record`]: building a [`intake_store::CatalogRecord`] from the recorded outcomes.

pub mod record;
pub mod stage;

pub use stage::Catalog;
