//! Queueing deletions for the deletion worker: the one way `intake delete` and the API's
//! `DELETE /v1/files/{id}` ask for a file to go. The worker (in `intake run`) removes the
//! stored versions, derivatives and catalog record, with retries, and publishes `deleted`.

use intake_aws::AwsClients;
use intake_aws::error::classify;
use intake_core::state_machine::StageKind;
use intake_core::{DeletionRequest, ObjectRef, ResourceNames};

use crate::dlq::{DlqError, queue_url};

/// Sends one deletion request for `object` (an exact upload version) to the pipeline's
/// deletion queue. Once this returns, the request is durable in SQS.
pub async fn queue_deletion(
    aws: &AwsClients,
    names: &ResourceNames,
    object: ObjectRef,
    requested_by: &str,
    requested_ms: i64,
) -> Result<(), DlqError> {
    let queue = &names.stage(StageKind::Delete).queue;
    let url = queue_url(aws, queue).await?;
    let request = DeletionRequest::new(object, requested_by, requested_ms);
    let body = serde_json::to_string(&request).expect("a deletion request always encodes");
    aws.sqs
        .send_message()
        .queue_url(&url)
        .message_body(body)
        .send()
        .await
        .map_err(|e| classify(&aws.endpoint, "SendMessage", queue, e))?;
    Ok(())
}
