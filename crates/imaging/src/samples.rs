//! Synthetic sample images for the tests and the benchmark (`intake bench thumbnail`):
//! every format and edge case the thumbnail stage must render, and the hostile files it
//! must refuse with a fixed code. All made in memory and deterministic (fixed seeds): the
//! same call gives the same bytes. They panic on failure, since it can only be a bug here.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use image::{DynamicImage, ImageBuffer, ImageFormat, Rgb, RgbImage, RgbaImage};
use mozjpeg::{ColorSpace, Compress, Marker};

/// Where [`jpeg_with_exif`] says the photo was taken (degrees, minutes, seconds as EXIF
/// rationals): 52° 22′ 12.34″ N, 4° 53′ 56.78″ E. A test can look for these bytes.
pub const GPS_LATITUDE: [(u32, u32); 3] = [(52, 1), (22, 1), (1234, 100)];
pub const GPS_LONGITUDE: [(u32, u32); 3] = [(4, 1), (53, 1), (5678, 100)];

/// A baseline JPEG of a photo-like image (gradients, soft shapes and grain).
pub fn photo_jpeg(width: u32, height: u32, quality: u8) -> Vec<u8> {
    let rgb = photo_rgb(width, height, 1);
    jpeg(
        &rgb,
        width,
        height,
        ColorSpace::JCS_RGB,
        Options::quality(quality),
    )
}

/// A solid-colour JPEG carrying `icc` in its APP2 markers.
pub fn solid_jpeg_with_icc(width: u32, height: u32, rgb: [u8; 3], icc: &[u8]) -> Vec<u8> {
    let pixels: Vec<u8> = (0..width * height).flat_map(|_| rgb).collect();
    jpeg(
        &pixels,
        width,
        height,
        ColorSpace::JCS_RGB,
        Options {
            icc: Some(icc),
            ..Options::quality(95)
        },
    )
}

