//! S3's multipart limits as a pure check of a part plan, so an upload that S3 would refuse
//! part-way (after gigabytes were sent) is refused before it starts.

use super::{MAX_OBJECT_SIZE, MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE};

/// Why a part plan breaks one of S3's multipart limits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PartPlanError {
    #[error("a part size of 0 bytes: give a part size of at least {MIN_PART_SIZE} bytes (5 MiB)")]
    ZeroPartSize,
    #[error(
        "{size} bytes is over S3's object limit of {MAX_OBJECT_SIZE} bytes (5 TiB): S3 cannot \
         store it as one object; split the file"
    )]
    ObjectTooLarge { size: u64 },
    #[error(
        "parts of {part_size} bytes are over S3's part limit of {MAX_PART_SIZE} bytes (5 GiB): \
         use smaller parts"
    )]
    PartTooLarge { part_size: u64 },
    #[error(
        "parts of {part_size} bytes are under S3's minimum of {MIN_PART_SIZE} bytes (5 MiB) for \
         every part but the last: use larger parts"
    )]
    PartTooSmall { part_size: u64 },
    #[error(
        "{size} bytes in parts of {part_size} bytes makes {parts} parts, over S3's limit of \
         {MAX_PARTS}: use parts of at least {min_part_size} bytes"
    )]
    TooManyParts {
        size: u64,
        part_size: u64,
        parts: u64,
        min_part_size: u64,
    },
}

impl PartPlanError {
    /// A short fixed code for API answers and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            PartPlanError::ZeroPartSize | PartPlanError::PartTooSmall { .. } => "part_too_small",
            PartPlanError::PartTooLarge { .. } => "part_too_large",
            PartPlanError::ObjectTooLarge { .. } => "object_too_large",
            PartPlanError::TooManyParts { .. } => "too_many_parts",
        }
    }
}

/// How many parts `size` bytes take in parts of `part_size` (the last may be smaller), or
/// which of S3's multipart limits that breaks. An empty object is one empty part.
pub fn plan_parts(size: u64, part_size: u64) -> Result<u32, PartPlanError> {
    if part_size == 0 {
        return Err(PartPlanError::ZeroPartSize);
    }
    if size > MAX_OBJECT_SIZE {
        return Err(PartPlanError::ObjectTooLarge { size });
    }
    let parts = size.div_ceil(part_size).max(1);
    // Only parts that really exist count: one part of a small object is the last part, and
    // may be as small as it likes; one part is never larger than the object.
    if part_size.min(size) > MAX_PART_SIZE {
        return Err(PartPlanError::PartTooLarge { part_size });
    }
    if parts > 1 && part_size < MIN_PART_SIZE {
        return Err(PartPlanError::PartTooSmall { part_size });
    }
    if parts > u64::from(MAX_PARTS) {
        return Err(PartPlanError::TooManyParts {
            size,
            part_size,
            parts,
            min_part_size: size.div_ceil(u64::from(MAX_PARTS)),
        });
    }
    Ok(parts as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;
    const GIB: u64 = 1024 * MIB;

    #[test]
    fn plans_count_parts_with_a_smaller_last_one() {
        assert_eq!(plan_parts(64 * MIB, 8 * MIB), Ok(8));
        assert_eq!(plan_parts(64 * MIB + 1, 8 * MIB), Ok(9));
        assert_eq!(plan_parts(0, 8 * MIB), Ok(1), "an empty object is one part");
        assert_eq!(plan_parts(1, 1), Ok(1), "a sole part is the last, any size");
        assert_eq!(
            plan_parts(3 * MIB, MIB),
            Err(PartPlanError::PartTooSmall { part_size: MIB })
        );
        assert_eq!(plan_parts(10 * MIB, MIN_PART_SIZE), Ok(2));
        assert_eq!(
            plan_parts(10 * MIB, MIN_PART_SIZE - 1).unwrap_err().code(),
            "part_too_small"
        );
        assert_eq!(plan_parts(5, 0), Err(PartPlanError::ZeroPartSize));
    }

    #[test]
    fn parts_are_at_most_5_gib() {
        assert_eq!(plan_parts(10 * GIB, MAX_PART_SIZE), Ok(2));
        let err = plan_parts(10 * GIB, MAX_PART_SIZE + 1).unwrap_err();
        assert_eq!(err.code(), "part_too_large");
        assert!(err.to_string().contains("5 GiB"), "{err}");
        // A part size over the limit is harmless when the object is smaller than one part.
        assert_eq!(plan_parts(GIB, 6 * GIB), Ok(1));
    }

    #[test]
    fn at_most_10_000_parts() {
        assert_eq!(
            plan_parts(10_000 * MIN_PART_SIZE, MIN_PART_SIZE),
            Ok(10_000)
        );
        let err = plan_parts(10_000 * MIN_PART_SIZE + 1, MIN_PART_SIZE).unwrap_err();
        assert_eq!(
            err,
            PartPlanError::TooManyParts {
                size: 10_000 * MIN_PART_SIZE + 1,
                part_size: MIN_PART_SIZE,
                parts: 10_001,
                min_part_size: MIN_PART_SIZE + 1,
            }
        );
        // The suggested part size does fit.
        if let PartPlanError::TooManyParts {
            size,
            min_part_size,
            ..
        } = err
        {
            assert_eq!(plan_parts(size, min_part_size), Ok(10_000));
        }
        assert!(err.to_string().contains("10000"), "{err}");
    }

    #[test]
    fn objects_are_at_most_5_tib() {
        // 5 TiB in 10,000 parts needs parts just over 524 MiB; S3's own advice.
        let part = MAX_OBJECT_SIZE.div_ceil(u64::from(MAX_PARTS));
        assert_eq!(plan_parts(MAX_OBJECT_SIZE, part), Ok(10_000));
        assert_eq!(plan_parts(MAX_OBJECT_SIZE, MAX_PART_SIZE), Ok(1024));
        let err = plan_parts(MAX_OBJECT_SIZE + 1, MAX_PART_SIZE).unwrap_err();
        assert_eq!(err.code(), "object_too_large");
        assert!(err.to_string().contains("5 TiB"), "{err}");
    }
}
