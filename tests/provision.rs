//! Provisioning against a real LocalStack: everything the config describes exists with the
//! right settings, a second plan is all unchanged, and a changed config converges without
//! deleting data.

use aws_sdk_s3::types::{BucketVersioningStatus, ServerSideEncryption};
use aws_sdk_sqs::types::QueueAttributeName;
use intake_aws::AwsClients;
use intake_aws::provision::{Action, ResourceKind, apply, plan};
use intake_core::names::BucketRole;
use intake_core::state_machine::StageKind;
use intake_core::{PipelineConfig, ResourceNames};
use intake_testkit::{LocalStack, unique_pipeline_name};
use serde_json::{Value, json};

const REPO_CONFIG: &str = include_str!("../pipeline.toml");

fn repo_config() -> PipelineConfig {
    PipelineConfig::from_toml(REPO_CONFIG, "pipeline.toml")
        .expect("repo config")
        .renamed(&unique_pipeline_name())
}

async fn provisioned(aws: &AwsClients, config: &PipelineConfig) {
    let first = plan(aws, config).await.expect("plan");
    apply(aws, &first).await.expect("apply");
}

async fn queue_attributes(
    aws: &AwsClients,
    queue: &str,
) -> std::collections::HashMap<QueueAttributeName, String> {
    let url = aws
        .sqs
        .get_queue_url()
        .queue_name(queue)
        .send()
        .await
        .expect("queue exists")
        .queue_url
        .unwrap();
    aws.sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .expect("attributes")
        .attributes
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn provision_creates_the_whole_topology_and_a_second_run_changes_nothing() {
    let localstack = LocalStack::start().await.expect("LocalStack");
    let aws = localstack.clients();
    let config = repo_config();
    let names = ResourceNames::of(&config);

    let first = plan(&aws, &config).await.expect("plan");
    assert!(
        first.changes.iter().all(|c| c.action == Action::Create),
        "{}",
        first.table()
    );
    let count = |kind| first.changes.iter().filter(|c| c.kind == kind).count();
    assert_eq!(count(ResourceKind::Bucket), 5);
    assert_eq!(count(ResourceKind::Topic), 2);
    assert_eq!(
        count(ResourceKind::Queue),
        12,
        "five stage queues, the deletion queue, and a DLQ each"
    );
    assert_eq!(
        count(ResourceKind::Subscription),
        4,
        "scan, thumbnail, catalog, archive are fed by SNS"
    );
    assert_eq!(count(ResourceKind::Notification), 1);
    assert_eq!(
        count(ResourceKind::Alarm),
        18,
        "three alarms per stage and for the deletion worker"
    );
    apply(&aws, &first).await.expect("apply");

    let second = plan(&aws, &config).await.expect("second plan");
    assert!(
        second.is_converged(),
        "second run must be all unchanged:\n{}",
        second.table()
    );
    assert_eq!(second.changes.len(), first.changes.len());

    // Buckets: encryption with bucket key, versioning, public access block, logging.
    let s3 = &aws.s3;
    for role in BucketRole::ALL {
        let bucket = names.bucket(role);
        let enc = s3
            .get_bucket_encryption()
            .bucket(bucket)
            .send()
            .await
            .expect("encryption");
        let rule = &enc.server_side_encryption_configuration().unwrap().rules()[0];
        assert_eq!(
            rule.apply_server_side_encryption_by_default()
                .unwrap()
                .sse_algorithm(),
            &ServerSideEncryption::Aes256,
            "{bucket}"
        );
        assert_eq!(rule.bucket_key_enabled(), Some(true), "{bucket}");
        let versioning = s3
            .get_bucket_versioning()
            .bucket(bucket)
            .send()
            .await
            .expect("versioning");
        assert_eq!(
            versioning.status(),
            Some(&BucketVersioningStatus::Enabled),
            "{bucket}"
        );
        let pab = s3
            .get_public_access_block()
            .bucket(bucket)
            .send()
            .await
            .expect("public access block");
        let pab = pab.public_access_block_configuration().unwrap();
        assert_eq!(
            [
                pab.block_public_acls(),
                pab.ignore_public_acls(),
                pab.block_public_policy(),
                pab.restrict_public_buckets()
            ],
            [Some(true); 4],
            "{bucket}"
        );
        let logging = s3
            .get_bucket_logging()
            .bucket(bucket)
            .send()
            .await
            .expect("logging");
        if role == BucketRole::Logs {
            assert!(
                logging.logging_enabled().is_none(),
                "the logs bucket must not log itself"
            );
        } else {
            let target = logging.logging_enabled().expect("server access logging");
            assert_eq!(target.target_bucket(), names.bucket(BucketRole::Logs));
            assert_eq!(target.target_prefix(), format!("{}/", role.name()));
        }
        let lifecycle = s3
            .get_bucket_lifecycle_configuration()
            .bucket(bucket)
            .send()
            .await
            .expect("lifecycle");
        let abort = lifecycle
            .rules()
            .iter()
            .find_map(|r| r.abort_incomplete_multipart_upload())
            .expect("abort-incomplete-multipart rule");
        assert_eq!(abort.days_after_initiation(), Some(1));
    }

    // CORS only on uploads, with the configured origins.
    let cors = s3
        .get_bucket_cors()
        .bucket(names.bucket(BucketRole::Uploads))
        .send()
        .await
        .expect("uploads CORS");
    assert_eq!(
        cors.cors_rules()[0].allowed_origins(),
        ["http://localhost:8080"]
    );
    assert!(
        s3.get_bucket_cors()
            .bucket(names.bucket(BucketRole::Store))
            .send()
            .await
            .is_err(),
        "store has no CORS"
    );

    // Lifecycle: quarantine expiry and the store's storage-class transitions.
    let quarantine = s3
        .get_bucket_lifecycle_configuration()
        .bucket(names.bucket(BucketRole::Quarantine))
        .send()
        .await
        .expect("quarantine lifecycle");
    assert!(
        quarantine
            .rules()
            .iter()
            .any(|r| r.expiration().and_then(|e| e.days()) == Some(30))
    );
    let store = s3
        .get_bucket_lifecycle_configuration()
        .bucket(names.bucket(BucketRole::Store))
        .send()
        .await
        .expect("store lifecycle");
    let transitions: Vec<(i32, String)> = store
        .rules()
        .iter()
        .flat_map(|r| r.transitions())
        .map(|t| {
            (
                t.days().unwrap(),
                t.storage_class().unwrap().as_str().to_owned(),
            )
        })
        .collect();
    assert!(
        transitions.contains(&(30, "STANDARD_IA".into()))
            && transitions.contains(&(180, "GLACIER_IR".into())),
        "{transitions:?}"
    );

    // Queues: redrive to their own DLQ, and policies that admit only this bucket / this topic.
    let account = aws.account_id().await.unwrap();
    let arn = |name: &str| format!("arn:aws:sqs:us-east-1:{account}:{name}");
    let events_arn = format!("arn:aws:sns:us-east-1:{account}:{}", names.events_topic);
    for stage in StageKind::ALL {
        let q = names.stage(stage);
        let attrs = queue_attributes(&aws, &q.queue).await;
        let redrive: Value =
            serde_json::from_str(&attrs[&QueueAttributeName::RedrivePolicy]).unwrap();
        assert_eq!(
            redrive["deadLetterTargetArn"],
            json!(arn(&q.dlq)),
            "{stage}"
        );
        // pipeline.toml gives scan more receives, to outlast a clamd restart.
        let receives = if stage == StageKind::Scan { "8" } else { "5" };
        assert_eq!(
            redrive["maxReceiveCount"].to_string().trim_matches('"'),
            receives,
            "{stage}"
        );
        assert_eq!(
            attrs[&QueueAttributeName::ReceiveMessageWaitTimeSeconds],
            "20"
        );
        let policy: Value = serde_json::from_str(&attrs[&QueueAttributeName::Policy]).unwrap();
        let sources: Vec<&Value> = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| &s["Condition"]["ArnEquals"]["aws:SourceArn"])
            .collect();
        let expected = if stage == StageKind::Validate {
            json!(format!(
                "arn:aws:s3:::{}",
                names.bucket(BucketRole::Uploads)
            ))
        } else {
            json!(events_arn)
        };
        assert_eq!(sources, [&expected], "{stage}: only its source may send");
    }
    assert_eq!(
        queue_attributes(&aws, &names.stage(StageKind::Scan).queue).await
            [&QueueAttributeName::VisibilityTimeout],
        "300"
    );

    // Subscriptions: one per fed stage, filter policy from the state machine, raw delivery.
    let subs = aws
        .sns
        .list_subscriptions_by_topic()
        .topic_arn(&events_arn)
        .send()
        .await
        .expect("subscriptions");
    let expected_filters = [
        (
            StageKind::Scan,
            json!({"stage": ["validate"], "outcome": ["passed"]}),
        ),
        (
            StageKind::Thumbnail,
            json!({"stage": ["scan"], "outcome": ["clean"]}),
        ),
        (
            StageKind::Catalog,
            json!({"stage": ["thumbnail"], "outcome": ["skipped", "thumbnailed"]}),
        ),
        (
            StageKind::Archive,
            json!({"stage": ["catalog"], "outcome": ["cataloged"]}),
        ),
    ];
    assert_eq!(subs.subscriptions().len(), expected_filters.len());
    for (stage, filter) in expected_filters {
        let sub = subs
            .subscriptions()
            .iter()
            .find(|s| s.endpoint() == Some(arn(&names.stage(stage).queue).as_str()))
            .unwrap_or_else(|| panic!("no subscription for {stage}"));
        let attrs = aws
            .sns
            .get_subscription_attributes()
            .subscription_arn(sub.subscription_arn().unwrap())
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&attrs["FilterPolicy"]).unwrap(),
            filter,
            "{stage}"
        );
        assert_eq!(attrs["RawMessageDelivery"], "true", "{stage}");
    }

    // The uploads notification: Put, Post, CompleteMultipartUpload to validate, never Copy.
    let notification = s3
        .get_bucket_notification_configuration()
        .bucket(names.bucket(BucketRole::Uploads))
        .send()
        .await
        .expect("notification");
    let queue_config = &notification.queue_configurations()[0];
    assert_eq!(
        queue_config.queue_arn(),
        arn(&names.stage(StageKind::Validate).queue)
    );
    let mut events: Vec<&str> = queue_config.events().iter().map(|e| e.as_str()).collect();
    events.sort();
    assert_eq!(
        events,
        [
            "s3:ObjectCreated:CompleteMultipartUpload",
            "s3:ObjectCreated:Post",
            "s3:ObjectCreated:Put"
        ]
    );

    // Alarms publish to the alerts topic.
    let alarms = aws
        .cloudwatch
        .describe_alarms()
        .alarm_name_prefix(format!("{}-", names.prefix))
        .send()
        .await
        .expect("alarms");
    let alerts_arn = format!("arn:aws:sns:us-east-1:{account}:{}", names.alerts_topic);
    assert_eq!(alarms.metric_alarms().len(), 18);
    for alarm in alarms.metric_alarms() {
        assert_eq!(
            alarm.alarm_actions(),
            std::slice::from_ref(&alerts_arn),
            "{:?}",
            alarm.alarm_name()
        );
    }
    let dlq_alarm = alarms
        .metric_alarms()
        .iter()
        .find(|a| a.alarm_name() == Some(&format!("{}-scan-dlq-depth", names.prefix)))
        .expect("scan DLQ depth alarm");
    assert_eq!(
        dlq_alarm.dimensions()[0].value(),
        Some(names.stage(StageKind::Scan).dlq.as_str())
    );
    assert_eq!(dlq_alarm.threshold(), Some(1.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_config_converges_without_deleting_data() {
    let localstack = LocalStack::start().await.expect("LocalStack");
    let aws = localstack.clients();
    let name = unique_pipeline_name();
    let config = repo_config().renamed(&name);
    provisioned(&aws, &config).await;
    let names = ResourceNames::of(&config);

    // A message waiting in the thumbnail queue stands for data that must survive.
    let thumbnail_queue = &names.stage(StageKind::Thumbnail).queue;
    let url = aws
        .sqs
        .get_queue_url()
        .queue_name(thumbnail_queue)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    aws.sqs
        .send_message()
        .queue_url(&url)
        .message_body("in flight")
        .send()
        .await
        .unwrap();

    // Drop the thumbnail stage: scan's clean objects go straight to catalog, and scan's
    // queue waits longer.
    let text = REPO_CONFIG
        .replacen("name = \"intake\"", &format!("name = \"{name}\""), 1)
        .replace("on.clean = \"thumbnail\"", "on.clean = \"catalog\"")
        .replace(
            "[stages.thumbnail]\non.thumbnailed = \"catalog\"\non.skipped = \"catalog\"          # not an image class\non.failed = \"failed\"\n",
            "",
        )
        .replace("visibility_timeout_secs = 300", "visibility_timeout_secs = 600");
    // ...with its decoder limits table, which would otherwise declare the stage again.
    let images = text
        .find("[stages.thumbnail.images]")
        .expect("fixture: images table");
    let catalog = text
        .find("[stages.catalog]")
        .expect("fixture: catalog stage");
    let text = format!("{}{}", &text[..images], &text[catalog..]);
    let changed =
        PipelineConfig::from_toml(&text, "changed.toml").expect("changed config is valid");
    assert!(
        !changed.stages.contains_key("thumbnail"),
        "fixture drifted: thumbnail stage still there"
    );

    let convergence = plan(&aws, &changed).await.expect("plan");
    let action_of = |kind: ResourceKind, needle: &str| {
        convergence
            .changes
            .iter()
            .find(|c| c.kind == kind && c.name.ends_with(needle))
            .map(|c| c.action.clone())
            .unwrap_or_else(|| panic!("no {kind} row ending in {needle}:\n{}", convergence.table()))
    };
    assert_eq!(
        action_of(ResourceKind::Subscription, &format!("{name}-thumbnail")),
        Action::Delete
    );
    assert_eq!(
        action_of(ResourceKind::Subscription, &format!("{name}-catalog")),
        Action::Update(vec!["filter policy"])
    );
    assert_eq!(
        action_of(ResourceKind::Queue, &format!("{name}-scan")),
        Action::Update(vec!["VisibilityTimeout"])
    );
    assert_eq!(
        action_of(ResourceKind::Alarm, &format!("{name}-thumbnail-failures")),
        Action::Delete
    );
    assert!(
        convergence
            .changes
            .iter()
            .all(|c| c.action != Action::Delete
                || matches!(c.kind, ResourceKind::Subscription | ResourceKind::Alarm)),
        "only subscriptions and alarms may be deleted:\n{}",
        convergence.table()
    );
    apply(&aws, &convergence)
        .await
        .expect("apply changed config");
    let again = plan(&aws, &changed).await.expect("plan after convergence");
    assert!(again.is_converged(), "{}", again.table());

    // The removed stage's queue and its message are still there.
    let received = aws
        .sqs
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    assert_eq!(
        received.messages().len(),
        1,
        "the thumbnail queue keeps its message"
    );
    let catalog_sub_filter = {
        let account = aws.account_id().await.unwrap();
        let events_arn = format!("arn:aws:sns:us-east-1:{account}:{}", names.events_topic);
        let subs = aws
            .sns
            .list_subscriptions_by_topic()
            .topic_arn(&events_arn)
            .send()
            .await
            .unwrap();
        assert!(
            !subs.subscriptions().iter().any(|s| s
                .endpoint()
                .is_some_and(|e| e.ends_with(&format!(":{thumbnail_queue}")))),
            "thumbnail subscription removed"
        );
        let catalog = subs
            .subscriptions()
            .iter()
            .find(|s| {
                s.endpoint()
                    .is_some_and(|e| e.ends_with(&format!(":{name}-catalog")))
            })
            .expect("catalog subscription");
        let attrs = aws
            .sns
            .get_subscription_attributes()
            .subscription_arn(catalog.subscription_arn().unwrap())
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap();
        serde_json::from_str::<Value>(&attrs["FilterPolicy"]).unwrap()
    };
    assert_eq!(
        catalog_sub_filter,
        json!({"stage": ["scan"], "outcome": ["clean"]})
    );
}
