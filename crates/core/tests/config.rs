//! The repository's own `pipeline.toml` parses, and every kind of broken config is refused
//! with its location, field path and a fix.

use intake_core::config::{ArchiveApply, PipelineConfig};
use intake_core::state_machine::{StageKind, filter_policy, inbound_routes};

const REPO_CONFIG: &str = include_str!("../../../pipeline.toml");

#[test]
fn repo_pipeline_toml_is_valid_and_complete() {
    let config =
        PipelineConfig::from_toml(REPO_CONFIG, "pipeline.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.stage_kinds(), StageKind::ALL.to_vec());
    assert_eq!(config.entry_stage(), StageKind::Validate);
    assert_eq!(
        config
            .queue_settings(StageKind::Scan)
            .visibility_timeout_secs,
        300
    );
    assert_eq!(
        config
            .queue_settings(StageKind::Validate)
            .visibility_timeout_secs,
        120
    );
    let inbound = inbound_routes(&config.edges());
    assert_eq!(
        filter_policy(&inbound[&StageKind::Scan]),
        serde_json::json!({"stage": ["validate"], "outcome": ["passed"]})
    );
    assert_eq!(
        filter_policy(&inbound[&StageKind::Catalog]),
        serde_json::json!({"stage": ["thumbnail"], "outcome": ["skipped", "thumbnailed"]})
    );
    assert!(
        !inbound.contains_key(&StageKind::Validate),
        "validate is fed by S3, not by SNS"
    );
}

/// Replace one line of the repo config (which must exist) to make a broken variant.
fn broken(find: &str, replace: &str) -> String {
    assert!(
        REPO_CONFIG.contains(find),
        "fixture drifted: {find:?} not in pipeline.toml"
    );
    REPO_CONFIG.replacen(find, replace, 1)
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle in text")
        + 1
}

#[test]
fn broken_configs_each_give_a_located_error_with_a_fix() {
    struct Case {
        name: &'static str,
        text: String,
        path: &'static str,
        at_line_of: &'static str,
        message: &'static str,
        help: &'static str,
    }
    let cases = [
        Case {
            name: "unknown key",
            text: broken(
                "wait_time_secs = 20",
                "wait_time_secs = 20\nvisibilty_timeout_secs = 30",
            ),
            path: "queue_defaults",
            at_line_of: "visibilty_timeout_secs",
            message: "unknown field `visibilty_timeout_secs`",
            help: "fix its spelling",
        },
        Case {
            name: "unknown notification route",
            text: broken("notifications = \"bucket\"", "notifications = \"sns\""),
            path: "uploads.notifications",
            at_line_of: "notifications = \"sns\"",
            message: "unknown variant `sns`, expected `bucket` or `eventbridge`",
            help: "",
        },
        Case {
            name: "route to a missing stage",
            text: broken("on.clean = \"thumbnail\"", "on.clean = \"thumbnial\""),
            path: "stages.scan.on.clean",
            at_line_of: "thumbnial",
            message: "unknown route target \"thumbnial\"",
            help: "did you mean \"thumbnail\"?",
        },
        Case {
            name: "unreachable stage",
            text: broken("on.cataloged = \"archive\"", "on.cataloged = \"done\""),
            path: "stages.archive",
            at_line_of: "[stages.archive]",
            message: "stage archive is unreachable",
            help: "route an outcome to \"archive\"",
        },
        Case {
            name: "bad size",
            text: broken("max_size = \"50MiB\"", "max_size = \"ten\""),
            path: "classes.image.max_size",
            at_line_of: "max_size = \"ten\"",
            message: "`ten` is not a size",
            help: "docs/configuration.md",
        },
        Case {
            name: "missing required field",
            text: broken("name = \"intake\"\n", ""),
            path: "pipeline",
            at_line_of: "[pipeline]",
            message: "missing field `name`",
            help: "add the field",
        },
        Case {
            name: "outcome without a route",
            text: broken("on.unscannable = \"quarantined\"", ""),
            path: "stages.scan.on",
            at_line_of: "on.clean",
            message: "outcome \"unscannable\" of stage scan has no route",
            help: "add `on.unscannable",
        },
        Case {
            name: "duplicate bucket name",
            text: broken("# logs = \"acme-intake-logs\"", "logs = \"intake-store\""),
            path: "buckets.logs",
            at_line_of: "logs = \"intake-store\"",
            message: "also used by buckets.store",
            help: "different name",
        },
        Case {
            name: "duplicate key",
            text: broken(
                "on.failed = \"failed\"",
                "on.failed = \"failed\"\non.failed = \"done\"",
            ),
            path: "",
            at_line_of: "on.failed = \"done\"",
            message: "duplicate key",
            help: "each key may appear once",
        },
        Case {
            name: "type in two classes",
            text: broken(
                "types = [\"application/pdf\", \"text/plain\"]",
                "types = [\"application/pdf\", \"image/png\"]",
            ),
            // Classes are checked in name order, so the image class holds the second claim.
            path: "classes.image.types[1]",
            at_line_of: "types = [\"image/jpeg\"",
            message: "type \"image/png\" is in two classes",
            help: "exactly one class",
        },
        Case {
            name: "transition too early for IA",
            text: broken("after_days = 30", "after_days = 7"),
            path: "lifecycle.transitions[0].after_days",
            at_line_of: "after_days = 7",
            message: "STANDARD_IA needs objects at least 30 days old",
            help: "30 or more",
        },
        Case {
            name: "unknown archive storage class",
            text: broken(
                "storage_class = \"GLACIER_IR\"",
                "storage_class = \"GLACEIR_IR\"",
            ),
            path: "stages.archive.policy.rules[0].storage_class",
            at_line_of: "GLACEIR_IR",
            message: "unknown storage class \"GLACEIR_IR\"",
            help: "did you mean \"GLACIER_IR\"?",
        },
        Case {
            name: "queue limit",
            text: broken("wait_time_secs = 20 ", "wait_time_secs = 60 "),
            path: "queue_defaults.wait_time_secs",
            at_line_of: "wait_time_secs = 60",
            message: "60 is out of range",
            help: "0 to 20",
        },
        Case {
            name: "bad clamd address",
            text: broken(
                "address = \"tcp://127.0.0.1:3310\"",
                "address = \"127.0.0.1:3310\"",
            ),
            path: "stages.scan.scanner.address",
            at_line_of: "address = \"127.0.0.1:3310\"",
            message: "is not a clamd address",
            help: "tcp://HOST:PORT",
        },
        Case {
            name: "unknown scanner kind",
            text: broken("\nkind = \"clamd\"", "\nkind = \"clamav\""),
            path: "stages.scan.scanner",
            at_line_of: "kind = \"clamav\"",
            message: "unknown variant `clamav`",
            help: "",
        },
        Case {
            name: "routing loop",
            text: broken("on.archived = \"done\"", "on.archived = \"scan\""),
            path: "stages.",
            at_line_of: "on.",
            message: "loop through stage",
            help: "lead forward",
        },
    ];
    for case in cases {
        let err = PipelineConfig::from_toml(&case.text, "pipeline.toml").expect_err(case.name);
        let problem = err
            .problems()
            .iter()
            .find(|p| p.message.contains(case.message))
            .unwrap_or_else(|| {
                panic!(
                    "{}: no problem says {:?}; got:\n{err}",
                    case.name, case.message
                )
            });
        assert!(
            problem.path.starts_with(case.path),
            "{}: path {:?}",
            case.name,
            problem.path
        );
        assert!(
            problem.help.contains(case.help),
            "{}: help {:?}",
            case.name,
            problem.help
        );
        let (line, column) = problem
            .location
            .unwrap_or_else(|| panic!("{}: no location", case.name));
        assert!(column >= 1, "{}", case.name);
        if case.name != "routing loop" {
            assert_eq!(
                line,
                line_of(&case.text, case.at_line_of),
                "{}: wrong line in\n{err}",
                case.name
            );
        }
        let rendered = err.to_string();
        assert!(
            rendered.starts_with(&format!("pipeline.toml:{line}:{column}: ")),
            "{}: rendered as {rendered:?}",
            case.name
        );
    }
}

#[test]
fn one_problem_per_mistake() {
    let text = broken("on.clean = \"thumbnail\"", "on.clean = \"thumbnial\"");
    let err = PipelineConfig::from_toml(&text, "pipeline.toml").unwrap_err();
    // The typo also leaves thumbnail, catalog and archive unreachable; only the cause is reported.
    let messages: Vec<_> = err.problems().iter().map(|p| p.message.as_str()).collect();
    assert_eq!(messages, ["unknown route target \"thumbnial\""]);
}

#[test]
fn an_inherited_bad_default_is_reported_once_not_per_stage() {
    let text = broken("wait_time_secs = 20 ", "wait_time_secs = 60 ");
    let err = PipelineConfig::from_toml(&text, "pipeline.toml").unwrap_err();
    let paths: Vec<_> = err.problems().iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["queue_defaults.wait_time_secs"]);
}

