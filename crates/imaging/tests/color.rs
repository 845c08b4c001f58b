//! ICC profiles are honoured: a source whose profile says "stored red means green" renders
//! green in the sRGB rendition, and the profile itself is not carried over.

use intake_imaging::{Fit, ImageLimits, Rendition, RenditionFormat, render, samples};

#[test]
fn an_embedded_icc_profile_is_converted_to_srgb_and_not_copied() {
    let icc = samples::swapped_primaries_icc();
    let source = samples::solid_jpeg_with_icc(64, 64, [255, 0, 0], &icc);
    let rendition = Rendition {
        name: "thumb".into(),
        width: 32,
        height: 32,
        fit: Fit::Cover,
        format: RenditionFormat::Png,
        quality: 80,
    };
    let render = render(&source, &[rendition], &ImageLimits::default()).expect("renders");
    assert!(render.converted_to_srgb, "the profile was applied");
    let out = &render.renditions[0];
    assert!(
        !out.bytes.windows(4).any(|w| w == b"iCCP"),
        "no profile in the output"
    );
    let image = image::load_from_memory(&out.bytes).unwrap().to_rgb8();
    let [r, g, b] = image.get_pixel(16, 16).0;
    assert!(
        g > 180 && r < 90 && b < 90,
        "stored red shows as green: {r},{g},{b}"
    );
}

#[test]
fn an_srgb_source_without_a_profile_is_left_as_it_is() {
    let source = samples::photo_jpeg(64, 64, 90);
    let rendition = Rendition {
        name: "thumb".into(),
        width: 32,
        height: 32,
        fit: Fit::Cover,
        format: RenditionFormat::Png,
        quality: 80,
    };
    let render = render(&source, &[rendition], &ImageLimits::default()).expect("renders");
    assert!(!render.converted_to_srgb);
}
