//! Every valid format and edge case renders: sizes as claimed and decodable, alpha kept or
//! flattened, EXIF orientation applied, no metadata carried over, CMYK and grayscale
//! colours right, shrink-on-load only when it leaves the resampler a factor of two.

use image::{DynamicImage, GenericImageView, ImageFormat};
use intake_imaging::{
    Fit, ImageLimits, OutputFormat, Render, Rendered, Rendition, RenditionFormat, SourceFormat,
    render, samples,
};

fn rendition(name: &str, side: u32, fit: Fit, format: RenditionFormat) -> Rendition {
    Rendition {
        name: name.into(),
        width: side,
        height: side,
        fit,
        format,
        quality: 80,
    }
}

/// `thumb` 256×256 cover and `preview` 1024×1024 contain, both auto at quality 80.
fn standard() -> Vec<Rendition> {
    vec![
        rendition("thumb", 256, Fit::Cover, RenditionFormat::Auto),
        rendition("preview", 1024, Fit::Contain, RenditionFormat::Auto),
    ]
}

fn render_ok(bytes: &[u8], renditions: &[Rendition]) -> Render {
    render(bytes, renditions, &ImageLimits::default())
        .unwrap_or_else(|e| panic!("{} ({e})", e.code()))
}

/// Decodes an output with a decoder other than ours, checking it is the size it claims.
fn decode(rendered: &Rendered) -> DynamicImage {
    let image = match rendered.format {
        OutputFormat::Webp => {
            image::load_from_memory_with_format(&rendered.bytes, ImageFormat::WebP)
        }
        OutputFormat::Png => image::load_from_memory_with_format(&rendered.bytes, ImageFormat::Png),
        OutputFormat::Jpeg => Ok(decode_jpeg(&rendered.bytes)),
    }
    .unwrap_or_else(|e| panic!("{} does not decode: {e}", rendered.name));
    assert_eq!(
        image.dimensions(),
        (rendered.width, rendered.height),
        "{} decodes at another size than it claims",
        rendered.name
    );
    image
}

/// `image` is built without JPEG; libjpeg-turbo (mozjpeg) reads the JPEG outputs.
fn decode_jpeg(bytes: &[u8]) -> DynamicImage {
    let (width, height, rgb) = std::panic::catch_unwind(|| {
        let mut started = mozjpeg::Decompress::new_mem(bytes)?.rgb()?;
        let (width, height) = (started.width() as u32, started.height() as u32);
        let rgb: Vec<u8> = started.read_scanlines()?;
        started.finish()?;
        std::io::Result::Ok((width, height, rgb))
    })
    .expect("libjpeg does not fail")
    .expect("a JPEG");
    DynamicImage::ImageRgb8(image::RgbImage::from_raw(width, height, rgb).expect("buffer matches"))
}

fn is_red(px: [u8; 4]) -> bool {
    px[0] > 150 && px[1] < 100 && px[2] < 100
}

fn is_blue(px: [u8; 4]) -> bool {
    px[2] > 150 && px[0] < 100 && px[1] < 100
}

