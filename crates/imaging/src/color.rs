//! Embedded ICC profiles converted to sRGB (qcms, Firefox's colour management), so a
//! Display P3 or Adobe RGB photo does not look washed out once its profile is stripped.

use qcms::{DataType, Intent, Profile, Transform};

use crate::decode::Pixels;

/// Converts `pixels` from `icc` to sRGB in place. Returns whether it did: profiles that are
/// already sRGB, unparsable, or of another colour space (gray, CMYK) are left alone.
pub(crate) fn to_srgb(pixels: &mut Pixels, icc: &[u8]) -> bool {
    let Some(profile) = Profile::new_from_slice(icc, false) else {
        return false;
    };
    if profile.is_sRGB() {
        return false;
    }
    let data_type = if pixels.channels == 4 {
        DataType::RGBA8
    } else {
        DataType::RGB8
    };
    let Some(transform) = Transform::new(
        &profile,
        &Profile::new_sRGB(),
        data_type,
        Intent::Perceptual,
    ) else {
        return false;
    };
    transform.apply(&mut pixels.data);
    true
}
