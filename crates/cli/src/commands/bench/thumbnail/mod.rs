//! `intake bench thumbnail`: Intake's thumbnail code path ([`intake_imaging::render`]) against
//! libvips' `vipsthumbnail`, each pinned to the same single core, in one run.
//!
//! This module runs the benchmark and measures Intake's side; [`vips`] runs libvips' side,
//! [`worker`] is the hidden `bench thumbnail-worker` process that renders for Intake (and
//! `bench edge-cases`), [`corpus`] finds or makes the images, [`measure`] runs pinned child
//! processes (CPU affinity, wall time, peak RSS from `wait4`) and [`report`] prints.
//! `docs/benchmarks.md` explains the method and records figures.
//!
//! Method, per set of images and per run (runs interleave Intake and vips):
//! - Intake: one child process renders every file (one decode, every configured rendition:
//!   the stage's real code path), writes the renditions to a temporary directory and prints
//!   each image's wall time (read + render + write).
//! - vips: one `vipsthumbnail` process per rendition over every file (start-up amortised),
//!   for throughput; then one process per image and rendition for per-image latency, minus
//!   the start-up measured on a 1×1 JPEG.
//! - Every child runs with `VIPS_CONCURRENCY=1` (vips) and pinned to one CPU.
mod corpus;
mod measure;
mod report;
mod vips;
mod worker;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use intake_core::PipelineConfig;
use intake_core::config::Rendition;
use serde_json::{Value, json};

use crate::common::ConfigArg;
pub(super) use corpus::write_edge_cases;
use corpus::{file_name, find_workspace, list_files, photo_corpus, warm_page_cache};
use measure::{pick_cpu, run_pinned};
use report::{cpu_model, fit_name, git_describe, percentile, print_report};
use vips::{vips_batch_run, vips_latency_run, vips_output, vips_startup_ms, vips_version};
pub(super) use worker::worker;

/// Where the photo corpus script lives, relative to the workspace root.
const CORPUS_SCRIPT: &str = "bench/make-photo-corpus.sh";
/// Default corpus directories, relative to the workspace root.
const PHOTOS_DIR: &str = "target/bench-corpus/photos";
const EDGE_DIR: &str = "target/bench-corpus/edge";

fn image_renditions(pipeline: &PipelineConfig) -> anyhow::Result<Vec<Rendition>> {
    pipeline
        .classes
        .get("image")
        .map(|class| class.renditions.clone())
        .filter(|renditions| !renditions.is_empty())
        .context("the config has no [[classes.image.renditions]]; the bench renders those")
}

/// One set of images (the photo corpus, the edge cases).
#[derive(Clone)]
struct ImageSet {
    name: &'static str,
    dir: PathBuf,
    files: Vec<PathBuf>,
    bytes: u64,
}

impl ImageSet {
    fn new(name: &'static str, dir: PathBuf) -> anyhow::Result<ImageSet> {
        let files = list_files(&dir)?;
        let mut bytes = 0;
        for f in &files {
            bytes += fs::metadata(f)
                .with_context(|| format!("reading {}", f.display()))?
                .len();
        }
        Ok(ImageSet {
            name,
            dir,
            files,
            bytes,
        })
    }

    /// The files of this set at `keep` (indices), as symbolic links in `dir` (made anew),
    /// so that both sides can be pointed at exactly those files.
    fn subset(&self, keep: &[usize], dir: PathBuf) -> anyhow::Result<ImageSet> {
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("emptying {}", dir.display()))?;
        }
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for &i in keep {
            let file = &self.files[i];
            let target =
                fs::canonicalize(file).with_context(|| format!("resolving {}", file.display()))?;
            let link = dir.join(file_name(file));
            std::os::unix::fs::symlink(&target, &link)
                .with_context(|| format!("linking {}", link.display()))?;
        }
        ImageSet::new(self.name, dir)
    }

    fn input_mb(&self) -> f64 {
        self.bytes as f64 / 1e6
    }
}

/// A file that failed on one side in one run. It is left out of both sides' figures.
struct FileFailure {
    file: String,
    side: &'static str,
    run: usize,
    error: String,
}

