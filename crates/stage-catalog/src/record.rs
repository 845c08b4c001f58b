//! Turning what the earlier stages published into one catalog record. Pure: the stage
//! reads the outcomes from the ledger and the checksum from S3, this module only joins.

use intake_core::key_template::parse_key;
use intake_core::{ObjectRef, OutcomeMessage};
use intake_store::{CatalogRecord, RenditionRecord, ScanRecord, StoredAt, VersionKey};
use serde_json::Value;

/// What the catalog stage measured itself: the stored bytes' checksum and length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measured {
    pub sha256: String,
    pub size: u64,
}

/// The record of `object` (the upload) stored at `location`, from the outcomes of the
/// stages before this one (any order; later stages win where they overlap).
pub fn build_record(
    object: &ObjectRef,
    location: &ObjectRef,
    outcomes: &[OutcomeMessage],
    key_template: &str,
    measured: &Measured,
    now_ms: i64,
) -> CatalogRecord {
    let parts = parse_key(key_template, &object.key);
    let last = |pick: &dyn Fn(&OutcomeMessage) -> Option<String>| -> Option<String> {
        outcomes.iter().rev().find_map(pick)
    };
    let of_stage = |stage: &str| outcomes.iter().rev().find(|o| o.stage == stage);
    let tenant = object
        .tenant
        .clone()
        .or_else(|| last(&|o| o.object.tenant.clone()))
        .or_else(|| parts.as_ref().map(|p| p.tenant.clone()));
    let user = object
        .user
        .clone()
        .or_else(|| last(&|o| o.object.user.clone()))
        .or_else(|| parts.as_ref().and_then(|p| p.user.clone()));
    // A key outside the template still has a name: its last segment.
    let filename = parts
        .and_then(|p| p.filename)
        .or_else(|| object.key.rsplit('/').next().map(str::to_owned))
        .filter(|f| !f.is_empty());

    let thumbnail = of_stage("thumbnail");
    let image = thumbnail.and_then(|o| o.extra.get("image"));
    let dimension = |name: &str| {
        image
            .and_then(|i| i.get(name))
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
    };
    let renditions = thumbnail
        .and_then(|o| o.extra.get("renditions"))
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(rendition).collect())
        .unwrap_or_default();
    let scan = of_stage("scan")
        .and_then(|o| o.extra.get("scan"))
        .and_then(|s| {
            let text = |name: &str| s.get(name).and_then(Value::as_str).map(str::to_owned);
            Some(ScanRecord {
                verdict: text("verdict")?,
                engine: text("engine"),
                scanned_at: text("scanned_at"),
            })
        });

    CatalogRecord {
        object_id: object.object_id(),
        upload: VersionKey::new(&object.bucket, &object.key, object.version_token()),
        tenant,
        user,
        filename,
        store: StoredAt {
            bucket: location.bucket.clone(),
            key: location.key.clone(),
            version: location.version_id.clone(),
        },
        size: measured.size,
        content_type: last(&|o| o.detected_type.clone()),
        class: last(&|o| o.class.clone()),
        sha256: measured.sha256.clone(),
        width: dimension("width"),
        height: dimension("height"),
        renditions,
        scan,
        storage_class: "STANDARD".into(),
        archive_note: None,
        cataloged_ms: now_ms,
        updated_ms: now_ms,
    }
}

