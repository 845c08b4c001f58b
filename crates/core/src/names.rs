//! Concrete names of a pipeline's AWS resources, derived from `pipeline.name` unless the
//! config names a bucket or topic explicitly. One place, so provisioning, workers, the CLI
//! and IAM policies can never disagree on a name.

use std::collections::BTreeMap;

use crate::config::PipelineConfig;
use crate::state_machine::StageKind;

/// The five bucket roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BucketRole {
    Uploads,
    Store,
    Derivatives,
    Quarantine,
    Logs,
}

impl BucketRole {
    pub const ALL: [BucketRole; 5] = [
        BucketRole::Uploads,
        BucketRole::Store,
        BucketRole::Derivatives,
        BucketRole::Quarantine,
        BucketRole::Logs,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            BucketRole::Uploads => "uploads",
            BucketRole::Store => "store",
            BucketRole::Derivatives => "derivatives",
            BucketRole::Quarantine => "quarantine",
            BucketRole::Logs => "logs",
        }
    }
}

/// Queue names of one stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageQueues {
    pub queue: String,
    pub dlq: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceNames {
    pub prefix: String,
    pub buckets: BTreeMap<BucketRole, String>,
    pub events_topic: String,
    pub alerts_topic: String,
    pub stages: BTreeMap<StageKind, StageQueues>,
}

impl ResourceNames {
    pub fn of(config: &PipelineConfig) -> Self {
        let prefix = config.pipeline.name.clone();
        let derived = |role: &str| format!("{prefix}-{role}");
        let b = &config.buckets;
        let buckets = BucketRole::ALL
            .into_iter()
            .map(|role| {
                let explicit = match role {
                    BucketRole::Uploads => &b.uploads,
                    BucketRole::Store => &b.store,
                    BucketRole::Derivatives => &b.derivatives,
                    BucketRole::Quarantine => &b.quarantine,
                    BucketRole::Logs => &b.logs,
                };
                (
                    role,
                    explicit.clone().unwrap_or_else(|| derived(role.name())),
                )
            })
            .collect();
        let stages = StageKind::WITH_QUEUES
            .into_iter()
            .map(|kind| {
                let queue = derived(kind.name());
                (
                    kind,
                    StageQueues {
                        dlq: format!("{queue}-dlq"),
                        queue,
                    },
                )
            })
            .collect();
        ResourceNames {
            buckets,
            events_topic: config
                .topics
                .events
                .clone()
                .unwrap_or_else(|| derived("events")),
            alerts_topic: config
                .topics
                .alerts
                .clone()
                .unwrap_or_else(|| derived("alerts")),
            stages,
            prefix,
        }
    }

    pub fn bucket(&self, role: BucketRole) -> &str {
        &self.buckets[&role]
    }

    pub fn stage(&self, kind: StageKind) -> &StageQueues {
        &self.stages[&kind]
    }

    /// Name of a CloudWatch alarm of this pipeline; the prefix lets provisioning find (and
    /// only touch) its own alarms.
    pub fn alarm(&self, what: &str) -> String {
        format!("{}-{what}", self.prefix)
    }
}
