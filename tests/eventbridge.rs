//! Both routes from the uploads bucket to the validate queue, end to end on LocalStack: a
//! bucket notification, and (`[uploads] notifications = "eventbridge"`) EventBridge
//! delivery with a rule on the default bus. Each upload passes validate exactly once, and
//! provisioning converges when the route changes either way.

mod support;

use intake_aws::provision::{Action, ResourceKind, apply, plan};
use intake_core::PipelineConfig;
use intake_core::event::{Incoming, parse_body_from};
use intake_core::names::BucketRole;
use intake_core::state_machine::StageKind;
use intake_stage_validate::Validate;
use support::{Pipeline, key, png};

/// The test pipeline's config (the repo's, under its unique name) with `route`.
fn with_route(p: &Pipeline, route: &str) -> PipelineConfig {
    let text = support::REPO_CONFIG
        .replacen(
            "name = \"intake\"",
            &format!("name = \"{}\"", p.config.pipeline.name),
            1,
        )
        .replace(
            "notifications = \"bucket\"",
            &format!("notifications = \"{route}\""),
        );
    PipelineConfig::from_toml(&text, "test-pipeline.toml").expect("config")
}

async fn converge(p: &Pipeline, config: &PipelineConfig) -> String {
    let first = plan(&p.aws, config).await.expect("plan");
    apply(&p.aws, &first).await.expect("apply");
    let second = plan(&p.aws, config).await.expect("second plan");
    assert!(second.is_converged(), "{}", second.table());
    first.table()
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_pass_validate_through_the_bucket_notification_and_through_eventbridge() {
    let p = Pipeline::start_with(|t| {
        t.replace(
            "notifications = \"bucket\"",
            "notifications = \"eventbridge\"",
        )
    })
    .await;
    let uploads = p.bucket(BucketRole::Uploads).to_owned();

    // EventBridge: the bucket sends to the default bus, the rule to the validate queue.
    let notification = p
        .aws
        .s3
        .get_bucket_notification_configuration()
        .bucket(&uploads)
        .send()
        .await
        .unwrap();
    assert!(notification.event_bridge_configuration().is_some());
    assert!(notification.queue_configurations().is_empty());
    let rule = format!("{}-uploads-created", p.names.prefix);
    let described = p
        .aws
        .events
        .describe_rule()
        .name(&rule)
        .send()
        .await
        .unwrap();
    let pattern: serde_json::Value =
        serde_json::from_str(described.event_pattern().unwrap()).unwrap();
    assert_eq!(pattern["detail"]["bucket"]["name"][0], uploads.as_str());
    let again = plan(&p.aws, &p.config).await.unwrap();
    assert!(again.is_converged(), "{}", again.table());

    // The body EventBridge delivers, as the worker will read it: the key as uploaded.
    let spaced = key("tenant-a", "red flower+1 100%.png");
    p.upload(&spaced, png(), "image/png").await;
    let bodies = p.take_s3_events(1).await;
    let Ok(Incoming::S3(objects)) = parse_body_from(&bodies[0], &uploads) else {
        panic!("EventBridge body not accepted: {}", bodies[0])
    };
    assert_eq!(objects[0].key, spaced, "{}", bodies[0]);
    assert!(bodies[0].contains("\"detail-type\""), "{}", bodies[0]);
    // Deliver it again as EventBridge did, for the worker.
    let queue = p.stage_queue_url(StageKind::Validate).await;
    p.send(&queue, &bodies[0]).await;
    let worker = p.spawn_worker(Validate::new(&p.config), "w1").await;
    let via_eventbridge = key("tenant-a", "via eventbridge.png");
    let version = p.upload(&via_eventbridge, png(), "image/png").await;
    let outcomes = p.outcomes(2).await;
    assert_eq!(outcomes.len(), 2, "one outcome per upload: {outcomes:#?}");
    for o in &outcomes {
        assert_eq!(
            (o.stage.as_str(), o.outcome.as_str()),
            ("validate", "passed"),
            "{o:?}"
        );
    }
    let o = outcomes
        .iter()
        .find(|o| o.object.key == via_eventbridge)
        .unwrap();
    assert_eq!(o.object.version_id.as_deref(), Some(version.as_str()));
    assert!(outcomes.iter().any(|o| o.object.key == spaced));

    // Back to a bucket notification: the rule goes, the queue configuration comes back.
    let bucket_route = with_route(&p, "bucket");
    let table = converge(&p, &bucket_route).await;
    assert!(table.contains("rule"), "{table}");
    let gone = p.aws.events.describe_rule().name(&rule).send().await;
    assert!(gone.is_err(), "the rule is removed: {gone:?}");
    let via_notification = key("tenant-a", "via notification.png");
    p.upload(&via_notification, png(), "image/png").await;
    let outcomes = p.outcomes(1).await;
    assert_eq!(outcomes.len(), 1, "{outcomes:#?}");
    assert_eq!(outcomes[0].object.key, via_notification);
    assert_eq!(outcomes[0].outcome, "passed");

    // And to EventBridge again: only one route delivers, so one outcome per upload.
    let eventbridge_route = with_route(&p, "eventbridge");
    let first = plan(&p.aws, &eventbridge_route).await.unwrap();
    let rule_change = first
        .changes
        .iter()
        .find(|c| c.kind == ResourceKind::Rule)
        .expect("a rule in the plan");
    assert_eq!(rule_change.action, Action::Create);
    converge(&p, &eventbridge_route).await;
    let again = key("tenant-a", "via eventbridge again.png");
    p.upload(&again, png(), "image/png").await;
    let outcomes = p.outcomes(1).await;
    assert_eq!(outcomes.len(), 1, "{outcomes:#?}");
    assert_eq!(outcomes[0].object.key, again);
    let stats = worker.stop().await;
    assert_eq!((stats.retried, stats.poisoned), (0, 0), "{stats:?}");
}
