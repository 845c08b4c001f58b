//! `intake catalog list` and `intake catalog show`: what the catalog recorded about each
//! promoted object version, read from the ledger. Human tables by default, `--json` for
//! scripts (the store's `CatalogEntry`, as serde writes it).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use intake_core::{ByteSize, PipelineConfig};
use intake_store::{CatalogEntry, CatalogFilter, Ledger, StoredAt};

use crate::common::format::utc;
use crate::common::{Failure, LedgerLocation};

/// Rows per page when `--limit` is not given: a screenful, not the whole catalog.
const DEFAULT_LIMIT: u32 = 50;

#[derive(Subcommand)]
pub enum CatalogCommand {
    /// List cataloged object versions, newest first.
    List {
        /// Only this tenant's records.
        #[arg(long)]
        tenant: Option<String>,
        /// Only records in this ledger state: the next stage (e.g. `archive`), `done`, or
        /// `unknown` for a record whose version the ledger no longer has.
        #[arg(long)]
        state: Option<String>,
        /// At most this many records [default: 50].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: Option<u32>,
        /// Only records cataloged before this object id: the cursor printed under a full
        /// page.
        #[arg(long, value_name = "ID", value_parser = parse_id)]
        before: Option<String>,
        /// Print a JSON array of catalog entries instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show everything recorded about an object: by object id, or by its upload or stored
    /// location (every cataloged version, newest first).
    Show {
        /// A 32-hex-digit object id, or s3://BUCKET/KEY.
        #[arg(value_name = "ID | s3://BUCKET/KEY", value_parser = Target::parse)]
        target: Target,
        /// Print a JSON array of the matching entries instead.
        #[arg(long)]
        json: bool,
    },
}

/// What `catalog show` looks up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// An object id, lowercased (the ledger stores them that way).
    Id(String),
    /// An upload or stored location, any version.
    Location { bucket: String, key: String },
}

