//! Semantic checks of a parsed `pipeline.toml`, without IO: names, queue limits, the state
//! machine (unknown targets, unrouted outcomes, unreachable stages, cycles), content classes,
//! the key template, archive rules, lifecycle rules and alarms. Each problem names its field
//! path and a fix.

use std::collections::{BTreeMap, BTreeSet};

use super::{ArchiveApply, PipelineConfig, QueueOverrides, QueueSettings};
use crate::config::load::Problem;
use crate::names::{BucketRole, ResourceNames};
use crate::state_machine::{StageKind, Target, Terminal};

/// S3 refuses single objects over 5 TiB.
const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024 * 1024;
const STORAGE_CLASSES: [&str; 7] = [
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
    "EXPRESS_ONEZONE",
];
/// What an archive rule may move an original to. ONEZONE_IA keeps one copy in one zone:
/// fine for derivatives, not for the only copy of an upload.
const ARCHIVE_STORAGE_CLASSES: [&str; 5] = [
    "STANDARD_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
];
const KEY_PLACEHOLDERS: [&str; 4] = ["tenant", "user", "uuid", "filename"];

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

fn check_names(config: &PipelineConfig, problems: &mut Vec<Problem>) {
    let name = &config.pipeline.name;
    let valid_prefix = !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !valid_prefix {
        problems.push(Problem::new(
            "pipeline.name",
            format!("\"{name}\" cannot prefix bucket and queue names"),
            "use 1 to 40 lowercase letters, digits and inner hyphens, e.g. \"acme-intake\"",
        ));
    }
    let names = ResourceNames::of(config);
    let mut seen: BTreeMap<&str, String> = BTreeMap::new();
    for role in BucketRole::ALL {
        let bucket = names.bucket(role);
        let path = format!("buckets.{}", role.name());
        if !valid_bucket_name(bucket) {
            problems.push(Problem::new(
                &path,
                format!("\"{bucket}\" is not a valid S3 bucket name"),
                "use 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit",
            ));
        }
        if let Some(first) = seen.insert(bucket, path.clone()) {
            problems.push(Problem::new(
                &path,
                format!("bucket name \"{bucket}\" is also used by {first}"),
                "every bucket role needs its own bucket: give this one a different name",
            ));
        }
    }
    for (path, topic) in [
        ("topics.events", &names.events_topic),
        ("topics.alerts", &names.alerts_topic),
    ] {
        let valid = !topic.is_empty()
            && topic.len() <= 256
            && topic
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            problems.push(Problem::new(
                path,
                format!("\"{topic}\" is not a valid SNS topic name"),
                "use 1 to 256 letters, digits, hyphens and underscores",
            ));
        }
    }
    if names.events_topic == names.alerts_topic {
        problems.push(Problem::new(
            "topics.alerts",
            format!(
                "topic name \"{}\" is also used by topics.events",
                names.alerts_topic
            ),
            "alerts and events need separate topics: give one of them another name",
        ));
    }
    if let Some(url) = &config.aws.endpoint_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        problems.push(Problem::new(
            "aws.endpoint_url",
            format!("\"{url}\" is not an http(s) URL"),
            "write it in full, e.g. \"http://localhost:4566\", or remove it to use AWS",
        ));
    }
}

fn valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !name.contains("..")
}

