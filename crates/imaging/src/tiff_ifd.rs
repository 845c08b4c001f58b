//! A look at a TIFF's first IFD before the TIFF decoder reads it. The decoder reads most
//! tags of that directory in full when it opens the file, up to 1 MiB of values per tag,
//! each value widened to a 32-byte enum: a header with one count bit flipped made the probe
//! allocate 16 to 42 MiB (found by `tests/probe_bytes.rs`). Real header tags are small, so
//! a tag whose values exceed what any real file needs is refused here, as corrupt.

use crate::error::ImageError;

/// Strip and tile tables grow with the image (one entry per strip or tile); 1 MiB holds
/// 262,144 32-bit offsets, more than a 100-megapixel image in 16-row strips needs.
const MAX_TABLE_BYTES: u64 = 1024 * 1024;
/// Every other tag the decoder reads eagerly (sizes, bits per sample, colour maps, JPEG
/// tables) fits well within this; a 16-bit colour map is 393,216 bytes.
const MAX_TAG_BYTES: u64 = 512 * 1024;
/// Payloads the decoder reads only on request (ICC profile, XMP, IPTC, Photoshop, EXIF and
/// GPS directories): any size a file carries is left to the decoder's own limits.
const LAZY_TAGS: [u16; 6] = [34675, 700, 33723, 34377, 34665, 34853];
/// StripOffsets, StripByteCounts, TileOffsets, TileByteCounts.
const TABLE_TAGS: [u16; 4] = [273, 279, 324, 325];

/// Refuses a classic TIFF whose first IFD holds a tag too large to be real.
pub(crate) fn check_first_ifd(bytes: &[u8]) -> Result<(), ImageError> {
    let little = match bytes.get(..2) {
        Some(b"II") => true,
        Some(b"MM") => false,
        _ => return Ok(()),
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = bytes.get(at..at + 2)?.try_into().ok()?;
        Some(if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    // Anything unreadable here is left to the decoder, which reports it with its own words.
    let Some(ifd) = u32_at(4).map(|o| o as usize) else {
        return Ok(());
    };
    let Some(entries) = u16_at(ifd) else {
        return Ok(());
    };
    for i in 0..usize::from(entries) {
        let at = ifd + 2 + i * 12;
        let (Some(tag), Some(kind), Some(count)) = (u16_at(at), u16_at(at + 2), u32_at(at + 4))
        else {
            break;
        };
        if LAZY_TAGS.contains(&tag) {
            continue;
        }
        let size = u64::from(count) * value_size(kind);
        let limit = if TABLE_TAGS.contains(&tag) {
            MAX_TABLE_BYTES
        } else {
            MAX_TAG_BYTES
        };
        if size > limit {
            return Err(ImageError::Corrupt {
                reason: format!(
                    "TIFF tag {tag} declares {count} values ({size} bytes), more than any real \
                     image's header holds ({limit} bytes)"
                ),
            });
        }
    }
    Ok(())
}

/// Bytes per value of a TIFF field type; unknown types count as 1 (the decoder refuses them).
fn value_size(kind: u16) -> u64 {
    match kind {
        3 | 8 => 2,                 // SHORT, SSHORT
        4 | 9 | 11 | 13 => 4,       // LONG, SLONG, FLOAT, IFD
        5 | 10 | 12 | 16..=18 => 8, // RATIONAL, SRATIONAL, DOUBLE, LONG8, SLONG8, IFD8
        _ => 1,                     // BYTE, ASCII, SBYTE, UNDEFINED
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples;

    /// The first IFD entry's count field of a little-endian sample.
    fn with_count(tag_index: usize, count: u32) -> Vec<u8> {
        let mut tiff = samples::tiff(24, 16);
        let ifd = u32::from_le_bytes(tiff[4..8].try_into().unwrap()) as usize;
        let at = ifd + 2 + tag_index * 12 + 4;
        tiff[at..at + 4].copy_from_slice(&count.to_le_bytes());
        tiff
    }

    #[test]
    fn real_headers_pass_and_a_huge_count_is_refused_as_corrupt() {
        check_first_ifd(&samples::tiff(24, 16)).unwrap();
        let err = check_first_ifd(&with_count(0, 1 << 19)).unwrap_err();
        assert_eq!(err.code(), "corrupt_image", "{err}");
        // Short or foreign bytes are the decoder's to judge.
        check_first_ifd(b"II*\0").unwrap();
        check_first_ifd(b"II*\0\xff\xff\xff\xff").unwrap();
        check_first_ifd(b"not a tiff").unwrap();
    }
}
