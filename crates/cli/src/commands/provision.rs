//! `intake provision`: print the plan, apply it unless `--dry-run`, and say what was done;
//! with `--iam`, the worker and API roles' policies scoped to this pipeline's ARNs instead.

use intake_aws::AwsClients;
use intake_aws::arn::Arns;
use intake_aws::iam;
use intake_aws::provision::{apply, plan};
use intake_core::{PipelineConfig, ResourceNames};

use crate::common::Failure;

pub async fn run(config: &PipelineConfig, dry_run: bool) -> Result<(), Failure> {
    let aws = AwsClients::load(&config.aws).await;
    let plan = plan(&aws, config).await?;
    println!("{}", plan.table());
    if dry_run {
        println!("dry run: {} (nothing was changed)", plan.summary());
        return Ok(());
    }
    if plan.is_converged() {
        println!("nothing to do: {}", plan.summary());
        return Ok(());
    }
    apply(&aws, &plan).await?;
    println!("applied: {}", plan.summary());
    Ok(())
}

/// `intake provision --iam`.
pub async fn print_iam_policies(config: &PipelineConfig) -> Result<(), Failure> {
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