#[test]
fn transition_ids_cannot_collide_with_intakes_own_rules() {
    let text = broken(
        "id = \"store-infrequent-access\"",
        "id = \"intake-abort-incomplete-multipart\"",
    );
    let err = PipelineConfig::from_toml(&text, "pipeline.toml").unwrap_err();
    assert_eq!(
        err.problems()[0].path,
        "lifecycle.transitions[0].id",
        "{err}"
    );
    assert!(err.problems()[0].message.contains("reserved"), "{err}");
}

#[test]
fn renamed_pipeline_derives_every_name_from_the_new_prefix() {
    let config = PipelineConfig::from_toml(REPO_CONFIG, "pipeline.toml")
        .unwrap()
        .renamed("it-01abc");
    let names = intake_core::ResourceNames::of(&config);
    assert!(names.buckets.values().all(|b| b.starts_with("it-01abc-")));
    assert_eq!(names.stage(StageKind::Scan).dlq, "it-01abc-scan-dlq");
    assert_eq!(names.events_topic, "it-01abc-events");
}

#[test]
fn the_shipped_archive_policy_moves_archives_now_and_nothing_else() {
    let config = PipelineConfig::from_toml(REPO_CONFIG, "pipeline.toml").unwrap();
    let policy = config.archive_policy();
    assert_eq!(policy.min_size.bytes(), 128 * 1024);
    assert_eq!(policy.rules.len(), 1);
    let rule = &policy.rules[0];
    assert_eq!(rule.class.as_deref(), Some("archive"));
    assert_eq!(rule.storage_class, "GLACIER_IR");
    assert_eq!(rule.apply, ArchiveApply::Now);
    assert_eq!(
        rule.lifecycle_rule_id(),
        "intake-archive-archives-to-glacier-ir"
    );
}

