//! Pure arithmetic of a rendition: output size, centre crop, how far a JPEG may be shrunk
//! on load, and the [`plan`] that maps every crop onto the pixels it is actually taken
//! from. No pixels here, so it is cheap to test over every size (`geometry_tests.rs`).
//!
//! Two coordinate systems meet here. A [`Layout`] is worked out over the *stored* image
//! (the size in the header), since that is what the box and the centre refer to. The
//! resampler, though, reads a *decoded* image, which is smaller when a JPEG is shrunk on
//! load (libjpeg rounds each side up: ⌈side × n / 8⌉), or a full-frame rendition already
//! made (whose sides were rounded to whole pixels). [`crop_in`] maps a layout onto such a
//! source and keeps the result inside it exactly: edges on a 1/256-pixel grid (exact in
//! `f64`, so `left + width` is the right edge to the last bit) and clamped to the source.

use intake_core::config::{Fit, Rendition};

/// Where a rendition comes from in the stored (unrotated) source, in source pixels, and
/// the size it is scaled to (also unrotated).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Layout {
    pub crop_left: f64,
    pub crop_top: f64,
    pub crop_width: f64,
    pub crop_height: f64,
    pub out_width: u32,
    pub out_height: u32,
}

impl Layout {
    /// Source pixels per output pixel (≥ 1: renditions never enlarge).
    pub fn shrink(&self) -> f64 {
        (self.crop_width / f64::from(self.out_width))
            .min(self.crop_height / f64::from(self.out_height))
    }

    /// Whether the output is the whole frame (usable as a source for smaller renditions).
    pub fn is_full_frame(&self, width: u32, height: u32) -> bool {
        self.crop_left == 0.0
            && self.crop_top == 0.0
            && self.crop_width == f64::from(width)
            && self.crop_height == f64::from(height)
    }
}

/// The layout of `rendition` over a `width × height` stored image; `swap` when the EXIF
/// orientation turns it by 90° (the box is then applied to the turned image).
pub(crate) fn layout(width: u32, height: u32, rendition: &Rendition, swap: bool) -> Layout {
    let (box_w, box_h) = if swap {
        (rendition.height, rendition.width)
    } else {
        (rendition.width, rendition.height)
    };
    let (w, h) = (f64::from(width), f64::from(height));
    let (bw, bh) = (f64::from(box_w), f64::from(box_h));
    match rendition.fit {
        Fit::Contain => {
            let scale = (bw / w).min(bh / h).min(1.0);
            Layout {
                crop_left: 0.0,
                crop_top: 0.0,
                crop_width: w,
                crop_height: h,
                out_width: ((w * scale).round() as u32).clamp(1, box_w),
                out_height: ((h * scale).round() as u32).clamp(1, box_h),
            }
        }
        Fit::Cover => {
            let scale = (bw / w).max(bh / h).min(1.0);
            let out_width = ((w * scale).round() as u32).clamp(1, box_w.min(width));
            let out_height = ((h * scale).round() as u32).clamp(1, box_h.min(height));
            let crop_width = (f64::from(out_width) / scale).min(w);
            let crop_height = (f64::from(out_height) / scale).min(h);
            Layout {
                crop_left: (w - crop_width) / 2.0,
                crop_top: (h - crop_height) / 2.0,
                crop_width,
                crop_height,
                out_width,
                out_height,
            }
        }
    }
}

/// The shrink-on-load numerator (of 8) for a JPEG whose renditions need at most `shrink`
/// source pixels per output pixel: libvips' rule, leaving at least a factor of two for the
/// resampler, since the DCT shrink is a box filter that would otherwise alias.
pub(crate) fn jpeg_scale_numerator(shrink: f64) -> u8 {
    if shrink >= 16.0 {
        1
    } else if shrink >= 8.0 {
        2
    } else if shrink >= 4.0 {
        4
    } else {
        8
    }
}

/// The shrink-on-load numerator for a `width × height` stored JPEG and these renditions
/// (8, no shrink, when there are none).
pub(crate) fn jpeg_numerator(width: u32, height: u32, renditions: &[Rendition], swap: bool) -> u8 {
    let shrink = renditions
        .iter()
        .map(|r| layout(width, height, r, swap).shrink())
        .fold(f64::INFINITY, f64::min);
    if shrink.is_finite() {
        jpeg_scale_numerator(shrink)
    } else {
        8
    }
}

