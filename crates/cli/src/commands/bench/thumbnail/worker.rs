//! Intake's side of `intake bench thumbnail`, run as its own pinned process: the hidden
//! `bench thumbnail-worker` renders every file of a corpus through the thumbnail stage's
//! code path and prints one JSON line per image; `bench edge-cases` writes the edge-case
//! images (in a child, so the benchmark's own RSS stays small).

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use intake_core::PipelineConfig;
use serde_json::json;

use super::corpus::{file_name, list_files};
use super::image_renditions;

pub(crate) fn worker(pipeline: &PipelineConfig, corpus: &Path, out: &Path) -> anyhow::Result<()> {
    let renditions = image_renditions(pipeline)?;
    let limits = pipeline.image_limits();
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut stdout = io::stdout().lock();
    for path in list_files(corpus)? {
        let name = file_name(&path);
        let stem = path
            .file_stem()
            .map_or_else(|| name.clone(), |s| s.to_string_lossy().into_owned());
        let start = Instant::now();
        let result = (|| -> Result<(u32, u32), String> {
            let bytes = fs::read(&path).map_err(|e| format!("reading: {e}"))?;
            let render =
                intake_imaging::render(&bytes, &renditions, &limits).map_err(|e| e.to_string())?;
            for r in &render.renditions {
                let dest = out.join(format!("{stem}-{}.{}", r.name, r.format.extension()));
                fs::write(&dest, &r.bytes)
                    .map_err(|e| format!("writing {}: {e}", dest.display()))?;
            }
            Ok((render.width, render.height))
        })();
        let ms = start.elapsed().as_secs_f64() * 1e3;
        let line = match result {
            Ok((width, height)) => {
                json!({"file": name, "ms": ms, "width": width, "height": height})
            }
            Err(error) => json!({"file": name, "ms": ms, "error": error}),
        };
        writeln!(stdout, "{line}")?;
    }
    Ok(())
}
