//! Provisioning: compare what a pipeline needs ([`desired`]) with what AWS has, print the
//! difference as a plan, and apply it. Applying twice is a no-op, a changed config converges,
//! and nothing that holds data (a bucket, a queue) is ever deleted: only subscriptions and
//! alarms of stages that left the config are removed.

mod alarms;
mod buckets;
pub mod desired;
mod entry_route;
mod queues;
mod topics;

use std::fmt;

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use intake_core::PipelineConfig;
use intake_core::names::BucketRole;
use intake_core::state_machine::StageKind;

use crate::arn::Arns;
use crate::clients::AwsClients;
use crate::error::AwsError;
use buckets::Aspect;
use desired::{
    Desired, DesiredAlarm, DesiredBucket, DesiredQueue, DesiredRule, DesiredSubscription,
    Notification, rule_name,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    Bucket,
    Topic,
    Queue,
    Subscription,
    Notification,
    Rule,
    Alarm,
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResourceKind::Bucket => "bucket",
            ResourceKind::Topic => "topic",
            ResourceKind::Queue => "queue",
            ResourceKind::Subscription => "subscription",
            ResourceKind::Notification => "notification",
            ResourceKind::Rule => "rule",
            ResourceKind::Alarm => "alarm",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create,
    /// The settings that differ.
    Update(Vec<&'static str>),
    Unchanged,
    Delete,
}

impl Action {
    pub fn label(&self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update(_) => "update",
            Action::Unchanged => "unchanged",
            Action::Delete => "delete",
        }
    }
}

/// One row of a plan: a resource and what applying will do to it.
#[derive(Debug, Clone)]
pub struct Change {
    pub kind: ResourceKind,
    pub name: String,
    pub action: Action,
    work: Work,
}

#[derive(Debug, Clone)]
enum Work {
    Nothing,
    Bucket {
        desired: Box<DesiredBucket>,
        aspects: Vec<Aspect>,
        create: bool,
    },
    Topic(String),
    CreateQueue(DesiredQueue),
    UpdateQueue {
        url: String,
        desired: DesiredQueue,
        keys: Vec<&'static str>,
    },
    Subscribe {
        topic_arn: String,
        subscription: DesiredSubscription,
    },
    UpdateSubscription {
        arn: String,
        subscription: DesiredSubscription,
    },
    Unsubscribe(String),
    Notification(Notification),
    PutRule(Box<DesiredRule>),
    DeleteRule {
        name: String,
        target_ids: Vec<String>,
    },
    PutAlarm(Box<DesiredAlarm>),
    DeleteAlarm(String),
}

/// What provisioning would do, resource by resource, in the order it will do it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub changes: Vec<Change>,
}

impl Plan {
    /// True when applying would change nothing.
    pub fn is_converged(&self) -> bool {
        self.changes.iter().all(|c| c.action == Action::Unchanged)
    }

    pub fn count(&self, label: &str) -> usize {
        self.changes
            .iter()
            .filter(|c| c.action.label() == label)
            .count()
    }

    pub fn summary(&self) -> String {
        format!(
            "{} to create, {} to update, {} to delete, {} unchanged",
            self.count("create"),
            self.count("update"),
            self.count("delete"),
            self.count("unchanged")
        )
    }

    /// The plan as a table, one row per resource.
    pub fn table(&self) -> String {
        let mut table = Table::new();
        table
            .load_preset(UTF8_BORDERS_ONLY)
            .set_header(["resource", "name", "action", "detail"]);
        for change in &self.changes {
            let detail = match &change.action {
                Action::Update(fields) => fields.join(", "),
                _ => String::new(),
            };
            table.add_row([
                change.kind.to_string(),
                change.name.clone(),
                change.action.label().to_owned(),
                detail,
            ]);
        }
        table.to_string()
    }
}

