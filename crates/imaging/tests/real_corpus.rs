//! Every file of the real-image corpus (made by `tests/corpus/make-image-corpus.sh`: Pillow's
//! test images and images from Debian packages) through [`intake_imaging::render`] with the
//! renditions and limits of the repository's `pipeline.toml`. Each file must end in
//! renditions of the right sizes, or in the refusal written for it in
//! `tests/corpus/expected-refusals.tsv` (file, code, what vipsthumbnail does, why). The
//! test runs `vipsthumbnail` on every refused file to keep that column true: a file vips
//! renders and Intake refuses is a bug or a limit documented in docs/architecture.md
//! ("Image limits"), never an accident.
//!
//! Fails, never skips, without the corpus or without `vipsthumbnail`.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use intake_core::PipelineConfig;
use intake_imaging::{Fit, ImageLimits, Rendition, probe, render};

const SCRIPT: &str = "crates/imaging/tests/corpus/make-image-corpus.sh";
const EXPECTED: &str = include_str!("corpus/expected-refusals.tsv");
/// Every code an [`intake_imaging::ImageError`] may have.
const CODES: [&str; 7] = intake_imaging::ImageError::CODES;
/// The entries of "Image limits" in docs/architecture.md: a file vips renders and Intake
/// refuses must name one (its reason starts with it, then a colon).
const LIMITS: [&str; 5] = [
    "other formats",
    "TIFF variants",
    "BMP variants",
    "GIF strictness",
    "damaged data",
];
/// One file may take this long in the debug test profile (the largest are 16–20 MP).
const MAX_FILE_TIME: Duration = Duration::from_secs(20);
/// vipsthumbnail processes run at once to check the refused files.
const VIPS_PROCESSES: usize = 4;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpus_dir() -> PathBuf {
    std::env::var_os("INTAKE_IMAGE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/image-corpus"))
}

/// Files under `dir`, as paths relative to it, sorted; the script's download cache left out.
fn files(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.file_name().is_some_and(|n| n == ".downloads") {
                continue;
            }
            if path.is_dir() {
                walk(&path, base, out);
            } else if path.is_file() {
                let rel = path.strip_prefix(base).expect("under the corpus");
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// One row of expected-refusals.tsv.
struct Expected {
    code: String,
    vips_renders: bool,
    reason: String,
}

fn expected_refusals() -> BTreeMap<String, Expected> {
    let mut rows = BTreeMap::new();
    for (n, line) in EXPECTED.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [file, code, vips, reason] = fields[..] else {
            panic!(
                "expected-refusals.tsv line {}: want 4 tab-separated fields",
                n + 1
            );
        };
        assert!(
            CODES.contains(&code),
            "line {}: {code} is not a code",
            n + 1
        );
        let vips_renders = match vips {
            "renders" => true,
            "refuses" => false,
            other => panic!(
                "line {}: vips column is {other:?}, not renders/refuses",
                n + 1
            ),
        };
        assert!(!reason.trim().is_empty(), "line {}: no reason", n + 1);
        if vips_renders {
            assert!(
                LIMITS.iter().any(|l| reason.starts_with(&format!("{l}:"))),
                "line {}: a `renders` row's reason must start with a limit of docs/architecture.md ({LIMITS:?})",
                n + 1
            );
        }
        let row = Expected {
            code: code.to_owned(),
            vips_renders,
            reason: reason.to_owned(),
        };
        assert!(
            rows.insert(file.to_owned(), row).is_none(),
            "{file} listed twice"
        );
    }
    rows
}

/// Whether `vipsthumbnail` makes a thumbnail of `path` (its default options, 128 px).
fn vips_renders(path: &Path, out: &Path) -> bool {
    let status = Command::new("vipsthumbnail")
        .arg(path)
        .arg("-o")
        .arg(out.join("vips-%s.png"))
        .env("VIPS_CONCURRENCY", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "vipsthumbnail: {e}; install Debian's libvips-tools (apt-get install libvips-tools)"
            )
        });
    status.success()
}

/// The sizes each rendition must have for a source shown `width × height`.
fn check_sizes(
    renditions: &[Rendition],
    width: u32,
    height: u32,
    made: &[(u32, u32)],
) -> Result<(), String> {
    for (r, &(w, h)) in renditions.iter().zip(made) {
        let ok = match r.fit {
            Fit::Cover => (w, h) == (r.width.min(width), r.height.min(height)),
            Fit::Contain => {
                w >= 1
                    && h >= 1
                    && w <= r.width.min(width)
                    && h <= r.height.min(height)
                    && (w == r.width.min(width) || h == r.height.min(height))
            }
        };
        if !ok {
            return Err(format!(
                "{} of a {width}×{height} source is {w}×{h}",
                r.name
            ));
        }
    }
    Ok(())
}

