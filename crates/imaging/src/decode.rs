//! Decoding to 8-bit RGB or RGBA, at the smallest scale the renditions allow, with the
//! EXIF orientation and ICC profile kept aside for later.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder};
use intake_core::config::ImageLimits;

use crate::error::ImageError;
use crate::jpeg;
use crate::probe::{SourceFormat, classify};

/// Interleaved 8-bit pixels, 3 (RGB) or 4 (RGBA, straight alpha) channels.
#[derive(Clone)]
pub(crate) struct Pixels {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    pub data: Vec<u8>,
}

pub(crate) struct Decoded {
    pub pixels: Pixels,
    /// EXIF orientation 1–8 (1: as stored).
    pub orientation: u8,
    /// An embedded ICC profile that describes `pixels` (RGB or gray).
    pub icc: Option<Vec<u8>>,
}

/// Decodes `bytes`; for JPEG, `numerator` (of 8) picks the shrink-on-load scale once the
/// orientation is known.
pub(crate) fn decode(
    bytes: &[u8],
    format: SourceFormat,
    limits: &ImageLimits,
    numerator: impl FnOnce(u8) -> u8,
) -> Result<Decoded, ImageError> {
    if format == SourceFormat::Jpeg {
        let orientation = jpeg::orientation(bytes).unwrap_or(1);
        let decoded = jpeg::decode(bytes, numerator(orientation))?;
        return Ok(Decoded {
            pixels: Pixels {
                width: decoded.width,
                height: decoded.height,
                channels: 3,
                data: decoded.rgb,
            },
            orientation,
            icc: decoded.icc.filter(|_| !decoded.cmyk),
        });
    }
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format.image_format());
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_width);
    image_limits.max_image_height = Some(limits.max_height);
    image_limits.max_alloc = Some(limits.max_decoder_memory.bytes());
    reader.limits(image_limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| classify(e, format, limits))?;
    let orientation = decoder.orientation().map(|o| o.to_exif()).unwrap_or(1);
    let icc = decoder.icc_profile().ok().flatten();
    let image = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        DynamicImage::from_decoder(decoder)
    }))
    .map_err(|panic| {
        // A panic in a decoder is its bug, on this file's bytes: caught, reported, and the
        // file refused (docs/architecture.md, "Image limits").
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        ImageError::corrupt(format!(
            "the {} decoder failed on this file ({what})",
            format.name()
        ))
    })?
    .map_err(|e| classify(e, format, limits))?;
    let (width, height) = (image.width(), image.height());
    crate::probe::check_dimensions(width, height, limits)?;
    let pixels = if image.color().has_alpha() {
        Pixels {
            width,
            height,
            channels: 4,
            data: image.into_rgba8().into_raw(),
        }
    } else {
        Pixels {
            width,
            height,
            channels: 3,
            data: image.into_rgb8().into_raw(),
        }
    };
    Ok(Decoded {
        pixels,
        orientation,
        icc,
    })
}
