//! How the CLI writes times and durations, the same in every command: epoch milliseconds
//! as RFC 3339 UTC to the millisecond (fixed width, so table columns line up), and ages the
//! way people say them.

/// Epoch milliseconds as RFC 3339 UTC, to the millisecond.
pub(crate) fn utc(ms: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        ),
        // Only a corrupt row holds a time beyond the calendar `time` covers (±9999 years).
        Err(_) => format!("{ms} ms since 1970"),
    }
}

/// A duration in milliseconds the way people say it: `45s`, `3m12s`, `2h05m`, `3d04h`.
pub(crate) fn age(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    match secs {
        0..60 => format!("{secs}s"),
        60..3_600 => format!("{}m{:02}s", secs / 60, secs % 60),
        3_600..86_400 => format!("{}h{:02}m", secs / 3_600, secs % 3_600 / 60),
        _ => format!("{}d{:02}h", secs / 86_400, secs % 86_400 / 3_600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_epoch_millis_as_rfc3339_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(utc(1_795_312_800_123), "2026-11-22T02:00:00.123Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(utc(i64::MAX), format!("{} ms since 1970", i64::MAX));
    }

    #[test]
    fn ages_read_like_people_say_them() {
        assert_eq!(age(0), "0s");
        assert_eq!(age(45_999), "45s");
        assert_eq!(age(192_000), "3m12s");
        assert_eq!(age(2 * 3_600_000 + 5 * 60_000), "2h05m");
        assert_eq!(age(3 * 86_400_000 + 4 * 3_600_000), "3d04h");
        assert_eq!(age(-5), "0s");
    }
}
