//! SQS helpers for tests: a test queue subscribed to a topic (as an app backend would
//! subscribe to Intake's events), and taking messages off a queue (receive, then delete).

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use intake_aws::AwsClients;

/// Create `queue` and subscribe it to `topic_arn` with raw message delivery; returns its URL.
///
/// ```no_run
/// # async fn demo(stack: &intake_testkit::IntakeStack) -> Result<(), String> {
/// // Collect every outcome the stack's stages publish, as an app backend would.
/// let account = stack.aws().account_id().await.map_err(|e| e.to_string())?;
/// let topic = format!("arn:aws:sns:us-east-1:{account}:{}", stack.names().events_topic);
/// let url = intake_testkit::queues::subscribe_test_queue(
///     stack.aws(), &topic, &format!("{}-my-outcomes", stack.name())).await?;
/// let messages = intake_testkit::queues::take(stack.aws(), &url, 2).await?;
/// # Ok(()) }
/// ```
pub async fn subscribe_test_queue(
    aws: &AwsClients,
    topic_arn: &str,
    queue: &str,
) -> Result<String, String> {
    let url = aws
        .sqs
        .create_queue()
        .queue_name(queue)
        .send()
        .await
        .map_err(|e| format!("create test queue {queue}: {e}"))?
        .queue_url
        .unwrap_or_default();
    let account = topic_arn.split(':').nth(4).unwrap_or_default();
    let region = topic_arn.split(':').nth(3).unwrap_or_default();
    aws.sns
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(format!("arn:aws:sqs:{region}:{account}:{queue}"))
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .map_err(|e| format!("subscribe {queue} to {topic_arn}: {e}"))?;
    Ok(url)
}

/// Receive up to 10 messages (long-polling up to `wait_secs`), with all their attributes,
/// and delete them from the queue.
///
/// ```no_run
/// # async fn demo(aws: &intake_aws::AwsClients, url: &str) -> Result<(), String> {
/// for message in intake_testkit::queues::take(aws, url, 1).await? {
///     println!("{}", message.body().unwrap_or_default());
/// }
/// # Ok(()) }
/// ```
pub async fn take(aws: &AwsClients, url: &str, wait_secs: i32) -> Result<Vec<Message>, String> {
    let out = aws
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_secs)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .map_err(|e| format!("receive from {url}: {e}"))?;
    let messages = out.messages.unwrap_or_default();
    for m in &messages {
        aws.sqs
            .delete_message()
            .queue_url(url)
            .receipt_handle(m.receipt_handle().unwrap_or_default())
            .send()
            .await
            .map_err(|e| format!("delete from {url}: {e}"))?;
    }
    Ok(messages)
}
