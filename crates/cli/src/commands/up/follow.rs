//! Step 5 of `intake up`: upload every sample, then follow each through the ledger until
//! all have ended, as a table redrawn in place on a terminal (one line per change
//! otherwise).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Instant;

use anyhow::{Context, bail};
use comfy_table::{ContentArrangement, Table, presets::UTF8_BORDERS_ONLY};
use intake_core::clock::now_ms;
use intake_core::key_template::parse_key;
use intake_core::names::BucketRole;
use intake_store::Transition;

use super::{FOLLOW_DEADLINE, POLL, Running, TENANT, TERMINAL, USER};
use crate::devstack::new_uuid;
use crate::devstack::samples::{Expect, Sample};

/// One sample on its way through the pipeline.
pub(super) struct Row {
    pub(super) filename: &'static str,
    pub(super) expect: Expect,
    pub(super) key: String,
    uploaded_ms: i64,
    pub(super) state: String,
    pub(super) last: Option<Transition>,
    /// When the ledger recorded the terminal state.
    ended_ms: Option<i64>,
}

impl Row {
    pub(super) fn is_terminal(&self) -> bool {
        TERMINAL.contains(&self.state.as_str())
    }

    pub(super) fn as_expected(&self) -> bool {
        self.state == self.expect.state()
    }

    pub(super) fn step(&self) -> String {
        self.last.as_ref().map_or_else(String::new, |t| {
            match t.code.as_deref().filter(|c| *c != t.outcome) {
                Some(code) => format!("{} {} ({code})", t.stage, t.outcome),
                None => format!("{} {}", t.stage, t.outcome),
            }
        })
    }

    fn elapsed(&self) -> String {
        let end = self.ended_ms.unwrap_or_else(now_ms);
        format!("{:.1}s", (end - self.uploaded_ms).max(0) as f64 / 1000.0)
    }
}

/// Step 5: upload every sample, then read the ledger until all have ended (or the deadline).
pub(super) async fn follow(running: &Running, samples: &[Sample]) -> anyhow::Result<Vec<Row>> {
    let cx = &running.cx;
    let bucket = cx.names.bucket(BucketRole::Uploads);
    let template = &cx.config.uploads.key_template;
    println!(
        "\nUploading {} samples to s3://{bucket}/ (tenant {TENANT}, user {USER}):",
        samples.len()
    );
    let mut rows = Vec::with_capacity(samples.len());
    for sample in samples {
        let key = template
            .replace("{tenant}", TENANT)
            .replace("{user}", USER)
            .replace("{uuid}", &new_uuid())
            .replace("{filename}", sample.filename);
        if parse_key(template, &key).is_none() {
            bail!(
                "the key template `{template}` cannot be filled from tenant, user, uuid and filename \
                 alone; intake up needs a template using only those placeholders"
            );
        }
        let uploaded_ms = now_ms();
        cx.aws
            .s3
            .put_object()
            .bucket(bucket)
            .key(&key)
            .content_type(sample.content_type)
            .body(sample.bytes.to_vec().into())
            .send()
            .await
            .with_context(|| {
                format!(
                    "uploading {} to s3://{bucket}/{key} at {}",
                    sample.filename, running.endpoint
                )
            })?;
        rows.push(Row {
            filename: sample.filename,
            expect: sample.expect,
            key,
            uploaded_ms,
            state: "uploaded".to_owned(),
            last: None,
            ended_ms: None,
        });
    }

    let mut screen = Screen::new();
    let started = Instant::now();
    loop {
        for row in rows.iter_mut().filter(|r| !r.is_terminal()) {
            let versions =
                cx.ledger.history(bucket, &row.key).await.with_context(|| {
                    format!("reading {}'s history from the ledger", row.filename)
                })?;
            if let Some(version) = versions.first() {
                row.state = version.state.clone();
                row.last = version.transitions.last().cloned();
                if row.is_terminal() {
                    row.ended_ms = Some(version.updated_ms);
                }
            }
        }
        screen.show(&rows);
        if rows.iter().all(Row::is_terminal) || started.elapsed() > FOLLOW_DEADLINE {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    screen.finish(&rows);
    Ok(rows)
}

/// The live view: a table redrawn in place on a terminal, else one line per change.
struct Screen {
    tty: bool,
    /// Lines of the table last drawn (terminal only).
    drawn: usize,
    seen: HashMap<&'static str, (String, String)>,
}

impl Screen {
    fn new() -> Self {
        Screen {
            tty: std::io::stdout().is_terminal(),
            drawn: 0,
            seen: HashMap::new(),
        }
    }

    fn show(&mut self, rows: &[Row]) {
        let mut out = std::io::stdout().lock();
        if self.tty {
            let table = table(rows, false, true);
            self.erase(&mut out);
            let _ = writeln!(out, "{table}");
            self.drawn = table.lines().count();
        } else {
            for row in rows {
                let now = (row.state.clone(), row.step());
                if self.seen.get(row.filename) != Some(&now) {
                    let _ = writeln!(
                        out,
                        "  {:>7}  {:<12} {:<12} {}",
                        row.elapsed(),
                        row.filename,
                        row.state,
                        now.1
                    );
                    self.seen.insert(row.filename, now);
                }
            }
        }
        let _ = out.flush();
    }

    /// Replaces the live table with the final one (with the verdict per sample).
    fn finish(&mut self, rows: &[Row]) {
        let mut out = std::io::stdout().lock();
        self.erase(&mut out);
        self.drawn = 0;
        let _ = writeln!(out, "\nResults:\n{}", table(rows, true, self.tty));
        let _ = out.flush();
    }

    /// Moves the cursor up over the last table and clears to the end of the screen.
    fn erase(&self, out: &mut impl Write) {
        if self.tty && self.drawn > 0 {
            let _ = write!(out, "\x1b[{}A\x1b[J", self.drawn);
        }
    }
}

fn table(rows: &[Row], verdict: bool, fit: bool) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    // Wrapped by the terminal, a line would break the cursor arithmetic of a redraw; a
    // terminal that reports no usable width (a bare pty) gets the table unwrapped.
    if fit && table.width().is_some_and(|w| w >= 40) {
        table.set_content_arrangement(ContentArrangement::Dynamic);
    }
    let mut header = vec!["file", "state", "last step", "time"];
    if verdict {
        header.push("result");
    }
    table.set_header(header);
    for row in rows {
        let mut cells = vec![
            row.filename.to_owned(),
            row.state.clone(),
            row.step(),
            row.elapsed(),
        ];
        if verdict {
            cells.push(if row.as_expected() {
                "as expected".to_owned()
            } else {
                format!("EXPECTED {}", row.expect.state())
            });
        }
        table.add_row(cells);
    }
    table.to_string()
}
