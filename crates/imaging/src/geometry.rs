//! Pure arithmetic of a rendition: output size, centre crop, and how far a JPEG may be
//! shrunk on load. No pixels here, so it is cheap to test exhaustively.

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

#[cfg(test)]
mod tests {
    use super::*;
    use intake_core::config::RenditionFormat;
    use proptest::prelude::*;

    fn rendition(width: u32, height: u32, fit: Fit) -> Rendition {
        Rendition {
            name: "r".into(),
            width,
            height,
            fit,
            format: RenditionFormat::Auto,
            quality: 80,
        }
    }

    #[test]
    fn contain_fits_inside_and_keeps_the_aspect() {
        let l = layout(6000, 4000, &rendition(1024, 1024, Fit::Contain), false);
        assert_eq!((l.out_width, l.out_height), (1024, 683));
        assert!(l.is_full_frame(6000, 4000));
    }

    #[test]
    fn cover_fills_the_box_and_crops_the_centre() {
        let l = layout(6000, 4000, &rendition(256, 256, Fit::Cover), false);
        assert_eq!((l.out_width, l.out_height), (256, 256));
        assert_eq!((l.crop_width, l.crop_height), (4000.0, 4000.0));
        assert_eq!((l.crop_left, l.crop_top), (1000.0, 0.0));
    }

    #[test]
    fn a_turned_image_gets_the_box_turned() {
        // Stored 4000 wide, 3000 high; shown 3000 wide, 4000 high: a 200×100 box shown
        // becomes 100×200 over the stored pixels. The shown height limits (4000 → 100), so
        // it is shown 75×100, stored 100×75.
        let l = layout(4000, 3000, &rendition(200, 100, Fit::Contain), true);
        assert_eq!((l.out_width, l.out_height), (100, 75));
    }

    #[test]
    fn small_sources_are_never_enlarged() {
        let l = layout(100, 50, &rendition(1024, 1024, Fit::Contain), false);
        assert_eq!((l.out_width, l.out_height), (100, 50));
        let l = layout(100, 50, &rendition(256, 256, Fit::Cover), false);
        assert_eq!((l.out_width, l.out_height), (100, 50));
        assert_eq!(l.shrink(), 1.0);
    }

    #[test]
    fn shrink_on_load_leaves_a_factor_of_two() {
        assert_eq!(jpeg_scale_numerator(1.0), 8);
        assert_eq!(jpeg_scale_numerator(3.9), 8);
        assert_eq!(jpeg_scale_numerator(5.3), 4);
        assert_eq!(jpeg_scale_numerator(14.2), 2);
        assert_eq!(jpeg_scale_numerator(30.0), 1);
    }

    proptest! {
        #[test]
        fn layouts_stay_inside_the_source_and_the_box(
            w in 1u32..20_000, h in 1u32..20_000,
            bw in 1u32..4096, bh in 1u32..4096,
            cover in any::<bool>(), swap in any::<bool>(),
        ) {
            let fit = if cover { Fit::Cover } else { Fit::Contain };
            let r = rendition(bw, bh, fit);
            let l = layout(w, h, &r, swap);
            let (box_w, box_h) = if swap { (bh, bw) } else { (bw, bh) };
            prop_assert!(l.out_width >= 1 && l.out_height >= 1);
            prop_assert!(l.out_width <= box_w && l.out_height <= box_h);
            prop_assert!(l.out_width <= w && l.out_height <= h);
            prop_assert!(l.crop_left >= 0.0 && l.crop_top >= 0.0);
            prop_assert!(l.crop_left + l.crop_width <= f64::from(w) + 1e-6);
            prop_assert!(l.crop_top + l.crop_height <= f64::from(h) + 1e-6);
            prop_assert!(l.shrink() >= 0.999);
        }
    }
}
