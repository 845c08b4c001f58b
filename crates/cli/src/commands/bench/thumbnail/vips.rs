//! libvips' side of `intake bench thumbnail`: one `vipsthumbnail` per rendition over every
//! file for throughput, one per image and rendition for latency minus its start-up (timed
//! on a 1×1 JPEG), with the same sizes, fit and quality as the pipeline's renditions.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use intake_core::config::{Fit, Rendition, RenditionFormat};

use super::measure::{Measured, run_pinned};
use super::{ImageSet, Side};

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

/// One `vipsthumbnail` per rendition over every file: throughput and peak RSS.
pub(super) fn vips_batch_run(
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
pub(super) fn vips_latency_run(
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
pub(super) fn vips_startup_ms(
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
pub(super) fn vips_command(rendition: &Rendition, out: &Path, files: &[PathBuf]) -> Command {
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

pub(super) fn vips_output(rendition: &Rendition, out: &Path) -> String {
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
pub(super) fn vips_failures(
    measured: &Measured,
    set: &ImageSet,
) -> anyhow::Result<Vec<(usize, String)>> {
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

pub(super) fn vips_error(measured: &Measured) -> String {
    format!("{}: {}", measured.describe_exit(), measured.stderr.trim())
}

pub(super) fn vips_version() -> anyhow::Result<String> {
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
