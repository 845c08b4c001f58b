//! One module per `intake` subcommand. Each depends on `crate::common`, `crate::devstack`
//! (`up` and `bench` only) and library crates, never on another subcommand: what two
//! subcommands share moves to `common` (or into a library crate).

pub mod bench;
pub mod catalog;
pub mod delete;
pub mod dlq;
pub mod provision;
pub mod reprocess;
pub mod run;
pub mod serve;
pub mod stats;
pub mod status;
pub mod up;
