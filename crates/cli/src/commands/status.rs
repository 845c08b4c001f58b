//! `intake status s3://bucket/key`: every version's current state and full history, from
//! the ledger.

use anyhow::Context;
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use intake_core::PipelineConfig;

use std::path::Path;

use crate::common::format::utc;
use crate::common::{Failure, LedgerLocation, parse_uri};

pub async fn run(
    config: &PipelineConfig,
    config_path: &Path,
    uri: &str,
    json: bool,
) -> Result<(), Failure> {
    let (bucket, key) = parse_uri(uri)?;
    let location = LedgerLocation::of(config, config_path);
    let ledger = location.open().await?;
    let versions = ledger
        .history(bucket, key)
        .await
        .context("reading the ledger")?;
    if versions.is_empty() {
        return Err(anyhow::anyhow!("{uri}: no record in the ledger named by {}; was it uploaded to the uploads bucket, and are workers running?", location.named_by).into());
    }
    if json {
        let out: Vec<_> = versions
            .iter()
            .map(|v| {
                serde_json::json!({
                    "version": v.version, "state": v.state, "updated_ms": v.updated_ms,
                    "transitions": v.transitions.iter().map(|t| serde_json::json!({
                        "stage": t.stage, "outcome": t.outcome, "code": t.code, "detail": t.detail,
                        "attempt": t.attempt, "worker": t.worker, "started_ms": t.started_ms, "finished_ms": t.finished_ms,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(anyhow::Error::from)?
        );
        return Ok(());
    }
    for v in &versions {
        println!(
            "{uri}  version {}  state: {}  (updated {})",
            v.version,
            v.state,
            utc(v.updated_ms)
        );
        let mut table = Table::new();
        table.load_preset(UTF8_BORDERS_ONLY).set_header([
            "stage", "outcome", "code", "attempt", "worker", "started", "ms", "detail",
        ]);
        for t in &v.transitions {
            table.add_row([
                t.stage.clone(),
                t.outcome.clone(),
                t.code.clone().unwrap_or_default(),
                t.attempt.to_string(),
                t.worker.clone(),
                utc(t.started_ms),
                (t.finished_ms - t.started_ms).to_string(),
                t.detail.clone().unwrap_or_default(),
            ]);
        }
        println!("{table}");
    }
    Ok(())
}
