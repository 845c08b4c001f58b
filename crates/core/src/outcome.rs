//! Intake's outcome message: what every stage publishes to the events topic (schema version
//! 1, documented in docs/events.md), and the message attributes that filter policies match.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::object::ObjectRef;

pub const OUTCOME_SCHEMA_VERSION: u32 = 1;

/// Per-stage timing of one outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    /// Milliseconds since the Unix epoch.
    pub started_ms: i64,
    pub finished_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeMessage {
    /// Schema version; a field named this way also marks the JSON as an Intake outcome.
    pub intake_outcome: u32,
    pub object: ObjectRef,
    pub stage: String,
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// MIME type detected from the content (magic bytes), once validate has run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detected_type: Option<String>,
    /// Content class from pipeline.toml, once validate has run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Where the object lives after this stage, when the stage moved it (promotion,
    /// quarantine): later stages read from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<ObjectRef>,
    pub timings: Timings,
    pub worker: String,
    /// Stage-specific results (renditions, scan verdict...), kept open for later stages.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl OutcomeMessage {
    /// SNS message attributes: exactly the keys filter policies use. Values are bounded
    /// (stage, outcome and class names; the tenant is the app's own routing key).
    pub fn attributes(&self) -> BTreeMap<&'static str, String> {
        let mut attributes = BTreeMap::from([
            ("stage", self.stage.clone()),
            ("outcome", self.outcome.clone()),
        ]);
        if let Some(tenant) = &self.object.tenant {
            attributes.insert("tenant", tenant.clone());
        }
        if let Some(class) = &self.class {
            attributes.insert("class", class.clone());
        }
        attributes
    }

    /// The digest a stage recorded while it read every byte of the object
    /// ([`CONTENT_DIGEST_KEY`] in `extra`), if one did.
    pub fn content_digest(&self) -> Option<ContentDigest> {
        let value = self.extra.get(CONTENT_DIGEST_KEY)?;
        serde_json::from_value(value.clone()).ok()
    }

    /// The object the next stage should read.
    pub fn current_location(&self) -> &ObjectRef {
        self.location.as_ref().unwrap_or(&self.object)
    }
}

/// Where in an outcome's `extra` a [`ContentDigest`] goes.
pub const CONTENT_DIGEST_KEY: &str = "content";

/// SHA-256 and length of an object version's bytes, taken by a stage that read them all
/// anyway (scan streams every byte to the scanner), so that later stages (catalog) need not
/// read the object again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentDigest {
    /// 64 lowercase hex digits.
    pub sha256: String,
    pub size: u64,
}
