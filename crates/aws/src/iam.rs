//! Least-privilege IAM policies for the two roles Intake runs as, naming exact ARNs.
//! The worker reads uploads, writes the other buckets, consumes its queues and publishes
//! outcomes; the API only signs uploads and reads promoted objects and renditions.

use intake_core::names::BucketRole;
use intake_core::state_machine::StageKind;
use intake_core::{PipelineConfig, ResourceNames};
use serde_json::{Value, json};

use crate::arn::Arns;
use crate::provision::desired::METRIC_NAMESPACE;

fn objects(arns: &Arns, names: &ResourceNames, roles: &[BucketRole]) -> Vec<String> {
    roles
        .iter()
        .map(|&r| format!("{}/*", arns.role_bucket(names, r)))
        .collect()
}

fn buckets(arns: &Arns, names: &ResourceNames, roles: &[BucketRole]) -> Vec<String> {
    roles.iter().map(|&r| arns.role_bucket(names, r)).collect()
}

/// Policy document of the worker role (every stage).
pub fn worker_policy(config: &PipelineConfig, names: &ResourceNames, arns: &Arns) -> Value {
    use BucketRole::*;
    let stages = config.queue_kinds();
    let queues: Vec<String> = stages
        .iter()
        .flat_map(|&s| [arns.stage_queue(names, s), arns.stage_dlq(names, s)])
        .collect();
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadAndClearUploads",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging", "s3:GetObjectVersionTagging",
                           "s3:DeleteObject", "s3:DeleteObjectVersion"],
                "Resource": objects(arns, names, &[Uploads]),
            },
            {
                "Sid": "WriteResults",
                "Effect": "Allow",
                // Version tagging: archive reads and tags exact versions; deletion removes them.
                "Action": ["s3:PutObject", "s3:PutObjectTagging", "s3:PutObjectVersionTagging",
                           "s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging",
                           "s3:GetObjectVersionTagging", "s3:DeleteObject", "s3:DeleteObjectVersion"],
                "Resource": objects(arns, names, &[Store, Derivatives, Quarantine]),
            },
            {
                // ListBucket lets a missing object read as 404 rather than 403.
                "Sid": "ListPipelineBuckets",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
                "Resource": buckets(arns, names, &[Uploads, Store, Derivatives, Quarantine]),
            },
            {
                "Sid": "ConsumeStageQueues",
                "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                           "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"],
                "Resource": queues,
            },
            {
                "Sid": "PublishOutcomes",
                "Effect": "Allow",
                "Action": "sns:Publish",
                "Resource": arns.topic(&names.events_topic),
            },
            {
                // PutMetricData has no resource ARN; the namespace condition is the scope.
                "Sid": "PutIntakeMetrics",
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",
                "Condition": {"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}},
            },
        ],
    })
}

/// Policy document of the API role (`intake serve`): presigned uploads and reads of
/// promoted objects only, deletion requests, and the calls of its readiness check.
pub fn api_policy(names: &ResourceNames, arns: &Arns) -> Value {
    use BucketRole::*;
    let delete_queue = arns.stage_queue(names, StageKind::Delete);
    // `/readyz` looks at the entry stage's queue; any stage queue will do for the policy.
    let stage_queues: Vec<String> = names
        .stages
        .keys()
        .filter(|&&s| s != StageKind::Delete)
        .map(|&s| arns.stage_queue(names, s))
        .collect();
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                // PutObject also covers the multipart calls a presigned multipart upload makes.
                "Sid": "SignUploads",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                "Resource": objects(arns, names, &[Uploads]),
            },
            {
                "Sid": "SignDownloadsOfPromotedObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": objects(arns, names, &[Store, Derivatives]),
            },
            {
                "Sid": "QueueDeletions",
                "Effect": "Allow",
                "Action": ["sqs:SendMessage", "sqs:GetQueueUrl"],
                "Resource": delete_queue,
            },
            {
                // /readyz: HeadBucket needs ListBucket; no object is listed.
                "Sid": "ReadinessChecks",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": buckets(arns, names, &[Uploads]),
            },
            {
                "Sid": "ReadinessQueues",
                "Effect": "Allow",
                "Action": ["sqs:GetQueueUrl"],
                "Resource": stage_queues,
            },
            {
                "Sid": "ReadinessTopic",
                "Effect": "Allow",
                "Action": ["sns:GetTopicAttributes"],
                "Resource": arns.topic(&names.events_topic),
            },
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_role_can_never_read_uploads_or_quarantine() {
        let config =
            PipelineConfig::from_toml(include_str!("../../../pipeline.toml"), "pipeline.toml")
                .unwrap();
        let names = ResourceNames::of(&config);
        let arns = Arns::new("123456789012", "eu-west-1");
        let policy = api_policy(&names, &arns).to_string();
        let uploads = arns.role_bucket(&names, BucketRole::Uploads);
        let quarantine = arns.role_bucket(&names, BucketRole::Quarantine);
        let statements = api_policy(&names, &arns)["Statement"]
            .as_array()
            .unwrap()
            .clone();
        for s in statements {
            let actions = s["Action"].to_string();
            let resources = s["Resource"].to_string();
            if actions.contains("GetObject") {
                assert!(
                    !resources.contains(&uploads) && !resources.contains(&quarantine),
                    "{policy}"
                );
            }
        }
        assert!(!policy.contains("\"*\""), "no wildcard resources: {policy}");
    }

    #[test]
    fn worker_policy_names_exact_queue_arns() {
        let config =
            PipelineConfig::from_toml(include_str!("../../../pipeline.toml"), "pipeline.toml")
                .unwrap();
        let names = ResourceNames::of(&config);
        let arns = Arns::new("123456789012", "eu-west-1");
        let policy = worker_policy(&config, &names, &arns);
        let queues = policy["Statement"][3]["Resource"].as_array().unwrap();
        assert_eq!(
            queues.len(),
            12,
            "five stages and the deletion worker, each with a DLQ"
        );
        assert!(queues.iter().all(|q| {
            q.as_str()
                .unwrap()
                .starts_with("arn:aws:sqs:eu-west-1:123456789012:intake-")
        }));
    }
}
