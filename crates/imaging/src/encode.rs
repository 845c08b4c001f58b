//! Encoders and the formats they write ([`OutputFormat`]). None of them writes EXIF, XMP,
//! GPS or an ICC profile: renditions are sRGB and carry nothing from the source but its
//! pixels.

use std::panic::{AssertUnwindSafe, catch_unwind};

use image::ImageEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};

use crate::decode::Pixels;

/// The format of an encoded rendition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Jpeg,
    Webp,
    Png,
}

impl OutputFormat {
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Webp => "webp",
            OutputFormat::Png => "png",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Webp => "webp",
            OutputFormat::Png => "png",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Webp => "image/webp",
            OutputFormat::Png => "image/png",
        }
    }
}

/// WebP's largest side.
pub(crate) const WEBP_MAX_SIDE: u32 = 16_383;

pub(crate) fn encode(
    pixels: &Pixels,
    format: OutputFormat,
    quality: u8,
) -> Result<Vec<u8>, String> {
    match format {
        OutputFormat::Jpeg => jpeg(pixels, quality),
        OutputFormat::Webp => webp(pixels, quality),
        OutputFormat::Png => png(pixels),
    }
}

/// Baseline JPEG with optimised Huffman tables (libjpeg-turbo's fast path of mozjpeg: no
/// trellis quantisation, which costs several times the encode time for a few percent).
fn jpeg(pixels: &Pixels, quality: u8) -> Result<Vec<u8>, String> {
    let flattened;
    let rgb = if pixels.channels == 4 {
        flattened = flatten_on_white(&pixels.data);
        &flattened
    } else {
        &pixels.data
    };
    let result = catch_unwind(AssertUnwindSafe(|| -> std::io::Result<Vec<u8>> {
        let mut compress = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        compress.set_fastest_defaults();
        compress.set_optimize_coding(true);
        compress.set_quality(f32::from(quality));
        compress.set_size(pixels.width as usize, pixels.height as usize);
        let mut started = compress.start_compress(Vec::new())?;
        started.write_scanlines(rgb)?;
        started.finish()
    }));
    match result {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => Err(panic
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "the JPEG encoder failed".into())),
    }
}

fn webp(pixels: &Pixels, quality: u8) -> Result<Vec<u8>, String> {
    let encoder = if pixels.channels == 4 {
        webp::Encoder::from_rgba(&pixels.data, pixels.width, pixels.height)
    } else {
        webp::Encoder::from_rgb(&pixels.data, pixels.width, pixels.height)
    };
    let mut config = webp::WebPConfig::new()
        .map_err(|()| "libwebp refused its default configuration".to_owned())?;
    config.quality = f32::from(quality);
    config.method = 4;
    encoder
        .encode_advanced(&config)
        .map(|memory| memory.to_vec())
        .map_err(|e| format!("libwebp: {e:?}"))
}

fn png(pixels: &Pixels) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let color = if pixels.channels == 4 {
        image::ExtendedColorType::Rgba8
    } else {
        image::ExtendedColorType::Rgb8
    };
    PngEncoder::new_with_quality(&mut out, CompressionType::Default, FilterType::Adaptive)
        .write_image(&pixels.data, pixels.width, pixels.height, color)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// JPEG has no alpha: composite onto white, as a browser shows a transparent image on a
/// white page.
fn flatten_on_white(rgba: &[u8]) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(rgba.len() / 4 * 3);
    for px in rgba.chunks_exact(4) {
        let alpha = u32::from(px[3]);
        for &channel in &px[..3] {
            rgb.push(((u32::from(channel) * alpha + 255 * (255 - alpha) + 127) / 255) as u8);
        }
    }
    rgb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattening_puts_transparency_on_white() {
        assert_eq!(flatten_on_white(&[10, 20, 30, 255]), vec![10, 20, 30]);
        assert_eq!(flatten_on_white(&[10, 20, 30, 0]), vec![255, 255, 255]);
        assert_eq!(flatten_on_white(&[0, 0, 0, 128]), vec![127, 127, 127]);
    }
}
