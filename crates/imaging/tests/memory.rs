//! Peak memory of one render, in its own test binary so nothing else runs beside it: a
//! 24 MP JPEG must render in under three times its decoded size (shrink-on-load decodes it
//! at half size or less; the compressed source and the outputs are small).

use intake_imaging::{Fit, ImageLimits, Rendition, RenditionFormat, render, samples};

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

fn rendition(name: &str, side: u32, fit: Fit) -> Rendition {
    Rendition {
        name: name.into(),
        width: side,
        height: side,
        fit,
        format: RenditionFormat::Auto,
        quality: 80,
    }
}

#[test]
fn a_24_megapixel_jpeg_renders_in_under_three_times_its_decoded_size() {
    let (width, height) = (6000u32, 4000u32);
    let source = samples::photo_jpeg(width, height, 90);
    let decoded_kib = u64::from(width) * u64::from(height) * 3 / 1024;
    // Writing 5 to clear_refs resets the peak (VmHWM) to the current RSS, so generating
    // the sample above does not count.
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
    let before = status_kib("VmRSS:");
    let render = render(
        &source,
        &[
            rendition("thumb", 256, Fit::Cover),
            rendition("preview", 1024, Fit::Contain),
        ],
        &ImageLimits::default(),
    )
    .expect("renders");
    let peak = status_kib("VmHWM:");
    let used = peak.saturating_sub(before);
    eprintln!(
        "24 MP JPEG ({} KiB compressed): decoded at {}×{}, peak RSS +{} MiB; full decode would be {} MiB",
        source.len() / 1024,
        render.decoded_width,
        render.decoded_height,
        used / 1024,
        decoded_kib / 1024
    );
    assert!(render.decoded_width < width, "shrink-on-load was used");
    assert!(
        used < 3 * decoded_kib,
        "peak RSS grew by {used} KiB, over 3 × {decoded_kib} KiB"
    );
}
