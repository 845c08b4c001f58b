//! Semantic checks of a parsed `pipeline.toml`, without IO. [`validate`] runs every check
//! and returns every problem found, each with its field path and a fix; one module per
//! concern:
//!
//! - `names`: the pipeline name, bucket and topic names, the AWS endpoint.
//! - `queues`: SQS limits of the queue defaults and each stage's overrides.
//! - `routes`: the state machine (unknown stages and targets, unrouted outcomes,
//!   unreachable stages, loops).
//! - `stages`: the tables only one stage reads (scanner, image limits).
//! - `classes`: content classes and their renditions.
//! - `uploads`: the key template and CORS origins.
//! - `archive`: the archive stage's rules.
//! - `lifecycle`: bucket lifecycle periods, transitions and storage classes.
//! - `operations`: alarms, the ledger URL and worker bounds.
//! - `api`: the HTTP API's address, URL lifetimes, part sizes, auth, keys and limits.

mod api;
mod archive;
mod classes;
mod lifecycle;
mod names;
mod operations;
mod queues;
mod routes;
mod stages;
mod uploads;

use self::api::check_api;
use self::archive::check_archive;
use self::classes::{check_classes, check_renditions};
use self::lifecycle::check_lifecycle;
use self::names::check_names;
use self::operations::{check_alarms, check_ledger, check_workers};
use self::queues::check_queue;
use self::routes::check_state_machine;
use self::stages::{check_image_limits, check_scanners};
use self::uploads::check_uploads;
use super::pipeline::PipelineConfig;
use super::problem::Problem;

pub use classes::RENDERABLE_TYPES;

pub(super) fn validate(config: &PipelineConfig) -> Vec<Problem> {
    let mut problems = Vec::new();
    check_names(config, &mut problems);
    check_queue(
        "queue_defaults",
        &config.queue_defaults,
        None,
        &mut problems,
    );
    for (name, stage) in &config.stages {
        // Only what the stage overrides: an inherited bad default is reported once, above.
        check_queue(
            &format!("stages.{name}.queue"),
            &stage.queue.apply_to(config.queue_defaults),
            Some(&stage.queue),
            &mut problems,
        );
    }
    check_state_machine(config, &mut problems);
    check_scanners(config, &mut problems);
    check_classes(config, &mut problems);
    check_renditions(config, &mut problems);
    check_image_limits(config, &mut problems);
    check_uploads(config, &mut problems);
    check_archive(config, &mut problems);
    check_lifecycle(config, &mut problems);
    check_alarms(config, &mut problems);
    check_ledger(config, &mut problems);
    check_workers(config, &mut problems);
    check_api(config, &mut problems);
    problems
}

/// The closest candidate to a misspelt name, if one is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(input, c), c))
        .filter(|(distance, c)| *distance <= (c.len() / 3).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

fn suggestion<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean(input, candidates)
        .map(|c| format!("did you mean \"{c}\"? "))
        .unwrap_or_default()
}