fn rendition(value: &Value) -> Option<RenditionRecord> {
    let text = |name: &str| value.get(name)?.as_str().map(str::to_owned);
    let number = |name: &str| value.get(name)?.as_u64();
    Some(RenditionRecord {
        name: text("name")?,
        bucket: text("bucket")?,
        key: text("key")?,
        width: u32::try_from(number("width")?).ok()?,
        height: u32::try_from(number("height")?).ok()?,
        bytes: number("bytes")?,
        content_type: text("content_type")?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use intake_core::outcome::{OUTCOME_SCHEMA_VERSION, Timings};
    use serde_json::json;

    use super::*;

    const TEMPLATE: &str = "{tenant}/{user}/{uuid}-{filename}";

    fn upload() -> ObjectRef {
        ObjectRef {
            bucket: "uploads".into(),
            key: "tenant-a/user-1/0f8fad5b-d9cb-469f-a165-70867728950e-red flower.jpg".into(),
            version_id: Some("v1".into()),
            etag: None,
            size: 10,
            tenant: None,
            user: None,
            sequencer: None,
        }
    }

    fn outcome(stage: &str, name: &str, extra: Value) -> OutcomeMessage {
        let mut object = upload();
        object.tenant = Some("tenant-a".into());
        object.user = Some("user-1".into());
        OutcomeMessage {
            intake_outcome: OUTCOME_SCHEMA_VERSION,
            object,
            stage: stage.into(),
            outcome: name.into(),
            code: None,
            detail: None,
            detected_type: Some("image/jpeg".into()),
            class: Some("image".into()),
            location: None,
            timings: Timings {
                started_ms: 1,
                finished_ms: 2,
            },
            worker: "w".into(),
            extra: serde_json::from_value::<BTreeMap<String, Value>>(extra).unwrap(),
        }
    }

    fn stored() -> ObjectRef {
        ObjectRef {
            bucket: "store".into(),
            version_id: Some("s1".into()),
            ..upload()
        }
    }

    const MEASURED: Measured = Measured {
        sha256: String::new(),
        size: 10,
    };

    #[test]
    fn joins_validate_scan_and_thumbnail() {
        let outcomes = [
            outcome("validate", "passed", json!({})),
            outcome(
                "scan",
                "clean",
                json!({"scan": {"verdict": "clean", "engine": "clamd:ClamAV 1.0", "signature": null, "scanned_at": "2026-11-25T08:00:00Z"}}),
            ),
            outcome(
                "thumbnail",
                "thumbnailed",
                json!({
                    "image": {"format": "jpeg", "width": 640, "height": 480},
                    "renditions": [{"name": "thumb", "bucket": "d", "key": "tenant-a/x/thumb.webp",
                        "width": 256, "height": 256, "bytes": 900, "format": "webp",
                        "content_type": "image/webp"}]
                }),
            ),
        ];
        let record = build_record(&upload(), &stored(), &outcomes, TEMPLATE, &MEASURED, 5);
        assert_eq!(record.tenant.as_deref(), Some("tenant-a"));
        assert_eq!(record.user.as_deref(), Some("user-1"));
        assert_eq!(record.filename.as_deref(), Some("red flower.jpg"));
        assert_eq!(record.content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(record.class.as_deref(), Some("image"));
        assert_eq!((record.width, record.height), (Some(640), Some(480)));
        assert_eq!(record.renditions.len(), 1);
        assert_eq!(record.renditions[0].key, "tenant-a/x/thumb.webp");
        let scan = record.scan.unwrap();
        assert_eq!(scan.verdict, "clean");
        assert_eq!(scan.engine.as_deref(), Some("clamd:ClamAV 1.0"));
        assert_eq!(record.store.version.as_deref(), Some("s1"));
        assert_eq!(record.upload.version, "v1");
        assert_eq!(record.object_id, upload().object_id());
        assert_eq!(record.storage_class, "STANDARD");
    }

    #[test]
    fn a_document_has_no_dimensions_or_renditions() {
        let outcomes = [
            outcome("validate", "passed", json!({})),
            outcome("thumbnail", "skipped", json!({})),
        ];
        let record = build_record(&upload(), &stored(), &outcomes, TEMPLATE, &MEASURED, 5);
        assert_eq!((record.width, record.height), (None, None));
        assert!(record.renditions.is_empty());
        assert!(record.scan.is_none());
    }

    #[test]
    fn a_key_outside_the_template_keeps_its_last_segment_as_the_name() {
        let mut object = upload();
        object.key = "loose/report.pdf".into();
        let record = build_record(&object, &stored(), &[], TEMPLATE, &MEASURED, 5);
        assert_eq!(record.filename.as_deref(), Some("report.pdf"));
    }
}
