//! CloudWatch alarms of the pipeline: per-stage failures, DLQ depth, oldest message age.

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricAlarm, Statistic};

use super::desired::DesiredAlarm;
use crate::clients::AwsClients;
use crate::error::{AwsError, classify};

/// Every alarm whose name starts with `prefix`.
pub async fn list(aws: &AwsClients, prefix: &str) -> Result<Vec<MetricAlarm>, AwsError> {
    let mut alarms = Vec::new();
    let mut pages = aws
        .cloudwatch
        .describe_alarms()
        .alarm_name_prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            classify(
                &aws.endpoint,
                "DescribeAlarms",
                &format!("alarms {prefix}*"),
                e,
            )
        })?;
        alarms.extend(page.metric_alarms.unwrap_or_default());
    }
    Ok(alarms)
}

/// Fields of an existing alarm that differ from the desired one.
pub fn differing(desired: &DesiredAlarm, current: &MetricAlarm) -> Vec<&'static str> {
    let mut fields = Vec::new();
    let mut dims: Vec<(String, String)> = current
        .dimensions()
        .iter()
        .map(|d| {
            (
                d.name().unwrap_or_default().to_owned(),
                d.value().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    dims.sort();
    let mut want_dims = desired.dimensions.clone();
    want_dims.sort();
    let checks = [
        (
            "metric",
            current.metric_name() == Some(desired.metric.as_str())
                && current.namespace() == Some(desired.namespace.as_str()),
        ),
        ("dimensions", dims == want_dims),
        (
            "statistic",
            current.statistic().map(|s| s.as_str()) == Some(desired.statistic.as_str()),
        ),
        ("period", current.period() == Some(desired.period_secs)),
        ("threshold", current.threshold() == Some(desired.threshold)),
        (
            "comparison",
            current.comparison_operator()
                == Some(&ComparisonOperator::GreaterThanOrEqualToThreshold),
        ),
        (
            "actions",
            current.alarm_actions() == desired.actions.as_slice(),
        ),
        (
            "description",
            current.alarm_description() == Some(desired.description.as_str()),
        ),
    ];
    for (name, same) in checks {
        if !same {
            fields.push(name);
        }
    }
    fields
}

pub async fn put(aws: &AwsClients, alarm: &DesiredAlarm) -> Result<(), AwsError> {
    let dimensions = alarm
        .dimensions
        .iter()
        .map(|(n, v)| Dimension::builder().name(n).value(v).build());
    aws.cloudwatch
        .put_metric_alarm()
        .alarm_name(&alarm.name)
        .alarm_description(&alarm.description)
        .namespace(&alarm.namespace)
        .metric_name(&alarm.metric)
        .set_dimensions(Some(dimensions.collect()))
        .statistic(Statistic::from(alarm.statistic.as_str()))
        .period(alarm.period_secs)
        .evaluation_periods(1)
        .threshold(alarm.threshold)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
        .treat_missing_data("notBreaching")
        .set_alarm_actions(Some(alarm.actions.clone()))
        .send()
        .await
        .map_err(|e| {
            classify(
                &aws.endpoint,
                "PutMetricAlarm",
                &format!("alarm {}", alarm.name),
                e,
            )
        })?;
    Ok(())
}

pub async fn delete(aws: &AwsClients, name: &str) -> Result<(), AwsError> {
    aws.cloudwatch
        .delete_alarms()
        .alarm_names(name)
        .send()
        .await
        .map_err(|e| classify(&aws.endpoint, "DeleteAlarms", &format!("alarm {name}"), e))?;
    Ok(())
}
