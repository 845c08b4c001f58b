//! Hostile images: each fails fast with its fixed code, within a time and memory bound, and
//! the renderer still works afterwards. One table test (its cases run one after another, so
//! the memory peak is theirs) and a property test over mutated files.

use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use intake_imaging::{Fit, ImageLimits, Rendition, RenditionFormat, render, samples};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// Every code an [`intake_imaging::ImageError`] may have.
const CODES: [&str; 7] = intake_imaging::ImageError::CODES;

const MAX_CASE_TIME: Duration = Duration::from_secs(5);
const MAX_PEAK_GROWTH: u64 = 512 * 1024 * 1024;

/// The two tests take turns, so the table's memory peak is its own.
static SERIAL: Mutex<()> = Mutex::new(());

fn renditions() -> Vec<Rendition> {
    let rendition = |name: &str, side, fit| Rendition {
        name: name.into(),
        width: side,
        height: side,
        fit,
        format: RenditionFormat::Auto,
        quality: 80,
    };
    vec![
        rendition("thumb", 256, Fit::Cover),
        rendition("preview", 1024, Fit::Contain),
    ]
}

/// A `/proc/self/status` field in bytes (Linux reports kB).
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|line| line.starts_with(field))
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"));
    let kb: u64 = line
        .trim_start_matches(field)
        .trim_start_matches(':')
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("a number of kB");
    kb * 1024
}

#[test]
fn hostile_images_fail_fast_with_fixed_codes() {
    let _turn = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let limits = ImageLimits::default();
    assert_eq!(
        limits.max_frames, 256,
        "the GIF case assumes the default max_frames"
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "bomb-png-50000x50000",
            samples::bomb_png(50_000, 50_000),
            "too_many_pixels",
        ),
        (
            "truncated-jpeg",
            samples::truncated_jpeg(1600, 1200),
            "corrupt_image",
        ),
        (
            "lying-header-jpeg-4000x3000",
            samples::lying_header_jpeg(),
            "corrupt_image",
        ),
        (
            "lying-header-png-4000x4000",
            samples::lying_header_png(),
            "corrupt_image",
        ),
        (
            "zero-width-png",
            samples::zero_dimension_png(),
            "empty_image",
        ),
        ("zero-byte-file", samples::empty_file(), "unsupported_image"),
        (
            "gif-1000-frames",
            samples::gif_frames(16, 16, 1000),
            "too_many_frames",
        ),
        // A JPEG cannot declare 70,000 pixels (its fields are 16 bits): 65,535 is the most,
        // over libjpeg's own limit of 65,500, which refuses the header.
        (
            "jpeg-declaring-65535x48",
            samples::jpeg_declaring(65_535, 48),
            "corrupt_image",
        ),
        // Under libjpeg's limit, over max_width: refused from the header, nothing decoded.
        (
            "jpeg-declaring-40000x3000",
            samples::jpeg_declaring(40_000, 3000),
            "too_many_pixels",
        ),
        // Exactly max_pixels (100 MP), so decoded until the data runs out: shrink-on-load
        // keeps the JPEG at 1/16 of the pixels, and the PNG's rows never written are never
        // resident.
        (
            "lying-header-jpeg-10000x10000",
            samples::jpeg_declaring(10_000, 10_000),
            "corrupt_image",
        ),
        (
            "bomb-png-10000x10000",
            samples::bomb_png(10_000, 10_000),
            "corrupt_image",
        ),
    ];
    // Start the peak over from the current resident size where the kernel allows it (it
    // does since Linux 4.0); otherwise the peak so far is the baseline.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let baseline = status_bytes("VmHWM");
    let mut failures = Vec::new();
    for (name, bytes, expected) in &cases {
        let started = Instant::now();
        let result = render(bytes, &renditions(), &limits);
        let elapsed = started.elapsed();
        let code = match &result {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        println!("{name} {code} {}", elapsed.as_millis());
        if let Err(e) = &result {
            assert!(
                CODES.contains(&e.code()),
                "{name}: {} is not a fixed code",
                e.code()
            );
        }
        if code != *expected {
            failures.push(format!(
                "{name}: expected {expected}, got {result:?}",
                result = result.map(|_| "Ok")
            ));
        }
        if elapsed > MAX_CASE_TIME {
            failures.push(format!("{name}: took {elapsed:?}"));
        }
    }
    let growth = status_bytes("VmHWM").saturating_sub(baseline);
    println!("peak RSS growth {} MiB", growth / (1024 * 1024));
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(growth < MAX_PEAK_GROWTH, "peak RSS grew by {growth} bytes");

    // The renderer is still fine afterwards.
    let made = render(&samples::photo_jpeg(1600, 1200, 85), &renditions(), &limits)
        .expect("a normal photo after the hostile ones");
    assert_eq!(made.renditions.len(), 2);
    assert_eq!(
        (made.renditions[1].width, made.renditions[1].height),
        (1024, 768)
    );
}

static SMALL_JPEG: LazyLock<Vec<u8>> = LazyLock::new(|| samples::photo_jpeg(64, 48, 80));
static SMALL_PNG: LazyLock<Vec<u8>> = LazyLock::new(|| samples::png_rgba(48, 32));

proptest! {
    #![proptest_config(ProptestConfig {
        // Next to this file (the default looks for a lib.rs, which tests/ does not have).
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::with_cases(64)
    })]

    /// Flipped bytes (some always in the first 64, where the headers are) and truncation
    /// never panic and never give anything but Ok or a fixed code.
    #[test]
    fn mutated_files_render_or_fail_with_a_fixed_code(
        png in any::<bool>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..6),
        header_flips in prop::collection::vec((0usize..64, 1u8..=255), 0..3),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let _turn = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let mut bytes = if png { SMALL_PNG.clone() } else { SMALL_JPEG.clone() };
        for (at, mask) in flips {
            let at = at.index(bytes.len());
            bytes[at] ^= mask;
        }
        for (at, mask) in header_flips {
            bytes[at] ^= mask;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        match render(&bytes, &renditions(), &ImageLimits::default()) {
            Ok(made) => prop_assert_eq!(made.renditions.len(), 2),
            Err(e) => prop_assert!(CODES.contains(&e.code()), "{} is not a fixed code", e.code()),
        }
    }
}
