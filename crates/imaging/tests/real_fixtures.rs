//! Real images that once broke Intake (`tests/fixtures/real/`, README there), rendered with
//! the renditions and limits of the repository's own `pipeline.toml`.

use intake_core::PipelineConfig;
use intake_imaging::{Fit, ImageLimits, Rendition, probe, render};

fn pipeline() -> (Vec<Rendition>, ImageLimits) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../pipeline.toml");
    let config = PipelineConfig::load(path).expect("pipeline.toml loads");
    let renditions = config.classes["image"].renditions.clone();
    (renditions, config.image_limits())
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/real/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `nature/Dune.jpg` from mate-backgrounds: 1680×1050, baseline, Canon EXIF (orientation 1).
/// Its thumbnail is cut from the 1024×640 preview; the crop used to end one ulp past the
/// preview's last row, and the resampler refused it.
#[test]
fn dune_renders_both_default_renditions() {
    let (renditions, limits) = pipeline();
    let names: Vec<(&str, u32, u32, Fit)> = renditions
        .iter()
        .map(|r| (r.name.as_str(), r.width, r.height, r.fit))
        .collect();
    assert_eq!(
        names,
        [
            ("thumb", 256, 256, Fit::Cover),
            ("preview", 1024, 1024, Fit::Contain)
        ],
        "the default renditions this regression is about"
    );
    let made = render(&fixture("Dune.jpg"), &renditions, &limits)
        .unwrap_or_else(|e| panic!("Dune.jpg: {}: {e}", e.code()));
    assert_eq!((made.width, made.height), (1680, 1050));
    assert_eq!(made.orientation, 1);
    let sizes: Vec<(&str, u32, u32)> = made
        .renditions
        .iter()
        .map(|r| (r.name.as_str(), r.width, r.height))
        .collect();
    assert_eq!(sizes, [("thumb", 256, 256), ("preview", 1024, 640)]);
    // Each output decodes whole, at the size it claims.
    for r in &made.renditions {
        let header = probe(&r.bytes, &limits).unwrap_or_else(|e| panic!("{}: {e}", r.name));
        assert_eq!(
            (header.width, header.height),
            (r.width, r.height),
            "{}",
            r.name
        );
        let image = image::load_from_memory(&r.bytes).unwrap_or_else(|e| panic!("{}: {e}", r.name));
        assert_eq!(
            (image.width(), image.height()),
            (r.width, r.height),
            "{}",
            r.name
        );
    }
}