/// One set, measured: both sides over the same files (those that passed both in the first
/// run), and what failed.
struct SetResult {
    /// Every file of the set.
    all: ImageSet,
    /// The files both sides were measured on.
    measured: ImageSet,
    intake: Side,
    vips: Side,
    dims: Vec<Option<(u32, u32)>>,
    failures: Vec<FileFailure>,
    /// Why no ratio may be given, when none may.
    no_ratio: Option<String>,
}

/// One side's measurements over one set: a run each.
#[derive(Default)]
struct Side {
    /// Wall time of each run (vips: the sum of its per-rendition batch processes).
    walls: Vec<Duration>,
    /// Per file (in set order), the best latency over the runs.
    latency_ms: Vec<Option<f64>>,
    /// Per file, the failure message of the last run that failed it.
    failed: Vec<Option<String>>,
    peak_rss_kib: u64,
}

impl Side {
    fn new(files: usize) -> Side {
        Side {
            latency_ms: vec![None; files],
            failed: vec![None; files],
            ..Side::default()
        }
    }

    fn record_latency(&mut self, i: usize, ms: f64) {
        let best = self.latency_ms[i].map_or(ms, |old| old.min(ms));
        self.latency_ms[i] = Some(best);
    }

    fn summary(&self, tool: &str, set: &ImageSet) -> Value {
        let best = self.walls.iter().min().map(Duration::as_secs_f64);
        let images = set.files.len();
        let mut latencies: Vec<f64> = self.latency_ms.iter().flatten().copied().collect();
        latencies.sort_by(f64::total_cmp);
        json!({
            "tool": tool,
            "images": images,
            "input_mb": set.input_mb(),
            "images_per_s": best.map(|best| images as f64 / best),
            "mb_per_s": best.map(|best| set.input_mb() / best),
            "p50_ms": percentile(&latencies, 50.0),
            "p99_ms": percentile(&latencies, 99.0),
            "peak_rss_mib": self.peak_rss_kib as f64 / 1024.0,
            "run_walls_s": self.walls.iter().map(Duration::as_secs_f64).collect::<Vec<_>>(),
        })
    }

    /// The failures of the run just made, by file index (cleared for the next run).
    fn take_failures(&mut self) -> Vec<(usize, String)> {
        self.failed
            .iter_mut()
            .enumerate()
            .filter_map(|(i, e)| e.take().map(|e| (i, e)))
            .collect()
    }
}

/// What every measured run needs.
struct Bench<'a> {
    exe: &'a Path,
    config: &'a ConfigArg,
    renditions: &'a [Rendition],
    cpu: usize,
    scratch: &'a Path,
    startup_ms: &'a [f64],
    as_json: bool,
}