/// An ICC v2 RGB display profile (matrix/TRC, gamma 2.2) whose red and green colorants are
/// sRGB's green and red: pixels stored as pure red *mean* green. A renderer that converts
/// to sRGB shows green; one that ignores the profile shows red.
pub fn swapped_primaries_icc() -> Vec<u8> {
    fn s15(v: f64) -> [u8; 4] {
        ((v * 65536.0).round() as i32).to_be_bytes()
    }
    fn xyz(x: f64, y: f64, z: f64) -> Vec<u8> {
        let mut tag = b"XYZ \0\0\0\0".to_vec();
        for v in [x, y, z] {
            tag.extend(s15(v));
        }
        tag
    }
    // gamma 2.2 as u8Fixed8, padded to a multiple of 4.
    let curve = [
        b"curv".as_slice(),
        &[0; 4],
        &1u32.to_be_bytes(),
        &[2, 0x33, 0, 0],
    ]
    .concat();
    let d50 = (0.9642, 1.0, 0.8249);
    // sRGB's colorants adapted to D50; red and green swapped.
    let tags: Vec<(&[u8; 4], Vec<u8>)> = vec![
        (b"rXYZ", xyz(0.3851, 0.7169, 0.0971)),
        (b"gXYZ", xyz(0.4361, 0.2225, 0.0139)),
        (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
        (b"wtpt", xyz(d50.0, d50.1, d50.2)),
        (b"rTRC", curve.clone()),
        (b"gTRC", curve.clone()),
        (b"bTRC", curve),
    ];
    let table_len = 4 + 12 * tags.len();
    let mut data = Vec::new();
    let mut table = (tags.len() as u32).to_be_bytes().to_vec();
    for (signature, body) in &tags {
        let offset = 128 + table_len + data.len();
        table.extend_from_slice(*signature);
        table.extend((offset as u32).to_be_bytes());
        table.extend((body.len() as u32).to_be_bytes());
        data.extend_from_slice(body);
    }
    let size = 128 + table_len + data.len();
    let mut header = vec![0u8; 128];
    header[0..4].copy_from_slice(&(size as u32).to_be_bytes());
    header[8..12].copy_from_slice(&[2, 0x10, 0, 0]);
    header[12..16].copy_from_slice(b"mntr");
    header[16..20].copy_from_slice(b"RGB ");
    header[20..24].copy_from_slice(b"XYZ ");
    header[36..40].copy_from_slice(b"acsp");
    header[68..72].copy_from_slice(&s15(d50.0));
    header[72..76].copy_from_slice(&s15(d50.1));
    header[76..80].copy_from_slice(&s15(d50.2));
    [header, table, data].concat()
}

/// A progressive JPEG (SOF2) of a photo-like image.
pub fn progressive_jpeg(width: u32, height: u32) -> Vec<u8> {
    let rgb = photo_rgb(width, height, 2);
    let options = Options {
        progressive: true,
        ..Options::quality(85)
    };
    jpeg(&rgb, width, height, ColorSpace::JCS_RGB, options)
}

/// A single-component (grayscale) JPEG of a photo-like image.
pub fn grayscale_jpeg(width: u32, height: u32) -> Vec<u8> {
    let gray: Vec<u8> = photo_rgb(width, height, 3)
        .chunks_exact(3)
        .map(|px| ((u32::from(px[0]) * 3 + u32::from(px[1]) * 6 + u32::from(px[2])) / 10) as u8)
        .collect();
    jpeg(
        &gray,
        width,
        height,
        ColorSpace::JCS_GRAYSCALE,
        Options::quality(85),
    )
}

/// A CMYK JPEG as Photoshop writes them: an Adobe APP14 marker (libjpeg writes it for CMYK)
/// and inverted values (255 is no ink). The left half is red-ish (magenta and yellow ink),
/// the right half blue-ish (cyan and magenta), with some grain.
pub fn cmyk_jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut noise = Noise::new(4);
    let mut cmyk = Vec::with_capacity(width as usize * height as usize * 4);
    for _y in 0..height {
        for x in 0..width {
            let grain = noise.grain(6);
            let ink = if x < width / 2 {
                [0, 235 + grain, 225 + grain, 15]
            } else {
                [225 + grain, 200 + grain, 0, 15]
            };
            cmyk.extend(ink.map(|v| 255 - channel(v)));
        }
    }
    jpeg(
        &cmyk,
        width,
        height,
        ColorSpace::JCS_CMYK,
        Options::quality(90),
    )
}

/// A JPEG whose APP1 carries [`exif_app1`]. The stored pixels are asymmetric: the top-left
/// quadrant (as stored) is red, the rest neutral grey with grain, so a test can tell where
/// the orientation put them (6, "rotate 90° clockwise to show", moves red to the top right).
pub fn jpeg_with_exif(width: u32, height: u32, orientation: u8, gps: bool) -> Vec<u8> {
    exif_jpeg(
        &red_quadrant_rgb(width, height),
        width,
        height,
        orientation,
        gps,
    )
}

fn exif_jpeg(rgb: &[u8], width: u32, height: u32, orientation: u8, gps: bool) -> Vec<u8> {
    let app1 = exif_app1(orientation, gps);
    let options = Options {
        app1: Some(&app1),
        ..Options::quality(88)
    };
    jpeg(rgb, width, height, ColorSpace::JCS_RGB, options)
}

fn red_quadrant_rgb(width: u32, height: u32) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    let mut noise = Noise::new(5);
    let mut rgb = vec![0u8; w * h * 3];
    let mut at = 0;
    for y in 0..h {
        for x in 0..w {
            let grain = noise.grain(8);
            let px = if x < w / 2 && y < h / 2 {
                [220 + grain, 30 + grain / 2, 30 + grain / 2]
            } else {
                [120 + (x * 60 / w + y * 60 / h) as i32 + grain; 3]
            };
            rgb[at..at + 3].copy_from_slice(&px.map(channel));
            at += 3;
        }
    }
    rgb
}

