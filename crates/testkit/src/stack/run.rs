//! Bringing a stack up (provision, ledger, workers) and taking it down again: the stage
//! workers (every configured stage and the deletion worker) run as tasks of the test's own
//! tokio runtime, started by the same registry as `intake run`'s, with a quick retry
//! backoff and no CloudWatch metrics.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use intake_aws::AwsClients;
use intake_aws::provision::{apply, plan};
use intake_core::names::BucketRole;
use intake_core::{PipelineConfig, ResourceNames};
use intake_runtime::backoff::Backoff;
use intake_runtime::{StageCx, WorkerSettings};
use intake_stages::{StageWorkers, configured_settings};
use intake_store::Ledger;

use super::{IntakeStack, StackError};
use crate::clamd::ClamdFixture;
use crate::localstack::LocalStack;

/// How long [`IntakeStack::shutdown`] lets workers finish what they hold. Short: the
/// stack's queues and buckets are removed right after, and a worker always holds a long
/// poll that would use up any grace.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(300);

pub(super) async fn start(
    mut config: PipelineConfig,
    localstack: Arc<LocalStack>,
    clamd: Option<ClamdFixture>,
) -> Result<IntakeStack, StackError> {
    let setup = |what| {
        move |e: &dyn std::fmt::Display| StackError::Setup {
            what,
            message: e.to_string(),
        }
    };
    let dir = tempfile::tempdir().map_err(|e| setup("creating the ledger's directory")(&e))?;
    let ledger_url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    config.ledger.database_url = ledger_url.clone();

    let aws = localstack.clients();
    let planned = plan(&aws, &config)
        .await
        .map_err(|e| setup("planning the pipeline's resources")(&e))?;
    // From here on the stack owns resources: a failure must remove them again.
    let names = ResourceNames::of(&config);
    if let Err(e) = apply(&aws, &planned).await {
        let _ = remove_resources(&aws, &names).await;
        return Err(setup("provisioning the pipeline")(&e));
    }
    let ledger = match Ledger::connect(&ledger_url).await {
        Ok(ledger) => Arc::new(ledger),
        Err(e) => {
            let _ = remove_resources(&aws, &names).await;
            return Err(setup("opening the SQLite ledger")(&e));
        }
    };
    let cx = StageCx {
        aws: aws.clone(),
        config: Arc::new(config),
        names: Arc::new(names),
        ledger,
    };
    let workers = match Workers::start(&cx).await {
        Ok(workers) => workers,
        Err(e) => {
            let _ = remove_resources(&aws, &cx.names).await;
            return Err(e);
        }
    };
    Ok(IntakeStack {
        localstack,
        cx,
        workers: Some(workers),
        _clamd: clamd,
        http: reqwest::Client::new(),
        _dir: dir,
    })
}

/// The stage workers of one stack, started by the same registry as `intake run`'s.
pub(super) struct Workers(StageWorkers);

impl Workers {
    /// One worker for each configured stage and the deletion worker.
    async fn start(cx: &StageCx) -> Result<Workers, StackError> {
        let kinds = cx.config.queue_kinds();
        let workers = StageWorkers::start_on_aws(cx, &kinds, |kind| WorkerSettings {
            concurrency: 4,
            shutdown_grace: SHUTDOWN_GRACE,
            backoff: Backoff {
                base: Duration::from_secs(1),
                max: Duration::from_secs(2),
            },
            metrics: false,
            worker_id: format!("{}-{kind}", cx.names.prefix),
            ..configured_settings(&cx.config)
        })
        .await
        .map_err(|e| StackError::Setup {
            what: "starting the stage workers",
            message: e.to_string(),
        })?;
        Ok(Workers(workers))
    }

    /// Ask every worker to stop, give them [`SHUTDOWN_GRACE`] and a little more to finish,
    /// then abort what is left.
    pub(super) async fn stop(self) {
        self.0
            .stop_within(SHUTDOWN_GRACE + Duration::from_millis(200))
            .await;
    }

    /// Stop at once: tasks are aborted (their messages would come back after the
    /// visibility timeout; the queues are removed anyway).
    pub(super) fn abort(&mut self) {
        self.0.abort();
    }
}

