//! Queue settings against SQS's limits (visibility, long poll, redrive, retention), for
//! the defaults and for the fields each stage overrides.

use crate::config::problem::Problem;
use crate::config::queues::{QueueOverrides, QueueSettings};

pub(super) fn check_queue(
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
