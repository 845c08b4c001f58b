//! Why an image could not be rendered, each with a fixed code for outcomes and metrics.

/// A rendering failure. Every variant is permanent for that object version: retrying the
/// same bytes gives the same answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error(
        "image is {width}×{height} ({pixels} pixels), over the limit of {limit}; raise stages.thumbnail.images.{setting} if such images are expected"
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
        "decoding needs about {needed} bytes, over max_decoder_memory {limit}; raise stages.thumbnail.images.max_decoder_memory if such images are expected"
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
    #[error("encoding the {rendition} rendition failed: {reason}")]
    Encode { rendition: String, reason: String },
}

impl ImageError {
    /// The fixed code in the `failed` outcome and the metrics dimension.
    pub fn code(&self) -> &'static str {
        match self {
            ImageError::TooManyPixels { .. } => "too_many_pixels",
            ImageError::TooManyFrames { .. } => "too_many_frames",
            ImageError::DecoderMemory { .. } => "decoder_memory_exceeded",
            ImageError::Empty { .. } => "empty_image",
            ImageError::Corrupt { .. } => "corrupt_image",
            ImageError::Unsupported { .. } => "unsupported_image",
            ImageError::Encode { .. } => "encode_failed",
        }
    }

    pub(crate) fn corrupt(reason: impl std::fmt::Display) -> Self {
        ImageError::Corrupt {
            reason: reason.to_string(),
        }
    }
}