/// Remove every resource of the pipeline `names` describes: topics (and so their
/// subscriptions), the EventBridge rule if any, queues, buckets (every version and delete
/// marker first) and alarms.
/// Besides the pipeline's own names, any queue, topic or bucket named `<prefix>-…` goes
/// too (e.g. a test queue subscribed to the events topic). Best effort: it goes on past
/// failures and returns the first one. The prefix is the stack's unique name, so nothing
/// of another stack is touched.
pub(super) async fn remove_resources(
    aws: &AwsClients,
    names: &ResourceNames,
) -> Result<(), String> {
    let mut first_error: Option<String> = None;
    let mut note = |r: Result<(), String>| {
        if let Err(e) = r
            && first_error.is_none()
        {
            first_error = Some(e);
        }
    };
    let ours = format!("{}-", names.prefix);
    let account = aws.account_id().await.map_err(|e| e.to_string())?;
    let region = &aws.region;

    let mut topics: BTreeSet<String> = [&names.events_topic, &names.alerts_topic]
        .into_iter()
        .map(|topic| format!("arn:aws:sns:{region}:{account}:{topic}"))
        .collect();
    if let Ok(listed) = aws.sns.list_topics().send().await {
        topics.extend(
            listed
                .topics()
                .iter()
                .filter_map(|t| t.topic_arn())
                .filter(|arn| arn.rsplit(':').next().is_some_and(|n| n.starts_with(&ours)))
                .map(str::to_owned),
        );
    }
    for arn in &topics {
        note(
            aws.sns
                .delete_topic()
                .topic_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("deleting topic {arn}: {e}")),
        );
    }

    // The EventBridge rule of `[uploads] notifications = "eventbridge"`, before its queue.
    note(
        intake_aws::provision::remove_entry_rule(aws, names)
            .await
            .map_err(|e| format!("removing the EventBridge rule: {e}")),
    );

    let mut queues: BTreeSet<String> = names
        .stages
        .values()
        .flat_map(|q| [q.queue.clone(), q.dlq.clone()])
        .collect();
    if let Ok(listed) = aws.sqs.list_queues().queue_name_prefix(&ours).send().await {
        queues.extend(
            listed
                .queue_urls()
                .iter()
                .filter_map(|url| url.rsplit('/').next())
                .filter(|n| n.starts_with(&ours))
                .map(str::to_owned),
        );
    }
    for queue in &queues {
        note(delete_queue(aws, queue).await);
    }

    let mut buckets: BTreeSet<String> = BucketRole::ALL
        .into_iter()
        .map(|role| names.bucket(role).to_owned())
        .collect();
    if let Ok(listed) = aws.s3.list_buckets().send().await {
        buckets.extend(
            listed
                .buckets()
                .iter()
                .filter_map(|b| b.name())
                .filter(|n| n.starts_with(&ours))
                .map(str::to_owned),
        );
    }
    for bucket in &buckets {
        note(delete_bucket(aws, bucket).await);
    }
    note(delete_alarms(aws, &names.prefix).await);
    match first_error {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

async fn delete_queue(aws: &AwsClients, queue: &str) -> Result<(), String> {
    let Ok(found) = aws.sqs.get_queue_url().queue_name(queue).send().await else {
        return Ok(()); // never created, or gone already
    };
    aws.sqs
        .delete_queue()
        .queue_url(found.queue_url().unwrap_or_default())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("deleting queue {queue}: {e}"))
}

async fn delete_bucket(aws: &AwsClients, bucket: &str) -> Result<(), String> {
    if aws.s3.head_bucket().bucket(bucket).send().await.is_err() {
        return Ok(()); // never created, or gone already
    }
    let versions = intake_aws::purge::list_versions(aws, bucket, "")
        .await
        .map_err(|e| format!("listing s3://{bucket}: {e}"))?;
    intake_aws::purge::delete_versions(aws, bucket, &versions)
        .await
        .map_err(|e| format!("emptying s3://{bucket}: {e}"))?;
    aws.s3
        .delete_bucket()
        .bucket(bucket)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("deleting bucket {bucket}: {e}"))
}

async fn delete_alarms(aws: &AwsClients, prefix: &str) -> Result<(), String> {
    let found = aws
        .cloudwatch
        .describe_alarms()
        .alarm_name_prefix(format!("{prefix}-"))
        .send()
        .await
        .map_err(|e| format!("listing alarms of {prefix}: {e}"))?;
    let names: Vec<String> = found
        .metric_alarms()
        .iter()
        .filter_map(|a| a.alarm_name().map(str::to_owned))
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    aws.cloudwatch
        .delete_alarms()
        .set_alarm_names(Some(names))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("deleting alarms of {prefix}: {e}"))
}

/// Remove the resources from a plain OS thread with a runtime and clients of its own, so
/// it works from `Drop` whatever runtime (if any) is running there, and even while that
/// runtime is shutting down. Blocks the caller until done.
pub(super) fn remove_resources_blocking(localstack: &LocalStack, names: ResourceNames) {
    let sdk = localstack.sdk_config();
    let joined = std::thread::Builder::new()
        .name("intake-testkit-cleanup".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let aws = AwsClients::from_sdk_config(&sdk);
                remove_resources(&aws, &names).await
            })
        })
        .map(|thread| thread.join());
    match joined {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => eprintln!("intake-testkit: removing the stack's resources: {e}"),
        _ => eprintln!("intake-testkit: removing the stack's resources: the cleanup thread failed"),
    }
}
