//! JPEG through libjpeg-turbo (the `mozjpeg` crate): header reading, shrink-on-load decoding
//! (scale n/8 in the DCT domain), CMYK to RGB, and the APP1 (EXIF orientation), APP2 (ICC) and APP14 (Adobe) markers.
//!
//! libjpeg reports fatal errors through a callback that must not return; the `mozjpeg`
//! crate unwinds out of it, so every call here runs inside `catch_unwind`. It also silences
//! warnings, and a truncated file is only a warning to libjpeg (it pads the image with
//! grey), as is a scan whose data ends before the frame it draws (a header that claims more
//! pixels than the file holds), so this module installs its own error manager that
//! remembers "premature end of data": such uploads must fail, not become half-grey
//! thumbnails.

use std::cell::Cell;
use std::os::raw::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind};

use mozjpeg::{ColorSpace, Decompress, Marker};
use mozjpeg_sys as ffi;

use crate::error::ImageError;

pub(crate) struct Header {
    pub width: u32,
    pub height: u32,
    pub components: u32,
    pub progressive: bool,
}

/// Pixels decoded from a JPEG: RGB8, `width × height × 3` bytes.
pub(crate) struct Decoded {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
    pub icc: Option<Vec<u8>>,
    /// The source was CMYK (its ICC profile, if any, describes CMYK and is not applied).
    pub cmyk: bool,
}

thread_local! {
    static TRUNCATED: Cell<bool> = const { Cell::new(false) };
}

/// libjpeg-turbo's JWRN_JPEG_EOF: "Premature end of JPEG file".
const JWRN_JPEG_EOF: c_int = 120;
/// libjpeg-turbo's JWRN_HIT_MARKER: "Corrupt JPEG data: premature end of data segment"
/// (the entropy-coded data ran out before the scan's last block).
const JWRN_HIT_MARKER: c_int = 117;

unsafe extern "C-unwind" fn remember_truncation(cinfo: &mut ffi::jpeg_common_struct, level: c_int) {
    // SAFETY: libjpeg calls this with its own valid cinfo, whose `err` points at the error
    // manager installed below for the lifetime of the decompressor.
    let code = unsafe { (*cinfo.err).msg_code };
    if level < 0 && (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER) {
        TRUNCATED.with(|t| t.set(true));
    }
}

unsafe extern "C-unwind" fn unwind_on_error(cinfo: &mut ffi::jpeg_common_struct) {
    let mut buffer = [0u8; 80];
    // SAFETY: as above; format_message writes at most JMSG_LENGTH_MAX (80) bytes.
    let message = unsafe {
        match (*cinfo.err).format_message {
            Some(format) => {
                // The binding declares the buffer `&[u8; 80]` although libjpeg writes to it.
                let format = std::mem::transmute::<
                    unsafe extern "C-unwind" fn(&mut ffi::jpeg_common_struct, &[u8; 80]),
                    unsafe extern "C-unwind" fn(&mut ffi::jpeg_common_struct, &mut [u8; 80]),
                >(format);
                format(cinfo, &mut buffer);
                let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
                String::from_utf8_lossy(&buffer[..end]).into_owned()
            }
            None => format!("libjpeg error {}", (*cinfo.err).msg_code),
        }
    };
    std::panic::resume_unwind(Box::new(message));
}

fn error_manager() -> ffi::jpeg_error_mgr {
    // SAFETY: jpeg_std_error fills every field of a zeroed manager.
    unsafe {
        let mut err: ffi::jpeg_error_mgr = std::mem::zeroed();
        ffi::jpeg_std_error(&mut err);
        err.error_exit = Some(unwind_on_error);
        err.emit_message = Some(remember_truncation);
        err
    }
}

/// Runs libjpeg work, turning its unwinding errors into [`ImageError::Corrupt`].
fn guarded<T>(work: impl FnOnce() -> std::io::Result<T>) -> Result<T, ImageError> {
    TRUNCATED.with(|t| t.set(false));
    let result = catch_unwind(AssertUnwindSafe(work));
    let truncated = TRUNCATED.with(|t| t.replace(false));
    match result {
        Ok(Ok(_)) if truncated => Err(ImageError::corrupt(
            "the JPEG data ends before the image does (truncated upload?)",
        )),
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(ImageError::corrupt(e)),
        Err(panic) => Err(ImageError::corrupt(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "the JPEG decoder failed".into()),
        )),
    }
}

pub(crate) fn header(bytes: &[u8]) -> Result<Header, ImageError> {
    guarded(|| {
        let decompress = Decompress::with_err(error_manager()).from_mem(bytes)?;
        let (width, height) = decompress.size();
        Ok(Header {
            width: width as u32,
            height: height as u32,
            components: decompress.components().len() as u32,
            progressive: is_progressive(bytes),
        })
    })
}

/// The EXIF orientation (1–8) from the first APP1 segment, if there is one.
pub(crate) fn orientation(bytes: &[u8]) -> Option<u8> {
    let mut at = 2;
    while at + 4 <= bytes.len() && bytes[at] == 0xFF {
        let marker = bytes[at + 1];
        if marker == 0xDA
            || (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker)
        {
            return None;
        }
        let length = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        let segment = bytes.get(at + 4..at + 2 + length)?;
        if marker == 0xE1
            && let Some(tiff) = segment.strip_prefix(b"Exif\0\0")
        {
            return image::metadata::Orientation::from_exif_chunk(tiff).map(|o| o.to_exif());
        }
        at += 2 + length;
    }
    None
}

