//! Files to upload in tests, made at run time: a clean photo, the EICAR anti-virus test
//! file (found by the [`clamd`](crate::clamd) fixture's signature database), and a real
//! executable, which validation rejects.

#![warn(missing_docs)]

/// A clean 640×480 JPEG photo (a colour gradient), which goes through every stage to
/// `done` with renditions.
///
/// ```
/// let jpeg = intake_testkit::samples::jpeg();
/// assert_eq!(&jpeg[..3], b"\xff\xd8\xff");
/// ```
pub fn jpeg() -> Vec<u8> {
    intake_imaging::samples::photo_jpeg(640, 480, 85)
}

/// A JPEG of the given size and quality.
///
/// ```
/// let jpeg = intake_testkit::samples::jpeg_sized(64, 32, 70);
/// assert_eq!(&jpeg[..2], b"\xff\xd8");
/// ```
pub fn jpeg_sized(width: u32, height: u32, quality: u8) -> Vec<u8> {
    intake_imaging::samples::photo_jpeg(width, height, quality)
}

/// A PNG with an alpha channel.
///
/// ```
/// let png = intake_testkit::samples::png(16, 16);
/// assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
/// ```
pub fn png(width: u32, height: u32) -> Vec<u8> {
    intake_imaging::samples::png_rgba(width, height)
}

/// The EICAR anti-virus test file: harmless, and flagged by every scanner (with
/// [`Scanner::Clamd`](crate::stack::Scanner::Clamd) an upload of it ends `quarantined`).
/// Assembled at run time, so no file in your repository holds it.
///
/// ```
/// assert!(intake_testkit::samples::eicar().starts_with(b"X5O!P%@AP"));
/// ```
pub fn eicar() -> Vec<u8> {
    crate::clamd::eicar()
}

/// The first 4 KiB of the running test binary: a real ELF executable (on Linux), a type
/// no content class of the default config allows, so validation rejects it.
///
/// ```
/// let elf = intake_testkit::samples::elf();
/// assert_eq!(elf.len(), 4096);
/// ```
pub fn elf() -> Vec<u8> {
    let exe = std::env::current_exe()
        .and_then(std::fs::read)
        .unwrap_or_default();
    exe.into_iter().take(4096).collect()
}
