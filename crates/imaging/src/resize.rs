//! Resampling with `fast_image_resize` (SIMD): Lanczos3 over a crop box, premultiplying
//! alpha so transparent pixels do not bleed their hidden colour into the edges.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use crate::decode::Pixels;
use crate::error::ImageError;

/// The `(left, top, width, height)` region of `source`, scaled to `width × height`.
pub(crate) fn resize(
    source: &Pixels,
    crop: (f64, f64, f64, f64),
    width: u32,
    height: u32,
) -> Result<Pixels, ImageError> {
    let pixel_type = if source.channels == 4 {
        PixelType::U8x4
    } else {
        PixelType::U8x3
    };
    let src = ImageRef::new(source.width, source.height, &source.data, pixel_type)
        .map_err(|e| ImageError::corrupt(format!("resampler input: {e}")))?;
    let mut dst = Image::new(width, height, pixel_type);
    let (left, top, crop_width, crop_height) = crop;
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .crop(left, top, crop_width, crop_height);
    Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| ImageError::corrupt(format!("resampler: {e}")))?;
    Ok(Pixels {
        width,
        height,
        channels: source.channels,
        data: dst.into_vec(),
    })
}