/// The payload of a minimal EXIF APP1 segment: `Exif\0\0`, a little-endian TIFF header,
/// IFD0 with Orientation (0x0112) and, with `gps`, a GPSInfo (0x8825) pointer to a GPS IFD
/// holding GPSVersionID, GPSLatitudeRef `N`, GPSLatitude, GPSLongitudeRef `E` and
/// GPSLongitude ([`GPS_LATITUDE`], [`GPS_LONGITUDE`]).
pub fn exif_app1(orientation: u8, gps: bool) -> Vec<u8> {
    const SHORT: u16 = 3;
    const LONG: u16 = 4;
    const ASCII: u16 = 2;
    const BYTE: u16 = 1;
    const RATIONAL: u16 = 5;
    fn entry(out: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]) {
        out.extend(tag.to_le_bytes());
        out.extend(kind.to_le_bytes());
        out.extend(count.to_le_bytes());
        out.extend(value);
    }
    let ifd0_entries: u16 = if gps { 2 } else { 1 };
    let gps_ifd = 8 + 2 + 12 * u32::from(ifd0_entries) + 4;
    let mut tiff = b"II\x2a\x00".to_vec();
    tiff.extend(8u32.to_le_bytes());
    tiff.extend(ifd0_entries.to_le_bytes());
    let [o0, o1] = u16::from(orientation).to_le_bytes();
    entry(&mut tiff, 0x0112, SHORT, 1, [o0, o1, 0, 0]);
    if gps {
        entry(&mut tiff, 0x8825, LONG, 1, gps_ifd.to_le_bytes());
    }
    tiff.extend(0u32.to_le_bytes());
    if gps {
        let gps_entries = 5u16;
        let latitude_at = gps_ifd + 2 + 12 * u32::from(gps_entries) + 4;
        let longitude_at = latitude_at + 24;
        tiff.extend(gps_entries.to_le_bytes());
        entry(&mut tiff, 0x0000, BYTE, 4, [2, 3, 0, 0]);
        entry(&mut tiff, 0x0001, ASCII, 2, *b"N\0\0\0");
        entry(&mut tiff, 0x0002, RATIONAL, 3, latitude_at.to_le_bytes());
        entry(&mut tiff, 0x0003, ASCII, 2, *b"E\0\0\0");
        entry(&mut tiff, 0x0004, RATIONAL, 3, longitude_at.to_le_bytes());
        tiff.extend(0u32.to_le_bytes());
        tiff.extend(rationals(&GPS_LATITUDE));
        tiff.extend(rationals(&GPS_LONGITUDE));
    }
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    app1
}

/// EXIF rationals as stored in a little-endian TIFF (numerator, denominator, …).
pub fn rationals(values: &[(u32, u32)]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&(n, d)| n.to_le_bytes().into_iter().chain(d.to_le_bytes()))
        .collect()
}

/// RGBA PNG: the left quarter fully transparent, then alpha rising from 64 to 255.
pub fn png_rgba(width: u32, height: u32) -> Vec<u8> {
    let rgb = photo_rgb(width, height, 6);
    let rgba: Vec<u8> = rgb
        .chunks_exact(3)
        .enumerate()
        .flat_map(|(i, px)| {
            let x = i as u32 % width;
            let alpha = if x < width / 4 {
                0
            } else {
                64 + (x - width / 4) * 191 / (width - width / 4 - 1).max(1)
            };
            [px[0], px[1], px[2], alpha as u8]
        })
        .collect();
    let image = RgbaImage::from_raw(width, height, rgba).expect("buffer matches its dimensions");
    encode_image(DynamicImage::ImageRgba8(image), ImageFormat::Png)
}

/// 16 bits per channel RGB PNG (the low byte carries grain, so it is not 8-bit widened).
pub fn png_16bit(width: u32, height: u32) -> Vec<u8> {
    let mut noise = Noise::new(7);
    let rgb16: Vec<u16> = photo_rgb(width, height, 7)
        .into_iter()
        .map(|v| u16::from(v) * 256 + (noise.next() >> 24) as u16)
        .collect();
    let image: ImageBuffer<Rgb<u16>, Vec<u16>> =
        ImageBuffer::from_raw(width, height, rgb16).expect("buffer matches its dimensions");
    encode_image(DynamicImage::ImageRgb16(image), ImageFormat::Png)
}