impl Target {
    fn parse(arg: &str) -> Result<Target, String> {
        if let Some(rest) = arg.strip_prefix("s3://") {
            return rest
                .split_once('/')
                .filter(|(bucket, key)| !bucket.is_empty() && !key.is_empty())
                .map(|(bucket, key)| Target::Location {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                })
                .ok_or_else(|| {
                    format!(
                        "\"{arg}\" names no object: write s3://BUCKET/KEY with both parts, \
                         e.g. s3://intake-uploads/acme/user-1/photo.png"
                    )
                });
        }
        parse_id(arg).map(Target::Id).map_err(|_| {
            format!(
                "\"{arg}\" is neither an object id nor an S3 URI. Give the 32-hex-digit \
                 object id that `intake catalog list` prints, or s3://BUCKET/KEY (the upload \
                 or stored location)"
            )
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Id(id) => write!(f, "object id {id}"),
            Target::Location { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

fn parse_id(arg: &str) -> Result<String, String> {
    if arg.len() == 32 && arg.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(arg.to_ascii_lowercase())
    } else {
        Err(format!(
            "\"{arg}\" is not an object id: expected 32 hex digits, as `intake catalog list` \
             prints them"
        ))
    }
}

/// The ledger these commands read, and how the user chose it (for messages: the URL
/// itself may hold a PostgreSQL password).
struct Opened {
    ledger: Arc<Ledger>,
    named_by: String,
}

async fn open(config: &PipelineConfig, config_path: &Path) -> Result<Opened, Failure> {
    let location = LedgerLocation::of(config, config_path);
    let ledger = location.open().await?;
    Ok(Opened {
        ledger,
        named_by: location.named_by,
    })
}

pub async fn run(
    config: &PipelineConfig,
    config_path: &Path,
    command: CatalogCommand,
) -> Result<(), Failure> {
    let opened = open(config, config_path).await?;
    let result = match command {
        CatalogCommand::List {
            tenant,
            state,
            limit,
            before,
            json,
        } => {
            let filter = CatalogFilter {
                tenant,
                state,
                limit,
                before,
            };
            list(&opened, filter, json).await
        }
        CatalogCommand::Show { target, json } => show(&opened, &target, json).await,
    };
    opened.ledger.close().await;
    result
}

async fn list(opened: &Opened, mut filter: CatalogFilter, json: bool) -> Result<(), Failure> {
    let given_limit = filter.limit;
    let limit = given_limit.unwrap_or(DEFAULT_LIMIT);
    // One row more than shown tells whether there is a next page without counting.
    filter.limit = Some(limit + 1);
    let mut entries = opened
        .ledger
        .catalog_list(&filter)
        .await
        .context("listing the catalog")?;
    let more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    filter.limit = given_limit;

    if entries.is_empty()
        && let Some(before) = &filter.before
        && opened
            .ledger
            .catalog_get(before)
            .await
            .context("reading the --before record")?
            .is_none()
    {
        // The ledger answers an unknown cursor with an empty page; a mistyped id should
        // not look like the end of the catalog.
        return Err(anyhow!(
            "--before {before}: no catalog record has this id (in the ledger named by {}), so \
             there is no page after it. Use the id printed under the previous page, or leave \
             --before out to start from the newest record",
            opened.named_by
        )
        .into());
    }

    if json {
        println!("{}", to_json(&entries)?);
        return Ok(());
    }
    if entries.is_empty() {
        println!("{}", nothing_listed(&filter, &opened.named_by));
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "object id",
        "tenant",
        "filename",
        "type",
        "size",
        "storage",
        "state",
        "cataloged (UTC)",
    ]);
    for e in &entries {
        let r = &e.record;
        table.add_row([
            r.object_id.clone(),
            or_dash(r.tenant.as_deref()),
            or_dash(r.filename.as_deref()),
            or_dash(r.content_type.as_deref()),
            ByteSize(r.size).to_string(),
            r.storage_class.clone(),
            e.state.clone(),
            utc(r.cataloged_ms),
        ]);
    }
    println!("{table}");
    if more && let Some(last) = entries.last() {
        println!(
            "More records follow. Next page: {}",
            next_page_command(&filter, &last.record.object_id)
        );
    }
    Ok(())
}

/// The plain sentence for an empty listing, naming the filters that excluded everything.
fn nothing_listed(filter: &CatalogFilter, named_by: &str) -> String {
    let mut conditions = Vec::new();
    if let Some(tenant) = &filter.tenant {
        conditions.push(format!("tenant {tenant}"));
    }
    if let Some(state) = &filter.state {
        conditions.push(format!("state {state}"));
    }
    if let Some(before) = &filter.before {
        conditions.push(format!("cataloged before {before}"));
    }
    if conditions.is_empty() {
        format!(
            "No catalog records in the ledger named by {named_by}: no upload has reached the \
             catalog stage yet."
        )
    } else {
        format!(
            "No catalog records match ({}) in the ledger named by {named_by}.",
            conditions.join(", ")
        )
    }
}

/// The command that prints the next page: the same filters, the last shown id as cursor.
fn next_page_command(filter: &CatalogFilter, last_id: &str) -> String {
    let mut cmd = String::from("intake catalog list");
    if let Some(tenant) = &filter.tenant {
        cmd.push_str(&format!(" --tenant {}", shell_word(tenant)));
    }
    if let Some(state) = &filter.state {
        cmd.push_str(&format!(" --state {}", shell_word(state)));
    }
    if let Some(limit) = filter.limit {
        cmd.push_str(&format!(" --limit {limit}"));
    }
    cmd.push_str(&format!(" --before {last_id}"));
    cmd
}

/// `s` as one shell word, so that the printed next-page command can be pasted as is.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.,/:@%+=".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

async fn show(opened: &Opened, target: &Target, json: bool) -> Result<(), Failure> {
    let entries = match target {
        Target::Id(id) => opened
            .ledger
            .catalog_get(id)
            .await
            .with_context(|| format!("reading the catalog record of {target}"))?
            .into_iter()
            .collect(),
        Target::Location { bucket, key } => opened
            .ledger
            .catalog_find(bucket, key)
            .await
            .with_context(|| format!("finding catalog records for {target}"))?,
    };
    if entries.is_empty() {
        let hint = match target {
            Target::Id(_) => String::new(),
            Target::Location { .. } => format!(
                "; `intake status {target}` shows where an upload is in the pipeline (a \
                 version is cataloged when the catalog stage has run for it)"
            ),
        };
        return Err(anyhow!(
            "nothing in the catalog matches {target} (in the ledger named by {}). Run \
             `intake catalog list` to see what is cataloged{hint}",
            opened.named_by
        )
        .into());
    }
    if json {
        println!("{}", to_json(&entries)?);
        return Ok(());
    }
    if entries.len() > 1 {
        println!(
            "{} catalog records match {target}, newest first.\n",
            entries.len()
        );
    }
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print!("{}", describe(entry));
    }
    Ok(())
}

/// One entry in full: a labelled line per field, then renditions and stage times.
fn describe(entry: &CatalogEntry) -> String {
    let r = &entry.record;
    let lines: Vec<(&str, String)> = vec![
        ("state", entry.state.clone()),
        (
            "upload",
            location(&StoredAt {
                bucket: r.upload.bucket.clone(),
                key: r.upload.key.clone(),
                version: Some(r.upload.version.clone()),
            }),
        ),
        ("stored", location(&r.store)),
        ("tenant", or_dash(r.tenant.as_deref())),
        ("user", or_dash(r.user.as_deref())),
        ("filename", or_dash(r.filename.as_deref())),
        ("type", or_dash(r.content_type.as_deref())),
        ("class", or_dash(r.class.as_deref())),
        ("size", format!("{} ({} bytes)", ByteSize(r.size), r.size)),
        ("sha256", r.sha256.clone()),
        (
            "dimensions",
            match (r.width, r.height) {
                (Some(w), Some(h)) => format!("{w} × {h}"),
                (Some(w), None) => format!("{w} wide, height unknown"),
                (None, Some(h)) => format!("{h} high, width unknown"),
                (None, None) => "-".to_owned(),
            },
        ),
        (
            "scan",
            match &r.scan {
                Some(scan) => {
                    let mut s = scan.verdict.clone();
                    if let Some(engine) = &scan.engine {
                        s.push_str(&format!(" by {engine}"));
                    }
                    if let Some(at) = &scan.scanned_at {
                        s.push_str(&format!(" at {at}"));
                    }
                    s
                }
                None => "not recorded".to_owned(),
            },
        ),
        ("storage", r.storage_class.clone()),
        ("archive note", or_dash(r.archive_note.as_deref())),
        ("cataloged", utc(r.cataloged_ms)),
        ("updated", utc(r.updated_ms)),
    ];
    let width = lines
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0);
    let mut out = format!("object {}\n", r.object_id);
    for (label, value) in &lines {
        out.push_str(&format!("  {label:<width$}  {value}\n"));
    }

    if r.renditions.is_empty() {
        out.push_str("renditions: none\n");
    } else {
        let mut table = Table::new();
        table.load_preset(UTF8_BORDERS_ONLY).set_header([
            "rendition",
            "pixels",
            "type",
            "size",
            "location",
        ]);
        for rendition in &r.renditions {
            table.add_row([
                rendition.name.clone(),
                format!("{} × {}", rendition.width, rendition.height),
                rendition.content_type.clone(),
                format!("{} ({} bytes)", ByteSize(rendition.bytes), rendition.bytes),
                format!("s3://{}/{}", rendition.bucket, rendition.key),
            ]);
        }
        out.push_str(&format!("renditions:\n{table}\n"));
    }

    if entry.stages.is_empty() {
        out.push_str("stages: none completed\n");
    } else {
        let mut table = Table::new();
        table.load_preset(UTF8_BORDERS_ONLY).set_header([
            "stage",
            "outcome",
            "started (UTC)",
            "finished (UTC)",
            "took",
        ]);
        for s in &entry.stages {
            table.add_row([
                s.stage.clone(),
                s.outcome.clone(),
                utc(s.started_ms),
                utc(s.finished_ms),
                format!("{} ms", s.finished_ms.saturating_sub(s.started_ms)),
            ]);
        }
        out.push_str(&format!("stages:\n{table}\n"));
    }
    out
}

fn location(at: &StoredAt) -> String {
    match &at.version {
        Some(version) => format!("s3://{}/{}  version {version}", at.bucket, at.key),
        None => format!("s3://{}/{}  (unversioned)", at.bucket, at.key),
    }
}

fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

fn to_json(entries: &[CatalogEntry]) -> Result<String, Failure> {
    Ok(serde_json::to_string_pretty(entries).context("writing the catalog entries as JSON")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_ids_or_object_uris() {
        let id = "0123456789abcdef0123456789ABCDEF";
        assert_eq!(
            Target::parse(id).unwrap(),
            Target::Id(id.to_ascii_lowercase())
        );
        assert_eq!(
            Target::parse("s3://b/t/u/k.png").unwrap(),
            Target::Location {
                bucket: "b".into(),
                key: "t/u/k.png".into()
            }
        );
        for bad in ["s3://b", "s3:///k", "s3://b/"] {
            assert!(
                Target::parse(bad).unwrap_err().contains("s3://BUCKET/KEY"),
                "{bad}"
            );
        }
        for bad in [
            "",
            "abc",
            &id[1..],
            &format!("{id}0"),
            "g123456789abcdef0123456789abcdef",
        ] {
            assert!(
                Target::parse(bad).unwrap_err().contains("32-hex-digit"),
                "{bad}"
            );
        }
    }

    #[test]
    fn next_page_command_keeps_the_filters_and_quotes_what_needs_it() {
        let filter = CatalogFilter {
            tenant: Some("o'neil co".into()),
            state: Some("done".into()),
            limit: Some(2),
            before: Some("ignored: replaced by the cursor".into()),
        };
        assert_eq!(
            next_page_command(&filter, "abc"),
            r"intake catalog list --tenant 'o'\''neil co' --state done --limit 2 --before abc"
        );
        assert_eq!(
            next_page_command(&CatalogFilter::default(), "abc"),
            "intake catalog list --before abc"
        );
    }
}