fn check_queue(
    path: &str,
    q: &QueueSettings,
    overrides: Option<&QueueOverrides>,
    problems: &mut Vec<Problem>,
) {
    let overridden = |field: &str| {
        overrides.is_none_or(|o| match field {
            "visibility_timeout_secs" => o.visibility_timeout_secs.is_some(),
            "wait_time_secs" => o.wait_time_secs.is_some(),
            "max_receive_count" => o.max_receive_count.is_some(),
            "retention_secs" => o.retention_secs.is_some(),
            _ => o.dlq_retention_secs.is_some(),
        })
    };
    let mut out_of_range = |field: &str, value: u32, min: u32, max: u32, why: &str| {
        if overridden(field) && !(min..=max).contains(&value) {
            problems.push(Problem::new(
                format!("{path}.{field}"),
                format!("{value} is out of range"),
                format!("use a value from {min} to {max} ({why})"),
            ));
        }
    };
    out_of_range(
        "visibility_timeout_secs",
        q.visibility_timeout_secs,
        0,
        43_200,
        "SQS caps visibility at 12 hours",
    );
    out_of_range(
        "wait_time_secs",
        q.wait_time_secs,
        0,
        20,
        "SQS long polls for at most 20 seconds",
    );
    out_of_range(
        "max_receive_count",
        q.max_receive_count,
        1,
        1000,
        "SQS redrive allows 1 to 1000 receives",
    );
    out_of_range(
        "retention_secs",
        q.retention_secs,
        60,
        1_209_600,
        "SQS keeps messages 1 minute to 14 days",
    );
    out_of_range(
        "dlq_retention_secs",
        q.dlq_retention_secs,
        60,
        1_209_600,
        "SQS keeps messages 1 minute to 14 days",
    );
}

fn check_state_machine(config: &PipelineConfig, problems: &mut Vec<Problem>) {
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

fn find_cycle(next: &BTreeMap<StageKind, BTreeSet<StageKind>>) -> Option<StageKind> {
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

fn check_scanners(config: &PipelineConfig, problems: &mut Vec<Problem>) {
    for (name, stage) in &config.stages {
        let Some(scanner) = &stage.scanner else {
            continue;
        };
        let path = format!("stages.{name}.scanner");
        if name != "scan" {
            problems.push(Problem::new(
                &path,
                format!("stage {name} has no scanner"),
                "move the [scanner] table to [stages.scan.scanner]",
            ));
            continue;
        }
        if let super::ScannerConfig::Clamd {
            address,
            timeout_secs,
        } = scanner
        {
            let valid = address.strip_prefix("tcp://").is_some_and(|hp| {
                hp.rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
            }) || address
                .strip_prefix("unix://")
                .is_some_and(|p| p.starts_with('/'));
            if !valid {
                problems.push(Problem::new(
                    format!("{path}.address"),
                    format!("\"{address}\" is not a clamd address"),
                    "write tcp://HOST:PORT (e.g. tcp://127.0.0.1:3310) or unix:///ABSOLUTE/PATH (e.g. unix:///run/clamav/clamd.ctl)",
                ));
            }
            if *timeout_secs == 0 {
                problems.push(Problem::new(
                    format!("{path}.timeout_secs"),
                    "a timeout of 0 s",
                    "use the seconds clamd may take per step, e.g. 120",
                ));
            }
        }
    }
}

fn check_classes(config: &PipelineConfig, problems: &mut Vec<Problem>) {
    if config.classes.is_empty() {
        problems.push(Problem::new(
            "classes",
            "no content classes: every upload would be rejected",
            "add at least one [classes.<name>] table with `types` and `max_size`",
        ));
    }
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, class) in &config.classes {
        if class.types.is_empty() {
            problems.push(Problem::new(
                format!("classes.{name}.types"),
                "no allowed types",
                "list the detected MIME types this class accepts, e.g. [\"image/jpeg\", \"image/png\"]",
            ));
        }
        for (i, ty) in class.types.iter().enumerate() {
            let path = format!("classes.{name}.types[{i}]");
            let well_formed = ty
                .split_once('/')
                .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains('/'))
                && ty
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "/.+-".contains(c));
            if !well_formed {
                problems.push(Problem::new(
                    &path,
                    format!("\"{ty}\" is not a MIME type"),
                    "write a lowercase type/subtype, e.g. \"image/jpeg\"",
                ));
            } else if let Some(other) = owner.insert(ty, name) {
                problems.push(Problem::new(
                    &path,
                    format!("type \"{ty}\" is in two classes, {other} and {name}"),
                    "a detected type must map to exactly one class: remove it from one of them",
                ));
            }
        }
        let size = class.max_size.bytes();
        if size == 0 || size > MAX_OBJECT_SIZE {
            problems.push(Problem::new(
                format!("classes.{name}.max_size"),
                format!("max_size {} is out of range", class.max_size),
                "use a size above zero and at most 5TiB (S3's object limit), e.g. \"50MiB\"",
            ));
        }
    }
}

