//! Stage queues and their dead-letter queues: read the managed attributes, set what differs.

use std::collections::BTreeMap;

use aws_sdk_sqs::types::QueueAttributeName;

use super::desired::{AttrValue, DesiredQueue};
use crate::clients::AwsClients;
use crate::error::{AwsError, CallSite, classify, is_code};

/// The queue's URL and managed attributes, or `None` when it does not exist.
pub async fn observe(
    aws: &AwsClients,
    desired: &DesiredQueue,
) -> Result<Option<(String, BTreeMap<&'static str, AttrValue>)>, AwsError> {
    let name = &desired.name;
    let site = CallSite::new(&aws.endpoint, format!("queue {name}"));
    let url = match aws.sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => out.queue_url.unwrap_or_default(),
        Err(e)
            if is_code(
                &e,
                &[
                    "AWS.SimpleQueueService.NonExistentQueue",
                    "QueueDoesNotExist",
                ],
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(site.fail("GetQueueUrl")(e)),
    };
    let out = aws
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .map_err(site.fail("GetQueueAttributes"))?;
    let current = out.attributes.unwrap_or_default();
    let observed = desired
        .attributes
        .iter()
        .filter_map(|(&key, want)| {
            let raw = current.get(&QueueAttributeName::from(key))?;
            let value = match want {
                AttrValue::Text(_) => AttrValue::Text(raw.clone()),
                AttrValue::Json(_) => AttrValue::Json(normalise_json(key, raw)),
            };
            Some((key, value))
        })
        .collect();
    Ok(Some((url, observed)))
}

/// SQS returns `maxReceiveCount` as a number or a string depending on who set it.
fn normalise_json(key: &str, raw: &str) -> serde_json::Value {
    let mut value: serde_json::Value =
        serde_json::from_str(raw).unwrap_or(serde_json::Value::String(raw.to_owned()));
    if key == "RedrivePolicy"
        && let Some(count) = value.get_mut("maxReceiveCount")
        && let Some(n) = count.as_str().and_then(|s| s.parse::<u64>().ok())
    {
        *count = n.into();
    }
    value
}

/// Names of managed attributes whose observed value differs from the desired one.
pub fn differing(
    desired: &DesiredQueue,
    observed: &BTreeMap<&'static str, AttrValue>,
) -> Vec<&'static str> {
    desired
        .attributes
        .iter()
        .filter(|(k, v)| observed.get(*k) != Some(*v))
        .map(|(k, _)| *k)
        .collect()
}

pub async fn create(aws: &AwsClients, desired: &DesiredQueue) -> Result<(), AwsError> {
    let attributes = desired
        .attributes
        .iter()
        .map(|(k, v)| (QueueAttributeName::from(*k), v.render()))
        .collect();
    aws.sqs
        .create_queue()
        .queue_name(&desired.name)
        .set_attributes(Some(attributes))
        .send()
        .await
        .map_err(|e| {
            classify(
                &aws.endpoint,
                "CreateQueue",
                &format!("queue {}", desired.name),
                e,
            )
        })?;
    Ok(())
}

pub async fn update(
    aws: &AwsClients,
    url: &str,
    desired: &DesiredQueue,
    keys: &[&'static str],
) -> Result<(), AwsError> {
    let attributes = keys
        .iter()
        .map(|k| (QueueAttributeName::from(*k), desired.attributes[k].render()))
        .collect();
    aws.sqs
        .set_queue_attributes()
        .queue_url(url)
        .set_attributes(Some(attributes))
        .send()
        .await
        .map_err(|e| {
            classify(
                &aws.endpoint,
                "SetQueueAttributes",
                &format!("queue {}", desired.name),
                e,
            )
        })?;
    Ok(())
}
