//! The state machine: known stages, an entry stage that is configured, outcomes that exist
//! and all have a route, targets that are configured stages or terminal states, every stage
//! reachable from the entry, and no loops.

use std::collections::{BTreeMap, BTreeSet};

use super::suggestion;
use crate::config::pipeline::PipelineConfig;
use crate::config::problem::Problem;
use crate::state_machine::{StageKind, Target, Terminal};

pub(super) fn check_state_machine(config: &PipelineConfig, problems: &mut Vec<Problem>) {
    let problems_before = problems.len();
    let kind_names = StageKind::ALL.map(StageKind::name);
    let mut configured = BTreeSet::new();
    for name in config.stages.keys() {
        match name.parse::<StageKind>() {
            Ok(kind) => {
                configured.insert(kind);
            }
            Err(()) => problems.push(Problem::new(
                format!("stages.{name}"),
                format!("unknown stage \"{name}\""),
                format!(
                    "{}Intake's stages are {}",
                    suggestion(name, kind_names),
                    kind_names.join(", ")
                ),
            )),
        }
    }
    let target_names: Vec<&str> = configured
        .iter()
        .map(|k| k.name())
        .chain(Terminal::ALL.map(Terminal::name))
        .collect();

    let entry = &config.pipeline.entry;
    let entry_kind = entry
        .parse::<StageKind>()
        .ok()
        .filter(|k| configured.contains(k));
    if entry_kind.is_none() {
        problems.push(Problem::new(
            "pipeline.entry",
            format!("entry stage \"{entry}\" is not a configured stage"),
            format!(
                "{}set it to one of the [stages.*] tables: {}",
                suggestion(entry, configured.iter().map(|k| k.name())),
                configured
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }

    let mut next: BTreeMap<StageKind, BTreeSet<StageKind>> = BTreeMap::new();
    for &kind in &configured {
        let stage = &config.stages[kind.name()];
        for (outcome, target) in &stage.on {
            let path = format!("stages.{kind}.on.{outcome}");
            if !kind.outcomes().contains(&outcome.as_str()) {
                problems.push(Problem::new(
                    &path,
                    format!("stage {kind} has no outcome \"{outcome}\""),
                    format!(
                        "{}its outcomes are {}",
                        suggestion(outcome, kind.outcomes().iter().copied()),
                        kind.outcomes().join(", ")
                    ),
                ));
            }
            match target.parse::<Target>() {
                Ok(Target::Stage(to)) if !configured.contains(&to) => problems.push(Problem::new(
                    &path,
                    format!("route target \"{target}\" is a stage that this pipeline does not configure"),
                    format!("add a [stages.{target}] table, or route to one of: {}", target_names.join(", ")),
                )),
                Ok(Target::Stage(to)) if to == kind => problems.push(Problem::new(
                    &path,
                    format!("stage {kind} routes to itself"),
                    "route the outcome to a later stage or to a terminal state (done, quarantined, failed)",
                )),
                Ok(Target::Stage(to)) => {
                    next.entry(kind).or_default().insert(to);
                }
                Ok(Target::Terminal(_)) => {}
                Err(()) => problems.push(Problem::new(
                    &path,
                    format!("unknown route target \"{target}\""),
                    format!(
                        "{}a target is a configured stage or a terminal state: {}",
                        suggestion(target, target_names.iter().copied()),
                        target_names.join(", ")
                    ),
                )),
            }
        }
        for outcome in kind.outcomes() {
            if !stage.on.contains_key(*outcome) {
                problems.push(Problem::new(
                    format!("stages.{kind}.on"),
                    format!("outcome \"{outcome}\" of stage {kind} has no route"),
                    format!("add `on.{outcome} = \"<stage or done/quarantined/failed>\"` to [stages.{kind}]"),
                ));
            }
        }
    }

    // A broken route makes everything behind it look unreachable; report the cause only.
    let Some(entry) = entry_kind else { return };
    if problems.len() > problems_before {
        return;
    }
    let mut reached = BTreeSet::from([entry]);
    let mut frontier = vec![entry];
    while let Some(stage) = frontier.pop() {
        for &to in next.get(&stage).into_iter().flatten() {
            if reached.insert(to) {
                frontier.push(to);
            }
        }
    }
    for kind in configured.difference(&reached) {
        problems.push(Problem::new(
            format!("stages.{kind}"),
            format!("stage {kind} is unreachable: no route from the entry stage \"{entry}\" leads to it"),
            format!("route an outcome to \"{kind}\" (e.g. on.passed = \"{kind}\"), or remove [stages.{kind}]"),
        ));
    }
    if let Some(stage) = find_cycle(&next) {
        problems.push(Problem::new(
            format!("stages.{stage}.on"),
            format!("the routes form a loop through stage {stage}: an object would circle forever"),
            "routes must lead forward to a terminal state (done, quarantined, failed)",
        ));
    }
}

pub(super) fn find_cycle(next: &BTreeMap<StageKind, BTreeSet<StageKind>>) -> Option<StageKind> {
    fn visit(
        node: StageKind,
        next: &BTreeMap<StageKind, BTreeSet<StageKind>>,
        on_path: &mut BTreeSet<StageKind>,
        done: &mut BTreeSet<StageKind>,
    ) -> Option<StageKind> {
        if on_path.contains(&node) {
            return Some(node);
        }
        if !done.insert(node) {
            return None;
        }
        on_path.insert(node);
        for &to in next.get(&node).into_iter().flatten() {
            if let Some(found) = visit(to, next, on_path, done) {
                return Some(found);
            }
        }
        on_path.remove(&node);
        None
    }
    let mut done = BTreeSet::new();
    next.keys()
        .find_map(|&start| visit(start, next, &mut BTreeSet::new(), &mut done))
}
