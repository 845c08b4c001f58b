//! `intake bench thumbnail`: Intake's thumbnail code path ([`intake_imaging::render`]) against
//! libvips' `vipsthumbnail`, each pinned to the same single core, in one run.
//!
//! This module owns the whole benchmark: the corpora (the photo corpus made by
//! `bench/make-photo-corpus.sh`, the edge cases of [`intake_imaging::samples::edge_cases`]),
//! the measured child processes (CPU affinity, wall time, peak RSS from `wait4`), the hidden
//! `bench thumbnail-worker` that is Intake's side (and `bench edge-cases`, which writes the
//! edge cases), and the report (table or JSON).
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

use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;
use intake_core::PipelineConfig;
use intake_core::config::{Fit, Rendition, RenditionFormat};
use intake_imaging::SourceFormat;
use serde_json::{Value, json};

use crate::{ConfigArg, Failure, bench_pipeline, load};

#[path = "bench_report.rs"]
mod report;
use report::{cpu_model, fit_name, git_describe, percentile, print_report};

/// Where the photo corpus script lives, relative to the workspace root.
const CORPUS_SCRIPT: &str = "bench/make-photo-corpus.sh";
/// Default corpus directories, relative to the workspace root.
const PHOTOS_DIR: &str = "target/bench-corpus/photos";
const EDGE_DIR: &str = "target/bench-corpus/edge";
/// Processes timed to estimate `vipsthumbnail`'s start-up (the median is used).
const STARTUP_SAMPLES: usize = 7;
/// WebP's largest side (as in `intake_imaging`): `auto` falls back beyond it.
const WEBP_MAX_SIDE: u32 = 16_383;
/// A 1×1 greyscale JPEG (142 bytes), to time `vipsthumbnail`'s start-up.
const ONE_PIXEL_JPEG: [u8; 142] = [
    0xff, 0xd8, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x10, 0x0b, 0x0c, 0x0e, 0x0c, 0x0a, 0x10, 0x0e, 0x0d,
    0x0e, 0x12, 0x11, 0x10, 0x13, 0x18, 0x28, 0x1a, 0x18, 0x16, 0x16, 0x18, 0x31, 0x23, 0x25, 0x1d,
    0x28, 0x3a, 0x33, 0x3d, 0x3c, 0x39, 0x33, 0x38, 0x37, 0x40, 0x48, 0x5c, 0x4e, 0x40, 0x44, 0x57,
    0x45, 0x37, 0x38, 0x50, 0x6d, 0x51, 0x57, 0x5f, 0x62, 0x67, 0x68, 0x67, 0x3e, 0x4d, 0x71, 0x79,
    0x70, 0x64, 0x78, 0x5c, 0x65, 0x67, 0x63, 0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x01, 0x00, 0x01,
    0x01, 0x01, 0x11, 0x00, 0xff, 0xc4, 0x00, 0x14, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0xff, 0xc4, 0x00, 0x14, 0x10, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00, 0x3f, 0x7f, 0xff, 0xd9,
];

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Intake's thumbnail code path against libvips' vipsthumbnail, one core each:
    /// throughput, per-image latency and peak memory, on a photo corpus and on the
    /// edge-case images.
    Thumbnail {
        /// Directory of images [default: target/bench-corpus/photos, made by
        /// bench/make-photo-corpus.sh when missing or empty].
        #[arg(long)]
        corpus: Option<PathBuf>,
        /// Runs of each side, interleaved; the fastest is reported.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
        runs: u32,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
        /// Exit 0 even when files failed on a side. Failed files are always listed and
        /// left out of both sides' figures; without this flag they make the bench fail.
        #[arg(long)]
        allow_failures: bool,
    },
    /// Intake's side of `bench thumbnail` (started pinned by it): renders every file of
    /// --corpus into --out, one JSON line per image on stdout.
    #[command(hide = true)]
    ThumbnailWorker {
        #[arg(long)]
        corpus: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Writes the edge-case images into --out (emptied first), for `bench thumbnail`: in a
    /// child process, so that the benchmark's own process stays small (its RSS is the
    /// floor of every measured child's peak RSS).
    #[command(hide = true)]
    EdgeCases {
        #[arg(long)]
        out: PathBuf,
    },
    /// N objects through the whole pipeline on LocalStack with 1, 2 and 3 `intake run`
    /// processes, beside the emulator's raw S3/SQS ceiling (docs/benchmarks.md).
    Pipeline {
        /// Objects uploaded per measured run.
        #[arg(long, default_value_t = 200)]
        objects: usize,
        /// Worker processes [default: measure 1, 2 and 3].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        workers: Option<u32>,
        #[arg(long, value_enum, default_value = "photos")]
        mix: bench_pipeline::Mix,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(config: &ConfigArg, command: BenchCommand) -> Result<(), Failure> {
    match command {
        BenchCommand::Pipeline {
            objects,
            workers,
            mix,
            json,
        } => Ok(bench_pipeline::run(
            &config.config,
            bench_pipeline::Options {
                objects,
                workers,
                mix,
                json,
            },
        )?),
        BenchCommand::Thumbnail {
            corpus,
            runs,
            json,
            allow_failures,
        } => {
            let pipeline = load(config)?;
            Ok(thumbnail(
                config,
                &pipeline,
                corpus,
                runs as usize,
                json,
                allow_failures,
            )?)
        }
        BenchCommand::ThumbnailWorker { corpus, out } => {
            let pipeline = load(config)?;
            Ok(worker(&pipeline, &corpus, &out)?)
        }
        BenchCommand::EdgeCases { out } => Ok(write_edge_cases(&out)?),
    }
}

fn image_renditions(pipeline: &PipelineConfig) -> anyhow::Result<Vec<Rendition>> {
    pipeline
        .classes
        .get("image")
        .map(|class| class.renditions.clone())
        .filter(|renditions| !renditions.is_empty())
        .context("the config has no [[classes.image.renditions]]; the bench renders those")
}

// ---------------------------------------------------------------------------------------
// Intake's side: the worker process.

fn worker(pipeline: &PipelineConfig, corpus: &Path, out: &Path) -> anyhow::Result<()> {
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

// ---------------------------------------------------------------------------------------
// The benchmark.

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

fn thumbnail(
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

/// One `vipsthumbnail` per rendition over every file: throughput and peak RSS.
fn vips_batch_run(
    renditions: &[Rendition],
    set: &ImageSet,
    out: &Path,
    cpu: usize,
    side: &mut Side,
) -> anyhow::Result<()> {
    fs::create_dir_all(out)?;
    let mut wall = Duration::ZERO;
    for r in renditions {
        let measured = run_pinned(&mut vips_command(r, out, &set.files), cpu)?;
        wall += measured.wall;
        side.peak_rss_kib = side.peak_rss_kib.max(measured.max_rss_kib);
        for (i, error) in vips_failures(&measured, set)? {
            side.failed[i] = Some(error);
        }
    }
    side.walls.push(wall);
    Ok(())
}

/// One `vipsthumbnail` per image and rendition: per-image latency, start-up subtracted.
fn vips_latency_run(
    renditions: &[Rendition],
    set: &ImageSet,
    out: &Path,
    cpu: usize,
    startup_ms: &[f64],
    side: &mut Side,
) -> anyhow::Result<()> {
    fs::create_dir_all(out)?;
    for (i, file) in set.files.iter().enumerate() {
        let mut total = 0.0;
        let mut ok = true;
        for (r, startup) in renditions.iter().zip(startup_ms) {
            let measured = run_pinned(&mut vips_command(r, out, std::slice::from_ref(file)), cpu)?;
            side.peak_rss_kib = side.peak_rss_kib.max(measured.max_rss_kib);
            if measured.code != Some(0) {
                side.failed[i] = Some(vips_error(&measured));
                ok = false;
            }
            total += (measured.wall.as_secs_f64() * 1e3 - startup).max(0.0);
        }
        if ok {
            side.record_latency(i, total);
        }
    }
    Ok(())
}

/// Median wall time of `vipsthumbnail` on a 1×1 JPEG, per rendition (same options).
fn vips_startup_ms(
    renditions: &[Rendition],
    cpu: usize,
    scratch: &Path,
) -> anyhow::Result<Vec<f64>> {
    let dir = scratch.join("startup");
    fs::create_dir_all(&dir)?;
    let one = dir.join("one-pixel.jpg");
    fs::write(&one, ONE_PIXEL_JPEG)?;
    let mut medians = Vec::new();
    for r in renditions {
        let mut samples = Vec::new();
        // One extra, untimed, to load the libraries into the page cache.
        for n in 0..=STARTUP_SAMPLES {
            let measured = run_pinned(&mut vips_command(r, &dir, std::slice::from_ref(&one)), cpu)?;
            if measured.code != Some(0) {
                bail!(
                    "vipsthumbnail failed on a 1×1 JPEG: {}",
                    vips_error(&measured)
                );
            }
            if n > 0 {
                samples.push(measured.wall.as_secs_f64() * 1e3);
            }
        }
        samples.sort_by(f64::total_cmp);
        medians.push(samples[samples.len() / 2]);
    }
    Ok(medians)
}

/// `vipsthumbnail` making `rendition` of `files` into `out`, with the options that match
/// Intake's: same box, fit, never enlarging, format, quality, no metadata.
fn vips_command(rendition: &Rendition, out: &Path, files: &[PathBuf]) -> Command {
    let mut cmd = Command::new("vipsthumbnail");
    cmd.env("VIPS_CONCURRENCY", "1")
        .arg("-s")
        .arg(format!("{}x{}>", rendition.width, rendition.height));
    if rendition.fit == Fit::Cover {
        cmd.args(["-m", "centre"]);
    }
    cmd.arg("-o").arg(vips_output(rendition, out)).args(files);
    cmd
}

fn vips_output(rendition: &Rendition, out: &Path) -> String {
    let q = rendition.quality;
    let format = match rendition.format {
        RenditionFormat::Auto if rendition.width.max(rendition.height) <= WEBP_MAX_SIDE => {
            RenditionFormat::Webp
        }
        RenditionFormat::Auto => RenditionFormat::Jpeg,
        other => other,
    };
    let suffix = match format {
        RenditionFormat::Jpeg => format!("jpg[Q={q},optimize_coding,strip]"),
        RenditionFormat::Png => "png[strip]".to_owned(),
        _ => format!("webp[Q={q},strip]"),
    };
    format!("{}/%s-{}.{suffix}", out.display(), rendition.name)
}

/// Files `vipsthumbnail` could not thumbnail (it goes on to the next file and exits
/// non-zero at the end), by index in `set`.
fn vips_failures(measured: &Measured, set: &ImageSet) -> anyhow::Result<Vec<(usize, String)>> {
    if measured.code == Some(0) {
        return Ok(Vec::new());
    }
    let mut failed = Vec::new();
    let lines: Vec<&str> = measured.stderr.lines().collect();
    for (n, line) in lines.iter().enumerate() {
        if let Some(file) = line
            .split_once("unable to thumbnail ")
            .map(|(_, f)| f.trim())
        {
            let detail = lines.get(n + 1).copied().unwrap_or_default().trim();
            if let Some(i) = set.files.iter().position(|f| f.as_os_str() == file) {
                failed.push((i, detail.to_owned()));
            }
        }
    }
    if failed.is_empty() {
        bail!("vipsthumbnail failed: {}", vips_error(measured));
    }
    Ok(failed)
}

fn vips_error(measured: &Measured) -> String {
    format!("{}: {}", measured.describe_exit(), measured.stderr.trim())
}

fn vips_version() -> anyhow::Result<String> {
    match Command::new("vipsthumbnail").arg("--version").output() {
        Ok(out) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        }
        Ok(out) => bail!(
            "`vipsthumbnail --version` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => bail!(
            "vipsthumbnail is not installed; install the Debian/Ubuntu package libvips-tools (apt-get install libvips-tools)"
        ),
        Err(e) => Err(e).context("running vipsthumbnail"),
    }
}

// ---------------------------------------------------------------------------------------
// Corpora.

/// The first ancestor of the current directory, or of the executable, that holds the
/// corpus script.
fn find_workspace(cwd: &Path) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok();
    let starts = [
        Some(cwd),
        exe.as_deref(),
        Some(Path::new(env!("CARGO_MANIFEST_DIR"))),
    ];
    starts
        .into_iter()
        .flatten()
        .flat_map(Path::ancestors)
        .find(|dir| dir.join(CORPUS_SCRIPT).is_file())
        .map(Path::to_path_buf)
}

fn photo_corpus(
    corpus: Option<PathBuf>,
    base: &Path,
    workspace: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    if let Some(dir) = corpus {
        if list_files(&dir)?.is_empty() {
            bail!("--corpus {}: no files in it", dir.display());
        }
        return Ok(dir);
    }
    let dir = base.join(PHOTOS_DIR);
    if dir.is_dir() && !list_files(&dir)?.is_empty() {
        return Ok(dir);
    }
    let Some(workspace) = workspace else {
        bail!(
            "no photo corpus at {} and {CORPUS_SCRIPT} not found (looked above the current directory and the executable); run from the Intake workspace, or pass --corpus DIR",
            dir.display()
        );
    };
    let script = workspace.join(CORPUS_SCRIPT);
    eprintln!(
        "making the photo corpus: {} {}",
        script.display(),
        dir.display()
    );
    let status = Command::new("bash")
        .arg(&script)
        .arg(&dir)
        .stdout(Stdio::from(io::stderr()))
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() {
        bail!(
            "{} failed ({status}); it installs three Debian wallpaper packages with apt-get (root or sudo, network) — run it by hand to see why, or pass --corpus DIR",
            script.display()
        );
    }
    if list_files(&dir)?.is_empty() {
        bail!("{} left {} empty", script.display(), dir.display());
    }
    Ok(dir)
}

/// Writes [`intake_imaging::samples::edge_cases`] into `dir` (emptied first).
fn write_edge_cases(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (i, (name, bytes)) in intake_imaging::samples::edge_cases()
        .into_iter()
        .enumerate()
    {
        let ext = match SourceFormat::sniff(&bytes) {
            Some(SourceFormat::Jpeg) => "jpg",
            Some(SourceFormat::Png) => "png",
            Some(SourceFormat::Gif) => "gif",
            Some(SourceFormat::Webp) => "webp",
            Some(SourceFormat::Tiff) => "tif",
            Some(SourceFormat::Bmp) => "bmp",
            None => "bin",
        };
        // Names come with an extension; the file gets the one of its content.
        let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
        let stem: String = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let path = dir.join(format!("{i:02}-{stem}.{ext}"));
        fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Regular, non-hidden files of `dir`, sorted by name.
fn list_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if entry.path().is_file() && !entry.file_name().to_string_lossy().starts_with('.') {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads every file once (in small chunks, so this process stays small) so that neither
/// side pays for the disk.
fn warm_page_cache(files: &[PathBuf]) -> anyhow::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    for f in files {
        let mut file = File::open(f).with_context(|| format!("reading {}", f.display()))?;
        while file.read(&mut buf)? > 0 {}
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Measured processes.

struct Measured {
    wall: Duration,
    /// `ru_maxrss` from `wait4` (KiB on Linux).
    max_rss_kib: u64,
    code: Option<i32>,
    signal: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Measured {
    fn describe_exit(&self) -> String {
        match (self.code, self.signal) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => "unknown exit".to_owned(),
        }
    }
}

/// The allowed CPU this benchmark pins its children to: the last one the process may use
/// (CPU 0 usually takes more interrupts).
fn pick_cpu() -> usize {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return 0;
        }
        (0..libc::CPU_SETSIZE as usize)
            .rev()
            .find(|&cpu| libc::CPU_ISSET(cpu, &set))
            .unwrap_or(0)
    }
}

/// Runs `cmd` pinned to `cpu` (stdin empty, stdout and stderr captured through files so no
/// reader thread runs) and reaps it with `wait4` for its peak RSS. The child is forked, not
/// vforked (a `pre_exec` hook forces that), so the floor carried into its `ru_maxrss` is this
/// process's current RSS rather than its historical peak.
fn run_pinned(cmd: &mut Command, cpu: usize) -> anyhow::Result<Measured> {
    // SAFETY: cpu_set_t is plain data; CPU_SET writes within it.
    let set = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        set
    };
    // SAFETY: the hook only makes one async-signal-safe system call.
    unsafe {
        cmd.pre_exec(move || {
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
    }
    let mut out = tempfile::tempfile().context("creating a temporary file")?;
    let mut err = tempfile::tempfile().context("creating a temporary file")?;
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(err.try_clone()?);
    let program = cmd.get_program().to_string_lossy().into_owned();
    let start = Instant::now();
    let child = cmd.spawn().with_context(|| format!("starting {program}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data, filled in by wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our child, not yet reaped (std's Child never waits unless asked).
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e).with_context(|| format!("waiting for {program}"));
        }
    }
    let wall = start.elapsed();
    drop(child);
    let read = |file: &mut File| -> io::Result<String> {
        let mut bytes = Vec::new();
        file.rewind()?;
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    Ok(Measured {
        wall,
        max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        stdout: read(&mut out)?,
        stderr: read(&mut err)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vips_options_match_the_rendition() {
        let thumb = Rendition {
            name: "thumb".into(),
            width: 256,
            height: 256,
            fit: Fit::Cover,
            format: RenditionFormat::Auto,
            quality: 80,
        };
        let cmd = vips_command(&thumb, Path::new("/o"), &[PathBuf::from("a.jpg")]);
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "-s",
                "256x256>",
                "-m",
                "centre",
                "-o",
                "/o/%s-thumb.webp[Q=80,strip]",
                "a.jpg"
            ]
        );
        let jpeg = Rendition {
            format: RenditionFormat::Jpeg,
            fit: Fit::Contain,
            ..thumb
        };
        assert_eq!(
            vips_output(&jpeg, Path::new("/o")),
            "/o/%s-thumb.jpg[Q=80,optimize_coding,strip]"
        );
    }
}