/// Indexed-colour PNG (8-bit palette of 256 entries), written with the `png` crate since
/// `image` cannot write palettes.
pub fn png_palette(width: u32, height: u32) -> Vec<u8> {
    let palette: Vec<u8> = (0..=255u8)
        .flat_map(|i| [i / 16 * 17, i % 16 * 17, 160])
        .collect();
    let mut noise = Noise::new(8);
    let indices: Vec<u8> = (0..height)
        .flat_map(|y| (0..width).map(move |x| (x, y)))
        .map(|(x, y)| {
            let column = (x * 16 / width.max(1)) as i32;
            let row = ((y * 16 / height.max(1)) as i32 + noise.grain(1)).clamp(0, 15);
            (column * 16 + row) as u8
        })
        .collect();
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Indexed);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_palette(palette);
    let mut writer = encoder.write_header().expect("PNG header");
    writer.write_image_data(&indices).expect("PNG data");
    writer.finish().expect("PNG end");
    out
}

/// An endlessly looping GIF of `frames` frames. The first frame is drawn only in red shades
/// (palette entries 0–127), the others only in blue shades (128–255), so a test can tell
/// which frame was rendered.
pub fn gif_frames(width: u16, height: u16, frames: u32) -> Vec<u8> {
    let palette: Vec<u8> = (0..128u16)
        .flat_map(|i| [127 + i as u8, (i / 4) as u8, (i / 4) as u8])
        .chain((0..128u16).flat_map(|i| [(i / 4) as u8, (i / 4) as u8, 127 + i as u8]))
        .collect();
    let mut encoder = gif::Encoder::new(Vec::new(), width, height, &palette).expect("GIF header");
    encoder.set_repeat(gif::Repeat::Infinite).expect("GIF loop");
    let mut buffer = vec![0u8; usize::from(width) * usize::from(height)];
    for frame in 0..frames {
        let base = if frame == 0 { 0 } else { 128 };
        for (i, index) in buffer.iter_mut().enumerate() {
            let (x, y) = (i % usize::from(width), i / usize::from(width));
            *index = base + ((x + y + frame as usize * 8) / 4 % 128) as u8;
        }
        let frame = gif::Frame {
            width,
            height,
            delay: 4,
            buffer: std::borrow::Cow::Borrowed(&buffer),
            ..gif::Frame::default()
        };
        encoder.write_frame(&frame).expect("GIF frame");
    }
    encoder.into_inner().expect("GIF trailer")
}

/// Lossy WebP (libwebp, quality 80) of a photo-like image.
pub fn webp_lossy(width: u32, height: u32) -> Vec<u8> {
    let rgb = photo_rgb(width, height, 9);
    webp::Encoder::from_rgb(&rgb, width, height)
        .encode(80.0)
        .to_vec()
}

/// Uncompressed RGB TIFF of a photo-like image.
pub fn tiff(width: u32, height: u32) -> Vec<u8> {
    encode_image(photo_image(width, height, 10), ImageFormat::Tiff)
}

/// 24-bit BMP of a photo-like image.
pub fn bmp(width: u32, height: u32) -> Vec<u8> {
    encode_image(photo_image(width, height, 11), ImageFormat::Bmp)
}

/// A decompression bomb: a valid PNG (signature, IHDR with correct CRCs, IEND) declaring
/// `width × height` RGB, whose IDAT holds a few rows.
pub fn bomb_png(width: u32, height: u32) -> Vec<u8> {
    hand_built_png(width, height, 4)
}

/// A PNG whose IHDR declares 4000×4000 but whose IDAT holds four rows (CRCs correct).
pub fn lying_header_png() -> Vec<u8> {
    hand_built_png(4000, 4000, 4)
}

/// A PNG whose IHDR declares a width of 0 (CRC correct).
pub fn zero_dimension_png() -> Vec<u8> {
    hand_built_png(0, 16, 16)
}