enum Outcome {
    Rendered,
    Refused { code: &'static str, message: String },
}

fn render_file(
    bytes: &[u8],
    renditions: &[Rendition],
    limits: &ImageLimits,
) -> Result<Outcome, String> {
    let result = catch_unwind(AssertUnwindSafe(|| render(bytes, renditions, limits)))
        .map_err(|_| "render panicked".to_owned())?;
    let made = match result {
        Ok(made) => made,
        Err(e) => {
            return Ok(Outcome::Refused {
                code: e.code(),
                message: e.to_string(),
            });
        }
    };
    if made.renditions.len() != renditions.len() {
        return Err(format!(
            "{} renditions of {}",
            made.renditions.len(),
            renditions.len()
        ));
    }
    let mut sizes = Vec::new();
    for r in &made.renditions {
        // Each output's own header says the size it claims.
        let header = probe(&r.bytes, limits).map_err(|e| format!("{} output: {e}", r.name))?;
        if (header.width, header.height) != (r.width, r.height) {
            return Err(format!(
                "{} claims {}×{}, is {}×{}",
                r.name, r.width, r.height, header.width, header.height
            ));
        }
        sizes.push((r.width, r.height));
    }
    check_sizes(renditions, made.width, made.height, &sizes)?;
    Ok(Outcome::Rendered)
}

#[test]
fn every_real_image_renders_or_is_refused_as_listed() {
    let dir = corpus_dir();
    assert!(
        dir.is_dir() && !files(&dir).is_empty(),
        "no image corpus at {}: run `bash {SCRIPT}` (needs python3 -m pip and apt-get download; \
         about 130 MB of downloads) or set INTAKE_IMAGE_CORPUS to a directory made by it",
        dir.display()
    );
    let config = PipelineConfig::load(workspace().join("pipeline.toml")).expect("pipeline.toml");
    let renditions = config.classes["image"].renditions.clone();
    let limits = config.image_limits();
    let expected = expected_refusals();

    let started = Instant::now();
    let mut rendered = 0usize;
    let mut refused: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut problems: Vec<String> = Vec::new();
    let mut unlisted: Vec<String> = Vec::new();
    let mut slowest: Vec<(Duration, String)> = Vec::new();
    let all = files(&dir);
    let mut refusals: Vec<(String, &'static str, String)> = Vec::new();
    for name in &all {
        let bytes = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let file_started = Instant::now();
        let outcome = render_file(&bytes, &renditions, &limits);
        let took = file_started.elapsed();
        slowest.push((took, name.clone()));
        if took > MAX_FILE_TIME {
            problems.push(format!("{name}: took {took:?}"));
        }
        match outcome {
            Err(problem) => problems.push(format!("{name}: {problem}")),
            Ok(Outcome::Rendered) => {
                rendered += 1;
                if expected.contains_key(name) {
                    problems.push(format!(
                        "{name}: renders now; remove it from expected-refusals.tsv"
                    ));
                }
            }
            Ok(Outcome::Refused { code, message }) => {
                *refused.entry(code).or_default() += 1;
                refusals.push((name.clone(), code, message));
            }
        }
    }
    // vipsthumbnail on every refused file, a few processes at a time (most of their time
    // is start-up).
    let vips: Vec<bool> = std::thread::scope(|scope| {
        let chunks: Vec<_> = refusals
            .chunks(refusals.len().div_ceil(VIPS_PROCESSES).max(1))
            .map(|chunk| {
                let dir = &dir;
                scope.spawn(move || {
                    let scratch =
                        tempfile::tempdir().expect("a scratch directory for vipsthumbnail");
                    chunk
                        .iter()
                        .map(|(name, _, _)| vips_renders(&dir.join(name), scratch.path()))
                        .collect::<Vec<bool>>()
                })
            })
            .collect();
        chunks
            .into_iter()
            .flat_map(|c| c.join().expect("vips thread"))
            .collect()
    });
    let seen: BTreeSet<&String> = refusals.iter().map(|(name, _, _)| name).collect();
    for ((name, code, message), vips) in refusals.iter().zip(vips) {
        match expected.get(name) {
            None => unlisted.push(format!(
                "{name}\t{code}\t{}\t{message}",
                if vips { "renders" } else { "refuses" }
            )),
            Some(row) if row.code != *code => problems.push(format!(
                "{name}: refused {code} ({message}), listed as {} ({})",
                row.code, row.reason
            )),
            Some(row) if row.vips_renders != vips => problems.push(format!(
                "{name}: vipsthumbnail {} it, listed as {}",
                if vips { "renders" } else { "refuses" },
                if row.vips_renders {
                    "renders"
                } else {
                    "refuses"
                }
            )),
            Some(_) => {}
        }
    }
    for name in expected.keys() {
        if !seen.contains(name) && !all.contains(name) {
            problems.push(format!(
                "{name}: listed in expected-refusals.tsv, not in the corpus"
            ));
        }
    }
    slowest.sort_by(|a, b| b.cmp(a));
    println!(
        "files rendered={rendered} refused={} by code: {refused:?} ({} files in {:.1} s; slowest: {})",
        refused.values().sum::<usize>(),
        all.len(),
        started.elapsed().as_secs_f64(),
        slowest
            .iter()
            .take(5)
            .map(|(d, n)| format!("{n} {:.2} s", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !unlisted.is_empty() {
        problems.push(format!(
            "{} refusals not in tests/corpus/expected-refusals.tsv (file, code, vips, message: \
             fix the bug, or list it with its reason; `renders` rows need a limit documented \
             in docs/architecture.md):\n{}",
            unlisted.len(),
            unlisted.join("\n")
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
