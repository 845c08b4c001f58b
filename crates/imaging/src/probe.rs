//! Header-only inspection: format, dimensions, frames and the memory a decode will need,
//! checked against [`ImageLimits`] before any pixel is decoded.

use std::io::Cursor;

use image::ImageDecoder;
use intake_core::config::ImageLimits;

use crate::error::ImageError;
use crate::jpeg;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Jpeg,
    Png,
    Gif,
    Webp,
    Tiff,
    Bmp,
}

impl SourceFormat {
    /// From the magic bytes (never the name or the declared type).
    pub fn sniff(bytes: &[u8]) -> Option<SourceFormat> {
        match bytes {
            [0xFF, 0xD8, 0xFF, ..] => Some(SourceFormat::Jpeg),
            [0x89, b'P', b'N', b'G', ..] => Some(SourceFormat::Png),
            [b'G', b'I', b'F', b'8', ..] => Some(SourceFormat::Gif),
            [
                b'R',
                b'I',
                b'F',
                b'F',
                _,
                _,
                _,
                _,
                b'W',
                b'E',
                b'B',
                b'P',
                ..,
            ] => Some(SourceFormat::Webp),
            [b'I', b'I', 42, 0, ..] | [b'M', b'M', 0, 42, ..] => Some(SourceFormat::Tiff),
            [b'B', b'M', ..] => Some(SourceFormat::Bmp),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SourceFormat::Jpeg => "jpeg",
            SourceFormat::Png => "png",
            SourceFormat::Gif => "gif",
            SourceFormat::Webp => "webp",
            SourceFormat::Tiff => "tiff",
            SourceFormat::Bmp => "bmp",
        }
    }

    pub(crate) fn image_format(self) -> image::ImageFormat {
        match self {
            SourceFormat::Jpeg => image::ImageFormat::Jpeg,
            SourceFormat::Png => image::ImageFormat::Png,
            SourceFormat::Gif => image::ImageFormat::Gif,
            SourceFormat::Webp => image::ImageFormat::WebP,
            SourceFormat::Tiff => image::ImageFormat::Tiff,
            SourceFormat::Bmp => image::ImageFormat::Bmp,
        }
    }
}

/// What the header says, once it passed the limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub format: SourceFormat,
    /// Stored dimensions (before the EXIF orientation is applied).
    pub width: u32,
    pub height: u32,
    /// Frames of an animation (1 for still images).
    pub frames: u32,
    /// Bytes a full-size decode would allocate (pixels and decoder buffers). Shrink-on-load
    /// needs less; this is the bound the memory budget reserves.
    pub decode_bytes: u64,
}

/// Read the header and check it against `limits`. Cheap: no pixel is decoded (GIF frames
/// are counted without decompressing them).
pub fn probe(bytes: &[u8], limits: &ImageLimits) -> Result<Probe, ImageError> {
    let format = SourceFormat::sniff(bytes).ok_or_else(|| ImageError::Unsupported {
        format: "this file's".into(),
    })?;
    let (width, height, bytes_per_pixel, frames) = match format {
        SourceFormat::Jpeg => {
            let header = jpeg::header(bytes)?;
            // Progressive JPEGs keep every DCT coefficient (2 bytes per sample) until the
            // last scan; the output needs components bytes per pixel.
            let per_pixel = header.components as u64 * if header.progressive { 3 } else { 1 };
            (header.width, header.height, per_pixel, 1)
        }
        SourceFormat::Gif => {
            // Not through `image`'s GIF decoder: it asks for RGBA output, and the `gif`
            // crate then allocates the first frame's canvas while reading the header (16 MiB
            // for a 2048×2048 frame, found by tests/probe_bytes.rs). The logical screen is in
            // the header; frames are counted with their pixel data skipped; `image` decodes
            // GIFs as RGBA, 4 bytes per pixel.
            let (w, h) = gif_size(bytes).ok_or_else(|| ImageError::Corrupt {
                reason: "the GIF header is cut short".into(),
            })?;
            check_dimensions(w, h, limits)?;
            (w, h, 4, count_gif_frames(bytes, limits)?)
        }
        _ => {
            // `png` refuses a zero side as a format error; an empty image has its own code.
            if let Some((w, h)) = png_size(bytes).filter(|_| format == SourceFormat::Png) {
                check_dimensions(w, h, limits)?;
            }
            if format == SourceFormat::Tiff {
                crate::tiff_ifd::check_first_ifd(bytes)?;
            }
            let decoder =
                image::ImageReader::with_format(Cursor::new(bytes), format.image_format())
                    .into_decoder()
                    .map_err(|e| classify(e, format, limits))?;
            let (w, h) = decoder.dimensions();
            let per_pixel = u64::from(decoder.color_type().bytes_per_pixel());
            (w, h, per_pixel, 1)
        }
    };
    check_dimensions(width, height, limits)?;
    if frames > limits.max_frames {
        return Err(ImageError::TooManyFrames {
            limit: limits.max_frames,
        });
    }
    let decode_bytes = u64::from(width) * u64::from(height) * bytes_per_pixel.max(1);
    if decode_bytes > limits.max_decoder_memory.bytes() {
        return Err(ImageError::DecoderMemory {
            needed: decode_bytes,
            limit: limits.max_decoder_memory.bytes(),
        });
    }
    Ok(Probe {
        format,
        width,
        height,
        frames,
        decode_bytes,
    })
}

