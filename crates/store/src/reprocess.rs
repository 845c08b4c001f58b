//! An operator's reprocess in the ledger: forgetting that stages ran for a version, so
//! that the next delivery claims them again, with the intervention kept in the history.

use crate::error::{StoreError, query_failed};
use crate::ledger::{Ledger, NewTransition};
use crate::types::VersionKey;

impl Ledger {
    /// Forgets that `stages` ran for this version (an operator's reprocess): their claims are
    /// released and their recorded outcomes go, the version's state becomes `state`, and a `released`
    /// transition (outcome `reprocess`, with `detail`) on the first of them keeps the
    /// intervention in the history. Completions stay in the history, so a reprocessed
    /// stage then shows two.
    pub async fn reset_stages(
        &self,
        v: &VersionKey,
        stages: &[&str],
        state: &str,
        requested_by: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        let failed = |action| query_failed(action, v);
        let mut tx = self
            .pool
            .begin_with(self.backend.begin_write())
            .await
            .map_err(failed("starting a reprocess"))?;
        for stage in stages {
            // The claim is released, not deleted: its attempt number carries on, so the
            // next claim is not a "first attempt" and the stage looks for what earlier
            // attempts left behind (a copy) instead of assuming there is nothing.
            for statement in [
                "UPDATE stage_claims SET status = 'released', outcome = NULL
                 WHERE bucket = $1 AND object_key = $2 AND version = $3 AND stage = $4",
                "DELETE FROM outbox
                 WHERE bucket = $1 AND object_key = $2 AND version = $3 AND stage = $4",
            ] {
                sqlx::query(statement)
                    .bind(&v.bucket)
                    .bind(&v.key)
                    .bind(&v.version)
                    .bind(*stage)
                    .execute(&mut *tx)
                    .await
                    .map_err(failed("forgetting a stage for a reprocess"))?;
            }
        }
        sqlx::query(
            "UPDATE objects SET state = $4, updated_ms = $5
             WHERE bucket = $1 AND object_key = $2 AND version = $3",
        )
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(&v.version)
        .bind(state)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(failed("setting an object's state for a reprocess"))?;
        if let Some(first) = stages.first() {
            let transition = NewTransition {
                stage: first,
                kind: "released",
                outcome: "reprocess",
                code: Some("reprocess_requested"),
                detail: Some(detail),
                attempt: 0,
                worker: requested_by,
                started_ms: now,
                finished_ms: now,
            };
            transition.insert(v, &mut tx).await?;
        }
        tx.commit()
            .await
            .map_err(failed("committing a reprocess"))?;
        Ok(())
    }
}