fn pixel(image: &DynamicImage, x: u32, y: u32) -> [u8; 4] {
    image.get_pixel(x, y).0
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[test]
fn every_format_renders_both_renditions_at_their_sizes() {
    // (name, bytes, format, preview size); every source is at least 256 on each side.
    let cases = [
        (
            "baseline jpeg",
            samples::photo_jpeg(1600, 1200, 85),
            SourceFormat::Jpeg,
            (1024, 768),
        ),
        (
            "progressive jpeg",
            samples::progressive_jpeg(1600, 1200),
            SourceFormat::Jpeg,
            (1024, 768),
        ),
        (
            "grayscale jpeg",
            samples::grayscale_jpeg(1200, 900),
            SourceFormat::Jpeg,
            (1024, 768),
        ),
        (
            "cmyk jpeg",
            samples::cmyk_jpeg(800, 600),
            SourceFormat::Jpeg,
            (800, 600),
        ),
        (
            "rgba png",
            samples::png_rgba(800, 600),
            SourceFormat::Png,
            (800, 600),
        ),
        (
            "16-bit png",
            samples::png_16bit(1200, 800),
            SourceFormat::Png,
            (1024, 683),
        ),
        (
            "palette png",
            samples::png_palette(800, 600),
            SourceFormat::Png,
            (800, 600),
        ),
        (
            "gif",
            samples::gif_frames(480, 360, 5),
            SourceFormat::Gif,
            (480, 360),
        ),
        (
            "webp",
            samples::webp_lossy(1200, 900),
            SourceFormat::Webp,
            (1024, 768),
        ),
        (
            "tiff",
            samples::tiff(600, 800),
            SourceFormat::Tiff,
            (600, 800),
        ),
        ("bmp", samples::bmp(800, 600), SourceFormat::Bmp, (800, 600)),
    ];
    for (name, bytes, format, preview) in cases {
        let made = render_ok(&bytes, &standard());
        assert_eq!(made.probe.format, format, "{name}");
        let [thumb, shown] = &made.renditions[..] else {
            panic!("{name}: two renditions")
        };
        assert_eq!(
            (thumb.name.as_str(), shown.name.as_str()),
            ("thumb", "preview")
        );
        assert_eq!((thumb.width, thumb.height), (256, 256), "{name} thumb");
        assert_eq!((shown.width, shown.height), preview, "{name} preview");
        for rendered in &made.renditions {
            assert_eq!(
                rendered.format,
                OutputFormat::Webp,
                "{name}: auto is WebP at this size"
            );
            decode(rendered);
        }
    }
}

#[test]
fn the_progressive_sample_is_progressive_and_the_grayscale_one_stays_gray() {
    let progressive = samples::progressive_jpeg(640, 480);
    assert!(contains(&progressive, &[0xFF, 0xC2]), "SOF2");
    assert!(!contains(&samples::photo_jpeg(640, 480, 85), &[0xFF, 0xC2]));
    render_ok(&progressive, &standard());

    let made = render_ok(&samples::grayscale_jpeg(640, 480), &standard());
    let preview = decode(&made.renditions[1]).into_rgb8();
    for px in preview.pixels().step_by(97) {
        let [r, g, b] = px.0.map(i32::from);
        assert!(
            (r - g).abs() <= 8 && (g - b).abs() <= 8,
            "gray stays gray: {:?}",
            px.0
        );
    }
}

#[test]
fn sixteen_bit_png_renders_with_its_colours() {
    let made = render_ok(&samples::png_16bit(640, 480), &standard());
    assert!(!made.has_alpha);
    let preview = decode(&made.renditions[1]);
    // The sample's blue falls from left to right.
    assert!(pixel(&preview, 10, 240)[2] > pixel(&preview, 630, 240)[2] + 40);
}

#[test]
fn alpha_survives_in_webp_and_is_flattened_on_white_in_jpeg() {
    let source = samples::png_rgba(800, 600);
    let made = render_ok(&source, &standard());
    assert!(made.has_alpha);
    let preview = decode(&made.renditions[1]);
    assert!(preview.color().has_alpha(), "WebP keeps alpha");
    let rgba = preview.to_rgba8();
    assert!(rgba.pixels().any(|px| px.0[3] < 255));
    assert!(
        pixel(&preview, 20, 300)[3] < 16,
        "the transparent quarter stays transparent"
    );
    assert!(
        pixel(&preview, 799, 300)[3] >= 250,
        "the right edge is opaque"
    );

    let as_jpeg = [rendition("flat", 1024, Fit::Contain, RenditionFormat::Jpeg)];
    let made = render_ok(&source, &as_jpeg);
    assert_eq!(made.renditions[0].format, OutputFormat::Jpeg);
    let flat = decode(&made.renditions[0]);
    assert!(!flat.color().has_alpha());
    let [r, g, b, _] = pixel(&flat, 20, 300);
    assert!(
        r > 240 && g > 240 && b > 240,
        "transparent becomes white, got {r},{g},{b}"
    );
}

#[test]
fn exif_orientation_turns_and_mirrors_every_rendition() {
    // Where the stored top-left (red) quadrant is shown: 0 top-left, 1 top-right,
    // 2 bottom-right, 3 bottom-left.
    let red_at = [0, 1, 2, 3, 0, 1, 2, 3];
    let (stored_w, stored_h) = (400, 300);
    for orientation in 1..=8u8 {
        let source = samples::jpeg_with_exif(stored_w, stored_h, orientation, false);
        let made = render_ok(&source, &standard());
        assert_eq!(made.orientation, orientation);
        let turned = orientation >= 5;
        let shown = if turned {
            (stored_h, stored_w)
        } else {
            (stored_w, stored_h)
        };
        assert_eq!(
            (made.width, made.height),
            shown,
            "orientation {orientation}"
        );
        let preview = &made.renditions[1];
        assert_eq!(
            (preview.width, preview.height),
            shown,
            "orientation {orientation}"
        );
        assert_eq!(
            (made.renditions[0].width, made.renditions[0].height),
            (256, 256)
        );
        let image = decode(preview);
        let (w, h) = shown;
        let centres = [
            (w / 4, h / 4),
            (3 * w / 4, h / 4),
            (3 * w / 4, 3 * h / 4),
            (w / 4, 3 * h / 4),
        ];
        for (quadrant, (x, y)) in centres.into_iter().enumerate() {
            let px = pixel(&image, x, y);
            let expected = quadrant == red_at[usize::from(orientation - 1)];
            assert_eq!(
                is_red(px),
                expected,
                "orientation {orientation}, quadrant {quadrant}: {px:?}"
            );
        }
    }
}

#[test]
fn orientation_6_puts_the_stored_top_left_at_the_top_right() {
    let made = render_ok(&samples::jpeg_with_exif(400, 300, 6, true), &standard());
    let preview = decode(&made.renditions[1]);
    assert_eq!(preview.dimensions(), (300, 400));
    assert!(is_red(pixel(&preview, 280, 20)), "top right is red");
    assert!(!is_red(pixel(&preview, 20, 20)), "top left is not");
    assert!(!is_red(pixel(&preview, 280, 380)), "bottom right is not");

    // The box applies to the image as shown (300×400): in 200×100 the height limits.
    let banner = [Rendition {
        width: 200,
        height: 100,
        ..rendition("banner", 0, Fit::Contain, RenditionFormat::Auto)
    }];
    let made = render_ok(&samples::jpeg_with_exif(400, 300, 6, false), &banner);
    let shown = decode(&made.renditions[0]);
    assert_eq!(shown.dimensions(), (75, 100));
    assert!(is_red(pixel(&shown, 65, 10)), "top right is red");
    assert!(!is_red(pixel(&shown, 10, 10)), "top left is not");
}

#[test]
fn no_output_carries_exif_or_gps() {
    let source = samples::jpeg_with_exif(400, 300, 6, true);
    let latitude = samples::rationals(&samples::GPS_LATITUDE);
    let longitude = samples::rationals(&samples::GPS_LONGITUDE);
    assert!(contains(&source, b"Exif\0\0II*\0"));
    assert!(contains(&source, &latitude) && contains(&source, &longitude));
    let renditions = [
        rendition("auto", 256, Fit::Cover, RenditionFormat::Auto),
        rendition("jpeg", 300, Fit::Contain, RenditionFormat::Jpeg),
        rendition("png", 300, Fit::Contain, RenditionFormat::Png),
        rendition("webp", 1024, Fit::Contain, RenditionFormat::Webp),
    ];
    let made = render_ok(&source, &renditions);
    for rendered in &made.renditions {
        decode(rendered);
        for needle in [&b"Exif"[..], b"II*\0", &latitude, &longitude] {
            assert!(
                !contains(&rendered.bytes, needle),
                "{} carries {needle:?}",
                rendered.name
            );
        }
    }
}

#[test]
fn cmyk_keeps_red_left_and_blue_right() {
    let source = samples::cmyk_jpeg(800, 600);
    assert!(contains(&source, b"Adobe"), "APP14 as Photoshop writes it");
    let made = render_ok(&source, &standard());
    let preview = decode(&made.renditions[1]);
    for y in [50, 300, 550] {
        assert!(
            is_red(pixel(&preview, 100, y)),
            "left: {:?}",
            pixel(&preview, 100, y)
        );
        assert!(
            is_blue(pixel(&preview, 700, y)),
            "right: {:?}",
            pixel(&preview, 700, y)
        );
    }
}

#[test]
fn large_jpegs_shrink_on_load_when_it_leaves_a_factor_of_two() {
    // Every rendition needs at most 1 source pixel in 4.7 (the preview): decoded at 1/2.
    let made = render_ok(&samples::photo_jpeg(4800, 3200, 85), &standard());
    assert_eq!((made.probe.width, made.probe.height), (4800, 3200));
    assert_eq!((made.decoded_width, made.decoded_height), (2400, 1600));
    assert_eq!(
        (made.renditions[1].width, made.renditions[1].height),
        (1024, 683)
    );
    decode(&made.renditions[1]);

    // A thumbnail alone needs 1 in 11.7: decoded at 1/4.
    let source = samples::photo_jpeg(4000, 3000, 85);
    let thumb = [rendition("thumb", 256, Fit::Cover, RenditionFormat::Auto)];
    let made = render_ok(&source, &thumb);
    assert_eq!((made.decoded_width, made.decoded_height), (1000, 750));
    assert_eq!(
        (made.renditions[0].width, made.renditions[0].height),
        (256, 256)
    );
}

#[test]
fn jpegs_near_the_rendition_size_decode_at_full_size() {
    let made = render_ok(&samples::photo_jpeg(1200, 900, 85), &standard());
    assert_eq!((made.decoded_width, made.decoded_height), (1200, 900));
    assert_eq!(
        (made.renditions[1].width, made.renditions[1].height),
        (1024, 768)
    );
}

#[test]
fn small_images_are_never_enlarged() {
    for bytes in [samples::photo_jpeg(100, 60, 85), samples::png_rgba(100, 60)] {
        let made = render_ok(&bytes, &standard());
        assert_eq!((made.decoded_width, made.decoded_height), (100, 60));
        for rendered in &made.renditions {
            assert_eq!(
                (rendered.width, rendered.height),
                (100, 60),
                "{}",
                rendered.name
            );
            decode(rendered);
        }
    }
}

#[test]
fn gif_renders_its_first_frame() {
    let made = render_ok(&samples::gif_frames(120, 90, 5), &standard());
    assert_eq!(made.probe.frames, 5);
    let preview = decode(&made.renditions[1]).into_rgb8();
    // Frame 1 is red shades only; the later frames are blue shades only.
    assert!(
        preview.pixels().all(|px| px.0[0] > px.0[2] + 60),
        "only the first frame's reds"
    );
}

#[test]
fn every_benchmark_edge_case_renders() {
    let cases = samples::edge_cases();
    let mut names: Vec<&str> = cases.iter().map(|(name, _)| *name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "names are unique");
    for (name, bytes) in &cases {
        let made = render_ok(bytes, &standard());
        let extension = name.rsplit('.').next().expect("an extension");
        let expected = match extension {
            "jpg" => SourceFormat::Jpeg,
            "png" => SourceFormat::Png,
            "gif" => SourceFormat::Gif,
            "webp" => SourceFormat::Webp,
            "tiff" => SourceFormat::Tiff,
            "bmp" => SourceFormat::Bmp,
            other => panic!("{name}: unexpected extension {other}"),
        };
        assert_eq!(made.probe.format, expected, "{name}");
        for rendered in &made.renditions {
            decode(rendered);
        }
    }
}
