//! `intake dlq list`, `intake dlq peek` and `intake dlq purge`: what waits in the stages'
//! dead-letter queues and why, and emptying one. The work is in `intake_ops::dlq`; this
//! module parses, asks and prints (tables by default, `--json` for scripts); `dlq replay`
//! is in [`replay`].

mod replay;

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, anyhow};
use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use intake_aws::AwsClients;
use intake_core::state_machine::StageKind;
use intake_core::{PipelineConfig, ResourceNames};
use intake_ops::dlq::{self, DlqMessage, DlqSummary};

use crate::common::format::{age, utc};
use crate::common::{Failure, LedgerLocation};

/// The longest reason a table shows; `--json` has it whole.
const REASON_WIDTH: usize = 60;

#[derive(Subcommand)]
pub enum DlqCommand {
    /// Every DLQ: depth, age of the oldest message and counts by error code.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show messages of one stage's DLQ without removing them: object, tenant, error code
    /// and reason, receive count, first failure.
    Peek {
        /// validate, scan, thumbnail, catalog, archive or delete.
        #[arg(value_parser = parse_stage)]
        stage: StageKind,
        /// At most this many messages.
        #[arg(short = 'n', long = "count", value_name = "N", default_value_t = 10,
              value_parser = clap::value_parser!(u32).range(1..=1000))]
        n: u32,
        /// Print JSON (with each message's body) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Move messages back to the stage queue once the cause is fixed: all of them (SQS's
    /// move task) or those a filter selects (receive, send, delete: never lost, at worst
    /// delivered twice, which the ledger absorbs). Recorded in the ledger.
    Replay {
        /// validate, scan, thumbnail, catalog, archive or delete.
        #[arg(value_parser = parse_stage)]
        stage: StageKind,
        /// Only messages matching every pair: tenant=T,code=C,key-prefix=P.
        #[arg(long)]
        filter: Option<String>,
        /// Move at most this many.
        #[arg(long)]
        limit: Option<u64>,
        /// At most this many messages per second.
        #[arg(long)]
        rate: Option<f64>,
        /// Count what would move; move nothing.
        #[arg(long)]
        dry_run: bool,
        /// Who replays, for the ledger (default: $USER).
        #[arg(long)]
        requested_by: Option<String>,
    },
    /// Delete every message in one stage's DLQ.
    Purge {
        /// validate, scan, thumbnail, catalog, archive or delete.
        #[arg(value_parser = parse_stage)]
        stage: StageKind,
        /// Do not ask for confirmation (required when stdin is not a terminal).
        #[arg(long)]
        yes: bool,
    },
}

fn parse_stage(arg: &str) -> Result<StageKind, String> {
    dlq::parse_stage(arg).map_err(|e| e.to_string())
}

pub async fn run(
    config: &PipelineConfig,
    config_path: &Path,
    command: DlqCommand,
) -> Result<(), Failure> {
    let names = ResourceNames::of(config);
    let aws = AwsClients::load(&config.aws).await;
    match command {
        DlqCommand::Replay {
            stage,
            filter,
            limit,
            rate,
            dry_run,
            requested_by,
        } => {
            let options = replay::ReplayArgs {
                filter,
                limit,
                rate,
                dry_run,
                requested_by,
            };
            replay::run(config, config_path, stage, options).await
        }
        DlqCommand::List { json } => {
            let ledger = LedgerLocation::of(config, config_path).open().await?;
            let result = dlq::list(&aws, &names, &ledger, &config.queue_kinds()).await;
            ledger.close().await;
            let summaries = result.context("listing the dead-letter queues")?;
            if json {
                print_json(serde_json::to_string_pretty(&summaries))
            } else {
                print_list(&summaries);
                Ok(())
            }
        }
        DlqCommand::Peek { stage, n, json } => {
            let ledger = LedgerLocation::of(config, config_path).open().await?;
            let result = dlq::peek(&aws, &names, &ledger, stage, n as usize).await;
            ledger.close().await;
            let dlq_name = &names.stage(stage).dlq;
            let mut messages = result.with_context(|| format!("peeking into {dlq_name}"))?;
            for m in &mut messages {
                m.infer_tenant(&config.uploads.key_template);
            }
            if json {
                return print_json(serde_json::to_string_pretty(&messages));
            }
            if messages.is_empty() {
                println!("{dlq_name} is empty.");
                return Ok(());
            }
            print_peek(&messages);
            println!(
                "{} message{} shown from {dlq_name}; they are still in the queue (`intake dlq \
                 list` shows its depth).",
                messages.len(),
                if messages.len() == 1 { "" } else { "s" }
            );
            Ok(())
        }
        DlqCommand::Purge { stage, yes } => purge(&aws, &names, stage, yes).await,
    }
}

