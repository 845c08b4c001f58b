//! [`DlqError`]: what went wrong reading, purging or replaying a DLQ: an unknown stage, a
//! queue that was never provisioned, an AWS call, or the ledger read that explains a
//! message.

use intake_aws::error::AwsError;
use intake_core::state_machine::StageKind;
use intake_store::StoreError;

/// What went wrong reading or purging a DLQ.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error(
        "unknown stage \"{given}\": the stages with a queue and a DLQ are {}",
        stage_names()
    )]
    UnknownStage { given: String },

    #[error(
        "queue {queue} does not exist at {endpoint}. Run `intake provision` with the same \
         pipeline.toml and AWS settings to create the pipeline's queues; a stage's queues \
         exist once the stage is configured and provisioned"
    )]
    QueueMissing { queue: String, endpoint: String },

    #[error(transparent)]
    Aws(#[from] AwsError),

    #[error(
        "reading the ledger to explain message {message_id} of {queue}: {source}. Check that \
         INTAKE_DATABASE_URL or [ledger] database_url names the ledger the workers use"
    )]
    Ledger {
        queue: String,
        message_id: String,
        #[source]
        source: Box<StoreError>,
    },
}

fn stage_names() -> String {
    StageKind::WITH_QUEUES.map(StageKind::name).join(", ")
}
