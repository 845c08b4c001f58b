//! Names: the pipeline name that prefixes every resource, the bucket and topic names
//! derived from it or given explicitly (valid, and each used once), and the AWS endpoint.

use std::collections::BTreeMap;

use crate::config::pipeline::PipelineConfig;
use crate::config::problem::Problem;
use crate::names::{BucketRole, ResourceNames};

pub(super) fn check_names(config: &PipelineConfig, problems: &mut Vec<Problem>) {
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

pub(super) fn valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !name.contains("..")
}
