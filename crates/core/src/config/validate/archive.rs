//! `[stages.archive.policy]`: rule ids that can be tags, rules that can match, known
//! classes and storage classes, and `after_days` exactly when S3 lifecycle applies them.

use std::collections::BTreeSet;

use super::lifecycle::{check_storage_class, check_transition_days};
use super::suggestion;
use crate::config::pipeline::PipelineConfig;
use crate::config::problem::Problem;
use crate::config::stages::ArchiveApply;

/// What an archive rule may move an original to. ONEZONE_IA keeps one copy in one zone:
/// fine for derivatives, not for the only copy of an upload.
const ARCHIVE_STORAGE_CLASSES: [&str; 5] = [
    "STANDARD_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
];

pub(super) fn check_archive(config: &PipelineConfig, problems: &mut Vec<Problem>) {
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
