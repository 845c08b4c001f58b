//! SNS topics and the stage subscriptions compiled from the state machine.

use aws_sdk_sns::types::Subscription;

use super::desired::DesiredSubscription;
use crate::clients::AwsClients;
use crate::error::{AwsError, classify, is_code};

pub async fn exists(aws: &AwsClients, topic_arn: &str) -> Result<bool, AwsError> {
    match aws
        .sns
        .get_topic_attributes()
        .topic_arn(topic_arn)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if is_code(&e, &["NotFound", "NotFoundException"]) => Ok(false),
        Err(e) => Err(classify(
            &aws.endpoint,
            "GetTopicAttributes",
            &format!("topic {topic_arn}"),
            e,
        )),
    }
}

pub async fn create(aws: &AwsClients, name: &str) -> Result<(), AwsError> {
    aws.sns
        .create_topic()
        .name(name)
        .send()
        .await
        .map_err(|e| classify(&aws.endpoint, "CreateTopic", &format!("topic {name}"), e))?;
    Ok(())
}

/// SQS subscriptions of a topic (empty when the topic does not exist yet).
pub async fn sqs_subscriptions(
    aws: &AwsClients,
    topic_arn: &str,
) -> Result<Vec<Subscription>, AwsError> {
    let mut found = Vec::new();
    let mut pages = aws
        .sns
        .list_subscriptions_by_topic()
        .topic_arn(topic_arn)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => found.extend(
                page.subscriptions
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|s| s.protocol() == Some("sqs")),
            ),
            Err(e) if is_code(&e, &["NotFound", "NotFoundException"]) => break,
            Err(e) => {
                return Err(classify(
                    &aws.endpoint,
                    "ListSubscriptionsByTopic",
                    &format!("topic {topic_arn}"),
                    e,
                ));
            }
        }
    }
    Ok(found)
}

/// (filter policy, raw message delivery) of a subscription.
pub async fn subscription_settings(
    aws: &AwsClients,
    subscription_arn: &str,
) -> Result<(Option<serde_json::Value>, bool), AwsError> {
    let out = aws
        .sns
        .get_subscription_attributes()
        .subscription_arn(subscription_arn)
        .send()
        .await
        .map_err(|e| {
            classify(
                &aws.endpoint,
                "GetSubscriptionAttributes",
                &format!("subscription {subscription_arn}"),
                e,
            )
        })?;
    let attributes = out.attributes.unwrap_or_default();
    let filter = attributes
        .get("FilterPolicy")
        .and_then(|p| serde_json::from_str(p).ok());
    let raw = attributes
        .get("RawMessageDelivery")
        .is_some_and(|v| v == "true");
    Ok((filter, raw))
}

pub async fn subscribe(
    aws: &AwsClients,
    topic_arn: &str,
    sub: &DesiredSubscription,
) -> Result<(), AwsError> {
    aws.sns
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(&sub.queue_arn)
        .attributes("FilterPolicy", sub.filter_policy.to_string())
        .attributes("FilterPolicyScope", "MessageAttributes")
        .attributes("RawMessageDelivery", "true")
        .return_subscription_arn(true)
        .send()
        .await
        .map_err(|e| {
            classify(
                &aws.endpoint,
                "Subscribe",
                &format!("subscription of {}", sub.queue_arn),
                e,
            )
        })?;
    Ok(())
}

pub async fn update_subscription(
    aws: &AwsClients,
    arn: &str,
    sub: &DesiredSubscription,
) -> Result<(), AwsError> {
    for (name, value) in [
        ("FilterPolicy", sub.filter_policy.to_string()),
        ("RawMessageDelivery", "true".to_owned()),
    ] {
        aws.sns
            .set_subscription_attributes()
            .subscription_arn(arn)
            .attribute_name(name)
            .attribute_value(value)
            .send()
            .await
            .map_err(|e| {
                classify(
                    &aws.endpoint,
                    "SetSubscriptionAttributes",
                    &format!("subscription {arn}"),
                    e,
                )
            })?;
    }
    Ok(())
}

pub async fn unsubscribe(aws: &AwsClients, arn: &str) -> Result<(), AwsError> {
    aws.sns
        .unsubscribe()
        .subscription_arn(arn)
        .send()
        .await
        .map_err(|e| {
            classify(
                &aws.endpoint,
                "Unsubscribe",
                &format!("subscription {arn}"),
                e,
            )
        })?;
    Ok(())
}