/// Extra `[[stages.archive.policy.rules]]` after the shipped one.
fn with_archive_rules(rules: &str) -> String {
    let anchor = "apply = \"now\"";
    let at = REPO_CONFIG
        .find(anchor)
        .expect("fixture: the shipped archive rule");
    let line_end = at + REPO_CONFIG[at..].find('\n').unwrap() + 1;
    format!(
        "{}{rules}{}",
        &REPO_CONFIG[..line_end],
        &REPO_CONFIG[line_end..]
    )
}

#[test]
fn archive_rules_are_checked_with_located_errors() {
    let text = with_archive_rules(
        r#"
[[stages.archive.policy.rules]]
id = "archives-to-glacier-ir"
class = "archives"
storage_class = "GLACIER"

[[stages.archive.policy.rules]]
id = "later"
tenant = "tenant-a"
storage_class = "DEEP_ARCHIVE"
apply = "lifecycle"

[[stages.archive.policy.rules]]
id = "Bad Id"
class = "document"
storage_class = "STANDARD_IA"
apply = "lifecycle"
after_days = 0

[[stages.archive.policy.rules]]
id = "soon"
prefix = "tenant-b/"
storage_class = "STANDARD_IA"
after_days = 7

[[stages.archive.policy.rules]]
id = "ia-too-early"
storage_class = "STANDARD_IA"
apply = "lifecycle"
after_days = 10

[[stages.archive.policy.rules]]
id = "shadowed"
tenant = "tenant-d"
storage_class = "GLACIER"
"#,
    );
    let err = PipelineConfig::from_toml(&text, "pipeline.toml").unwrap_err();
    let found: Vec<(&str, &str)> = err
        .problems()
        .iter()
        .map(|p| (p.path.as_str(), p.message.as_str()))
        .collect();
    let expected = [
        (
            "stages.archive.policy.rules[1].id",
            "archive rule id \"archives-to-glacier-ir\" is used twice",
        ),
        (
            "stages.archive.policy.rules[1].class",
            "unknown content class \"archives\"",
        ),
        (
            "stages.archive.policy.rules[2].after_days",
            "apply = \"lifecycle\" needs after_days",
        ),
        (
            "stages.archive.policy.rules[3].id",
            "\"Bad Id\" cannot name an archive rule",
        ),
        (
            "stages.archive.policy.rules[3].after_days",
            "0 days is not a lifecycle period",
        ),
        (
            "stages.archive.policy.rules[4].after_days",
            "after_days is only for apply = \"lifecycle\"",
        ),
        (
            "stages.archive.policy.rules[5].after_days",
            "STANDARD_IA needs objects at least 30 days old, not 10",
        ),
        (
            "stages.archive.policy.rules[6]",
            "archive rule \"shadowed\" can never match: rule \"ia-too-early\" before it matches every object",
        ),
    ];
    assert_eq!(found, expected, "{err}");
    let class = &err.problems()[1];
    assert!(
        class.help.contains("did you mean \"archive\"?"),
        "{}",
        class.help
    );
    // Every problem points into its own rule table.
    for (problem, needle) in err.problems().iter().zip([
        "id = \"archives-to-glacier-ir\"\nclass = \"archives\"",
        "class = \"archives\"",
        "id = \"later\"",
        "id = \"Bad Id\"",
        "after_days = 0",
        "after_days = 7",
        "after_days = 10",
        "id = \"shadowed\"",
    ]) {
        let line = problem.location.expect("located").0;
        let want = text[..text.find(needle).expect("needle")]
            .matches('\n')
            .count()
            + 1;
        assert!(
            line == want || line + 1 == want,
            "{}: line {line}, expected about {want}\n{err}",
            problem.path
        );
    }
}

