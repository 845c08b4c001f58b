//! `[classes.*]`: the content classes an upload may belong to (judged by detected type),
//! their size limits, and the renditions the thumbnail stage makes of them.

use serde::{Deserialize, Serialize};

use super::defaults;
use crate::size::ByteSize;

/// A family of allowed uploads, judged by detected (magic-byte) type.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ContentClass {
    pub types: Vec<String>,
    pub max_size: ByteSize,
    /// Renditions the thumbnail stage makes of every object of this class (none: `skipped`).
    #[serde(default)]
    pub renditions: Vec<Rendition>,
}

/// One derived image: `thumb` 256×256 `cover`, `preview` 1024×1024 `contain`...
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rendition {
    /// Part of the rendition's key: lowercase letters, digits, `-` and `_`.
    pub name: String,
    pub width: u32,
    pub height: u32,
    #[serde(default)]
    pub fit: Fit,
    #[serde(default)]
    pub format: RenditionFormat,
    /// Encoder quality 1–100 (JPEG and WebP; PNG is lossless).
    #[serde(default = "defaults::rendition_quality")]
    pub quality: u8,
}

/// How the source is fitted into width × height. Neither ever enlarges the source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Scale to fill the box, then crop the overflow around the centre.
    Cover,
    /// Scale to fit inside the box, keeping the whole image.
    #[default]
    Contain,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RenditionFormat {
    /// WebP (it keeps alpha); PNG or JPEG only when the rendition is too large for WebP.
    #[default]
    Auto,
    /// JPEG has no alpha: transparent sources are flattened onto white.
    Jpeg,
    Webp,
    Png,
}

impl RenditionFormat {
    pub fn name(self) -> &'static str {
        match self {
            RenditionFormat::Auto => "auto",
            RenditionFormat::Jpeg => "jpeg",
            RenditionFormat::Webp => "webp",
            RenditionFormat::Png => "png",
        }
    }
}
