//! [`intake_imaging::probe`] over arbitrary bytes: random files, random files behind each
//! format's magic bytes, and mutated valid headers of every format. No input panics, takes
//! long, or makes the probe allocate more than [`MAX_PROBE_ALLOC`]; every answer is a
//! probe within the limits or an error with a fixed code.
//!
//! Allocations are counted by a global allocator wrapping the system one (Rust allocations:
//! the header parsers of `image`, `png`, `gif`, `tiff` and the probe itself; libjpeg's few
//! header allocations go through C's malloc and are not counted).

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use intake_imaging::{ImageLimits, probe, samples};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// Every code an [`intake_imaging::ImageError`] may have.
const CODES: [&str; 7] = intake_imaging::ImageError::CODES;
/// A probe reads headers only: a few KiB of state, whatever the file claims.
const MAX_PROBE_ALLOC: usize = 16 * 1024 * 1024;
const MAX_PROBE_TIME: Duration = Duration::from_secs(2);

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Probes `bytes`, checking the rules above; `Err` says which broke.
fn check(bytes: &[u8]) -> Result<(), String> {
    let limits = ImageLimits::default();
    let before = CURRENT.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| probe(bytes, &limits)))
        .map_err(|_| format!("probe panicked on {} bytes", bytes.len()))?;
    let took = started.elapsed();
    let grew = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    if grew > MAX_PROBE_ALLOC {
        return Err(format!("probe allocated {grew} bytes at its peak"));
    }
    if took > MAX_PROBE_TIME {
        return Err(format!("probe took {took:?}"));
    }
    match result {
        Ok(p) => {
            let fits = p.width >= 1
                && p.height >= 1
                && p.width <= limits.max_width
                && p.height <= limits.max_height
                && u64::from(p.width) * u64::from(p.height) <= limits.max_pixels
                && p.frames <= limits.max_frames
                && p.decode_bytes <= limits.max_decoder_memory.bytes();
            if fits {
                Ok(())
            } else {
                Err(format!("probe passed {p:?}, outside the limits"))
            }
        }
        Err(e) if CODES.contains(&e.code()) => Ok(()),
        Err(e) => Err(format!("{} is not a fixed code ({e})", e.code())),
    }
}

/// A valid small file of each format the probe knows.
static VALID: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    vec![
        samples::photo_jpeg(40, 30, 80),
        samples::progressive_jpeg(40, 30),
        samples::cmyk_jpeg(24, 16),
        samples::png_rgba(40, 30),
        samples::png_palette(24, 16),
        samples::gif_frames(24, 16, 3),
        samples::webp_lossy(40, 30),
        samples::tiff(24, 16),
        samples::bmp(24, 16),
    ]
});

/// Each format's magic bytes, as `SourceFormat::sniff` recognises them.
const MAGIC: [&[u8]; 8] = [
    &[0xFF, 0xD8, 0xFF],
    &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A],
    b"GIF89a",
    b"GIF87a",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"II*\x00",
    b"MM\x00*",
    b"BM",
];

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::with_cases(2000)
    })]

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let result = check(&bytes);
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }

    /// Past the sniffing, into each format's header parser.
    #[test]
    fn arbitrary_bytes_behind_magic(
        magic in 0..MAGIC.len(),
        tail in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut bytes = MAGIC[magic].to_vec();
        bytes.extend(tail);
        let result = check(&bytes);
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }

    /// Valid headers with bytes changed (most in the first 64, where the sizes and
    /// counts are), cut short, or with a run of 0xFF written over them (huge sizes).
    #[test]
    fn mutated_headers(
        which in 0..9usize,
        header_flips in prop::collection::vec((0usize..64, 1u8..=255), 0..6),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
        ones in prop::option::of((0usize..64, 1usize..8)),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = VALID[which].clone();
        let len = bytes.len();
        for (at, mask) in header_flips {
            bytes[at % len] ^= mask;
        }
        for (at, mask) in flips {
            bytes[at.index(len)] ^= mask;
        }
        if let Some((at, n)) = ones {
            for b in bytes.iter_mut().skip(at).take(n) {
                *b = 0xFF;
            }
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(len));
        }
        let result = check(&bytes);
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}

/// The valid files themselves probe fine (so the mutations start from real headers).
#[test]
fn the_valid_samples_probe() {
    for (i, bytes) in VALID.iter().enumerate() {
        probe(bytes, &ImageLimits::default()).unwrap_or_else(|e| panic!("sample {i}: {e}"));
    }
}