/// Compare the config with what exists. Makes read-only calls only.
pub async fn plan(aws: &AwsClients, config: &PipelineConfig) -> Result<Plan, AwsError> {
    let account = aws.account_id().await?;
    let desired = Desired::of(config, Arns::new(account, aws.region.clone()));
    let mut changes = Vec::new();

    // The logs bucket first: the others send their access logs to it.
    let mut bucket_order = desired.buckets.clone();
    bucket_order.sort_by_key(|b| b.role != BucketRole::Logs);
    for bucket in bucket_order {
        let (action, aspects, create) = match buckets::observe(aws, &bucket.name).await? {
            None => {
                let aspects = Aspect::ALL
                    .into_iter()
                    .filter(|a| !(matches!(a, Aspect::Cors) && bucket.state.cors.is_empty()))
                    .filter(|a| !(matches!(a, Aspect::Logging) && bucket.state.logging.is_none()))
                    .collect();
                (Action::Create, aspects, true)
            }
            Some(current) => {
                let aspects: Vec<_> = Aspect::ALL
                    .into_iter()
                    .filter(|a| a.differs(&bucket.state, &current))
                    .collect();
                if aspects.is_empty() {
                    (Action::Unchanged, aspects, false)
                } else {
                    (
                        Action::Update(aspects.iter().map(|a| a.name()).collect()),
                        aspects,
                        false,
                    )
                }
            }
        };
        changes.push(Change {
            kind: ResourceKind::Bucket,
            name: bucket.name.clone(),
            action,
            work: Work::Bucket {
                desired: Box::new(bucket),
                aspects,
                create,
            },
        });
    }

    for topic in &desired.topics {
        let exists = topics::exists(aws, &desired.arns.topic(topic)).await?;
        changes.push(Change {
            kind: ResourceKind::Topic,
            name: topic.clone(),
            action: if exists {
                Action::Unchanged
            } else {
                Action::Create
            },
            work: if exists {
                Work::Nothing
            } else {
                Work::Topic(topic.clone())
            },
        });
    }

    for queue in &desired.queues {
        let (action, work) = match queues::observe(aws, queue).await? {
            None => (Action::Create, Work::CreateQueue(queue.clone())),
            Some((url, observed)) => {
                let keys = queues::differing(queue, &observed);
                if keys.is_empty() {
                    (Action::Unchanged, Work::Nothing)
                } else {
                    (
                        Action::Update(keys.clone()),
                        Work::UpdateQueue {
                            url,
                            desired: queue.clone(),
                            keys,
                        },
                    )
                }
            }
        };
        changes.push(Change {
            kind: ResourceKind::Queue,
            name: queue.name.clone(),
            action,
            work,
        });
    }

    let events_arn = desired.arns.topic(&desired.names.events_topic);
    let existing = topics::sqs_subscriptions(aws, &events_arn).await?;
    for subscription in &desired.subscriptions {
        let name = format!(
            "{} -> {}",
            desired.names.events_topic,
            desired.names.stage(subscription.stage).queue
        );
        let found = existing
            .iter()
            .find(|s| s.endpoint() == Some(subscription.queue_arn.as_str()))
            .and_then(|s| s.subscription_arn())
            .filter(|arn| arn.starts_with("arn:"));
        let (action, work) = match found {
            None => (
                Action::Create,
                Work::Subscribe {
                    topic_arn: events_arn.clone(),
                    subscription: subscription.clone(),
                },
            ),
            Some(arn) => {
                let (filter, raw) = topics::subscription_settings(aws, arn).await?;
                let mut fields = Vec::new();
                if filter.as_ref() != Some(&subscription.filter_policy) {
                    fields.push("filter policy");
                }
                if !raw {
                    fields.push("raw message delivery");
                }
                if fields.is_empty() {
                    (Action::Unchanged, Work::Nothing)
                } else {
                    (
                        Action::Update(fields),
                        Work::UpdateSubscription {
                            arn: arn.to_owned(),
                            subscription: subscription.clone(),
                        },
                    )
                }
            }
        };
        changes.push(Change {
            kind: ResourceKind::Subscription,
            name,
            action,
            work,
        });
    }
    // Subscriptions of this pipeline's stage queues that no route needs any more.
    for stage in StageKind::ALL {
        let queue_arn = desired.arns.stage_queue(&desired.names, stage);
        if desired
            .subscriptions
            .iter()
            .any(|s| s.queue_arn == queue_arn)
        {
            continue;
        }
        for sub in existing
            .iter()
            .filter(|s| s.endpoint() == Some(queue_arn.as_str()))
        {
            if let Some(arn) = sub.subscription_arn().filter(|a| a.starts_with("arn:")) {
                changes.push(Change {
                    kind: ResourceKind::Subscription,
                    name: format!(
                        "{} -> {}",
                        desired.names.events_topic,
                        desired.names.stage(stage).queue
                    ),
                    action: Action::Delete,
                    work: Work::Unsubscribe(arn.to_owned()),
                });
            }
        }
    }

    let uploads_exists = changes.iter().any(|c| {
        c.kind == ResourceKind::Bucket
            && c.name == desired.notification.bucket
            && c.action != Action::Create
    });
    let current = if uploads_exists {
        entry_route::observe_notification(aws, &desired.notification.bucket).await?
    } else {
        None
    };
    let eventbridge_on = current.as_ref().is_some_and(|n| n.eventbridge);
    let action = match current {
        None => Action::Create,
        Some(ref n) if *n == desired.notification => Action::Unchanged,
        Some(ref n) => Action::Update(entry_route::notification_differs(&desired.notification, n)),
    };
    let target = match &desired.rule {
        Some(rule) => format!("EventBridge rule {}", rule.name),
        None => desired.names.stage(config.entry_stage()).queue.clone(),
    };
    changes.push(Change {
        kind: ResourceKind::Notification,
        name: format!("{} -> {target}", desired.notification.bucket),
        work: if action == Action::Unchanged {
            Work::Nothing
        } else {
            Work::Notification(desired.notification.clone())
        },
        action,
    });

    // The EventBridge rule: wanted with `notifications = "eventbridge"`, removed otherwise
    // (it holds no data, and left in place it would deliver every upload a second time).
    // With a bucket notification, EventBridge is only asked when the bucket still sends to
    // it: a pipeline that never used EventBridge needs no EventBridge permissions.
    let name = rule_name(&desired.names);
    let observed = if desired.rule.is_some() || eventbridge_on {
        entry_route::observe_rule(aws, &name).await?
    } else {
        None
    };
    match (&desired.rule, observed) {
        (Some(rule), None) => changes.push(Change {
            kind: ResourceKind::Rule,
            name: format!(
                "{name} -> {}",
                desired.names.stage(config.entry_stage()).queue
            ),
            action: Action::Create,
            work: Work::PutRule(Box::new(rule.clone())),
        }),
        (Some(rule), Some(current)) => {
            let fields = entry_route::rule_differs(rule, &current);
            changes.push(Change {
                kind: ResourceKind::Rule,
                name: format!(
                    "{name} -> {}",
                    desired.names.stage(config.entry_stage()).queue
                ),
                work: if fields.is_empty() {
                    Work::Nothing
                } else {
                    Work::PutRule(Box::new(rule.clone()))
                },
                action: if fields.is_empty() {
                    Action::Unchanged
                } else {
                    Action::Update(fields)
                },
            });
        }
        (None, Some(current)) => changes.push(Change {
            kind: ResourceKind::Rule,
            name: name.clone(),
            action: Action::Delete,
            work: Work::DeleteRule {
                name,
                target_ids: current.target_ids,
            },
        }),
        (None, None) => {}
    }

    let existing_alarms = alarms::list(aws, &format!("{}-", desired.names.prefix)).await?;
    for alarm in &desired.alarms {
        let current = existing_alarms
            .iter()
            .find(|a| a.alarm_name() == Some(alarm.name.as_str()));
        let action = match current {
            None => Action::Create,
            Some(current) => {
                let fields = alarms::differing(alarm, current);
                if fields.is_empty() {
                    Action::Unchanged
                } else {
                    Action::Update(fields)
                }
            }
        };
        changes.push(Change {
            kind: ResourceKind::Alarm,
            name: alarm.name.clone(),
            work: if action == Action::Unchanged {
                Work::Nothing
            } else {
                Work::PutAlarm(Box::new(alarm.clone()))
            },
            action,
        });
    }
    for current in &existing_alarms {
        let Some(name) = current.alarm_name() else {
            continue;
        };
        if desired::is_pipeline_alarm(&desired.names, name)
            && !desired.alarms.iter().any(|a| a.name == name)
        {
            changes.push(Change {
                kind: ResourceKind::Alarm,
                name: name.to_owned(),
                action: Action::Delete,
                work: Work::DeleteAlarm(name.to_owned()),
            });
        }
    }

    Ok(Plan { changes })
}

