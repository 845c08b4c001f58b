//! [`PipelineConfig`]: the whole of `pipeline.toml` as one value, and the questions the
//! rest of Intake asks of it (stage kinds, entry stage, a stage's queue settings, routes,
//! the edges of the state machine).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::alarms::AlarmsSection;
use super::api::ApiSection;
use super::classes::ContentClass;
use super::lifecycle::LifecycleSection;
use super::queues::QueueSettings;
use super::resources::{AwsSection, BucketOverrides, PipelineSection, TopicOverrides};
use super::stages::{ArchivePolicy, ImageLimits, ScannerConfig, StageConfig};
use super::uploads::UploadsSection;
use super::workers::{DeletionSection, LedgerSection, WorkersSection};
use crate::state_machine::{Edge, StageKind};

/// The whole pipeline: names, queues, the state machine, content rules, lifecycle, alarms.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    pub pipeline: PipelineSection,
    #[serde(default)]
    pub aws: AwsSection,
    #[serde(default)]
    pub buckets: BucketOverrides,
    #[serde(default)]
    pub topics: TopicOverrides,
    #[serde(default)]
    pub queue_defaults: QueueSettings,
    pub stages: BTreeMap<String, StageConfig>,
    pub classes: BTreeMap<String, ContentClass>,
    #[serde(default)]
    pub uploads: UploadsSection,
    #[serde(default)]
    pub lifecycle: LifecycleSection,
    #[serde(default)]
    pub alarms: AlarmsSection,
    #[serde(default)]
    pub ledger: LedgerSection,
    #[serde(default)]
    pub workers: WorkersSection,
    #[serde(default)]
    pub deletion: DeletionSection,
    #[serde(default)]
    pub api: ApiSection,
}

impl PipelineConfig {
    /// Stage kinds in the config, in pipeline order. Only meaningful after validation, which
    /// guarantees every stage name is a known kind.
    pub fn stage_kinds(&self) -> Vec<StageKind> {
        StageKind::ALL
            .into_iter()
            .filter(|k| self.stages.contains_key(k.name()))
            .collect()
    }

    /// The `[stages.<kind>]` section, if the pipeline has that stage. Stage sections are
    /// keyed by name in the file; code reaches them by kind through this (and
    /// [`PipelineConfig::stage_mut`]) so a misspelt name cannot compile.
    pub fn stage(&self, kind: StageKind) -> Option<&StageConfig> {
        self.stages.get(kind.name())
    }

    pub fn stage_mut(&mut self, kind: StageKind) -> Option<&mut StageConfig> {
        self.stages.get_mut(kind.name())
    }

    /// Whether the pipeline has the stage `kind` (the deletion worker is always there).
    pub fn has_stage(&self, kind: StageKind) -> bool {
        kind == StageKind::Delete || self.stages.contains_key(kind.name())
    }

    /// The scan stage's scanner (clamd on 127.0.0.1:3310 when `[stages.scan.scanner]` is
    /// absent), or `None` without a scan stage.
    pub fn scanner(&self) -> Option<ScannerConfig> {
        self.stage(StageKind::Scan)
            .map(|s| s.scanner.clone().unwrap_or_default())
    }

    pub fn entry_stage(&self) -> StageKind {
        self.pipeline
            .entry
            .parse()
            .expect("validated: entry is a known stage")
    }

    /// The thumbnail stage's limits (defaults when `[stages.thumbnail.images]` is absent).
    pub fn image_limits(&self) -> ImageLimits {
        self.stage(StageKind::Thumbnail)
            .and_then(|s| s.images.clone())
            .unwrap_or_default()
    }

    /// The archive stage's policy (keep everything when `[stages.archive.policy]` is absent).
    pub fn archive_policy(&self) -> ArchivePolicy {
        self.stage(StageKind::Archive)
            .and_then(|s| s.policy.clone())
            .unwrap_or_default()
    }

    /// Effective queue settings of a stage (defaults plus its overrides).
    pub fn queue_settings(&self, stage: StageKind) -> QueueSettings {
        if stage == StageKind::Delete {
            return self.deletion.queue.apply_to(self.queue_defaults);
        }
        self.stage(stage)
            .map(|s| s.queue.apply_to(self.queue_defaults))
            .unwrap_or(self.queue_defaults)
    }

    /// Where `outcome` of `stage` leads: a stage or terminal state from `pipeline.toml`, or
    /// the deletion worker's fixed route. `None` when nothing routes it.
    pub fn route(&self, stage: StageKind, outcome: &str) -> Option<String> {
        if let Some(fixed) = stage.fixed_route(outcome) {
            return Some(fixed.to_owned());
        }
        self.stage(stage)?.on.get(outcome).cloned()
    }

    /// Kinds with a queue to provision and consume: the configured stages and the
    /// deletion worker.
    pub fn queue_kinds(&self) -> Vec<StageKind> {
        let mut kinds = self.stage_kinds();
        kinds.push(StageKind::Delete);
        kinds
    }

    /// All edges of the state machine. Only meaningful after validation.
    pub fn edges(&self) -> Vec<Edge> {
        let mut edges = Vec::new();
        for kind in self.stage_kinds() {
            for (outcome, target) in &self.stages[kind.name()].on {
                edges.push(Edge {
                    from: kind,
                    outcome: outcome.clone(),
                    to: target
                        .parse()
                        .expect("validated: targets are stages or terminals"),
                });
            }
        }
        edges
    }

    /// The same pipeline under another name: every derived resource name changes with it.
    /// Tests use this to give each run its own buckets, queues and topics.
    pub fn renamed(mut self, name: &str) -> Self {
        self.pipeline.name = name.to_owned();
        self.buckets = BucketOverrides::default();
        self.topics = TopicOverrides::default();
        self
    }
}
