//! `[lifecycle]`: periods S3 accepts, transition rule ids that are unique and not Intake's
//! own, and storage classes and ages S3 accepts (both also used by the archive rules).

use std::collections::BTreeSet;

use super::suggestion;
use crate::config::pipeline::PipelineConfig;
use crate::config::problem::Problem;

const STORAGE_CLASSES: [&str; 7] = [
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
    "EXPRESS_ONEZONE",
];

pub(super) fn check_lifecycle(config: &PipelineConfig, problems: &mut Vec<Problem>) {
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
pub(super) fn check_storage_class(
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
pub(super) fn check_transition_days(
    path: &str,
    class: &str,
    days: u32,
    problems: &mut Vec<Problem>,
) {
    if matches!(class, "STANDARD_IA" | "ONEZONE_IA") && days < 30 {
        problems.push(Problem::new(
            format!("{path}.after_days"),
            format!("{class} needs objects at least 30 days old, not {days}"),
            "S3 refuses IA transitions before 30 days: set after_days = 30 or more",
        ));
    }
}