/// Remove the pipeline's EventBridge rule (targets first), if it has one. For tearing a
/// pipeline down: `plan` itself never removes it unless the route changed.
pub async fn remove_entry_rule(
    aws: &AwsClients,
    names: &intake_core::ResourceNames,
) -> Result<(), AwsError> {
    let name = rule_name(names);
    if let Some(rule) = entry_route::observe_rule(aws, &name).await? {
        entry_route::delete_rule(aws, &name, &rule.target_ids).await?;
    }
    Ok(())
}

/// Carry out a plan, in order. Stops at the first failure; running `provision` again
/// continues from where it stopped, since the next plan only holds what is still missing.
pub async fn apply(aws: &AwsClients, plan: &Plan) -> Result<(), AwsError> {
    for change in &plan.changes {
        tracing::debug!(resource = %change.kind, name = %change.name, action = change.action.label(), "applying");
        match &change.work {
            Work::Nothing => {}
            Work::Bucket {
                desired,
                aspects,
                create,
            } => {
                if *create {
                    buckets::create(aws, &desired.name).await?;
                }
                for &aspect in aspects {
                    buckets::apply(aws, &desired.name, &desired.state, aspect).await?;
                }
            }
            Work::Topic(name) => topics::create(aws, name).await?,
            Work::CreateQueue(queue) => queues::create(aws, queue).await?,
            Work::UpdateQueue { url, desired, keys } => {
                queues::update(aws, url, desired, keys).await?
            }
            Work::Subscribe {
                topic_arn,
                subscription,
            } => topics::subscribe(aws, topic_arn, subscription).await?,
            Work::UpdateSubscription { arn, subscription } => {
                topics::update_subscription(aws, arn, subscription).await?
            }
            Work::Unsubscribe(arn) => topics::unsubscribe(aws, arn).await?,
            Work::Notification(notification) => {
                entry_route::apply_notification(aws, notification).await?
            }
            Work::PutRule(rule) => entry_route::put_rule(aws, rule).await?,
            Work::DeleteRule { name, target_ids } => {
                entry_route::delete_rule(aws, name, target_ids).await?
            }
            Work::PutAlarm(alarm) => alarms::put(aws, alarm).await?,
            Work::DeleteAlarm(name) => alarms::delete(aws, name).await?,
        }
    }
    Ok(())
}