/// A region of a source image in that source's own pixels. Every edge is a multiple of
/// [`GRID`], so `left + width` and `top + height` are exact, and
/// `0 ≤ left < left + width ≤ source width` (the same for the rows) holds in `f64`, which is
/// how the resampler checks it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Crop {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

/// Crop edges are snapped to 1/256 of a source pixel: finer than any resampling can show,
/// and with sides below 2^16 every edge, sum and difference is exact in `f64`.
pub(crate) const GRID: f64 = 256.0;

/// `layout` (over a `stored` image) mapped onto a `source` image of the same frame at
/// another size, each axis by its own ratio, kept inside `source`.
pub(crate) fn crop_in(layout: &Layout, stored: (u32, u32), source: (u32, u32)) -> Crop {
    let axis = |start: f64, length: f64, stored: u32, source: u32| -> (f64, f64) {
        let ratio = f64::from(source) / f64::from(stored);
        let size = f64::from(source);
        let snap = |v: f64| (v * ratio * GRID).round() / GRID;
        // At least one grid step wide, and starting a step before the far edge at the latest.
        let first = snap(start).clamp(0.0, size - 1.0 / GRID);
        let end = snap(start + length).clamp(first + 1.0 / GRID, size);
        (first, end - first)
    };
    let (left, width) = axis(layout.crop_left, layout.crop_width, stored.0, source.0);
    let (top, height) = axis(layout.crop_top, layout.crop_height, stored.1, source.1);
    Crop {
        left,
        top,
        width,
        height,
    }
}

/// Which pixels a [`Step`] resamples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The decoded image.
    Decoded,
    /// The output of an earlier step (a full-frame rendition), by rendition index.
    Rendition(usize),
}

/// One rendition's resampling: from which pixels, which region of them, to which size
/// (stored orientation: the EXIF orientation is applied to the output afterwards).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Step {
    /// Index into the renditions.
    pub rendition: usize,
    pub source: Source,
    pub crop: Crop,
    pub out_width: u32,
    pub out_height: u32,
    /// The output is the whole frame: kept as a source for the steps after it.
    pub keep: bool,
}

/// The steps that make every rendition of a `stored` image that was decoded at `decoded`
/// (smaller when shrunk on load), largest output first so that a smaller rendition can be
/// resampled from a larger full-frame one. `swap`: the EXIF orientation turns the image.
pub(crate) fn plan(
    stored: (u32, u32),
    swap: bool,
    renditions: &[Rendition],
    decoded: (u32, u32),
) -> Vec<Step> {
    let layouts: Vec<Layout> = renditions
        .iter()
        .map(|r| layout(stored.0, stored.1, r, swap))
        .collect();
    let mut order: Vec<usize> = (0..renditions.len()).collect();
    order.sort_by_key(|&i| {
        std::cmp::Reverse(u64::from(layouts[i].out_width) * u64::from(layouts[i].out_height))
    });
    let mut steps: Vec<Step> = Vec::with_capacity(order.len());
    for i in order {
        let layout = layouts[i];
        let (source, size) = pick_source(&steps, &layout, stored.0, decoded);
        steps.push(Step {
            rendition: i,
            source,
            crop: crop_in(&layout, stored, size),
            out_width: layout.out_width,
            out_height: layout.out_height,
            keep: layout.is_full_frame(stored.0, stored.1),
        });
    }
    steps
}

/// The smallest full-frame output already planned that still has at least twice the
/// pixels per output pixel that `layout` needs (resampling from it looks the same as from
/// the decode, and costs a fraction); the decode itself otherwise.
fn pick_source(
    steps: &[Step],
    layout: &Layout,
    stored_w: u32,
    decoded: (u32, u32),
) -> (Source, (u32, u32)) {
    steps
        .iter()
        .filter(|s| s.keep)
        .filter(|s| layout.shrink() * f64::from(s.out_width) / f64::from(stored_w) >= 2.0)
        .min_by_key(|s| u64::from(s.out_width) * u64::from(s.out_height))
        .filter(|s| s.out_width < decoded.0)
        .map_or((Source::Decoded, decoded), |s| {
            (Source::Rendition(s.rendition), (s.out_width, s.out_height))
        })
}

#[cfg(test)]
#[path = "geometry_tests.rs"]
mod tests;
