//! Byte sizes as people write them in `pipeline.toml`: `"10MB"`, `"1.5GiB"`, `"512 KiB"` or a
//! plain integer number of bytes. Decimal (`kB`, `MB`, `GB`) and binary (`KiB`, `MiB`, `GiB`)
//! units keep their standard meanings.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A size in bytes, parsed from a number or a string with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

/// Why a size string could not be read; the message says what a valid size looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not a size: write a number with a unit, such as \"10MB\", \"512KiB\" or \"1.5GiB\""
)]
pub struct SizeError {
    pub input: String,
}

impl FromStr for ByteSize {
    type Err = SizeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = || SizeError {
            input: input.to_owned(),
        };
        let trimmed = input.trim();
        // bytesize accepts a bare unit ("MB") as zero and negative-looking input in some
        // versions; insist on a leading digit so those are errors, not silent zeros.
        if !trimmed.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(err());
        }
        trimmed
            .parse::<bytesize::ByteSize>()
            .map(|b| ByteSize(b.as_u64()))
            .map_err(|_| err())
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", bytesize::ByteSize(self.0).display().iec())
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as \"10MB\" or \"1.5GiB\", or a number of bytes")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v).map(ByteSize).map_err(|_| {
                    E::custom(format!(
                        "size {v} is negative: sizes are zero or more bytes"
                    ))
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_people_write() {
        let cases = [
            ("10MB", 10_000_000),
            ("1.5GiB", 1_610_612_736),
            ("512KiB", 524_288),
            ("512 KiB", 524_288),
            ("100", 100),
            ("0", 0),
            ("5GB", 5_000_000_000),
        ];
        for (input, bytes) in cases {
            assert_eq!(input.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{input}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_size() {
        for input in ["ten", "", "MB", "-5MB", "10 parsecs", "1.2.3MB"] {
            let err = input.parse::<ByteSize>().unwrap_err();
            assert!(err.to_string().contains("1.5GiB"), "{input}: {err}");
        }
    }
}
