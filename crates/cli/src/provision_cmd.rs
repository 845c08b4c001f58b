//! `intake provision`: print the plan, apply it unless `--dry-run`, and say what was done.

use intake_aws::AwsClients;
use intake_aws::provision::{apply, plan};
use intake_core::PipelineConfig;

use crate::Failure;

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