async fn purge(
    aws: &AwsClients,
    names: &ResourceNames,
    stage: StageKind,
    yes: bool,
) -> Result<(), Failure> {
    let dlq_name = &names.stage(stage).dlq;
    let depth = dlq::queue_depth(aws, dlq_name)
        .await
        .with_context(|| format!("reading the depth of {dlq_name}"))?
        .total();
    if depth == 0 {
        println!("{dlq_name} is empty: nothing to purge.");
        return Ok(());
    }
    if !yes {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Err(anyhow!(
                "refusing to purge {depth} messages from {dlq_name} without confirmation: stdin \
                 is not a terminal to ask on. Pass --yes to purge without asking"
            )
            .into());
        }
        eprint!("Purge {depth} messages from {dlq_name}? [y/N] ");
        std::io::stderr().flush().ok();
        let mut answer = String::new();
        stdin
            .lock()
            .read_line(&mut answer)
            .context("reading the answer")?;
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            println!("Nothing purged.");
            return Ok(());
        }
    }
    let purged = dlq::purge(aws, names, stage)
        .await
        .with_context(|| format!("purging {dlq_name}"))?;
    println!(
        "Removed {} message{} from {}.",
        purged.removed,
        if purged.removed == 1 { "" } else { "s" },
        purged.dlq
    );
    if purged.left_in_flight > 0 {
        println!(
            "{} message{} in flight (being peeked or replayed elsewhere) stayed; run the purge \
             again once they are visible.",
            purged.left_in_flight,
            if purged.left_in_flight == 1 {
                " was"
            } else {
                "s were"
            }
        );
    }
    Ok(())
}

fn print_json(value: Result<String, serde_json::Error>) -> Result<(), Failure> {
    println!("{}", value.context("writing JSON")?);
    Ok(())
}

fn print_list(summaries: &[DlqSummary]) {
    let mut table = Table::new();
    table
        .load_preset(UTF8_BORDERS_ONLY)
        .set_header(["stage", "DLQ", "depth", "oldest", "codes"]);
    for s in summaries {
        table.add_row([
            s.stage.name().to_owned(),
            s.dlq.clone(),
            s.depth.to_string(),
            s.oldest_age_ms.map_or_else(|| "-".to_owned(), age),
            codes(s),
        ]);
    }
    println!("{table}");
}

/// `scanner_unreachable×3, not_json×1`: most frequent first; `-` for none.
fn codes(s: &DlqSummary) -> String {
    let mut codes: Vec<(&String, &u64)> = s.codes.iter().collect();
    codes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut out = codes
        .iter()
        .map(|(code, n)| format!("{code}×{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    if (s.examined as u64) < s.depth {
        out.push_str(&format!(" (of {} read)", s.examined));
    }
    if out.is_empty() { "-".to_owned() } else { out }
}

fn print_peek(messages: &[DlqMessage]) {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "object",
        "tenant",
        "code",
        "reason",
        "receives",
        "first failure (UTC)",
        "source",
    ]);
    for m in messages {
        let mut object = m
            .object
            .as_ref()
            .map_or_else(|| "-".to_owned(), |o| o.uri());
        if !m.more_objects.is_empty() {
            object.push_str(&format!(" (+{})", m.more_objects.len()));
        }
        table.add_row([
            object,
            m.tenant.clone().unwrap_or_else(|| "-".to_owned()),
            m.code.clone(),
            shorten(&m.reason, REASON_WIDTH),
            m.receive_count.to_string(),
            m.first_failure_ms.map_or_else(|| "-".to_owned(), utc),
            m.source.name().to_owned(),
        ]);
    }
    println!("{table}");
}

/// At most `width` characters, the cut marked with `…`.
fn shorten(s: &str, width: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= width {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(width - 1).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_reasons_are_cut_with_an_ellipsis() {
        assert_eq!(shorten("  short  ", 10), "short");
        assert_eq!(shorten("abcdefghijkl", 5), "abcd…");
    }

    #[test]
    fn codes_are_listed_most_frequent_first() {
        let summary = DlqSummary {
            stage: StageKind::Scan,
            dlq: "p-scan-dlq".into(),
            depth: 4,
            depth_detail: Default::default(),
            oldest_age_ms: Some(1),
            codes: [
                ("not_json".to_owned(), 1),
                ("scanner_unreachable".to_owned(), 3),
            ]
            .into_iter()
            .collect(),
            examined: 4,
        };
        assert_eq!(codes(&summary), "scanner_unreachable×3, not_json×1");
    }
}
