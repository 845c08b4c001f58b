//! Which archive rule applies to an object, and whether it is worth moving: pure decisions
//! from `[stages.archive.policy]`, the object's class, tenant, key and size. No IO.

use intake_core::config::{ArchivePolicy, ArchiveRule};

/// What is known about an object when the archive stage decides.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// Content class from validate (the upstream outcome's `class`).
    pub class: Option<&'a str>,
    pub tenant: Option<&'a str>,
    pub key: &'a str,
    pub size: u64,
}

/// The decision for one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<'a> {
    /// No rule matches: the object stays STANDARD.
    NoRule,
    /// A rule matches, but the object is under `min_size`: moving it would cost more
    /// (S3 bills at least 128 KiB per object in the IA and Glacier classes).
    BelowMinimumSize {
        rule: &'a ArchiveRule,
        min_size: u64,
    },
    /// Move it as the rule says.
    Archive(&'a ArchiveRule),
}

/// Does every filter the rule gives match?
pub fn matches(rule: &ArchiveRule, facts: &Facts<'_>) -> bool {
    rule.class
        .as_deref()
        .is_none_or(|class| facts.class == Some(class))
        && rule
            .tenant
            .as_deref()
            .is_none_or(|tenant| facts.tenant == Some(tenant))
        && rule
            .prefix
            .as_deref()
            .is_none_or(|prefix| facts.key.starts_with(prefix))
}

/// The first matching rule decides, unless the object is too small to be worth moving.
pub fn decide<'a>(policy: &'a ArchivePolicy, facts: &Facts<'_>) -> Decision<'a> {
    let Some(rule) = policy.rules.iter().find(|r| matches(r, facts)) else {
        return Decision::NoRule;
    };
    let min_size = policy.min_size.bytes();
    if facts.size < min_size {
        Decision::BelowMinimumSize { rule, min_size }
    } else {
        Decision::Archive(rule)
    }
}

#[cfg(test)]
mod tests {
    use intake_core::ByteSize;
    use intake_core::config::ArchiveApply;

    use super::*;

    fn rule(
        id: &str,
        class: Option<&str>,
        tenant: Option<&str>,
        prefix: Option<&str>,
    ) -> ArchiveRule {
        ArchiveRule {
            id: id.into(),
            class: class.map(Into::into),
            tenant: tenant.map(Into::into),
            prefix: prefix.map(Into::into),
            storage_class: "GLACIER_IR".into(),
            apply: ArchiveApply::Now,
            after_days: None,
        }
    }

    fn policy(rules: Vec<ArchiveRule>) -> ArchivePolicy {
        ArchivePolicy {
            min_size: ByteSize(128 * 1024),
            rules,
        }
    }

    fn facts<'a>(class: Option<&'a str>, tenant: Option<&'a str>, key: &'a str) -> Facts<'a> {
        Facts {
            class,
            tenant,
            key,
            size: 1024 * 1024,
        }
    }

    fn chosen<'a>(policy: &'a ArchivePolicy, facts: &Facts<'_>) -> Option<&'a str> {
        match decide(policy, facts) {
            Decision::Archive(rule) => Some(&rule.id),
            Decision::BelowMinimumSize { rule, .. } => Some(&rule.id),
            Decision::NoRule => None,
        }
    }

    #[test]
    fn every_given_filter_must_match() {
        let both = rule("both", Some("archive"), Some("tenant-a"), None);
        let p = policy(vec![both]);
        assert_eq!(
            chosen(
                &p,
                &facts(Some("archive"), Some("tenant-a"), "tenant-a/u/x.zip")
            ),
            Some("both")
        );
        assert_eq!(
            chosen(
                &p,
                &facts(Some("archive"), Some("tenant-b"), "tenant-b/u/x.zip")
            ),
            None
        );
        assert_eq!(
            chosen(
                &p,
                &facts(Some("image"), Some("tenant-a"), "tenant-a/u/x.png")
            ),
            None
        );
        // An unknown class or tenant never matches a filter that names one.
        assert_eq!(chosen(&p, &facts(None, None, "tenant-a/u/x.zip")), None);
    }

    #[test]
    fn the_first_matching_rule_wins_and_a_rule_without_filters_matches_all() {
        let p = policy(vec![
            rule("tenant-a-prefix", None, None, Some("tenant-a/")),
            rule("archives", Some("archive"), None, None),
            rule("everything", None, None, None),
        ]);
        assert_eq!(
            chosen(
                &p,
                &facts(Some("archive"), Some("tenant-a"), "tenant-a/u/x.zip")
            ),
            Some("tenant-a-prefix")
        );
        assert_eq!(
            chosen(
                &p,
                &facts(Some("archive"), Some("tenant-b"), "tenant-b/u/x.zip")
            ),
            Some("archives")
        );
        assert_eq!(
            chosen(&p, &facts(None, None, "tenant-c/u/x.bin")),
            Some("everything")
        );
        // A prefix is a key prefix, not a path segment match.
        assert_eq!(
            chosen(&p, &facts(Some("image"), None, "tenant-ab/u/x.png")),
            Some("everything")
        );
    }

    #[test]
    fn small_objects_are_kept_with_the_rule_that_matched() {
        let p = policy(vec![rule("archives", Some("archive"), None, None)]);
        let mut small = facts(Some("archive"), None, "t/u/x.zip");
        small.size = 128 * 1024 - 1;
        assert!(matches!(
            decide(&p, &small),
            Decision::BelowMinimumSize { rule, min_size: 131_072 } if rule.id == "archives"
        ));
        small.size = 128 * 1024;
        assert!(matches!(decide(&p, &small), Decision::Archive(r) if r.id == "archives"));
        // No rule: `NoRule` whatever the size.
        small.class = Some("image");
        small.size = 1;
        assert_eq!(decide(&p, &small), Decision::NoRule);
    }

    #[test]
    fn an_empty_policy_keeps_everything() {
        let p = ArchivePolicy::default();
        assert_eq!(
            decide(&p, &facts(Some("archive"), Some("t"), "t/u/x.zip")),
            Decision::NoRule
        );
    }
}
