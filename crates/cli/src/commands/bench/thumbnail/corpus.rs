//! The image sets of `intake bench thumbnail`: the photo corpus (made by
//! `bench/make-photo-corpus.sh` when missing), the edge cases, and listing and pre-reading
//! their files.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use intake_imaging::SourceFormat;

use super::{CORPUS_SCRIPT, PHOTOS_DIR};

/// The first ancestor of the current directory, or of the executable, that holds the
/// corpus script.
pub(super) fn find_workspace(cwd: &Path) -> Option<PathBuf> {
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

pub(super) fn photo_corpus(
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
pub(crate) fn write_edge_cases(dir: &Path) -> anyhow::Result<()> {
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
pub(super) fn list_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
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

pub(super) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads every file once (in small chunks, so this process stays small) so that neither
/// side pays for the disk.
pub(super) fn warm_page_cache(files: &[PathBuf]) -> anyhow::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    for f in files {
        let mut file = File::open(f).with_context(|| format!("reading {}", f.display()))?;
        while file.read(&mut buf)? > 0 {}
    }
    Ok(())
}
