//! The ledger's outbox: each completed stage's outcome message waits here until it is
//! published, so a crash between recording and publishing loses nothing. Marking is
//! batched: a worker marks the outcomes of one publish batch in one transaction.

use crate::error::{StoreError, query_failed};
use crate::ledger::Ledger;
use crate::types::VersionKey;

impl Ledger {
    /// The outcome of `stage` was published: clear its outbox flag. Publishing twice is
    /// harmless; marking a stage that recorded no outcome is an error.
    pub async fn mark_published(&self, v: &VersionKey, stage: &str) -> Result<(), StoreError> {
        let marked = sqlx::query(
            "UPDATE outbox SET published_ms = $5
             WHERE bucket = $1 AND object_key = $2 AND version = $3 AND stage = $4
               AND published_ms IS NULL",
        )
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(&v.version)
        .bind(stage)
        .bind(self.clock.now_ms())
        .execute(&self.pool)
        .await
        .map_err(query_failed("marking an outcome published", v))?;
        if marked.rows_affected() > 0 {
            return Ok(());
        }
        let exists = sqlx::query(
            "SELECT 1 AS one FROM outbox
             WHERE bucket = $1 AND object_key = $2 AND version = $3 AND stage = $4",
        )
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(&v.version)
        .bind(stage)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_failed("reading an outbox row", v))?;
        match exists {
            Some(_) => Ok(()),
            None => Err(StoreError::NoOutcome {
                target: v.to_string(),
                stage: stage.to_owned(),
            }),
        }
    }

    /// Marks the outcomes of several (version, stage) pairs published in one transaction
    /// (one commit). Rows already marked, or never recorded, are left as they are: a batch
    /// mark follows a publish of outcomes this ledger handed out.
    pub async fn mark_published_batch(
        &self,
        entries: &[(VersionKey, &str)],
    ) -> Result<(), StoreError> {
        let Some((first, _)) = entries.first() else {
            return Ok(());
        };
        let now = self.clock.now_ms();
        let mut tx = self
            .pool
            .begin_with(self.backend.begin_write())
            .await
            .map_err(query_failed("starting to mark outcomes published", first))?;
        for (v, stage) in entries {
            sqlx::query(
                "UPDATE outbox SET published_ms = $5
                 WHERE bucket = $1 AND object_key = $2 AND version = $3 AND stage = $4
                   AND published_ms IS NULL",
            )
            .bind(&v.bucket)
            .bind(&v.key)
            .bind(&v.version)
            .bind(*stage)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(query_failed("marking an outcome published", v))?;
        }
        tx.commit()
            .await
            .map_err(query_failed("committing outcomes marked published", first))?;
        Ok(())
    }
}