impl Bench<'_> {
    /// One run of both sides over `set` (`k`: the set's index, for scratch names).
    fn run(
        &self,
        k: usize,
        run: usize,
        set: &ImageSet,
        intake: &mut Side,
        vips: &mut Side,
        dims: &mut [Option<(u32, u32)>],
    ) -> anyhow::Result<()> {
        if !self.as_json {
            eprintln!("run {}: {} ({} files)", run + 1, set.name, set.files.len());
        }
        let out = self.scratch.join(format!("run{run}-set{k}"));
        intake_run(
            self.exe,
            self.config,
            set,
            &out.join("intake"),
            self.cpu,
            intake,
            dims,
        )?;
        vips_batch_run(self.renditions, set, &out.join("vips"), self.cpu, vips)?;
        vips_latency_run(
            self.renditions,
            set,
            &out.join("vips-each"),
            self.cpu,
            self.startup_ms,
            vips,
        )?;
        fs::remove_dir_all(&out).ok();
        Ok(())
    }

    /// `runs` runs of both sides over `set`. A file that fails on either side in the first
    /// run is left out, and every run is made again over the files that passed both: the
    /// figures of both sides then cover the same files. A failure in a later run (a file
    /// that passed once) leaves the sides unequal, so no ratio is given.
    fn measure(&self, k: usize, set: ImageSet, runs: usize) -> anyhow::Result<SetResult> {
        let n = set.files.len();
        let mut result = SetResult {
            measured: set.clone(),
            all: set,
            intake: Side::new(n),
            vips: Side::new(n),
            dims: vec![None; n],
            failures: Vec::new(),
            no_ratio: None,
        };
        let mut run = 0;
        let mut restarted = false;
        while run < runs {
            let r = &mut result;
            self.run(k, run, &r.measured, &mut r.intake, &mut r.vips, &mut r.dims)?;
            let mut failed: Vec<usize> = Vec::new();
            for (side, failures) in [
                ("intake", r.intake.take_failures()),
                ("vipsthumbnail", r.vips.take_failures()),
            ] {
                for (i, error) in failures {
                    r.failures.push(FileFailure {
                        file: file_name(&r.measured.files[i]),
                        side,
                        run: run + 1,
                        error,
                    });
                    failed.push(i);
                }
            }
            if failed.is_empty() {
                run += 1;
                continue;
            }
            if run > 0 || restarted {
                r.no_ratio = Some(
                    "a file failed in a later run, after passing both sides in the first: the sides did not process the same files".into(),
                );
                run += 1;
                continue;
            }
            // First run: start over with the files that passed both sides.
            let keep: Vec<usize> = (0..r.measured.files.len())
                .filter(|i| !failed.contains(i))
                .collect();
            let dir = self.scratch.join(format!("set{k}-passed"));
            r.measured = r.measured.subset(&keep, dir)?;
            let m = r.measured.files.len();
            (r.intake, r.vips, r.dims) = (Side::new(m), Side::new(m), vec![None; m]);
            restarted = true;
            if m == 0 {
                r.no_ratio = Some("no file passed both sides".into());
                break;
            }
        }
        Ok(result)
    }
}

impl SetResult {
    fn report(&self) -> Value {
        let intake = self.intake.summary("intake", &self.measured);
        let vips = self.vips.summary("vipsthumbnail", &self.measured);
        let megapixels: Vec<f64> = self
            .dims
            .iter()
            .flatten()
            .map(|&(w, h)| f64::from(w) * f64::from(h) / 1e6)
            .collect();
        let ratio = match (
            intake["images_per_s"].as_f64(),
            vips["images_per_s"].as_f64(),
        ) {
            (Some(a), Some(b)) if self.no_ratio.is_none() && b > 0.0 => Some(a / b),
            _ => None,
        };
        json!({
            "name": self.all.name,
            "dir": self.all.dir.display().to_string(),
            "files": self.all.files.len(),
            "measured_files": self.measured.files.len(),
            "failures": self.failures.iter().map(|f| json!({
                "file": f.file, "side": f.side, "run": f.run, "error": f.error,
            })).collect::<Vec<_>>(),
            "input_mb": self.measured.input_mb(),
            "mp_min": megapixels.iter().copied().reduce(f64::min),
            "mp_max": megapixels.iter().copied().reduce(f64::max),
            "ratio_images_per_s": ratio,
            "no_ratio": if ratio.is_some() { None } else {
                Some(self.no_ratio.clone().unwrap_or_else(|| "a side has no throughput".into()))
            },
            "rows": [intake, vips],
        })
    }
}

