//! The catalog stage on S3 and the ledger: stream the promoted version once through
//! SHA-256, join the earlier stages' outcomes into a record, insert it. The insert is
//! conditional on the object id, and a record already there is reused without reading
//! the object again, so a re-delivery changes nothing.

use intake_core::clock::now_ms;
use intake_core::state_machine::StageKind;
use intake_core::{ObjectRef, OutcomeMessage, StageError};
use intake_runtime::{
    Stage, StageCx, StageInput, StageOutput, body_failure, get_object, require_promoted,
};
use intake_store::{CatalogRecord, StoreError, VersionKey};
use sha2::{Digest, Sha256};

use crate::record::{Measured, build_record};

#[derive(Debug, Default)]
pub struct Catalog;

impl Catalog {
    pub fn new() -> Self {
        Catalog
    }
}

impl Stage for Catalog {
    const KIND: StageKind = StageKind::Catalog;

    async fn process(&self, cx: &StageCx, input: &StageInput) -> Result<StageOutput, StageError> {
        require_promoted(cx, input, "are cataloged")?;
        let object_id = input.object.object_id();
        if let Some(existing) = cx.ledger.catalog_get(&object_id).await.map_err(ledger)? {
            tracing::info!(
                object_id,
                "catalog record already written by an earlier attempt"
            );
            return Ok(cataloged(&existing.record));
        }

        let version = VersionKey::new(
            &input.object.bucket,
            &input.object.key,
            input.object.version_token(),
        );
        let mut outcomes: Vec<OutcomeMessage> = Vec::new();
        for json in cx
            .ledger
            .recorded_outcomes(&version)
            .await
            .map_err(ledger)?
        {
            match serde_json::from_str(&json) {
                Ok(outcome) => outcomes.push(outcome),
                Err(e) => {
                    tracing::warn!(object = %version, error = %e, "a recorded outcome is not readable; cataloging without it")
                }
            }
        }
        // Normally recorded already; the upstream message is the fallback when the stage
        // before ran against another ledger (it should not, but the record is still right).
        if let Some(upstream) = &input.upstream
            && !outcomes.iter().any(|o| o.stage == upstream.stage)
        {
            outcomes.push(upstream.clone());
        }

        // Scan hashed every byte on its way to the scanner; reading the object again is
        // the fallback (no scanner, or an outcome from before digests were recorded).
        let measured = match outcomes.iter().find_map(OutcomeMessage::content_digest) {
            Some(digest) => Measured {
                sha256: digest.sha256,
                size: digest.size,
            },
            None => measure(cx, &input.location).await?,
        };
        let record = build_record(
            &input.object,
            &input.location,
            &outcomes,
            &cx.config.uploads.key_template,
            &measured,
            now_ms(),
        );
        cx.ledger.catalog_insert(&record).await.map_err(ledger)?;
        Ok(cataloged(&record))
    }
}

fn cataloged(record: &CatalogRecord) -> StageOutput {
    let mut output = StageOutput::outcome("cataloged");
    output.bytes = record.size;
    output.extra.insert(
        "catalog".into(),
        serde_json::json!({
            "object_id": record.object_id,
            "sha256": record.sha256,
            "filename": record.filename,
        }),
    );
    output
}

/// SHA-256 and length of exactly this version, read as a stream (memory stays at one
/// chunk whatever the size).
async fn measure(cx: &StageCx, object: &ObjectRef) -> Result<Measured, StageError> {
    let mut body = get_object(cx, object, "catalog").await?.body;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = body.try_next().await.map_err(|e| body_failure(object, e))? {
        size += chunk.len() as u64;
        hasher.update(&chunk);
    }
    let sha256 = hex::encode(hasher.finalize());
    Ok(Measured { sha256, size })
}

fn ledger(e: StoreError) -> StageError {
    StageError::retryable(e.code(), format!("{e}"))
}