/// Types the thumbnail stage decodes; a class with renditions may hold only these.
pub const RENDERABLE_TYPES: [&str; 6] = [
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/tiff",
    "image/bmp",
];
/// Largest side of a rendition: a thumbnail stage is not an image converter.
const MAX_RENDITION_SIDE: u32 = 8192;

fn check_renditions(config: &PipelineConfig, problems: &mut Vec<Problem>) {
    for (class_name, class) in &config.classes {
        if class.renditions.is_empty() {
            continue;
        }
        for (i, ty) in class.types.iter().enumerate() {
            if !RENDERABLE_TYPES.contains(&ty.as_str()) {
                problems.push(Problem::new(
                    format!("classes.{class_name}.types[{i}]"),
                    format!("class {class_name} has renditions, but \"{ty}\" cannot be rendered"),
                    format!(
                        "renditions can be made of {}; move \"{ty}\" to a class without renditions",
                        RENDERABLE_TYPES.join(", ")
                    ),
                ));
            }
        }
        let mut seen = BTreeSet::new();
        for (i, r) in class.renditions.iter().enumerate() {
            let path = format!("classes.{class_name}.renditions[{i}]");
            let valid_name = !r.name.is_empty()
                && r.name.len() <= 32
                && r.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !valid_name {
                problems.push(Problem::new(
                    format!("{path}.name"),
                    format!("\"{}\" cannot be part of a rendition's key", r.name),
                    "use 1 to 32 lowercase letters, digits, `-` and `_`, e.g. \"thumb\"",
                ));
            } else if !seen.insert(r.name.as_str()) {
                problems.push(Problem::new(
                    format!("{path}.name"),
                    format!(
                        "rendition \"{}\" is defined twice in class {class_name}",
                        r.name
                    ),
                    "give every rendition of a class its own name",
                ));
            }
            for (field, value) in [("width", r.width), ("height", r.height)] {
                if !(1..=MAX_RENDITION_SIDE).contains(&value) {
                    problems.push(Problem::new(
                        format!("{path}.{field}"),
                        format!("{field} {value} is out of range"),
                        format!("use 1 to {MAX_RENDITION_SIDE} pixels"),
                    ));
                }
            }
            if !(1..=100).contains(&r.quality) {
                problems.push(Problem::new(
                    format!("{path}.quality"),
                    format!("quality {} is out of range", r.quality),
                    "use 1 (smallest) to 100 (best); 80 is a good default",
                ));
            }
        }
    }
}

fn check_image_limits(config: &PipelineConfig, problems: &mut Vec<Problem>) {
    for (name, stage) in &config.stages {
        let Some(limits) = &stage.images else {
            continue;
        };
        let path = format!("stages.{name}.images");
        if name != "thumbnail" {
            problems.push(Problem::new(
                &path,
                format!("stage {name} decodes no images"),
                "move the [images] table to [stages.thumbnail.images]",
            ));
            continue;
        }
        for (field, value) in [
            ("max_width", u64::from(limits.max_width)),
            ("max_height", u64::from(limits.max_height)),
            ("max_pixels", limits.max_pixels),
            ("max_frames", u64::from(limits.max_frames)),
        ] {
            if value == 0 {
                problems.push(Problem::new(
                    format!("{path}.{field}"),
                    format!("{field} of 0 rejects every image"),
                    "use a positive limit, or leave the key out for the default",
                ));
            }
        }
        if limits.max_decoder_memory.bytes() < 16 * 1024 * 1024 {
            problems.push(Problem::new(
                format!("{path}.max_decoder_memory"),
                format!("{} cannot decode a photograph", limits.max_decoder_memory),
                "use at least \"16MiB\" (a 24 MP photo decoded at half size takes ~18 MiB); the default is \"1GiB\"",
            ));
        }
        if limits.memory_budget.bytes() < limits.max_decoder_memory.bytes() {
            problems.push(Problem::new(
                format!("{path}.memory_budget"),
                format!(
                    "memory_budget {} is below max_decoder_memory {}",
                    limits.memory_budget, limits.max_decoder_memory
                ),
                "the budget must hold at least one image at the decoder limit: raise memory_budget or lower max_decoder_memory",
            ));
        }
        if limits.cache_control.trim().is_empty()
            || limits.cache_control.chars().any(|c| c.is_control())
        {
            problems.push(Problem::new(
                format!("{path}.cache_control"),
                "not a Cache-Control header value",
                "write a header value such as \"public, max-age=31536000, immutable\"",
            ));
        }
    }
}