pub(super) fn run(
    config: &ConfigArg,
    pipeline: &PipelineConfig,
    corpus: Option<PathBuf>,
    runs: usize,
    as_json: bool,
    allow_failures: bool,
) -> anyhow::Result<()> {
    let renditions = image_renditions(pipeline)?;
    let vips_version = vips_version()?;
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let workspace = find_workspace(&cwd);
    let base = workspace.clone().unwrap_or_else(|| cwd.clone());

    let photos_dir = photo_corpus(corpus, &base, workspace.as_deref())?;
    let edge_dir = base.join(EDGE_DIR);
    let exe = std::env::current_exe().context("locating the intake executable")?;
    let status = Command::new(&exe)
        .args(["bench", "edge-cases", "--out"])
        .arg(&edge_dir)
        .status()
        .context("running `intake bench edge-cases`")?;
    if !status.success() {
        bail!(
            "writing the edge cases into {} failed ({status})",
            edge_dir.display()
        );
    }
    let mut sets = vec![
        ImageSet::new("photos", photos_dir)?,
        ImageSet::new("edge cases", edge_dir)?,
    ];
    sets.retain(|s| !s.files.is_empty());
    for set in &sets {
        warm_page_cache(&set.files)?;
    }

    let cpu = pick_cpu();
    let scratch = tempfile::Builder::new()
        .prefix("intake-bench-")
        .tempdir()
        .context("creating a temporary directory")?;
    // The spawning process's RSS is carried into a child's ru_maxrss (Linux, across exec):
    // a child that does nothing shows that floor.
    let floor_kib = run_pinned(&mut Command::new("true"), cpu)
        .context("running `true`")?
        .max_rss_kib;
    let startup_ms = vips_startup_ms(&renditions, cpu, scratch.path())?;

    let bench = Bench {
        exe: &exe,
        config,
        renditions: &renditions,
        cpu,
        scratch: scratch.path(),
        startup_ms: &startup_ms,
        as_json,
    };
    let mut results = Vec::new();
    for (k, set) in sets.into_iter().enumerate() {
        results.push(bench.measure(k, set, runs)?);
    }

    let cpu_model = cpu_model();
    let report = json!({
        "machine": {
            "nproc": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "cpu_model": cpu_model,
            "pinned_cpu": cpu,
        },
        "versions": {
            "intake": format!("{}{}", env!("CARGO_PKG_VERSION"), git_describe(workspace.as_deref()).map(|d| format!(" ({d})")).unwrap_or_default()),
            "vips": vips_version,
        },
        "renditions": renditions.iter().map(|r| json!({
            "name": r.name, "width": r.width, "height": r.height, "fit": fit_name(r.fit),
            "format": r.format.name(), "vips_output": vips_output(r, Path::new("DIR")), "quality": r.quality,
        })).collect::<Vec<_>>(),
        "runs": runs,
        "reported": "throughput: fastest run; latency: each image's best run, nearest-rank percentiles; RSS: peak over all runs",
        "vips_startup_ms": renditions.iter().zip(&startup_ms).map(|(r, ms)| json!({"rendition": r.name, "ms": ms})).collect::<Vec<_>>(),
        "rss_floor_mib": floor_kib as f64 / 1024.0,
        "sets": results.iter().map(SetResult::report).collect::<Vec<_>>(),
    });
    if as_json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    let failed: usize = results.iter().map(|r| r.failures.len()).sum();
    if failed > 0 && !allow_failures {
        bail!(
            "{failed} failure{} (listed above, each left out of both sides' figures); fix them, or pass --allow-failures to accept a report without them",
            if failed == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

fn intake_run(
    exe: &Path,
    config: &ConfigArg,
    set: &ImageSet,
    out: &Path,
    cpu: usize,
    side: &mut Side,
    dims: &mut [Option<(u32, u32)>],
) -> anyhow::Result<()> {
    let mut cmd = Command::new(exe);
    cmd.arg("--config")
        .arg(&config.config)
        .args(["bench", "thumbnail-worker", "--corpus"])
        .arg(&set.dir)
        .arg("--out")
        .arg(out);
    let measured = run_pinned(&mut cmd, cpu)?;
    if measured.code != Some(0) {
        bail!(
            "the Intake worker failed ({}): {}",
            measured.describe_exit(),
            measured.stderr.trim()
        );
    }
    side.walls.push(measured.wall);
    side.peak_rss_kib = side.peak_rss_kib.max(measured.max_rss_kib);
    let mut seen = 0;
    for line in measured.stdout.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)
            .with_context(|| format!("the Intake worker printed {line:?}"))?;
        let file = v["file"].as_str().unwrap_or_default();
        let Some(i) = set.files.iter().position(|f| file_name(f) == file) else {
            bail!("the Intake worker reported an unknown file {file:?}");
        };
        seen += 1;
        if let Some(error) = v["error"].as_str() {
            side.failed[i] = Some(error.to_owned());
            continue;
        }
        side.record_latency(i, v["ms"].as_f64().unwrap_or(f64::NAN));
        if let (Some(w), Some(h)) = (v["width"].as_u64(), v["height"].as_u64()) {
            dims[i] = Some((w as u32, h as u32));
        }
    }
    if seen != set.files.len() {
        bail!(
            "the Intake worker reported {seen} of {} files",
            set.files.len()
        );
    }
    Ok(())
}
