//! Why an image could not be rendered, each with a fixed code for outcomes and metrics.

/// A rendering failure. Every variant is permanent for that object version: retrying the
/// same bytes gives the same answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error(
        "image is {}, over the limit of {limit}; raise stages.thumbnail.images.{setting} if such images are expected",
        size_text(*width, *height, *pixels)
    )]
    TooManyPixels {
        width: u64,
        height: u64,
        pixels: u64,
        limit: u64,
        setting: &'static str,
    },
    #[error(
        "animation has more than {limit} frames; raise stages.thumbnail.images.max_frames if such images are expected"
    )]
    TooManyFrames { limit: u32 },
    #[error(
        "decoding needs {}, over max_decoder_memory {limit}; raise stages.thumbnail.images.max_decoder_memory if such images are expected",
        needed_text(*needed)
    )]
    DecoderMemory { needed: u64, limit: u64 },
    #[error("image has no pixels (declared {width}×{height})")]
    Empty { width: u64, height: u64 },
    #[error("image data is corrupt or truncated: {reason}")]
    Corrupt { reason: String },
    #[error(
        "{format} images cannot be rendered; renditions are made of JPEG, PNG, GIF, WebP, TIFF and BMP"
    )]
    Unsupported { format: String },
    #[error(
        "this {format} file uses a variant Intake's decoder does not read ({detail}); re-save it as 8-bit RGB {format}, PNG or baseline JPEG (docs/architecture.md, \"Image limits\")"
    )]
    UnsupportedVariant {
        format: &'static str,
        detail: String,
    },
    #[error("encoding the {rendition} rendition failed: {reason}")]
    Encode { rendition: String, reason: String },
}

/// The size part of [`ImageError::TooManyPixels`]: a decoder that refuses a size from deep
/// inside its own header (a TIFF strip, a BMP row) does not say which size it was (0s).
fn size_text(width: u64, height: u64, pixels: u64) -> String {
    if pixels == 0 {
        "larger than its decoder allows (the decoder did not say how large)".to_owned()
    } else {
        format!("{width}×{height} ({pixels} pixels)")
    }
}

/// The amount in [`ImageError::DecoderMemory`]: 0 when the decoder refused an allocation
/// without saying how large.
fn needed_text(needed: u64) -> String {
    if needed == 0 {
        "more memory than allowed (the decoder refused an allocation its header asked for)"
            .to_owned()
    } else {
        format!("about {needed} bytes")
    }
}

impl ImageError {
    /// Every code [`ImageError::code`] can return: the fixed set callers and tests check
    /// against.
    pub const CODES: [&'static str; 7] = [
        "too_many_pixels",
        "too_many_frames",
        "decoder_memory_exceeded",
        "empty_image",
        "corrupt_image",
        "unsupported_image",
        "encode_failed",
    ];

    /// The fixed code in the `failed` outcome and the metrics dimension (one of
    /// [`ImageError::CODES`]).
    pub fn code(&self) -> &'static str {
        match self {
            ImageError::TooManyPixels { .. } => "too_many_pixels",
            ImageError::TooManyFrames { .. } => "too_many_frames",
            ImageError::DecoderMemory { .. } => "decoder_memory_exceeded",
            ImageError::Empty { .. } => "empty_image",
            ImageError::Corrupt { .. } => "corrupt_image",
            ImageError::Unsupported { .. } | ImageError::UnsupportedVariant { .. } => {
                "unsupported_image"
            }
            ImageError::Encode { .. } => "encode_failed",
        }
    }

    pub(crate) fn corrupt(reason: impl std::fmt::Display) -> Self {
        ImageError::Corrupt {
            reason: reason.to_string(),
        }
    }
}