fn check_uploads(config: &PipelineConfig, problems: &mut Vec<Problem>) {
    let template = &config.uploads.key_template;
    let path = "uploads.key_template";
    let mut rest = template.as_str();
    let mut found = Vec::new();
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            problems.push(Problem::new(
                path,
                "unclosed `{` in key template",
                "close every placeholder, e.g. {tenant}",
            ));
            return;
        };
        let name = &rest[open + 1..open + close];
        if !KEY_PLACEHOLDERS.contains(&name) {
            problems.push(Problem::new(
                path,
                format!("unknown placeholder {{{name}}}"),
                format!(
                    "{}placeholders are {{tenant}}, {{user}}, {{uuid}}, {{filename}}",
                    suggestion(name, KEY_PLACEHOLDERS)
                ),
            ));
        }
        found.push(name);
        rest = &rest[open + close + 1..];
    }
    if !template.starts_with("{tenant}/") {
        problems.push(Problem::new(
            path,
            format!("\"{template}\" does not start with \"{{tenant}}/\""),
            "tenant isolation relies on the tenant being the first key segment: start the template with {tenant}/",
        ));
    }
    if !found.contains(&"uuid") {
        problems.push(Problem::new(
            path,
            "the key template has no {uuid}: two uploads of the same name would overwrite each other",
            "include {uuid}, e.g. \"{tenant}/{user}/{uuid}-{filename}\"",
        ));
    }
    for (i, origin) in config.uploads.cors_origins.iter().enumerate() {
        let scheme_ok = origin.starts_with("http://") || origin.starts_with("https://");
        let host = origin.split_once("://").map_or("", |(_, h)| h);
        if !scheme_ok || host.is_empty() || host.contains('/') || origin.contains('*') {
            problems.push(Problem::new(
                format!("uploads.cors_origins[{i}]"),
                format!("\"{origin}\" is not an origin"),
                "write scheme://host[:port] with no path and no wildcard, e.g. \"https://app.example.com\"",
            ));
        }
    }
}

fn check_lifecycle(config: &PipelineConfig, problems: &mut Vec<Problem>) {
    let l = &config.lifecycle;
    for (field, days) in [
        (
            "abort_incomplete_multipart_days",
            l.abort_incomplete_multipart_days,
        ),
        ("uploads_noncurrent_days", l.uploads_noncurrent_days),
        ("quarantine_expiry_days", l.quarantine_expiry_days),
        ("logs_expiry_days", l.logs_expiry_days),
    ] {
        if days == 0 {
            problems.push(Problem::new(
                format!("lifecycle.{field}"),
                "0 days is not a lifecycle period",
                "S3 lifecycle periods are whole days, at least 1",
            ));
        }
    }
    let mut ids = BTreeSet::new();
    for (i, t) in l.transitions.iter().enumerate() {
        let path = format!("lifecycle.transitions[{i}]");
        if t.id.is_empty() || t.id.len() > 255 {
            problems.push(Problem::new(
                format!("{path}.id"),
                "rule id must be 1 to 255 characters",
                "give the rule a short name",
            ));
        }
        if t.id.starts_with("intake-") {
            problems.push(Problem::new(
                format!("{path}.id"),
                format!(
                    "rule id \"{}\" uses the prefix reserved for Intake's own lifecycle rules",
                    t.id
                ),
                "pick an id that does not start with \"intake-\"",
            ));
        }
        if !ids.insert(t.id.as_str()) {
            problems.push(Problem::new(
                format!("{path}.id"),
                format!("rule id \"{}\" is used twice", t.id),
                "give each transition its own id",
            ));
        }
        if check_storage_class(&path, &t.storage_class, &STORAGE_CLASSES, problems) {
            check_transition_days(&path, &t.storage_class, t.after_days, problems);
        }
    }
}

