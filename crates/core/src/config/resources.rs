//! `[pipeline]`, `[aws]`, `[buckets]` and `[topics]`: the pipeline's name, where AWS is,
//! and explicit names for the buckets and topics that would otherwise derive from it.

use serde::{Deserialize, Serialize};

use super::defaults;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    /// Prefix of every derived resource name.
    pub name: String,
    /// The stage fed by the uploads bucket's notifications.
    #[serde(default = "defaults::entry")]
    pub entry: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSection {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

/// Explicit bucket names; each one left out is `<pipeline.name>-<role>`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BucketOverrides {
    pub uploads: Option<String>,
    pub store: Option<String>,
    pub derivatives: Option<String>,
    pub quarantine: Option<String>,
    pub logs: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TopicOverrides {
    pub events: Option<String>,
    pub alerts: Option<String>,
}
