//! The rendition geometry over every input it can meet: source sizes from 1×1 to past
//! 20,000 px a side, every JPEG shrink-on-load factor (with libjpeg's own rounding of the
//! decoded size), every EXIF orientation, cover and contain, any box a config allows.
//! Each check runs [`plan`], the function `render` calls, and asserts what the resampler
//! will check (every crop inside the pixels it is read from) and what the user sees (the
//! output's size against the box).

use super::*;
use crate::jpeg;
use intake_core::config::RenditionFormat;
use proptest::prelude::*;

/// The largest box side a config accepts (`MAX_RENDITION_SIDE` in intake-core).
const MAX_BOX: u32 = 8192;
/// The shrink-on-load factors `jpeg_scale_numerator` can pick (of 8).
const NUMERATORS: [u8; 4] = [1, 2, 4, 8];

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

/// pipeline.toml's `[[classes.image.renditions]]`.
fn defaults() -> Vec<Rendition> {
    vec![
        rendition(256, 256, Fit::Cover),
        rendition(1024, 1024, Fit::Contain),
    ]
}

fn ceil_scaled(side: u32, numerator: u8) -> u32 {
    (side * u32::from(numerator)).div_ceil(8)
}

/// Everything a plan must hold for a `stored` image decoded at `decoded` and shown turned
/// by 90° when `swap`. `Err` names the broken rule.
fn check_plan(
    stored: (u32, u32),
    swap: bool,
    renditions: &[Rendition],
    decoded: (u32, u32),
    shrunk_on_load: bool,
) -> Result<(), String> {
    let steps = plan(stored, swap, renditions, decoded);
    let context = format!("stored {stored:?} decoded {decoded:?} swap {swap}");
    let mut seen = vec![false; renditions.len()];
    let (shown_w, shown_h) = if swap { (stored.1, stored.0) } else { stored };
    for (n, step) in steps.iter().enumerate() {
        let r = &renditions[step.rendition];
        if std::mem::replace(&mut seen[step.rendition], true) {
            return Err(format!(
                "{context}: rendition {} planned twice",
                step.rendition
            ));
        }
        let (src_w, src_h) = match step.source {
            Source::Decoded => decoded,
            Source::Rendition(j) => {
                let earlier = steps[..n]
                    .iter()
                    .find(|s| s.rendition == j && s.keep)
                    .ok_or_else(|| format!("{context}: step {n} reads {j}, not kept before it"))?;
                (earlier.out_width, earlier.out_height)
            }
        };
        let (sw, sh) = (f64::from(src_w), f64::from(src_h));
        let c = step.crop;
        // What fast_image_resize's CroppedSrcImageView::crop checks, plus a non-empty box
        // (it silently leaves the output blank for an empty one).
        let inside = c.width > 0.0
            && c.height > 0.0
            && c.left >= 0.0
            && c.top >= 0.0
            && c.left < sw
            && c.top < sh
            && c.left + c.width <= sw
            && c.top + c.height <= sh;
        if !inside {
            return Err(format!(
                "{context}: step {n} crop {c:?} is outside its {src_w}×{src_h} source"
            ));
        }
        for v in [c.left, c.top, c.width, c.height] {
            if (v * GRID).fract() != 0.0 {
                return Err(format!("{context}: crop {c:?} is off the grid"));
            }
        }
        // Centred, whatever the source's scale.
        let off_x = (c.left + c.width / 2.0 - sw / 2.0).abs();
        let off_y = (c.top + c.height / 2.0 - sh / 2.0).abs();
        if off_x > 0.01 || off_y > 0.01 {
            return Err(format!(
                "{context}: crop {c:?} not centred in {src_w}×{src_h}"
            ));
        }
        // The output as shown, against the box.
        let (out_w, out_h) = if swap {
            (step.out_height, step.out_width)
        } else {
            (step.out_width, step.out_height)
        };
        let (bw, bh) = (r.width, r.height);
        match r.fit {
            Fit::Cover => {
                let want = (bw.min(shown_w), bh.min(shown_h));
                if (out_w, out_h) != want {
                    return Err(format!(
                        "{context}: cover {bw}×{bh} gave {out_w}×{out_h}, want {want:?}"
                    ));
                }
            }
            Fit::Contain => {
                let fits = out_w >= 1 && out_h >= 1 && out_w <= bw && out_h <= bh;
                let fits = fits && out_w <= shown_w && out_h <= shown_h;
                let touches = out_w == bw.min(shown_w) || out_h == bh.min(shown_h);
                let scale = (f64::from(bw) / f64::from(shown_w))
                    .min(f64::from(bh) / f64::from(shown_h))
                    .min(1.0);
                let near = |out: u32, side: u32| {
                    out == 1 || (f64::from(out) - f64::from(side) * scale).abs() <= 0.5 + 1e-9
                };
                if !(fits && touches && near(out_w, shown_w) && near(out_h, shown_h)) {
                    return Err(format!("{context}: contain {bw}×{bh} gave {out_w}×{out_h}"));
                }
                if c.left != 0.0 || c.top != 0.0 || c.width != sw || c.height != sh {
                    return Err(format!("{context}: contain crops {c:?}"));
                }
            }
        }
        // Shrink-on-load leaves the resampler at least a factor of two (its reason to be).
        if shrunk_on_load && step.source == Source::Decoded {
            let per_px =
                (c.width / f64::from(step.out_width)).min(c.height / f64::from(step.out_height));
            if per_px < 2.0 - 1.0 / 64.0 {
                return Err(format!(
                    "{context}: step {n} has {per_px} decoded pixels per output pixel"
                ));
            }
        }
    }
    if seen.iter().any(|s| !s) {
        return Err(format!("{context}: a rendition was not planned"));
    }
    Ok(())
}

