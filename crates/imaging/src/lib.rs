//! Image renditions without IO: everything between an object's bytes and the encoded
//! renditions the thumbnail stage uploads. The S3 side lives in `intake-stage-thumbnail`;
//! the benchmark (`intake bench thumbnail`) calls [`render`] directly.
//!
//! The order of work is what makes it fast and safe:
//! 1. [`probe`] reads only the header and checks it against [`ImageLimits`] (pixels, sides,
//!    frames, decoder memory) before a pixel is decoded; a TIFF's first directory is
//!    checked for impossible tag sizes before the TIFF decoder reads it (`tiff_ifd`).
//! 2. JPEGs decode through libjpeg-turbo (the `mozjpeg` crate) with shrink-on-load: scaled
//!    by 1/2, 1/4 or 1/8 in the DCT domain when every rendition is that much smaller,
//!    leaving at least a factor of two for the resampler (the rule libvips uses). Other
//!    formats decode through `image` with its `Limits`.
//! 3. One decode serves every rendition: each one resamples (Lanczos3, SIMD, premultiplied
//!    alpha) from the smallest full-frame image already made that is at least twice its size.
//! 4. ICC profiles are converted to sRGB (qcms); the EXIF orientation is applied to each
//!    small output; encoders write no EXIF, XMP or GPS.
//!
//! `samples` (feature `samples`, off by default) makes synthetic images of every format
//! and hostile case for the tests, the testkit and `intake bench`; the shipped stage
//! does not link it.

mod color;
mod decode;
mod encode;
mod error;
mod geometry;
mod jpeg;
mod probe;
mod render;
mod resize;
#[cfg(feature = "samples")]
pub mod samples;
mod tiff_ifd;

pub use encode::OutputFormat;
pub use error::ImageError;
pub use intake_core::config::{Fit, ImageLimits, Rendition, RenditionFormat};
pub use probe::{Probe, SourceFormat, probe};
pub use render::{Render, Rendered, render};
