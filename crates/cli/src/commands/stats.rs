//! `intake stats [--since 1h]`: per stage, what the ledger recorded since then (processed,
//! failed, retried, p50/p99 duration) and what waits in its queue and DLQ now. The figures
//! come from `intake_ops::stats`.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use intake_aws::AwsClients;
use intake_core::clock::now_ms;
use intake_core::{PipelineConfig, ResourceNames};

use crate::common::format::{age, utc};
use crate::common::{Failure, LedgerLocation};

/// `30s`, `30m`, `1h`, `2d` or `1w`: a whole number and a unit.
pub fn parse_since(arg: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "\"{arg}\" is not a duration: write a whole number and a unit, s, m, h, d or w \
             (e.g. 30m, 1h, 2d)"
        )
    };
    let arg = arg.trim();
    let split = arg.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = arg.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    number
        .checked_mul(unit_secs)
        .filter(|&secs| secs > 0)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("\"{arg}\" must be more than zero and less than a few centuries"))
}

pub async fn run(
    config: &PipelineConfig,
    config_path: &Path,
    since: Duration,
    json: bool,
) -> Result<(), Failure> {
    let now_ms = now_ms();
    let since_ms = now_ms.saturating_sub(i64::try_from(since.as_millis()).unwrap_or(i64::MAX));
    let names = ResourceNames::of(config);
    let aws = AwsClients::load(&config.aws).await;
    let ledger = LedgerLocation::of(config, config_path).open().await?;
    let result =
        intake_ops::stats::stats(&ledger, &aws, &names, &config.queue_kinds(), since_ms).await;
    ledger.close().await;
    let stats = result.context("gathering stage statistics")?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&stats).context("writing JSON")?
        );
        return Ok(());
    }
    println!(
        "Since {} ({} ago); queue depths now.",
        utc(since_ms),
        age(now_ms - since_ms)
    );
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "stage",
        "processed",
        "failed",
        "retried",
        "p50",
        "p99",
        "queue",
        "DLQ",
    ]);
    for s in &stats.stages {
        table.add_row([
            s.stage.name().to_owned(),
            s.processed.to_string(),
            s.failed.to_string(),
            s.retried.to_string(),
            s.p50_ms.map_or_else(|| "-".to_owned(), duration),
            s.p99_ms.map_or_else(|| "-".to_owned(), duration),
            s.queue_depth.to_string(),
            s.dlq_depth.to_string(),
        ]);
    }
    println!("{table}");
    Ok(())
}

/// A stage duration: `850ms`, `1.2s`, or minutes and seconds for the long ones.
fn duration(ms: i64) -> String {
    match ms {
        ..1_000 => format!("{}ms", ms.max(0)),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        _ => age(ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_number_and_a_unit() {
        assert_eq!(parse_since("30m").unwrap(), Duration::from_secs(1_800));
        assert_eq!(parse_since("1h").unwrap(), Duration::from_secs(3_600));
        assert_eq!(parse_since("2d").unwrap(), Duration::from_secs(172_800));
        assert_eq!(parse_since("45s").unwrap(), Duration::from_secs(45));
        assert_eq!(parse_since("1w").unwrap(), Duration::from_secs(604_800));
        for bad in ["", "h", "1", "1.5h", "-1h", "1 h", "1y", "0m"] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
        assert!(parse_since("1x").unwrap_err().contains("e.g. 30m, 1h, 2d"));
    }

    #[test]
    fn durations_read_at_their_scale() {
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(1_234), "1.2s");
        assert_eq!(duration(192_000), "3m12s");
    }
}
