//! The ledger's claim lifecycle for one (version, stage): claim, heartbeat, complete
//! with its outbox row, release for retry, mark published, and counting completions.
//!
//! Every decision is one conditional write, so "exactly one caller wins" holds on both
//! backends without application-level locks: a claim is an `INSERT ... ON CONFLICT DO
//! UPDATE ... WHERE <claimable>`, and completing or releasing is an `UPDATE ... WHERE
//! worker = <caller> AND status = 'claimed'`.

use std::time::Duration;

use sqlx::AnyPool;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::backend::{self, Backend};
use crate::error::{StoreError, query_failed};
use crate::types::{Begin, Completion, StageResult, VersionKey};
use intake_core::clock::{Clock, millis};

/// How often `begin_stage` re-reads a claim that changed between its write and its read
/// before giving up; each retry needs another worker to have moved the claim meanwhile.
const CLAIM_TRIES: u32 = 5;

/// The durable record of which stages ran for which object versions.
#[derive(Clone, Debug)]
pub struct Ledger {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    pub(crate) clock: Clock,
}

impl Ledger {
    /// Opens (creating a missing SQLite file) and migrates the ledger at `url`:
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DATABASE`.
    pub async fn connect(url: &str) -> Result<Ledger, StoreError> {
        let backend = Backend::from_url(url)?;
        let pool = backend::open(url, backend).await?;
        Ok(Ledger {
            pool,
            backend,
            clock: Clock::system(),
        })
    }

    /// The same ledger reading "now" from `clock` (tests move time by hand).
    pub fn with_clock(self, clock: impl Into<Clock>) -> Ledger {
        Ledger {
            clock: clock.into(),
            ..self
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The ledger's "now" in milliseconds since the epoch (a manual clock in tests), so
    /// that callers comparing against recorded times use the same clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Closes every pooled connection; later calls fail.
    /// One round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1 AS one")
            .fetch_one(&self.pool)
            .await
            .map_err(|source| StoreError::Query {
                action: "checking the database answers",
                target: format!("the {:?} ledger", self.backend()),
                source,
            })?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Claim `stage` for this version for `worker` until now + `lease`. Exactly one
    /// concurrent caller wins. A claim whose lease lapsed, or that was released, is taken
    /// over with the next attempt number; a completed stage is never claimed again.
    ///
    /// `worker` should be unique per delivery being processed (not just per process):
    /// completing and releasing check it, and two deliveries sharing one id could
    /// complete each other's claim.
    pub async fn begin_stage(
        &self,
        v: &VersionKey,
        stage: &str,
        worker: &str,
        lease: Duration,
    ) -> Result<Begin, StoreError> {
        let now = self.clock.now_ms();
        let until = now.saturating_add(millis(lease));
        for _ in 0..CLAIM_TRIES {
            if let Some(attempt) = self.try_claim(v, stage, worker, now, until).await? {
                return Ok(Begin::Claimed { attempt });
            }

            let current = sqlx::query(
                "SELECT c.status, c.worker, c.lease_until_ms, c.outcome, o.outcome_json, o.published_ms
                 FROM stage_claims c
                 LEFT JOIN outbox o ON o.bucket = c.bucket AND o.object_key = c.object_key
                     AND o.version = c.version AND o.stage = c.stage
                 WHERE c.bucket = $1 AND c.object_key = $2 AND c.version = $3 AND c.stage = $4",
            )
            .bind(&v.bucket)
            .bind(&v.key)
            .bind(&v.version)
            .bind(stage)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_failed("reading a stage claim", v))?;
            // No row, or a claimable one, means the claim moved between the two
            // statements (another worker released it or it lapsed): try again.
            let Some(row) = current else { continue };
            let status: String = get(&row, "status", v)?;
            let until_ms: i64 = get(&row, "lease_until_ms", v)?;
            match status.as_str() {
                "done" => {
                    let published: Option<i64> = get(&row, "published_ms", v)?;
                    let json: Option<String> = get(&row, "outcome_json", v)?;
                    return Ok(Begin::AlreadyDone {
                        outcome: get::<Option<String>>(&row, "outcome", v)?.unwrap_or_default(),
                        unpublished_outcome: json.filter(|_| published.is_none()),
                    });
                }
                "claimed" if until_ms > now => {
                    return Ok(Begin::HeldElsewhere {
                        worker: get(&row, "worker", v)?,
                        until_ms,
                    });
                }
                _ => continue,
            }
        }
        Err(StoreError::Contended {
            target: v.to_string(),
            stage: stage.to_owned(),
            tries: CLAIM_TRIES,
        })
    }

    /// The claim as one write transaction (one commit): the conditional upsert of the
    /// claim and, when it wins, the version's `objects` row if it is new. A claim that
    /// loses writes nothing, so a duplicate delivery costs no commit.
    async fn try_claim(
        &self,
        v: &VersionKey,
        stage: &str,
        worker: &str,
        now: i64,
        until: i64,
    ) -> Result<Option<u32>, StoreError> {
        let failed = |action| query_failed(action, v);
        let mut tx = self
            .pool
            .begin_with(self.backend.begin_write())
            .await
            .map_err(failed("starting a claim"))?;
        let claimed = sqlx::query(
            "INSERT INTO stage_claims
                 (bucket, object_key, version, stage, status, worker, attempt, claimed_ms, lease_until_ms)
             VALUES ($1, $2, $3, $4, 'claimed', $5, 1, $6, $7)
             ON CONFLICT (bucket, object_key, version, stage) DO UPDATE SET
                 status = 'claimed',
                 worker = excluded.worker,
                 attempt = stage_claims.attempt + 1,
                 claimed_ms = excluded.claimed_ms,
                 lease_until_ms = excluded.lease_until_ms
             WHERE stage_claims.status = 'released'
                OR (stage_claims.status = 'claimed' AND stage_claims.lease_until_ms <= $6)
             RETURNING attempt",
        )
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(&v.version)
        .bind(stage)
        .bind(worker)
        .bind(now)
        .bind(until)
        .fetch_optional(&mut *tx)
        .await
        .map_err(failed("claiming a stage"))?;
        let Some(row) = claimed else {
            tx.rollback().await.map_err(failed("ending a lost claim"))?;
            return Ok(None);
        };
        let attempt = attempt(v, get(&row, "attempt", v)?)?;
        if attempt == 1 {
            // Only a stage's first claim can meet a version the ledger has not seen.
            Self::ensure_object(v, stage, now, &mut tx).await?;
        }
        tx.commit().await.map_err(failed("committing a claim"))?;
        Ok(Some(attempt))
    }

    /// Extend the lease (heartbeat) to now + `lease` if `worker` still holds the claim;
    /// false if it was lost. A lapsed lease that nobody took over is still held: only a
    /// takeover ends a claim, so no work is thrown away needlessly.
    pub async fn extend_lease(
        &self,
        v: &VersionKey,
        stage: &str,
        worker: &str,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let until = self.clock.now_ms().saturating_add(millis(lease));
        let done = sqlx::query(
            "UPDATE stage_claims SET lease_until_ms = $6
             WHERE bucket = $1 AND object_key = $2 AND version = $3 AND stage = $4
               AND worker = $5 AND status = 'claimed'",
        )
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(&v.version)
        .bind(stage)
        .bind(worker)
        .bind(until)
        .execute(&self.pool)
        .await
        .map_err(query_failed("extending a lease", v))?;
        Ok(done.rows_affected() == 1)
    }

    /// Record the stage's result and its outcome message (the outbox row) in one
    /// transaction, only if `worker` still holds the claim; also appends a transition
    /// and sets the version's state to `state` (the next stage or a terminal state).
    pub async fn complete_stage(
        &self,
        v: &VersionKey,
        stage: &str,
        worker: &str,
        result: &StageResult,
        state: &str,
    ) -> Result<Completion, StoreError> {
        let now = self.clock.now_ms();
        let failed = |action| query_failed(action, v);
        let mut tx = self
            .pool
            .begin_with(self.backend.begin_write())
            .await
            .map_err(failed("starting to record a result"))?;
        // The claim check comes first and is itself the write that marks the stage done,
        // so a worker that lost its claim writes nothing at all.
        let held = sqlx::query(
            "UPDATE stage_claims SET status = 'done', outcome = $6, lease_until_ms = $7
             WHERE bucket = $1 AND object_key = $2 AND version = $3 AND stage = $4
               AND worker = $5 AND status = 'claimed'
             RETURNING attempt",
        )
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(&v.version)
        .bind(stage)
        .bind(worker)
        .bind(&result.outcome)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(failed("marking a stage done"))?;
        let Some(row) = held else {
            return Ok(Completion::LostClaim);
        };
        let attempt = get::<i64>(&row, "attempt", v)?;

        sqlx::query(
            "INSERT INTO outbox (bucket, object_key, version, stage, outcome_json, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(&v.version)
        .bind(stage)
        .bind(&result.outcome_json)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(failed("writing an outcome to the outbox"))?;

        let transition = NewTransition {
            stage,
            kind: "completed",
            outcome: &result.outcome,
            code: result.code.as_deref(),
            detail: result.detail.as_deref(),
            attempt,
            worker,
            started_ms: result.started_ms,
            finished_ms: result.finished_ms,
        };
        transition.insert(v, &mut tx).await?;

        // An upsert, not an update: the row begin_stage created is there in practice, but
        // a result must never be recorded without the state that goes with it.
        sqlx::query(
            "INSERT INTO objects (bucket, object_key, version, state, created_ms, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (bucket, object_key, version) DO UPDATE SET
                 state = excluded.state,
                 updated_ms = excluded.updated_ms",
        )
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(&v.version)
        .bind(state)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(failed("setting an object's state"))?;

        tx.commit().await.map_err(failed("committing a result"))?;
        Ok(Completion::Recorded)
    }

    /// A retryable failure: append a transition (outcome "retry" with `code`, `detail`
    /// and the attempt) and release the claim so the next delivery can take it. Returns
    /// false, recording nothing, if `worker` no longer held the claim.
    pub async fn release_stage(
        &self,
        v: &VersionKey,
        stage: &str,
        worker: &str,
        code: &str,
        detail: &str,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now_ms();
        let failed = |action| query_failed(action, v);
        let mut tx = self
            .pool
            .begin_with(self.backend.begin_write())
            .await
            .map_err(failed("starting to release a claim"))?;
        let held = sqlx::query(
            "UPDATE stage_claims SET status = 'released', lease_until_ms = $6
             WHERE bucket = $1 AND object_key = $2 AND version = $3 AND stage = $4
               AND worker = $5 AND status = 'claimed'
             RETURNING attempt, claimed_ms",
        )
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(&v.version)
        .bind(stage)
        .bind(worker)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(failed("releasing a claim"))?;
        let Some(row) = held else {
            return Ok(false);
        };
        let transition = NewTransition {
            stage,
            kind: "released",
            outcome: "retry",
            code: Some(code),
            detail: Some(detail),
            attempt: get(&row, "attempt", v)?,
            worker,
            started_ms: get(&row, "claimed_ms", v)?,
            finished_ms: now,
        };
        transition.insert(v, &mut tx).await?;
        tx.commit().await.map_err(failed("committing a release"))?;
        Ok(true)
    }

    /// How many times `stage` completed for this version: 1 when exactly-once held.
    pub async fn completions(&self, v: &VersionKey, stage: &str) -> Result<u64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM transitions
             WHERE bucket = $1 AND object_key = $2 AND version = $3 AND stage = $4
               AND kind = 'completed'",
        )
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(&v.version)
        .bind(stage)
        .fetch_one(&self.pool)
        .await
        .map_err(query_failed("counting completions", v))?;
        let n: i64 = get(&row, "n", v)?;
        u64::try_from(n).map_err(|_| StoreError::Corrupt {
            target: v.to_string(),
            column: "count",
            value: n,
        })
    }

    /// Makes sure the version has an `objects` row, in `state` if it is new.
    pub(crate) async fn ensure_object(
        v: &VersionKey,
        state: &str,
        now: i64,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO objects (bucket, object_key, version, state, created_ms, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (bucket, object_key, version) DO NOTHING",
        )
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(&v.version)
        .bind(state)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(query_failed("recording an object version", v))?;
        Ok(())
    }
}

/// A row to append to `transitions`.
pub(crate) struct NewTransition<'a> {
    pub stage: &'a str,
    pub kind: &'static str,
    pub outcome: &'a str,
    pub code: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub attempt: i64,
    pub worker: &'a str,
    pub started_ms: i64,
    pub finished_ms: i64,
}

impl NewTransition<'_> {
    pub(crate) async fn insert(
        &self,
        v: &VersionKey,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO transitions (bucket, object_key, version, stage, kind, outcome, code,
                 detail, attempt, worker, started_ms, finished_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(&v.version)
        .bind(self.stage)
        .bind(self.kind)
        .bind(self.outcome)
        .bind(self.code)
        .bind(self.detail)
        .bind(self.attempt)
        .bind(self.worker)
        .bind(self.started_ms)
        .bind(self.finished_ms)
        .execute(&mut **tx)
        .await
        .map_err(query_failed("appending a transition", v))?;
        Ok(())
    }
}

/// One column of a row, as a query error naming the version if it cannot be read.
pub(crate) fn get<'r, T>(
    row: &'r AnyRow,
    column: &'static str,
    v: &VersionKey,
) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(column)
        .map_err(query_failed("reading a ledger row", v))
}

/// An attempt number as stored (BIGINT) narrowed to what callers see.
pub(crate) fn attempt(v: &VersionKey, raw: i64) -> Result<u32, StoreError> {
    u32::try_from(raw).map_err(|_| StoreError::Corrupt {
        target: v.to_string(),
        column: "attempt",
        value: raw,
    })
}