/// A valid photo JPEG cut to 60% of its bytes (an interrupted upload).
pub fn truncated_jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = photo_jpeg(width, height, 85);
    bytes.truncate(bytes.len() * 3 / 5);
    bytes
}

/// A small valid JPEG (64×48) whose frame header claims 4000×3000.
pub fn lying_header_jpeg() -> Vec<u8> {
    jpeg_declaring(4000, 3000)
}

/// A small valid JPEG (64×48) whose frame header (SOF) is rewritten to declare
/// `width × height`; the JPEG fields are 16 bits, so 65,535 is the most a file can claim.
pub fn jpeg_declaring(width: u16, height: u16) -> Vec<u8> {
    let mut bytes = photo_jpeg(64, 48, 80);
    let mut at = 2;
    while at + 9 <= bytes.len() && bytes[at] == 0xFF {
        if matches!(bytes[at + 1], 0xC0..=0xC2) {
            bytes[at + 5..at + 7].copy_from_slice(&height.to_be_bytes());
            bytes[at + 7..at + 9].copy_from_slice(&width.to_be_bytes());
            return bytes;
        }
        at += 2 + usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
    }
    panic!("the sample JPEG has no frame header before offset {at}")
}

/// Zero bytes.
pub fn empty_file() -> Vec<u8> {
    Vec::new()
}

/// The valid edge cases the benchmark adds to its corpus, named with their extension. The
/// photo-like ones are 1–4 megapixels.
pub fn edge_cases() -> Vec<(&'static str, Vec<u8>)> {
    const ORIENTED: [&str; 8] = [
        "edge-orientation-1.jpg",
        "edge-orientation-2.jpg",
        "edge-orientation-3.jpg",
        "edge-orientation-4.jpg",
        "edge-orientation-5.jpg",
        "edge-orientation-6.jpg",
        "edge-orientation-7.jpg",
        "edge-orientation-8.jpg",
    ];
    let mut cases = vec![
        ("edge-cmyk.jpg", cmyk_jpeg(1600, 1200)),
        ("edge-progressive.jpg", progressive_jpeg(2048, 1536)),
        ("edge-grayscale.jpg", grayscale_jpeg(2048, 1536)),
        ("edge-16bit.png", png_16bit(1280, 960)),
        ("edge-alpha.png", png_rgba(1280, 960)),
        ("edge-palette.png", png_palette(1024, 768)),
        ("edge.gif", gif_frames(480, 360, 12)),
        ("edge.webp", webp_lossy(2048, 1536)),
        ("edge.tiff", tiff(1600, 1200)),
        ("edge.bmp", bmp(1600, 1200)),
    ];
    let rgb = red_quadrant_rgb(1600, 1200);
    for (orientation, name) in (1u8..).zip(ORIENTED) {
        cases.push((name, exif_jpeg(&rgb, 1600, 1200, orientation, true)));
    }
    cases
}

/// Encoder settings of the sample JPEGs.
struct Options<'a> {
    quality: u8,
    progressive: bool,
    app1: Option<&'a [u8]>,
    icc: Option<&'a [u8]>,
}

impl Options<'_> {
    fn quality(quality: u8) -> Self {
        Options {
            quality,
            progressive: false,
            app1: None,
            icc: None,
        }
    }
}

/// Encodes interleaved `pixels` in `color` with mozjpeg (libjpeg-turbo's defaults, so
/// baseline unless asked otherwise), inside `catch_unwind` since libjpeg errors unwind.
fn jpeg(
    pixels: &[u8],
    width: u32,
    height: u32,
    color: ColorSpace,
    options: Options<'_>,
) -> Vec<u8> {
    let result = catch_unwind(AssertUnwindSafe(|| -> std::io::Result<Vec<u8>> {
        let mut compress = Compress::new(color);
        compress.set_fastest_defaults();
        if options.progressive {
            compress.set_progressive_mode();
        }
        compress.set_quality(f32::from(options.quality));
        compress.set_optimize_coding(true);
        compress.set_size(width as usize, height as usize);
        let mut started = compress.start_compress(Vec::new())?;
        if let Some(app1) = options.app1 {
            started.write_marker(Marker::APP(1), app1);
        }
        if let Some(icc) = options.icc {
            started.write_icc_profile(icc);
        }
        started.write_scanlines(pixels)?;
        started.finish()
    }));
    match result {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => panic!("mozjpeg could not encode a {width}×{height} sample: {e}"),
        Err(_) => panic!("mozjpeg failed on a {width}×{height} sample"),
    }
}

