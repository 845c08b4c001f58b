//! The per-object state machine: which stages exist, which outcomes each can produce, the
//! terminal states, and the compiled routing table (for each stage, which `(stage, outcome)`
//! pairs feed its queue). Provisioning turns the routing table into SNS filter policies.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// The kinds of stage Intake ships. A stage's name in `pipeline.toml` is its kind.
/// [`StageKind::Delete`] is the deletion worker: it runs on a queue of its own like a stage,
/// but is fed by deletion requests (`intake delete`, the API), not by the state machine, so
/// it is not in [`StageKind::ALL`] and cannot appear under `[stages]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StageKind {
    Validate,
    Scan,
    Thumbnail,
    Catalog,
    Archive,
    Delete,
}

impl StageKind {
    pub const ALL: [StageKind; 5] = [
        StageKind::Validate,
        StageKind::Scan,
        StageKind::Thumbnail,
        StageKind::Catalog,
        StageKind::Archive,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            StageKind::Validate => "validate",
            StageKind::Scan => "scan",
            StageKind::Thumbnail => "thumbnail",
            StageKind::Catalog => "catalog",
            StageKind::Archive => "archive",
            StageKind::Delete => "delete",
        }
    }

    /// Every outcome this stage can publish; each needs a route in `pipeline.toml`.
    pub const fn outcomes(self) -> &'static [&'static str] {
        match self {
            StageKind::Validate => &["passed", "rejected", "failed"],
            StageKind::Scan => &["clean", "infected", "unscannable", "failed"],
            StageKind::Thumbnail => &["thumbnailed", "skipped", "failed"],
            StageKind::Catalog => &["cataloged", "failed"],
            StageKind::Archive => &["archived", "kept", "failed"],
            StageKind::Delete => &["deleted", "failed"],
        }
    }

    /// Every kind that has a queue: the pipeline stages and the deletion worker.
    pub const WITH_QUEUES: [StageKind; 6] = [
        StageKind::Validate,
        StageKind::Scan,
        StageKind::Thumbnail,
        StageKind::Catalog,
        StageKind::Archive,
        StageKind::Delete,
    ];

    /// The fixed routes of the deletion worker, which `pipeline.toml` does not route: a
    /// deleted object ends `deleted`; a deletion that cannot be done ends `delete_failed`
    /// (the object is still there, and the ledger says why).
    pub fn fixed_route(self, outcome: &str) -> Option<&'static str> {
        match (self, outcome) {
            (StageKind::Delete, "deleted") => Some(DELETED_STATE),
            (StageKind::Delete, _) => Some(DELETE_FAILED_STATE),
            _ => None,
        }
    }
}

impl fmt::Display for StageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StageKind {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        StageKind::ALL.into_iter().find(|k| k.name() == s).ok_or(())
    }
}

/// The state of a version whose deletion completed.
pub const DELETED_STATE: &str = "deleted";
/// The state of a version whose deletion failed permanently.
pub const DELETE_FAILED_STATE: &str = "delete_failed";

/// States an object can end in; no stage runs after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Terminal {
    Done,
    Quarantined,
    Failed,
}

impl Terminal {
    pub const ALL: [Terminal; 3] = [Terminal::Done, Terminal::Quarantined, Terminal::Failed];

    pub const fn name(self) -> &'static str {
        match self {
            Terminal::Done => "done",
            Terminal::Quarantined => "quarantined",
            Terminal::Failed => "failed",
        }
    }
}

impl FromStr for Terminal {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Terminal::ALL.into_iter().find(|t| t.name() == s).ok_or(())
    }
}

/// Where an outcome leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Stage(StageKind),
    Terminal(Terminal),
}

impl FromStr for Target {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        s.parse()
            .map(Target::Stage)
            .or_else(|()| s.parse().map(Target::Terminal))
    }
}

/// One edge of the state machine: `from` published `outcome`, which leads to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub from: StageKind,
    pub outcome: String,
    pub to: Target,
}

/// For each stage that some edge leads to, the `(source stage -> outcomes)` that feed it.
/// Ordered maps keep compiled filter policies byte-for-byte stable between runs, which is
/// what lets provisioning report "unchanged".
pub type Inbound = BTreeMap<StageKind, BTreeMap<StageKind, Vec<String>>>;

/// Group edges by the stage they lead to. Edges into terminal states need no queue.
pub fn inbound_routes(edges: &[Edge]) -> Inbound {
    let mut inbound: Inbound = BTreeMap::new();
    for edge in edges {
        if let Target::Stage(to) = edge.to {
            let outcomes = inbound.entry(to).or_default().entry(edge.from).or_default();
            outcomes.push(edge.outcome.clone());
            outcomes.sort();
        }
    }
    inbound
}

/// The SNS subscription filter policy (on message attributes) that lets exactly the outcomes
/// in `sources` into a stage's queue. One source stage gives a flat policy; several are joined
/// with `$or`, since SNS keeps a single subscription per (topic, queue).
pub fn filter_policy(sources: &BTreeMap<StageKind, Vec<String>>) -> serde_json::Value {
    let clause = |from: &StageKind, outcomes: &Vec<String>| serde_json::json!({ "stage": [from.name()], "outcome": outcomes });
    let mut clauses: Vec<_> = sources.iter().map(|(f, o)| clause(f, o)).collect();
    if clauses.len() == 1 {
        clauses.remove(0)
    } else {
        serde_json::json!({ "$or": clauses })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(from: StageKind, outcome: &str, to: &str) -> Edge {
        Edge {
            from,
            outcome: outcome.into(),
            to: to.parse().unwrap(),
        }
    }

    #[test]
    fn targets_parse_as_stage_or_terminal() {
        assert_eq!("scan".parse(), Ok(Target::Stage(StageKind::Scan)));
        assert_eq!(
            "quarantined".parse(),
            Ok(Target::Terminal(Terminal::Quarantined))
        );
        assert_eq!("thumbnial".parse::<Target>(), Err(()));
    }

    #[test]
    fn one_source_gives_a_flat_filter_policy() {
        let edges = [
            edge(StageKind::Validate, "passed", "scan"),
            edge(StageKind::Validate, "rejected", "quarantined"),
        ];
        let inbound = inbound_routes(&edges);
        assert_eq!(inbound.len(), 1, "terminal targets need no queue");
        assert_eq!(
            filter_policy(&inbound[&StageKind::Scan]),
            serde_json::json!({"stage": ["validate"], "outcome": ["passed"]})
        );
    }

    #[test]
    fn outcomes_of_one_source_share_a_clause_and_sources_join_with_or() {
        let edges = [
            edge(StageKind::Thumbnail, "thumbnailed", "catalog"),
            edge(StageKind::Thumbnail, "skipped", "catalog"),
            edge(StageKind::Scan, "clean", "catalog"),
        ];
        let inbound = inbound_routes(&edges);
        assert_eq!(
            filter_policy(&inbound[&StageKind::Catalog]),
            serde_json::json!({"$or": [
                {"stage": ["scan"], "outcome": ["clean"]},
                {"stage": ["thumbnail"], "outcome": ["skipped", "thumbnailed"]},
            ]})
        );
    }

    #[test]
    fn every_stage_can_fail() {
        for kind in StageKind::ALL {
            assert!(kind.outcomes().contains(&"failed"), "{kind}");
        }
    }
}
