//! `intake reprocess`: re-running an object, or every object under a prefix, from a stage
//! after the cause of its failure is fixed; a bar or plain lines while it works, a summary
//! at the end, and a record in the ledger.

use std::path::Path;

use anyhow::Context;
use intake_aws::AwsClients;
use intake_core::clock::now_ms;
use intake_core::{PipelineConfig, ResourceNames};
use intake_ops::reprocess::{Selection, plan, reprocess};
use intake_store::ReplayRecord;

use crate::common::progress::Reporter;
use crate::common::{Failure, LedgerLocation, parse_uri, requester};

pub async fn run(
    config: &PipelineConfig,
    config_path: &Path,
    target: Option<&str>,
    prefix: Option<&str>,
    from: Option<&str>,
    dry_run: bool,
    requested_by: Option<String>,
) -> Result<(), Failure> {
    let names = ResourceNames::of(config);
    let selection = match (target, prefix) {
        (Some(uri), None) => {
            let (_, key) = parse_uri(uri)?;
            Selection::Key(key.to_owned())
        }
        (None, Some(prefix)) => Selection::Prefix(prefix.to_owned()),
        _ => {
            return Err(anyhow::anyhow!(
                "name one object (s3://BUCKET/KEY) or one --prefix, not both and not neither"
            )
            .into());
        }
    };
    let from = from
        .map(intake_ops::dlq::parse_stage)
        .transpose()
        .map_err(anyhow::Error::from)?;
    let ledger = LedgerLocation::of(config, config_path).open().await?;
    let planned = plan(&ledger, config, &names, &selection, from)
        .await
        .context("reading the ledger")?;
    if planned.is_empty() {
        return Err(anyhow::anyhow!(
            "nothing in the ledger under {selection:?}; keys are those of the uploads bucket ({})",
            names.bucket(intake_core::names::BucketRole::Uploads)
        )
        .into());
    }
    let aws = AwsClients::load(&config.aws).await;
    let requested_by = requester(requested_by);
    let started_ms = now_ms();
    let mut reporter = Reporter::new(planned.len() as u64);
    let (mut done, mut refused) = (0u64, 0u64);
    for (i, one) in planned.iter().enumerate() {
        match one {
            Ok(p) if dry_run => {
                println!("would re-run {} from {}", p.version, p.from);
                done += 1;
            }
            Ok(p) => {
                reprocess(&aws, config, &names, &ledger, p, &requested_by)
                    .await
                    .map_err(anyhow::Error::from)?;
                done += 1;
                if !reporter.is_bar() && planned.len() == 1 {
                    println!("re-running {} from {}", p.version, p.from);
                }
            }
            Err(e) => {
                eprintln!("intake: skipped: {e}");
                refused += 1;
            }
        }
        reporter.update(
            i as u64 + 1,
            planned.len() as u64,
            format!("{done} sent, {refused} skipped"),
        );
    }
    reporter.finish();
    let verb = if dry_run {
        "would re-run"
    } else {
        "re-running"
    };
    println!(
        "{verb} {done} version(s), {refused} skipped; follow with `intake status s3://{}/KEY`",
        names.bucket(intake_core::names::BucketRole::Uploads)
    );
    if !dry_run && done > 0 {
        ledger
            .record_replay(&ReplayRecord {
                stage: from.map_or("failed stage", |f| f.name()).to_owned(),
                requested_by,
                filter: match &selection {
                    Selection::Key(k) => format!("key={k}"),
                    Selection::Prefix(p) => format!("key-prefix={p}"),
                },
                method: "reprocess".into(),
                dry_run,
                matched: done + refused,
                moved: done,
                started_ms,
                finished_ms: now_ms(),
            })
            .await
            .context("recording the reprocess")?;
    }
    ledger.close().await;
    if refused > 0 && done == 0 {
        return Err(anyhow::anyhow!("no version could be reprocessed (see above)").into());
    }
    Ok(())
}