/// Every factor for a JPEG (decoded sizes from `decoded_at`), and the factor `render`
/// picks: the plan must hold for all of them.
fn check_every_factor(
    stored: (u32, u32),
    swap: bool,
    renditions: &[Rendition],
    decoded_at: impl Fn(u8) -> (u32, u32),
) -> Result<(), String> {
    let chosen = jpeg_numerator(stored.0, stored.1, renditions, swap);
    for n in NUMERATORS {
        check_plan(
            stored,
            swap,
            renditions,
            decoded_at(n),
            n == chosen && n < 8,
        )?;
    }
    Ok(())
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

/// Dune.jpg (mate-backgrounds), 1680×1050: the thumbnail was cut from the 1024×640
/// preview with the stored crop scaled by 640/1050, and 1050 × (640/1050) is
/// 640.0000000000001 in f64: one ulp past the preview's last row.
#[test]
fn the_dune_crop_stays_inside_the_preview_it_is_cut_from() {
    let steps = plan((1680, 1050), false, &defaults(), (1680, 1050));
    assert_eq!(steps[0].rendition, 1, "the preview first");
    assert_eq!(steps[1].source, Source::Rendition(1), "the thumb from it");
    assert_eq!((steps[1].crop.top, steps[1].crop.height), (0.0, 640.0));
    check_plan((1680, 1050), false, &defaults(), (1680, 1050), false).unwrap();
}

/// libjpeg decodes at ⌈side × n / 8⌉ for every side a test below uses: the sweep relies
/// on this formula, the property test asks libjpeg itself.
#[test]
fn libjpeg_rounds_scaled_sides_up() {
    for side in 1..=20_000u16 {
        let other = 20_001 - side;
        for n in NUMERATORS {
            let want = (ceil_scaled(side.into(), n), ceil_scaled(other.into(), n));
            assert_eq!(
                jpeg::scaled_size(side, other, n),
                want,
                "{side}×{other} at {n}/8"
            );
        }
    }
}

/// Every width from 1 to 20,000 against a 1-pixel row, heights at the edges of the default
/// boxes, square, 3:2 and 20,000-high frames, each orientation class, every factor: the
/// default renditions and a thin and a tall box.
#[test]
fn every_width_to_20000_plans_inside_its_source() {
    let configs = [
        defaults(),
        vec![
            rendition(1, 1, Fit::Cover),
            rendition(8192, 1, Fit::Contain),
        ],
        vec![
            rendition(3, 8192, Fit::Cover),
            rendition(255, 257, Fit::Contain),
        ],
    ];
    for w in 1..=20_000u32 {
        let heights = [1, 7, 256, 1025, w, w * 2 / 3 + 1, 20_000];
        for h in heights {
            for renditions in &configs {
                for swap in [false, true] {
                    check_every_factor((w, h), swap, renditions, |n| {
                        (ceil_scaled(w, n), ceil_scaled(h, n))
                    })
                    .unwrap();
                }
            }
        }
    }
}

fn fit() -> impl Strategy<Value = Fit> {
    prop_oneof![Just(Fit::Cover), Just(Fit::Contain)]
}

fn renditions() -> impl Strategy<Value = Vec<Rendition>> {
    prop::collection::vec(
        (1..=MAX_BOX, 1..=MAX_BOX, fit()).prop_map(|(w, h, f)| rendition(w, h, f)),
        1..=4,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Any JPEG (up to 32,768 a side, the default max_width), any orientation, any boxes,
    /// decoded at every factor with libjpeg's own rounding.
    #[test]
    fn jpeg_plans_stay_inside_the_decoded_image(
        w in 1u32..=32_768, h in 1u32..=32_768,
        orientation in 1u8..=8,
        renditions in renditions(),
    ) {
        let swap = (5..=8).contains(&orientation);
        let result = check_every_factor((w, h), swap, &renditions, |n| {
            jpeg::scaled_size(w as u16, h as u16, n)
        });
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }

    /// Any other format decodes at its stored size; a decoder that reports a size off the
    /// header's by a few pixels still gets crops inside what it decoded.
    #[test]
    fn plans_stay_inside_any_decoded_size(
        w in 1u32..=32_768, h in 1u32..=32_768,
        dw in -3i64..=3, dh in -3i64..=3,
        swap in any::<bool>(),
        renditions in renditions(),
    ) {
        let decoded = (
            (i64::from(w) + dw).max(1) as u32,
            (i64::from(h) + dh).max(1) as u32,
        );
        let result = check_plan((w, h), swap, &renditions, decoded, false);
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}
