//! S3 event ordering: remembering the greatest `sequencer` seen per bucket+key and
//! telling a caller whether its event was overtaken by a later one.
//!
//! S3 sequencers are hexadecimal strings whose lengths may differ; they compare as
//! numbers after left-padding with zeros. Stored normalised (upper-case, leading zeros
//! stripped), a longer string is a larger number and equal lengths compare as text, so
//! the database can compare them in the conditional upsert itself.

use crate::error::{StoreError, query_failed};
use crate::ledger::{Ledger, NewTransition, get};
use crate::types::{Freshness, VersionKey};

/// The stage name under which stale events appear in a version's history.
pub const EVENT_STAGE: &str = "event";

/// The state of a version first seen through an event that was already stale.
pub const STALE_STATE: &str = "stale";

impl Ledger {
    /// Record the S3 event sequencer for (bucket, key) and say whether this event is
    /// stale: a strictly greater sequencer was already recorded for the same bucket+key.
    /// A stale event is recorded as a transition with outcome "stale" (stage
    /// [`EVENT_STAGE`]); a redelivery of the newest event is fresh.
    pub async fn observe_sequencer(
        &self,
        v: &VersionKey,
        sequencer: &str,
    ) -> Result<Freshness, StoreError> {
        let normal = normalise(sequencer).ok_or_else(|| StoreError::InvalidSequencer {
            target: v.to_string(),
            sequencer: sequencer.to_owned(),
        })?;
        let now = self.clock.now_ms();
        let failed = |action| query_failed(action, v);
        let mut tx = self
            .pool
            .begin_with(self.backend.begin_write())
            .await
            .map_err(failed("starting to record a sequencer"))?;
        sqlx::query(
            "INSERT INTO sequencers (bucket, object_key, sequencer, raw_sequencer, version, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (bucket, object_key) DO UPDATE SET
                 sequencer = excluded.sequencer,
                 raw_sequencer = excluded.raw_sequencer,
                 version = excluded.version,
                 updated_ms = excluded.updated_ms
             WHERE length(excluded.sequencer) > length(sequencers.sequencer)
                OR (length(excluded.sequencer) = length(sequencers.sequencer)
                    AND excluded.sequencer > sequencers.sequencer)",
        )
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(&normal)
        .bind(sequencer)
        .bind(&v.version)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(failed("recording a sequencer"))?;
        // Read back inside the same transaction: what is stored now is either ours (or
        // an equal one) or a strictly greater one that made this event stale.
        let row = sqlx::query(
            "SELECT sequencer, raw_sequencer, version FROM sequencers
             WHERE bucket = $1 AND object_key = $2",
        )
        .bind(&v.bucket)
        .bind(&v.key)
        .fetch_one(&mut *tx)
        .await
        .map_err(failed("reading a sequencer"))?;
        let stored: String = get(&row, "sequencer", v)?;
        if stored == normal {
            tx.commit()
                .await
                .map_err(failed("committing a sequencer"))?;
            return Ok(Freshness::Fresh);
        }
        let newer: String = get(&row, "raw_sequencer", v)?;
        let newer_version: String = get(&row, "version", v)?;

        sqlx::query(
            "INSERT INTO objects (bucket, object_key, version, state, created_ms, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (bucket, object_key, version) DO NOTHING",
        )
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(&v.version)
        .bind(STALE_STATE)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(failed("recording an object version"))?;
        let detail =
            format!("sequencer {sequencer} is older than {newer} (version {newer_version})");
        let transition = NewTransition {
            stage: EVENT_STAGE,
            kind: "stale",
            outcome: "stale",
            code: Some("stale_event"),
            detail: Some(&detail),
            attempt: 0,
            worker: "",
            started_ms: now,
            finished_ms: now,
        };
        transition.insert(v, &mut tx).await?;
        tx.commit()
            .await
            .map_err(failed("committing a stale event"))?;
        Ok(Freshness::Stale {
            newer,
            newer_version,
        })
    }
}

/// Upper-case hex without leading zeros ("0" for zero), or None if not hexadecimal.
fn normalise(sequencer: &str) -> Option<String> {
    if sequencer.is_empty() || !sequencer.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let trimmed = sequencer.trim_start_matches('0');
    Some(if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_ascii_uppercase()
    })
}

#[cfg(test)]
mod tests {
    use super::normalise;
    use std::cmp::Ordering;

    /// The order the database applies to normalised sequencers.
    fn cmp(a: &str, b: &str) -> Ordering {
        let (a, b) = (normalise(a).unwrap(), normalise(b).unwrap());
        a.len().cmp(&b.len()).then(a.cmp(&b))
    }

    #[test]
    fn normalising_strips_zeros_and_case() {
        assert_eq!(
            normalise("0055B13C3E1A3A1B05").as_deref(),
            Some("55B13C3E1A3A1B05")
        );
        assert_eq!(normalise("00ab").as_deref(), Some("AB"));
        assert_eq!(normalise("000").as_deref(), Some("0"));
        for bad in ["", "0x12", "12 ", "g1"] {
            assert_eq!(normalise(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn comparison_matches_zero_padded_comparison() {
        let cases = [
            ("0A", "A", Ordering::Equal),
            ("FF", "100", Ordering::Less),
            ("00FF", "0100", Ordering::Less),
            ("0055B13C3E1A3A1B05", "55B13C3E1A3A1B06", Ordering::Less),
            ("9", "a", Ordering::Less),
            ("abc", "ABC", Ordering::Equal),
            ("1000000000000000000", "FFFFFFFFFFFFFFFF", Ordering::Greater),
        ];
        for (a, b, expected) in cases {
            assert_eq!(cmp(a, b), expected, "{a} vs {b}");
            let width = a.len().max(b.len());
            let padded = format!("{:0>width$}", a.to_ascii_uppercase())
                .cmp(&format!("{:0>width$}", b.to_ascii_uppercase()));
            assert_eq!(padded, expected, "padded {a} vs {b}");
        }
    }
}