fn encode_image(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image
        .write_to(&mut out, format)
        .unwrap_or_else(|e| panic!("encoding a {format:?} sample: {e}"));
    out.into_inner()
}

fn photo_image(width: u32, height: u32, seed: u32) -> DynamicImage {
    let rgb = photo_rgb(width, height, seed);
    DynamicImage::ImageRgb8(
        RgbImage::from_raw(width, height, rgb).expect("buffer matches its dimensions"),
    )
}

/// A photo-like RGB8 image: diagonal gradients, a soft bright disc, gentle stripes and
/// grain, so codecs work about as hard as on a photo (a flat colour compresses to nothing).
/// Plain integer loops with per-column tables: tests run it unoptimised.
fn photo_rgb(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    let (cx, cy) = (w as i64 * 2 / 3, h as i64 / 3);
    let radius2 = (w.min(h) as i64 / 3).pow(2).max(1);
    let columns: Vec<(i32, i64)> = (0..w)
        .map(|x| ((x * 255 / w) as i32, (x as i64 - cx).pow(2)))
        .collect();
    let mut noise = Noise::new(seed);
    let mut rgb = vec![0u8; w * h * 3];
    let mut at = 0;
    for y in 0..h {
        let gy = (y * 255 / h) as i32;
        let dy2 = (y as i64 - cy).pow(2);
        for (x, &(gx, dx2)) in columns.iter().enumerate() {
            let disc = 255 - ((dx2 + dy2) * 255 / radius2).min(255) as i32;
            let phase = ((x + 2 * y) % 96) as i32;
            let stripe = if phase < 48 { phase } else { 96 - phase } - 24;
            let grain = noise.grain(5);
            rgb[at] = channel(30 + gx * 5 / 8 + disc / 3 + grain);
            rgb[at + 1] = channel(50 + gy / 2 + stripe + disc / 4 + grain);
            rgb[at + 2] = channel(170 - gx / 3 + gy / 5 + grain);
            at += 3;
        }
    }
    rgb
}

fn channel(value: i32) -> u8 {
    value.clamp(0, 255) as u8
}

/// A PNG built by hand (RGB8, correct CRCs) declaring `width × height` with `rows` rows of
/// pixel data, so its header can say anything.
fn hand_built_png(width: u32, height: u32, rows: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        out.extend((data.len() as u32).to_be_bytes());
        out.extend(kind);
        out.extend(data);
        out.extend(crc.finalize().to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8 bits, RGB, deflate, no filter, not interlaced
    chunk(&mut out, b"IHDR", &ihdr);
    let mut raw = Vec::with_capacity((1 + 3 * width as usize) * rows as usize);
    for y in 0..rows {
        raw.push(0); // filter type None
        raw.extend((0..width).flat_map(|x| [x as u8, (y * 40) as u8, 128]));
    }
    chunk(
        &mut out,
        b"IDAT",
        &miniz_oxide::deflate::compress_to_vec_zlib(&raw, 6),
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

/// xorshift32: deterministic grain, no `rand` needed.
struct Noise(u32);

impl Noise {
    fn new(seed: u32) -> Self {
        Noise(seed.wrapping_mul(0x9E37_79B9) | 1)
    }

    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }

    /// Uniform in `-amplitude..=amplitude`.
    fn grain(&mut self, amplitude: i32) -> i32 {
        (self.next() % (2 * amplitude as u32 + 1)) as i32 - amplitude
    }
}
