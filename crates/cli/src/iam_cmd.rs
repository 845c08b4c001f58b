//! `intake provision --iam`: the worker and API roles' policies, scoped to this pipeline's ARNs.

use intake_aws::AwsClients;
use intake_aws::arn::Arns;
use intake_aws::iam;
use intake_core::{PipelineConfig, ResourceNames};

use crate::Failure;

pub async fn run(config: &PipelineConfig) -> Result<(), Failure> {
    let aws = AwsClients::load(&config.aws).await;
    let arns = Arns::new(aws.account_id().await?, aws.region.clone());
    let names = ResourceNames::of(config);
    let policies = serde_json::json!({
        "worker": iam::worker_policy(config, &names, &arns),
        "api": iam::api_policy(&names, &arns),
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&policies).map_err(anyhow::Error::from)?
    );
    Ok(())
}
