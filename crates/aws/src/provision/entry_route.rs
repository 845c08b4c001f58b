//! How new uploads reach the entry queue: the uploads bucket's notification configuration
//! (a queue configuration, or EventBridge delivery on) and, for EventBridge, the rule on the
//! default bus whose one target is the entry queue. Read what exists, apply what differs.

use aws_sdk_eventbridge::types::{RuleState, Target};
use aws_sdk_s3::types::{
    Event, EventBridgeConfiguration, NotificationConfiguration, QueueConfiguration,
};
use serde_json::Value;

use super::desired::{
    DesiredRule, NOTIFICATION_ID, Notification, QueueNotification, RULE_TARGET_ID,
};
use crate::clients::AwsClients;
use crate::error::{AwsError, CallSite, is_code};

/// The uploads bucket's notification configuration as far as Intake manages it, or `None`
/// when it has neither a queue configuration nor EventBridge delivery.
pub async fn observe_notification(
    aws: &AwsClients,
    bucket: &str,
) -> Result<Option<Notification>, AwsError> {
    let site = CallSite::new(&aws.endpoint, format!("bucket {bucket}"));
    let out = aws
        .s3
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
        .map_err(site.fail("GetBucketNotificationConfiguration"))?;
    let queue = out.queue_configurations().first().map(|q| {
        let mut events: Vec<String> = q.events().iter().map(|e| e.as_str().to_owned()).collect();
        events.sort();
        QueueNotification {
            queue_arn: q.queue_arn().to_owned(),
            events,
        }
    });
    let eventbridge = out.event_bridge_configuration().is_some();
    Ok((queue.is_some() || eventbridge).then(|| Notification {
        bucket: bucket.to_owned(),
        queue,
        eventbridge,
    }))
}

/// The settings of the notification that differ, for the plan.
pub fn notification_differs(desired: &Notification, current: &Notification) -> Vec<&'static str> {
    let mut fields = Vec::new();
    let queue_arn = |n: &Notification| n.queue.as_ref().map(|q| q.queue_arn.clone());
    let events = |n: &Notification| n.queue.as_ref().map(|q| q.events.clone());
    if queue_arn(desired) != queue_arn(current) {
        fields.push("queue");
    }
    if events(desired) != events(current) {
        fields.push("events");
    }
    if desired.eventbridge != current.eventbridge {
        fields.push("eventbridge");
    }
    fields
}

/// Replace the bucket's notification configuration with the desired one (S3 has no partial
/// update: what is not in the call is removed).
pub async fn apply_notification(aws: &AwsClients, n: &Notification) -> Result<(), AwsError> {
    let mut config = NotificationConfiguration::builder();
    if let Some(q) = &n.queue {
        config = config.queue_configurations(
            QueueConfiguration::builder()
                .id(NOTIFICATION_ID)
                .queue_arn(&q.queue_arn)
                .set_events(Some(
                    q.events.iter().map(|e| Event::from(e.as_str())).collect(),
                ))
                .build()
                .expect("arn and events are set"),
        );
    }
    if n.eventbridge {
        config = config.event_bridge_configuration(EventBridgeConfiguration::builder().build());
    }
    let site = CallSite::new(&aws.endpoint, format!("bucket {}", n.bucket));
    aws.s3
        .put_bucket_notification_configuration()
        .bucket(&n.bucket)
        .notification_configuration(config.build())
        .send()
        .await
        .map_err(site.fail("PutBucketNotificationConfiguration"))?;
    Ok(())
}

/// A rule as EventBridge reports it: its pattern, whether it is enabled, and the ARN of
/// Intake's target (`None` when the rule has no target with Intake's id).
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedRule {
    pub event_pattern: Option<Value>,
    pub enabled: bool,
    pub target_arn: Option<String>,
    /// Ids of every target, for removing the rule.
    pub target_ids: Vec<String>,
}

pub async fn observe_rule(aws: &AwsClients, name: &str) -> Result<Option<ObservedRule>, AwsError> {
    let site = CallSite::new(&aws.endpoint, format!("rule {name}"));
    let rule = match aws.events.describe_rule().name(name).send().await {
        Ok(rule) => rule,
        Err(e) if is_code(&e, &["ResourceNotFoundException"]) => return Ok(None),
        Err(e) => return Err(site.fail("DescribeRule")(e)),
    };
    let targets = aws
        .events
        .list_targets_by_rule()
        .rule(name)
        .send()
        .await
        .map_err(site.fail("ListTargetsByRule"))?;
    Ok(Some(ObservedRule {
        event_pattern: rule
            .event_pattern()
            .and_then(|p| serde_json::from_str(p).ok()),
        enabled: rule.state() == Some(&RuleState::Enabled),
        target_arn: targets
            .targets()
            .iter()
            .find(|t| t.id() == RULE_TARGET_ID)
            .map(|t| t.arn().to_owned()),
        target_ids: targets
            .targets()
            .iter()
            .map(|t| t.id().to_owned())
            .collect(),
    }))
}

/// The settings of the rule that differ, for the plan.
pub fn rule_differs(desired: &DesiredRule, current: &ObservedRule) -> Vec<&'static str> {
    let mut fields = Vec::new();
    if current.event_pattern.as_ref() != Some(&desired.event_pattern) {
        fields.push("event pattern");
    }
    if !current.enabled {
        fields.push("state");
    }
    if current.target_arn.as_deref() != Some(desired.queue_arn.as_str()) {
        fields.push("target");
    }
    fields
}

