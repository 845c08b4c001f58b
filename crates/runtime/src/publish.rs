//! Writing to SNS and SQS on a stage's behalf: outcomes to the events topic (with the
//! attributes filter policies match) and poison messages to the stage's DLQ (with the
//! reason as attributes, original attributes kept).

use std::collections::HashMap;

use aws_sdk_sns::types::MessageAttributeValue as SnsAttribute;
use aws_sdk_sqs::types::{Message, MessageAttributeValue as SqsAttribute};
use intake_aws::AwsClients;
use intake_aws::error::{AwsError, classify};

/// Attribute names a poison message carries into the DLQ.
pub const POISON_CODE_ATTRIBUTE: &str = "intake-error-code";
pub const POISON_REASON_ATTRIBUTE: &str = "intake-error-reason";
pub const POISON_SOURCE_ATTRIBUTE: &str = "intake-source-queue";

/// Publish an outcome JSON with its filter attributes.
pub async fn publish_outcome(
    aws: &AwsClients,
    topic_arn: &str,
    outcome_json: &str,
    attributes: &[(String, String)],
) -> Result<(), AwsError> {
    let attributes: HashMap<String, SnsAttribute> = attributes
        .iter()
        .map(|(k, v)| {
            let value = SnsAttribute::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .expect("data type is set");
            (k.clone(), value)
        })
        .collect();
    aws.sns
        .publish()
        .topic_arn(topic_arn)
        .message(outcome_json)
        .set_message_attributes(Some(attributes))
        .send()
        .await
        .map_err(|e| classify(&aws.endpoint, "Publish", &format!("topic {topic_arn}"), e))?;
    Ok(())
}

/// Copy a message into the DLQ with why it is there. The caller deletes the original after.
pub async fn send_to_dlq(
    aws: &AwsClients,
    dlq_url: &str,
    source_queue: &str,
    message: &Message,
    code: &str,
    reason: &str,
) -> Result<(), AwsError> {
    let text = |v: &str| {
        SqsAttribute::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .expect("data type is set")
    };
    let mut attributes: HashMap<String, SqsAttribute> =
        message.message_attributes().cloned().unwrap_or_default();
    // SQS allows 10 attributes per message: make room for ours rather than fail.
    while attributes.len() > 7 {
        let Some(k) = attributes.keys().next().cloned() else {
            break;
        };
        attributes.remove(&k);
    }
    attributes.insert(POISON_CODE_ATTRIBUTE.into(), text(code));
    // Attribute values are limited in size; a reason is a sentence, not a dump.
    attributes.insert(
        POISON_REASON_ATTRIBUTE.into(),
        text(&reason.chars().take(1000).collect::<String>()),
    );
    attributes.insert(POISON_SOURCE_ATTRIBUTE.into(), text(source_queue));
    let body = message
        .body()
        .filter(|b| !b.is_empty())
        .unwrap_or("(empty body)");
    aws.sqs
        .send_message()
        .queue_url(dlq_url)
        .message_body(body)
        .set_message_attributes(Some(attributes))
        .send()
        .await
        .map_err(|e| classify(&aws.endpoint, "SendMessage", &format!("DLQ {dlq_url}"), e))?;
    Ok(())
}