pub(crate) fn check_dimensions(
    width: u32,
    height: u32,
    limits: &ImageLimits,
) -> Result<(), ImageError> {
    let (w, h) = (u64::from(width), u64::from(height));
    if w == 0 || h == 0 {
        return Err(ImageError::Empty {
            width: w,
            height: h,
        });
    }
    let over = |limit: u64, setting| ImageError::TooManyPixels {
        width: w,
        height: h,
        pixels: w * h,
        limit,
        setting,
    };
    if w > u64::from(limits.max_width) {
        return Err(over(u64::from(limits.max_width), "max_width"));
    }
    if h > u64::from(limits.max_height) {
        return Err(over(u64::from(limits.max_height), "max_height"));
    }
    if w * h > limits.max_pixels {
        return Err(over(limits.max_pixels, "max_pixels"));
    }
    Ok(())
}

/// The size in a PNG's IHDR, which is always the first chunk.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let ihdr = bytes
        .get(12..24)
        .filter(|chunk| chunk.starts_with(b"IHDR"))?;
    let field =
        |at: usize| u32::from_be_bytes([ihdr[at], ihdr[at + 1], ihdr[at + 2], ihdr[at + 3]]);
    Some((field(4), field(8)))
}

/// The logical screen size in a GIF's header (after the 6-byte signature).
fn gif_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let field = |at: usize| {
        Some(u32::from(u16::from_le_bytes([
            *bytes.get(at)?,
            *bytes.get(at + 1)?,
        ])))
    };
    Some((field(6)?, field(8)?))
}

/// Counts frames up to one past the limit, skipping their LZW data.
fn count_gif_frames(bytes: &[u8], limits: &ImageLimits) -> Result<u32, ImageError> {
    let mut options = gif::DecodeOptions::new();
    options.skip_frame_decoding(true);
    // Frames are skipped, not decoded: what the decoder holds is palettes and extension
    // blocks, so 1 MiB is plenty whatever the file claims (the decode itself gets
    // max_decoder_memory).
    let _ = limits;
    options.set_memory_limit(gif::MemoryLimit::Bytes(
        std::num::NonZeroU64::new(1024 * 1024).expect("non-zero"),
    ));
    let mut decoder = options
        .read_info(Cursor::new(bytes))
        .map_err(ImageError::corrupt)?;
    let mut frames = 0u32;
    while decoder
        .read_next_frame()
        .map_err(ImageError::corrupt)?
        .is_some()
    {
        frames += 1;
        if frames > limits.max_frames {
            break;
        }
    }
    Ok(frames)
}

/// `image`'s errors, mapped to fixed codes.
pub(crate) fn classify(
    e: image::ImageError,
    format: SourceFormat,
    limits: &ImageLimits,
) -> ImageError {
    match e {
        image::ImageError::Limits(l) => match l.kind() {
            image::error::LimitErrorKind::DimensionError => ImageError::TooManyPixels {
                width: 0,
                height: 0,
                pixels: 0,
                limit: limits.max_pixels,
                setting: "max_pixels",
            },
            _ => ImageError::DecoderMemory {
                needed: 0,
                limit: limits.max_decoder_memory.bytes(),
            },
        },
        // A format Intake takes (sniffed before any decoder runs), in a variant its decoder
        // does not read: palette or CIELab TIFF, CCITT compression, OS/2 BMP headers…
        image::ImageError::Unsupported(u) => ImageError::UnsupportedVariant {
            format: format.name(),
            detail: u.to_string(),
        },
        other => ImageError::corrupt(other),
    }
}
