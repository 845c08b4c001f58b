//! The desired state of every resource, computed from the config alone. The same structs hold
//! what AWS reports (see the observe functions), so a plan is a field-by-field comparison.

use std::collections::BTreeMap;

use intake_core::ResourceNames;
use intake_core::config::{ARCHIVE_TAG, ArchiveApply, NotificationRoute, PipelineConfig};
use intake_core::names::BucketRole;
use intake_core::s3_event::CREATED_REASONS;
use intake_core::state_machine::{StageKind, filter_policy, inbound_routes};
use serde_json::{Value, json};

use crate::arn::Arns;

/// The ObjectCreated events that start the pipeline. `Copy` is left out on purpose: Intake's
/// own copies (promotion, archive) must never re-trigger it.
/// Sorted, as the observed configuration is, so that comparing them is exact.
pub const UPLOAD_EVENTS: [&str; 3] = [
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Put",
];

/// Id of the uploads notification, so we recognise our own configuration.
pub const NOTIFICATION_ID: &str = "intake-entry";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsRule {
    pub origins: Vec<String>,
    pub methods: Vec<String>,
    pub headers: Vec<String>,
    pub expose: Vec<String>,
    pub max_age_secs: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LifecycleRule {
    pub id: String,
    pub prefix: String,
    /// (key, value): the rule applies to objects with this tag, whatever their key
    /// (`prefix` is then empty: S3 filters on one or the other).
    pub tag: Option<(String, String)>,
    pub expiration_days: Option<i32>,
    pub noncurrent_days: Option<i32>,
    pub abort_multipart_days: Option<i32>,
    /// (days, storage class)
    pub transitions: Vec<(i32, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logging {
    pub target_bucket: String,
    pub prefix: String,
}

/// Every setting Intake manages on a bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketState {
    pub versioning: bool,
    /// (SSE algorithm, bucket key enabled)
    pub encryption: Option<(String, bool)>,
    /// BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets
    pub public_access_block: [bool; 4],
    pub cors: Vec<CorsRule>,
    pub lifecycle: Vec<LifecycleRule>,
    pub logging: Option<Logging>,
    pub policy: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DesiredBucket {
    pub role: BucketRole,
    pub name: String,
    pub state: BucketState,
}

/// The uploads bucket's notification configuration: either a queue configuration that
/// sends the upload events to the entry queue, or EventBridge delivery (then a [`DesiredRule`]
/// routes them). Never both: each event would reach the entry queue twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub bucket: String,
    /// The entry queue's ARN and the events it gets, for a bucket notification.
    pub queue: Option<QueueNotification>,
    /// S3 sends every event of the bucket to EventBridge's default bus.
    pub eventbridge: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueNotification {
    pub queue_arn: String,
    pub events: Vec<String>,
}

/// The EventBridge rule on the default bus that sends the uploads bucket's created objects
/// to the entry queue (`[uploads] notifications = "eventbridge"`).
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredRule {
    pub name: String,
    pub arn: String,
    pub event_pattern: Value,
    pub queue_arn: String,
}

/// Id of the rule's one target, so we recognise our own.
pub const RULE_TARGET_ID: &str = "intake-entry";

/// The rule's name: one per pipeline, in the account's default bus.
pub fn rule_name(names: &ResourceNames) -> String {
    format!("{}-uploads-created", names.prefix)
}

/// Attributes Intake manages on a queue, as SQS names them. JSON-valued attributes are parsed
/// so formatting differences do not count as changes.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredQueue {
    pub name: String,
    pub attributes: BTreeMap<&'static str, AttrValue>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Text(String),
    Json(Value),
}

impl AttrValue {
    pub fn render(&self) -> String {
        match self {
            AttrValue::Text(t) => t.clone(),
            AttrValue::Json(v) => v.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DesiredSubscription {
    /// The stage whose queue subscribes.
    pub stage: StageKind,
    pub queue_arn: String,
    pub filter_policy: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DesiredAlarm {
    pub name: String,
    pub description: String,
    pub namespace: String,
    pub metric: String,
    pub dimensions: Vec<(String, String)>,
    pub statistic: String,
    pub period_secs: i32,
    pub threshold: f64,
    pub actions: Vec<String>,
}

/// Everything a pipeline consists of.
#[derive(Debug, Clone)]
pub struct Desired {
    pub names: ResourceNames,
    pub arns: Arns,
    pub buckets: Vec<DesiredBucket>,
    pub topics: Vec<String>,
    /// DLQs first: a queue's redrive policy names its DLQ's ARN.
    pub queues: Vec<DesiredQueue>,
    pub subscriptions: Vec<DesiredSubscription>,
    pub notification: Notification,
    /// `None` with a bucket notification: then a rule of ours, if any, is removed.
    pub rule: Option<DesiredRule>,
    pub alarms: Vec<DesiredAlarm>,
}

/// Namespace of Intake's own CloudWatch metrics.
pub const METRIC_NAMESPACE: &str = "Intake";

impl Desired {
    pub fn of(config: &PipelineConfig, arns: Arns) -> Self {
        let names = ResourceNames::of(config);
        let events_arn = arns.topic(&names.events_topic);
        let stages = config.queue_kinds();
        let entry = config.entry_stage();
        let inbound = inbound_routes(&config.edges());
        let route = config.uploads.notifications;

        let buckets = BucketRole::ALL
            .into_iter()
            .map(|role| desired_bucket(config, &names, &arns, role))
            .collect();

        let mut queues = Vec::new();
        for &stage in &stages {
            let settings = config.queue_settings(stage);
            let q = names.stage(stage);
            queues.push(DesiredQueue {
                name: q.dlq.clone(),
                attributes: BTreeMap::from([
                    (
                        "MessageRetentionPeriod",
                        AttrValue::Text(settings.dlq_retention_secs.to_string()),
                    ),
                    ("SqsManagedSseEnabled", AttrValue::Text("true".into())),
                ]),
            });
            let queue_arn = arns.queue(&q.queue);
            let mut statements = Vec::new();
            if stage == entry {
                statements.push(match route {
                    NotificationRoute::Bucket => allow_send(
                        "AllowUploadsBucketNotifications",
                        "s3.amazonaws.com",
                        &queue_arn,
                        &arns.bucket(names.bucket(BucketRole::Uploads)),
                    ),
                    NotificationRoute::EventBridge => allow_send(
                        "AllowUploadsEventBridgeRule",
                        "events.amazonaws.com",
                        &queue_arn,
                        &arns.rule(&rule_name(&names)),
                    ),
                });
            }
            if inbound.contains_key(&stage) {
                statements.push(allow_send(
                    "AllowEventsTopic",
                    "sns.amazonaws.com",
                    &queue_arn,
                    &events_arn,
                ));
            }
            let mut attributes = BTreeMap::from([
                (
                    "VisibilityTimeout",
                    AttrValue::Text(settings.visibility_timeout_secs.to_string()),
                ),
                (
                    "ReceiveMessageWaitTimeSeconds",
                    AttrValue::Text(settings.wait_time_secs.to_string()),
                ),
                (
                    "MessageRetentionPeriod",
                    AttrValue::Text(settings.retention_secs.to_string()),
                ),
                ("SqsManagedSseEnabled", AttrValue::Text("true".into())),
                (
                    "RedrivePolicy",
                    AttrValue::Json(
                        json!({"deadLetterTargetArn": arns.queue(&q.dlq), "maxReceiveCount": settings.max_receive_count}),
                    ),
                ),
            ]);
            if !statements.is_empty() {
                attributes.insert(
                    "Policy",
                    AttrValue::Json(json!({"Version": "2012-10-17", "Statement": statements})),
                );
            }
            queues.push(DesiredQueue {
                name: q.queue.clone(),
                attributes,
            });
        }

        let subscriptions = inbound
            .iter()
            .map(|(&stage, sources)| DesiredSubscription {
                stage,
                queue_arn: arns.stage_queue(&names, stage),
                filter_policy: filter_policy(sources),
            })
            .collect();

        let uploads = names.bucket(BucketRole::Uploads).to_owned();
        let entry_queue = arns.stage_queue(&names, entry);
        let (notification, rule) = match route {
            NotificationRoute::Bucket => (
                Notification {
                    bucket: uploads,
                    queue: Some(QueueNotification {
                        queue_arn: entry_queue,
                        events: UPLOAD_EVENTS.map(str::to_owned).to_vec(),
                    }),
                    eventbridge: false,
                },
                None,
            ),
            NotificationRoute::EventBridge => {
                let name = rule_name(&names);
                let rule = DesiredRule {
                    arn: arns.rule(&name),
                    event_pattern: event_pattern(&uploads),
                    queue_arn: entry_queue,
                    name,
                };
                (
                    Notification {
                        bucket: uploads,
                        queue: None,
                        eventbridge: true,
                    },
                    Some(rule),
                )
            }
        };

        let alarms = if config.alarms.enabled {
            desired_alarms(config, &names, &arns, &stages)
        } else {
            Vec::new()
        };

        Desired {
            topics: vec![names.events_topic.clone(), names.alerts_topic.clone()],
            buckets,
            queues,
            subscriptions,
            notification,
            rule,
            alarms,
            names,
            arns,
        }
    }
}

/// What the rule matches: S3's created objects in the uploads bucket, by the reasons that
/// are uploads (the same three the bucket notification names; never CopyObject).
pub fn event_pattern(bucket: &str) -> Value {
    json!({
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [bucket]},
            "reason": CREATED_REASONS,
        },
    })
}

fn allow_send(sid: &str, service: &str, queue_arn: &str, source_arn: &str) -> Value {
    json!({
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}},
    })
}

fn desired_bucket(
    config: &PipelineConfig,
    names: &ResourceNames,
    arns: &Arns,
    role: BucketRole,
) -> DesiredBucket {
    let name = names.bucket(role).to_owned();
    let l = &config.lifecycle;
    let days = |d: u32| i32::try_from(d).unwrap_or(i32::MAX);
    let mut lifecycle = vec![LifecycleRule {
        id: "intake-abort-incomplete-multipart".into(),
        prefix: String::new(),
        tag: None,
        expiration_days: None,
        noncurrent_days: None,
        abort_multipart_days: Some(days(l.abort_incomplete_multipart_days)),
        transitions: Vec::new(),
    }];
    let expiring = |id: &str, expiration: Option<u32>, noncurrent: u32| LifecycleRule {
        id: id.into(),
        prefix: String::new(),
        tag: None,
        expiration_days: expiration.map(days),
        noncurrent_days: Some(days(noncurrent)),
        abort_multipart_days: None,
        transitions: Vec::new(),
    };
    match role {
        BucketRole::Uploads => lifecycle.push(expiring(
            "intake-uploads-noncurrent",
            None,
            l.uploads_noncurrent_days,
        )),
        BucketRole::Quarantine => lifecycle.push(expiring(
            "intake-quarantine-expiry",
            Some(l.quarantine_expiry_days),
            l.quarantine_expiry_days,
        )),
        BucketRole::Logs => lifecycle.push(expiring(
            "intake-logs-expiry",
            Some(l.logs_expiry_days),
            l.logs_expiry_days,
        )),
        BucketRole::Store => {
            let transition =
                |id: String, prefix: String, tag, after_days, class: &str| LifecycleRule {
                    id,
                    prefix,
                    tag,
                    expiration_days: None,
                    noncurrent_days: None,
                    abort_multipart_days: None,
                    transitions: vec![(days(after_days), class.to_owned())],
                };
            lifecycle.extend(l.transitions.iter().map(|t| {
                transition(
                    t.id.clone(),
                    t.prefix.clone(),
                    None,
                    t.after_days,
                    &t.storage_class,
                )
            }));
            // The archive stage tags what an `apply = "lifecycle"` rule matched; S3 moves it.
            let policy = config.archive_policy();
            lifecycle.extend(
                policy
                    .rules
                    .iter()
                    .filter(|r| r.apply == ArchiveApply::Lifecycle)
                    .map(|r| {
                        transition(
                            r.lifecycle_rule_id(),
                            String::new(),
                            Some((ARCHIVE_TAG.to_owned(), r.id.clone())),
                            r.after_days
                                .expect("validated: lifecycle rules have after_days"),
                            &r.storage_class,
                        )
                    }),
            );
        }
        BucketRole::Derivatives => {}
    }
    lifecycle.sort();

    let cors = if role == BucketRole::Uploads && !config.uploads.cors_origins.is_empty() {
        vec![CorsRule {
            origins: config.uploads.cors_origins.clone(),
            methods: vec!["POST".into(), "PUT".into()],
            headers: vec!["*".into()],
            // Browsers need the ETag of each part to complete a multipart upload.
            expose: vec!["ETag".into()],
            max_age_secs: Some(3000),
        }]
    } else {
        Vec::new()
    };

    let bucket_arn = arns.bucket(&name);
    let mut statements = vec![json!({
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn.clone(), format!("{bucket_arn}/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    })];
    if role == BucketRole::Logs {
        statements.push(json!({
            "Sid": "AllowServerAccessLogs",
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": format!("{bucket_arn}/*"),
            "Condition": {"StringEquals": {"aws:SourceAccount": arns.account}},
        }));
    }

    DesiredBucket {
        role,
        state: BucketState {
            versioning: true,
            encryption: Some(("AES256".into(), true)),
            public_access_block: [true; 4],
            cors,
            lifecycle,
            // The logs bucket does not log itself: that would log every log delivery.
            logging: (role != BucketRole::Logs).then(|| Logging {
                target_bucket: names.bucket(BucketRole::Logs).to_owned(),
                prefix: format!("{}/", role.name()),
            }),
            policy: Some(json!({"Version": "2012-10-17", "Statement": statements})),
        },
        name,
    }
}

fn desired_alarms(
    config: &PipelineConfig,
    names: &ResourceNames,
    arns: &Arns,
    stages: &[StageKind],
) -> Vec<DesiredAlarm> {
    let a = &config.alarms;
    let actions = vec![arns.topic(&names.alerts_topic)];
    let period = i32::try_from(a.period_secs).unwrap_or(300);
    let mut alarms = Vec::new();
    for &stage in stages {
        let q = names.stage(stage);
        alarms.push(DesiredAlarm {
            name: names.alarm(&format!("{stage}-failures")),
            description: format!("Intake stage {stage} published failed outcomes; see `intake dlq list` and the worker logs"),
            namespace: METRIC_NAMESPACE.into(),
            metric: "failed".into(),
            dimensions: vec![("pipeline".into(), names.prefix.clone()), ("stage".into(), stage.name().into())],
            statistic: "Sum".into(),
            period_secs: period,
            threshold: f64::from(a.failures_threshold),
            actions: actions.clone(),
        });
        alarms.push(DesiredAlarm {
            name: names.alarm(&format!("{stage}-dlq-depth")),
            description: format!("Messages in {}: inspect with `intake dlq peek {stage}`, replay with `intake dlq replay {stage}`", q.dlq),
            namespace: "AWS/SQS".into(),
            metric: "ApproximateNumberOfMessagesVisible".into(),
            dimensions: vec![("QueueName".into(), q.dlq.clone())],
            statistic: "Maximum".into(),
            period_secs: period,
            threshold: 1.0,
            actions: actions.clone(),
        });
        alarms.push(DesiredAlarm {
            name: names.alarm(&format!("{stage}-oldest-message")),
            description: format!("The oldest message in {} waited over {} s: stage {stage} is stuck or under-provisioned", q.queue, a.oldest_message_age_secs),
            namespace: "AWS/SQS".into(),
            metric: "ApproximateAgeOfOldestMessage".into(),
            dimensions: vec![("QueueName".into(), q.queue.clone())],
            statistic: "Maximum".into(),
            period_secs: period,
            threshold: f64::from(a.oldest_message_age_secs),
            actions: actions.clone(),
        });
    }
    alarms
}

/// Is this alarm name one that this pipeline creates (for any stage)? Used to find alarms of
/// removed stages without touching other pipelines whose names share our prefix.
pub fn is_pipeline_alarm(names: &ResourceNames, alarm: &str) -> bool {
    StageKind::WITH_QUEUES.iter().any(|stage| {
        ["failures", "dlq-depth", "oldest-message"]
            .iter()
            .any(|what| alarm == names.alarm(&format!("{stage}-{what}")))
    })
}