#[test]
fn only_the_archive_stage_takes_an_archive_policy() {
    let text = broken(
        "[stages.thumbnail]\n",
        "[stages.scan.policy]\nmin_size = \"1KiB\"\n\n[stages.thumbnail]\n",
    );
    let err = PipelineConfig::from_toml(&text, "pipeline.toml").unwrap_err();
    assert_eq!(err.problems().len(), 1, "{err}");
    let problem = &err.problems()[0];
    assert_eq!(problem.path, "stages.scan.policy");
    assert_eq!(problem.message, "stage scan archives nothing");
    assert!(
        problem.help.contains("[stages.archive.policy]"),
        "{}",
        problem.help
    );
    assert_eq!(
        problem.location.unwrap().0,
        line_of(&text, "[stages.scan.policy]")
    );
}

#[test]
fn deletion_defaults_to_all_versions_and_has_its_own_queue_settings() {
    use intake_core::config::DeleteVersions;
    let config = PipelineConfig::from_toml(REPO_CONFIG, "pipeline.toml").unwrap();
    assert_eq!(config.deletion.versions, DeleteVersions::All);
    assert_eq!(config.queue_kinds().last(), Some(&StageKind::Delete));
    assert_eq!(
        config.route(StageKind::Delete, "deleted").as_deref(),
        Some("deleted")
    );
    assert_eq!(
        config.route(StageKind::Delete, "failed").as_deref(),
        Some("delete_failed")
    );
    assert_eq!(
        config.route(StageKind::Archive, "kept").as_deref(),
        Some("done")
    );

    let text = format!(
        "{REPO_CONFIG}\n[deletion]\nversions = \"current\"\n[deletion.queue]\nmax_receive_count = 9\n"
    );
    let config = PipelineConfig::from_toml(&text, "pipeline.toml").unwrap();
    assert_eq!(config.deletion.versions, DeleteVersions::Current);
    assert_eq!(
        config.queue_settings(StageKind::Delete).max_receive_count,
        9
    );

    let text = format!("{REPO_CONFIG}\n[deletion]\nversions = \"latest\"\n");
    let err = PipelineConfig::from_toml(&text, "pipeline.toml").unwrap_err();
    assert!(err.to_string().contains("deletion.versions"), "{err}");

    // The deletion worker is not a pipeline stage: it cannot be configured under [stages].
    let text = format!("{REPO_CONFIG}\n[stages.delete]\non.deleted = \"done\"\n");
    assert!(PipelineConfig::from_toml(&text, "pipeline.toml").is_err());
}

