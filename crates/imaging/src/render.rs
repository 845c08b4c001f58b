//! [`render`]: one source, every configured rendition, one decode.

use image::DynamicImage;
use image::metadata::Orientation;
use intake_core::config::{ImageLimits, Rendition, RenditionFormat};

use crate::decode::{self, Pixels};
use crate::encode::{self, OutputFormat};
use crate::error::ImageError;
use crate::geometry::{self, Source};
use crate::probe::{Probe, SourceFormat, probe};
use crate::{color, resize};

/// One encoded rendition, as shown (orientation applied).
#[derive(Debug, Clone)]
pub struct Rendered {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub format: OutputFormat,
    pub bytes: Vec<u8>,
}

/// What [`render`] learned and made.
#[derive(Debug, Clone)]
pub struct Render {
    pub probe: Probe,
    /// The source as shown: stored dimensions with the EXIF orientation applied.
    pub width: u32,
    pub height: u32,
    /// EXIF orientation 1–8 of the source (applied to every rendition).
    pub orientation: u8,
    pub has_alpha: bool,
    /// The source carried a non-sRGB ICC profile and was converted to sRGB.
    pub converted_to_srgb: bool,
    /// Size the source was decoded at (smaller than stored when shrunk on load).
    pub decoded_width: u32,
    pub decoded_height: u32,
    /// In the order of `renditions`.
    pub renditions: Vec<Rendered>,
}

/// Makes every rendition of `source`. Checks the header against `limits` first; any
/// failure is an [`ImageError`] with a fixed code, never a panic.
pub fn render(
    source: &[u8],
    renditions: &[Rendition],
    limits: &ImageLimits,
) -> Result<Render, ImageError> {
    let probe = probe(source, limits)?;
    let (stored_w, stored_h) = (probe.width, probe.height);
    let decoded = decode::decode(source, probe.format, limits, |orientation| {
        if probe.format == SourceFormat::Jpeg {
            geometry::jpeg_numerator(stored_w, stored_h, renditions, turns(orientation))
        } else {
            8
        }
    })?;
    let orientation = decoded.orientation;
    let swap = turns(orientation);
    let mut pixels = decoded.pixels;
    let converted_to_srgb = decoded
        .icc
        .as_deref()
        .is_some_and(|icc| color::to_srgb(&mut pixels, icc));
    let has_alpha = pixels.channels == 4;
    let (decoded_width, decoded_height) = (pixels.width, pixels.height);

    // Every crop is mapped onto the pixels it is read from (the decode, smaller when shrunk
    // on load, or a larger full-frame rendition) by the plan, which keeps it inside them.
    let steps = geometry::plan(
        (stored_w, stored_h),
        swap,
        renditions,
        (decoded_width, decoded_height),
    );
    let mut kept: Vec<(usize, Pixels)> = Vec::new();
    let mut made: Vec<Option<Rendered>> = vec![None; renditions.len()];
    for step in steps {
        let rendition = &renditions[step.rendition];
        let source = match step.source {
            Source::Decoded => &pixels,
            Source::Rendition(j) => kept
                .iter()
                .find_map(|(k, p)| (*k == j).then_some(p))
                .expect("the plan resamples only from renditions it kept before"),
        };
        let crop = step.crop;
        let resized = resize::resize(
            source,
            (crop.left, crop.top, crop.width, crop.height),
            step.out_width,
            step.out_height,
        )?;
        // Only a full-frame output is kept (as a source for smaller renditions): the others
        // are turned in place rather than copied.
        let (shown, keep) = if step.keep {
            (orient(resized.clone(), orientation), Some(resized))
        } else {
            (orient(resized, orientation), None)
        };
        let format = output_format(rendition.format, shown.width, shown.height, has_alpha);
        let bytes = encode::encode(&shown, format, rendition.quality).map_err(|reason| {
            ImageError::Encode {
                rendition: rendition.name.clone(),
                reason,
            }
        })?;
        made[step.rendition] = Some(Rendered {
            name: rendition.name.clone(),
            width: shown.width,
            height: shown.height,
            format,
            bytes,
        });
        kept.extend(keep.map(|p| (step.rendition, p)));
    }
    let (width, height) = if swap {
        (stored_h, stored_w)
    } else {
        (stored_w, stored_h)
    };
    Ok(Render {
        probe,
        width,
        height,
        orientation,
        has_alpha,
        converted_to_srgb,
        decoded_width,
        decoded_height,
        renditions: made
            .into_iter()
            .map(|r| r.expect("every rendition made"))
            .collect(),
    })
}

/// Orientations 5–8 turn the image by 90°: width and height swap.
fn turns(orientation: u8) -> bool {
    (5..=8).contains(&orientation)
}

fn output_format(
    wanted: RenditionFormat,
    width: u32,
    height: u32,
    has_alpha: bool,
) -> OutputFormat {
    match wanted {
        RenditionFormat::Jpeg => OutputFormat::Jpeg,
        RenditionFormat::Png => OutputFormat::Png,
        RenditionFormat::Webp => OutputFormat::Webp,
        RenditionFormat::Auto if width.max(height) <= encode::WEBP_MAX_SIDE => OutputFormat::Webp,
        RenditionFormat::Auto if has_alpha => OutputFormat::Png,
        RenditionFormat::Auto => OutputFormat::Jpeg,
    }
}

/// Applies the EXIF orientation to a (small) rendition.
fn orient(pixels: Pixels, orientation: u8) -> Pixels {
    let Some(o) = Orientation::from_exif(orientation).filter(|_| orientation > 1) else {
        return pixels;
    };
    let Pixels {
        width,
        height,
        channels,
        data,
    } = pixels;
    let mut image = if channels == 4 {
        DynamicImage::ImageRgba8(
            image::RgbaImage::from_raw(width, height, data).expect("buffer matches its dimensions"),
        )
    } else {
        DynamicImage::ImageRgb8(
            image::RgbImage::from_raw(width, height, data).expect("buffer matches its dimensions"),
        )
    };
    image.apply_orientation(o);
    let (width, height) = (image.width(), image.height());
    let data = if channels == 4 {
        image.into_rgba8().into_raw()
    } else {
        image.into_rgb8().into_raw()
    };
    Pixels {
        width,
        height,
        channels,
        data,
    }
}