/// Create or update the rule and point its target at the entry queue. Both calls are
/// idempotent: `PutRule` on an existing name updates it, `PutTargets` replaces a target id.
pub async fn put_rule(aws: &AwsClients, rule: &DesiredRule) -> Result<(), AwsError> {
    let site = CallSite::new(&aws.endpoint, format!("rule {}", rule.name));
    aws.events
        .put_rule()
        .name(&rule.name)
        .event_pattern(rule.event_pattern.to_string())
        .state(RuleState::Enabled)
        .description("Intake: objects created in the uploads bucket, to the entry stage's queue")
        .send()
        .await
        .map_err(site.fail("PutRule"))?;
    let target = Target::builder()
        .id(RULE_TARGET_ID)
        .arn(&rule.queue_arn)
        .build()
        .expect("id and arn are set");
    let out = aws
        .events
        .put_targets()
        .rule(&rule.name)
        .targets(target)
        .send()
        .await
        .map_err(site.fail("PutTargets"))?;
    if out.failed_entry_count() > 0 {
        let reason = out
            .failed_entries()
            .iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    e.error_code().unwrap_or("?"),
                    e.error_message().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        return Err(AwsError::Call {
            operation: "PutTargets",
            resource: format!("rule {}", rule.name),
            code: None,
            message: format!("the entry queue was not added as the rule's target: {reason}"),
        });
    }
    Ok(())
}

/// Remove the rule (its targets first, as EventBridge requires). A rule that is already
/// gone is not an error.
pub async fn delete_rule(
    aws: &AwsClients,
    name: &str,
    target_ids: &[String],
) -> Result<(), AwsError> {
    let site = CallSite::new(&aws.endpoint, format!("rule {name}"));
    if !target_ids.is_empty() {
        match aws
            .events
            .remove_targets()
            .rule(name)
            .set_ids(Some(target_ids.to_vec()))
            .force(false)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if is_code(&e, &["ResourceNotFoundException"]) => return Ok(()),
            Err(e) => return Err(site.fail("RemoveTargets")(e)),
        }
    }
    match aws.events.delete_rule().name(name).send().await {
        Ok(_) => Ok(()),
        Err(e) if is_code(&e, &["ResourceNotFoundException"]) => Ok(()),
        Err(e) => Err(site.fail("DeleteRule")(e)),
    }
}

#[cfg(test)]
mod tests {
    use intake_core::PipelineConfig;
    use serde_json::json;

    use super::*;
    use crate::arn::Arns;
    use crate::provision::desired::Desired;

    fn desired(route: &str) -> Desired {
        let text = include_str!("../../../../pipeline.toml").replace(
            "notifications = \"bucket\"",
            &format!("notifications = \"{route}\""),
        );
        let config = PipelineConfig::from_toml(&text, "pipeline.toml").unwrap();
        Desired::of(&config, Arns::new("123456789012", "eu-west-1"))
    }

    fn entry_policy(d: &Desired) -> Value {
        let queue = &d.names.stage(intake_core::StageKind::Validate).queue;
        let q = d.queues.iter().find(|q| &q.name == queue).unwrap();
        match &q.attributes["Policy"] {
            crate::provision::desired::AttrValue::Json(v) => v.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_bucket_route_is_a_queue_configuration_and_no_rule() {
        let d = desired("bucket");
        assert!(d.rule.is_none());
        assert!(!d.notification.eventbridge);
        let q = d.notification.queue.as_ref().unwrap();
        assert_eq!(q.events.len(), 3);
        assert!(!q.events.iter().any(|e| e.contains("Copy")));
        let policy = entry_policy(&d).to_string();
        assert!(policy.contains("s3.amazonaws.com") && !policy.contains("events.amazonaws.com"));
    }

    #[test]
    fn the_eventbridge_route_is_a_rule_for_the_uploads_bucket_and_the_upload_reasons() {
        let d = desired("eventbridge");
        assert!(d.notification.eventbridge && d.notification.queue.is_none());
        let rule = d.rule.as_ref().unwrap();
        assert_eq!(rule.name, "intake-uploads-created");
        assert_eq!(
            rule.arn,
            "arn:aws:events:eu-west-1:123456789012:rule/intake-uploads-created"
        );
        assert_eq!(
            rule.event_pattern,
            json!({
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {
                    "bucket": {"name": ["intake-uploads"]},
                    "reason": ["PutObject", "PostObject", "CompleteMultipartUpload"],
                },
            })
        );
        assert_eq!(
            rule.queue_arn,
            "arn:aws:sqs:eu-west-1:123456789012:intake-validate"
        );
        let policy = entry_policy(&d);
        let statement = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == "AllowUploadsEventBridgeRule")
            .expect("a statement for the rule");
        assert_eq!(statement["Principal"]["Service"], "events.amazonaws.com");
        assert_eq!(
            statement["Condition"]["ArnEquals"]["aws:SourceArn"],
            json!(rule.arn)
        );
        assert!(!policy.to_string().contains("s3.amazonaws.com"));
    }

    #[test]
    fn differences_name_the_settings_that_differ() {
        let bucket = desired("bucket").notification;
        let eventbridge = desired("eventbridge").notification;
        assert!(notification_differs(&bucket, &bucket).is_empty());
        assert_eq!(
            notification_differs(&eventbridge, &bucket),
            vec!["queue", "events", "eventbridge"]
        );
        let rule = desired("eventbridge").rule.unwrap();
        let mut observed = ObservedRule {
            event_pattern: Some(rule.event_pattern.clone()),
            enabled: true,
            target_arn: Some(rule.queue_arn.clone()),
            target_ids: vec![RULE_TARGET_ID.to_owned()],
        };
        assert!(rule_differs(&rule, &observed).is_empty());
        observed.enabled = false;
        observed.target_arn = None;
        observed.event_pattern = Some(json!({"source": ["aws.s3"]}));
        assert_eq!(
            rule_differs(&rule, &observed),
            vec!["event pattern", "state", "target"]
        );
    }
}