/// Is `class` one of `allowed`? If not, says so at `{path}.storage_class`.
fn check_storage_class(
    path: &str,
    class: &str,
    allowed: &[&str],
    problems: &mut Vec<Problem>,
) -> bool {
    let known = allowed.contains(&class);
    if !known {
        problems.push(Problem::new(
            format!("{path}.storage_class"),
            format!("unknown storage class \"{class}\""),
            format!(
                "{}use one of {}",
                suggestion(class, allowed.iter().copied()),
                allowed.join(", ")
            ),
        ));
    }
    known
}

/// S3 refuses lifecycle transitions to the IA classes before 30 days.
fn check_transition_days(path: &str, class: &str, days: u32, problems: &mut Vec<Problem>) {
    if matches!(class, "STANDARD_IA" | "ONEZONE_IA") && days < 30 {
        problems.push(Problem::new(
            format!("{path}.after_days"),
            format!("{class} needs objects at least 30 days old, not {days}"),
            "S3 refuses IA transitions before 30 days: set after_days = 30 or more",
        ));
    }
}

fn check_archive(config: &PipelineConfig, problems: &mut Vec<Problem>) {
    for (name, stage) in &config.stages {
        let Some(policy) = &stage.policy else {
            continue;
        };
        let path = format!("stages.{name}.policy");
        if name != "archive" {
            problems.push(Problem::new(
                &path,
                format!("stage {name} archives nothing"),
                "move the [policy] table to [stages.archive.policy]",
            ));
            continue;
        }
        let mut ids = BTreeSet::new();
        let mut catch_all: Option<&str> = None;
        for (i, rule) in policy.rules.iter().enumerate() {
            let path = format!("{path}.rules[{i}]");
            let id = rule.id.as_str();
            let valid_id = !id.is_empty()
                && id.len() <= 64
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !valid_id {
                problems.push(Problem::new(
                    format!("{path}.id"),
                    format!("\"{id}\" cannot name an archive rule"),
                    "use 1 to 64 lowercase letters, digits, `-` and `_` (it becomes a tag value and part of a lifecycle rule id), e.g. \"archives-to-glacier\"",
                ));
            } else if !ids.insert(id) {
                problems.push(Problem::new(
                    format!("{path}.id"),
                    format!("archive rule id \"{id}\" is used twice"),
                    "give each archive rule its own id",
                ));
            }
            if let Some(first) = catch_all {
                problems.push(Problem::new(
                    &path,
                    format!("archive rule \"{id}\" can never match: rule \"{first}\" before it matches every object"),
                    "give the earlier rule a class, tenant or prefix, or move it last",
                ));
            }
            if let Some(class) = &rule.class
                && !config.classes.contains_key(class)
            {
                problems.push(Problem::new(
                    format!("{path}.class"),
                    format!("unknown content class \"{class}\""),
                    format!(
                        "{}name one of the [classes.*] tables: {}",
                        suggestion(class, config.classes.keys().map(String::as_str)),
                        config
                            .classes
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            if rule.tenant.as_deref() == Some("") {
                problems.push(Problem::new(
                    format!("{path}.tenant"),
                    "an empty tenant matches no object",
                    "name a tenant (the first key segment), or remove the key to match every tenant",
                ));
            }
            if rule.class.is_none()
                && rule.tenant.is_none()
                && rule.prefix.as_deref().unwrap_or_default().is_empty()
            {
                catch_all.get_or_insert(id);
            }
            let known_class = check_storage_class(
                &path,
                &rule.storage_class,
                &ARCHIVE_STORAGE_CLASSES,
                problems,
            );
            match (rule.apply, rule.after_days) {
                (ArchiveApply::Now, Some(_)) => problems.push(Problem::new(
                    format!("{path}.after_days"),
                    "after_days is only for apply = \"lifecycle\"",
                    "remove it (apply = \"now\" moves the object as soon as it is archived), or set apply = \"lifecycle\"",
                )),
                (ArchiveApply::Lifecycle, None) => problems.push(Problem::new(
                    format!("{path}.after_days"),
                    "apply = \"lifecycle\" needs after_days",
                    "add after_days = N: the days after promotion when S3 moves the object (at least 1; 30 for STANDARD_IA)",
                )),
                (ArchiveApply::Lifecycle, Some(0)) => problems.push(Problem::new(
                    format!("{path}.after_days"),
                    "0 days is not a lifecycle period",
                    "S3 lifecycle periods are whole days, at least 1; for no wait use apply = \"now\"",
                )),
                (ArchiveApply::Lifecycle, Some(days)) if known_class => {
                    check_transition_days(&path, &rule.storage_class, days, problems);
                }
                _ => {}
            }
        }
    }
}

fn check_alarms(config: &PipelineConfig, problems: &mut Vec<Problem>) {
    let a = &config.alarms;
    if a.period_secs < 60 || !a.period_secs.is_multiple_of(60) {
        problems.push(Problem::new(
            "alarms.period_secs",
            format!("{} is not a CloudWatch alarm period", a.period_secs),
            "use a multiple of 60 seconds, e.g. 300",
        ));
    }
    if a.failures_threshold == 0 {
        problems.push(Problem::new(
            "alarms.failures_threshold",
            "a threshold of 0 would always alarm",
            "use 1 or more",
        ));
    }
    if a.oldest_message_age_secs == 0 {
        problems.push(Problem::new(
            "alarms.oldest_message_age_secs",
            "an age of 0 would always alarm",
            "use the age in seconds after which a waiting message means a stuck stage, e.g. 900",
        ));
    }
}

fn check_ledger(config: &PipelineConfig, problems: &mut Vec<Problem>) {
    let url = &config.ledger.database_url;
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        problems.push(Problem::new(
            "ledger.database_url",
            format!("\"{url}\" is neither a SQLite nor a PostgreSQL URL"),
            "use \"sqlite://intake.db\" (a file) or \"postgres://user@host/db\"",
        ));
    }
}

fn check_workers(config: &PipelineConfig, problems: &mut Vec<Problem>) {
    let w = &config.workers;
    if !(1..=1000).contains(&w.concurrency) {
        problems.push(Problem::new(
            "workers.concurrency",
            format!("{} is out of range", w.concurrency),
            "use 1 to 1000 messages at once per stage (8 by default; more only helps while the services are not saturated)",
        ));
    }
    if w.shutdown_grace_secs > 43_200 {
        problems.push(Problem::new(
            "workers.shutdown_grace_secs",
            format!("{} is out of range", w.shutdown_grace_secs),
            "use 0 to 43200 seconds; keep it below your orchestrator's kill timeout (Kubernetes: terminationGracePeriodSeconds)",
        ));
    }
    if w.batch_window_ms > 1000 {
        problems.push(Problem::new(
            "workers.batch_window_ms",
            format!("{} is out of range", w.batch_window_ms),
            "use 0 to 1000 milliseconds (10 by default): every stage of every object may wait up to three windows",
        ));
    }
}

/// Seven days: the longest SigV4 presigned URLs S3 accepts.
const MAX_PRESIGN_SECS: u32 = 7 * 24 * 3600;
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;

fn check_api(config: &PipelineConfig, problems: &mut Vec<Problem>) {
    let api = &config.api;
    if api.bind.parse::<std::net::SocketAddr>().is_err() {
        problems.push(Problem::new(
            "api.bind",
            format!("\"{}\" is not an address to listen on", api.bind),
            "use IP:PORT, e.g. \"127.0.0.1:8080\" or \"0.0.0.0:8080\"",
        ));
    }
    for (field, secs) in [
        ("upload_url_ttl_secs", api.upload_url_ttl_secs),
        ("download_url_ttl_secs", api.download_url_ttl_secs),
    ] {
        if secs == 0 || secs > MAX_PRESIGN_SECS {
            problems.push(Problem::new(
                format!("api.{field}"),
                format!("{secs} s is outside what S3 accepts for a presigned URL"),
                "use 1 to 604800 (7 days), e.g. 900",
            ));
        }
    }
    let part = api.multipart_part_size.0;
    if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&part) {
        problems.push(Problem::new(
            "api.multipart_part_size",
            format!("{} is outside S3's part sizes", api.multipart_part_size),
            "use 5MiB to 5GiB, e.g. \"16MiB\"",
        ));
    }
    if api.multipart_threshold.0 < MIN_PART_SIZE {
        problems.push(Problem::new(
            "api.multipart_threshold",
            format!(
                "{} is below S3's smallest part (5 MiB)",
                api.multipart_threshold
            ),
            "use at least \"5MiB\", e.g. \"64MiB\"",
        ));
    }
    if api.max_filename_bytes < 16 || api.max_filename_bytes > 512 {
        problems.push(Problem::new(
            "api.max_filename_bytes",
            format!("{} bytes", api.max_filename_bytes),
            "use 16 to 512 (S3 keys hold at most 1024 bytes), e.g. 200",
        ));
    }
    if api.body_limit.0 < 1024 {
        problems.push(Problem::new(
            "api.body_limit",
            format!("{} cannot hold a request", api.body_limit),
            "use at least \"1KiB\", e.g. \"256KiB\"",
        ));
    }
    let auth = &api.auth;
    if auth.jwks_file.is_some() && auth.jwks_url.is_some() {
        problems.push(Problem::new(
            "api.auth.jwks_url",
            "both jwks_file and jwks_url are set",
            "keep one of them",
        ));
    }
    if let Some(url) = &auth.jwks_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        problems.push(Problem::new(
            "api.auth.jwks_url",
            format!("\"{url}\" is not an http(s) URL"),
            "use the issuer's JWKS address, e.g. \"https://login.example.com/.well-known/jwks.json\"",
        ));
    }
    for (field, claim) in [
        ("tenant_claim", &auth.tenant_claim),
        ("user_claim", &auth.user_claim),
        ("roles_claim", &auth.roles_claim),
    ] {
        if claim.is_empty() {
            problems.push(Problem::new(
                format!("api.auth.{field}"),
                "an empty claim name",
                "name the token claim, e.g. \"tenant\"",
            ));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, key) in api.keys.iter().enumerate() {
        let path = format!("api.keys[{i}]");
        if key.tenant.is_empty() || key.tenant.contains('/') {
            problems.push(Problem::new(
                format!("{path}.tenant"),
                format!("\"{}\" is not a tenant", key.tenant),
                "use the tenant id the key acts for, without '/'",
            ));
        }
        let hex = key.sha256.len() == 64
            && key
                .sha256
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        if !hex {
            problems.push(Problem::new(
                format!("{path}.sha256"),
                "not 64 lowercase hex digits",
                "store the key's SHA-256, e.g. the output of `printf %s \"$KEY\" | sha256sum`",
            ));
        } else if !seen.insert(key.sha256.as_str()) {
            problems.push(Problem::new(
                format!("{path}.sha256"),
                "the same key is listed twice",
                "give every service its own key",
            ));
        }
    }
    for (field, value) in [
        ("max_event_streams", api.max_event_streams),
        (
            "max_event_streams_per_tenant",
            api.max_event_streams_per_tenant,
        ),
    ] {
        if value == 0 {
            problems.push(Problem::new(
                format!("api.{field}"),
                "0 would refuse every event stream",
                "use a positive number, e.g. 16 (clients that get 429 too_many_streams poll GET /v1/files/{id} instead)",
            ));
        }
    }
    if api.max_event_streams_per_tenant > api.max_event_streams {
        problems.push(Problem::new(
            "api.max_event_streams_per_tenant",
            format!(
                "{} is more than the whole process allows (api.max_event_streams = {})",
                api.max_event_streams_per_tenant, api.max_event_streams
            ),
            "use at most api.max_event_streams",
        ));
    }
    let limits = &api.rate_limits;
    for (field, value) in [
        ("per_ip_per_minute", limits.per_ip_per_minute),
        ("per_tenant_per_minute", limits.per_tenant_per_minute),
        ("burst", limits.burst),
    ] {
        if value == 0 {
            problems.push(Problem::new(
                format!("api.rate_limits.{field}"),
                "0 would refuse every request",
                "use a positive number, e.g. 600",
            ));
        }
    }
}