/// Whether the first frame header is SOF2 (progressive), by walking the marker segments.
fn is_progressive(bytes: &[u8]) -> bool {
    let mut at = 2;
    while at + 4 <= bytes.len() {
        if bytes[at] != 0xFF {
            return false;
        }
        let marker = bytes[at + 1];
        match marker {
            0xC2 | 0xC6 | 0xCA | 0xCE => return true,
            0xC0 | 0xC1 | 0xC3 | 0xC5 | 0xC7 | 0xC9 | 0xCB | 0xCD | 0xCF | 0xDA => return false,
            0xFF => at += 1,
            _ => {
                let length = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
                at += 2 + length;
            }
        }
    }
    false
}

/// Decodes at `numerator / 8` of full size (libjpeg rounds the dimensions up).
pub(crate) fn decode(bytes: &[u8], numerator: u8) -> Result<Decoded, ImageError> {
    guarded(|| {
        let markers = [Marker::APP(2), Marker::APP(14)];
        let mut decompress = Decompress::with_err(error_manager())
            .with_markers(&markers)
            .from_mem(bytes)?;
        let mut icc_chunks: Vec<(u8, Vec<u8>)> = Vec::new();
        let mut adobe = false;
        for marker in decompress.markers() {
            match marker.marker {
                Marker::APP(2)
                    if marker.data.starts_with(b"ICC_PROFILE\0") && marker.data.len() > 14 =>
                {
                    icc_chunks.push((marker.data[12], marker.data[14..].to_vec()));
                }
                Marker::APP(14) if marker.data.starts_with(b"Adobe") => adobe = true,
                _ => {}
            }
        }
        icc_chunks.sort_by_key(|(sequence, _)| *sequence);
        let icc = (!icc_chunks.is_empty()).then(|| {
            icc_chunks
                .into_iter()
                .flat_map(|(_, data)| data)
                .collect::<Vec<u8>>()
        });
        decompress.scale(numerator);
        let cmyk = matches!(
            decompress.color_space(),
            ffi::J_COLOR_SPACE::JCS_CMYK | ffi::J_COLOR_SPACE::JCS_YCCK
        );
        let (width, height, rgb) = if cmyk {
            let mut started = decompress.to_colorspace(ColorSpace::JCS_CMYK)?;
            let (w, h) = (started.width() as u32, started.height() as u32);
            let cmyk_pixels: Vec<u8> = started.read_scanlines()?;
            started.finish()?;
            (w, h, cmyk_to_rgb(&cmyk_pixels, adobe))
        } else {
            let mut started = decompress.rgb()?;
            let (w, h) = (started.width() as u32, started.height() as u32);
            let rgb: Vec<u8> = started.read_scanlines()?;
            started.finish()?;
            (w, h, rgb)
        };
        Ok(Decoded {
            width,
            height,
            rgb,
            icc,
            cmyk,
        })
    })
}

/// The size libjpeg decodes a `width × height` JPEG at when scaled by `numerator / 8`:
/// asked of libjpeg itself (`jpeg_calc_output_dimensions` over a frame header), so that the
/// geometry tests check the crops against the decoder's own rounding, not a formula.
#[cfg(test)]
pub(crate) fn scaled_size(width: u16, height: u16, numerator: u8) -> (u32, u32) {
    let [w1, w0] = width.to_be_bytes();
    let [h1, h0] = height.to_be_bytes();
    // SOI; SOF0: 8-bit, three components, luma 2×2 (4:2:0); SOS for the three.
    #[rustfmt::skip]
    let header = [
        0xFF, 0xD8,
        0xFF, 0xC0, 0, 17, 8, h1, h0, w1, w0, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1,
        0xFF, 0xDA, 0, 12, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0,
    ];
    let mut err = error_manager();
    // SAFETY: the decompressor lives only in this block; its error manager and the header
    // outlive it; errors unwind (failing the test), which libjpeg's state survives.
    unsafe {
        let mut cinfo: ffi::jpeg_decompress_struct = std::mem::zeroed();
        cinfo.common.err = &mut err;
        ffi::jpeg_create_decompress(&mut cinfo);
        ffi::jpeg_mem_src(&mut cinfo, header.as_ptr(), header.len() as _);
        ffi::jpeg_read_header(&mut cinfo, 1);
        cinfo.scale_num = numerator.into();
        cinfo.scale_denom = 8;
        ffi::jpeg_calc_output_dimensions(&mut cinfo);
        let size = (cinfo.output_width, cinfo.output_height);
        ffi::jpeg_destroy_decompress(&mut cinfo);
        size
    }
}

/// Naive CMYK to RGB (no ICC): Adobe applications write CMYK JPEGs inverted.
fn cmyk_to_rgb(cmyk: &[u8], inverted: bool) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let [c, m, y, k] = if inverted {
            [px[0], px[1], px[2], px[3]]
        } else {
            [255 - px[0], 255 - px[1], 255 - px[2], 255 - px[3]]
        }
        .map(u32::from);
        rgb.extend([c * k / 255, m * k / 255, y * k / 255].map(|v| v as u8));
    }
    rgb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmyk_conversion_handles_both_polarities() {
        // White: no ink. Inverted storage writes 255 for "no ink".
        assert_eq!(
            cmyk_to_rgb(&[255, 255, 255, 255], true),
            vec![255, 255, 255]
        );
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 0], false), vec![255, 255, 255]);
        // Full black ink.
        assert_eq!(cmyk_to_rgb(&[255, 255, 255, 0], true), vec![0, 0, 0]);
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 255], false), vec![0, 0, 0]);
        // Pure cyan ink: no red.
        assert_eq!(cmyk_to_rgb(&[0, 255, 255, 255], true), vec![0, 255, 255]);
    }
}