#[test]
fn workers_bounds_come_from_config_with_defaults_and_are_validated_with_their_paths() {
    let config = PipelineConfig::from_toml(REPO_CONFIG, "pipeline.toml").unwrap();
    assert_eq!(config.workers.concurrency, 8);
    assert_eq!(config.workers.shutdown_grace_secs, 25);

    // Without the section: the same defaults.
    let start = REPO_CONFIG.find("\n[workers]\n").unwrap();
    let end = start + REPO_CONFIG[start + 1..].find("\n\n").unwrap() + 1;
    let without = format!("{}{}", &REPO_CONFIG[..start], &REPO_CONFIG[end..]);
    let config = PipelineConfig::from_toml(&without, "pipeline.toml").unwrap();
    assert_eq!(
        config.workers,
        intake_core::config::WorkersSection::default()
    );

    for (bad, path) in [
        ("concurrency = 0", "workers.concurrency"),
        ("concurrency = 5000", "workers.concurrency"),
    ] {
        let text = REPO_CONFIG.replace("concurrency = 8\n", &format!("{bad}\n"));
        let err = PipelineConfig::from_toml(&text, "pipeline.toml").unwrap_err();
        assert!(err.to_string().contains(path), "{bad}: {err}");
        assert!(err.to_string().contains("1 to 1000"), "{bad}: {err}");
    }
    let text = REPO_CONFIG.replace("shutdown_grace_secs = 25 ", "shutdown_grace_secs = 99999 ");
    let err = PipelineConfig::from_toml(&text, "pipeline.toml").unwrap_err();
    assert!(
        err.to_string().contains("workers.shutdown_grace_secs"),
        "{err}"
    );

    let text = REPO_CONFIG.replace("[workers]\n", "[workers]\nconcurency = 4\n");
    let err = PipelineConfig::from_toml(&text, "pipeline.toml").unwrap_err();
    assert!(err.to_string().contains("concurency"), "{err}");
}

#[test]
fn event_stream_caps_and_readyz_detail_have_defaults_and_are_validated_with_their_paths() {
    let config = PipelineConfig::from_toml(REPO_CONFIG, "pipeline.toml").unwrap();
    assert_eq!(config.api.max_event_streams, 256);
    assert_eq!(config.api.max_event_streams_per_tenant, 16);
    assert!(!config.api.readyz_detail);

    let with = |extra: &str| REPO_CONFIG.replacen("[api]\n", &format!("[api]\n{extra}\n"), 1);
    let config = PipelineConfig::from_toml(
        &with("max_event_streams = 40\nmax_event_streams_per_tenant = 4\nreadyz_detail = true"),
        "pipeline.toml",
    )
    .unwrap();
    assert_eq!(
        (
            config.api.max_event_streams,
            config.api.max_event_streams_per_tenant,
            config.api.readyz_detail
        ),
        (40, 4, true)
    );

    for (extra, path, says) in [
        (
            "max_event_streams = 0",
            "api.max_event_streams",
            "0 would refuse",
        ),
        (
            "max_event_streams_per_tenant = 0",
            "api.max_event_streams_per_tenant",
            "0 would refuse",
        ),
        (
            "max_event_streams = 8\nmax_event_streams_per_tenant = 9",
            "api.max_event_streams_per_tenant",
            "more than the whole process allows",
        ),
        ("readyz_details = true", "readyz_details", "unknown field"),
    ] {
        let err = PipelineConfig::from_toml(&with(extra), "pipeline.toml").unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(path) && message.contains(says),
            "{extra}: {message}"
        );
    }
}

#[test]
fn workers_health_bind_is_optional_and_must_be_a_socket_address() {
    let config = PipelineConfig::from_toml(REPO_CONFIG, "pipeline.toml").unwrap();
    assert_eq!(
        config.workers.health_bind, None,
        "no health server by default"
    );
    assert_eq!(config.workers.health_addr(), None);

    let with = |line: &str| {
        REPO_CONFIG.replace(
            "batch_window_ms = 20 ",
            &format!("{line}\nbatch_window_ms = 20 "),
        )
    };
    let config =
        PipelineConfig::from_toml(&with("health_bind = \"0.0.0.0:9464\""), "pipeline.toml")
            .unwrap();
    assert_eq!(config.workers.health_bind.as_deref(), Some("0.0.0.0:9464"));
    assert_eq!(
        config.workers.health_addr(),
        Some("0.0.0.0:9464".parse().unwrap())
    );
    let config =
        PipelineConfig::from_toml(&with("health_bind = \"[::1]:0\""), "pipeline.toml").unwrap();
    assert_eq!(
        config.workers.health_addr(),
        Some("[::1]:0".parse().unwrap())
    );

    for bad in ["abc", "0.0.0.0", ":9464", "localhost:9464"] {
        let text = with(&format!("health_bind = \"{bad}\""));
        let err = PipelineConfig::from_toml(&text, "pipeline.toml").unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(&format!(
                "workers.health_bind: \"{bad}\" is not a socket address"
            )) && message.contains("write e.g. \"0.0.0.0:9464\""),
            "{bad}: {message}"
        );
    }
}
