//! The scan stage on S3: stream the exact uploaded version from S3 into the scanner (never
//! the whole object in memory or on disk; the runtime keeps the message's visibility alive),
//! then act on the verdict. `clean`: promote (version-pinned copy into the store bucket,
//! tagged with the verdict, time and engine; then the upload version is deleted).
//! `infected` and `unscannable`: move to quarantine with the verdict in tags. A scanner
//! that cannot be reached is a retryable error, never a verdict.

use std::time::SystemTime;

use aws_smithy_types::date_time::{DateTime, Format};
use intake_aws::objects;
use intake_clamd::{Clamd, ClamdAddress, Verdict};
use intake_core::config::ScannerConfig;
use intake_core::names::BucketRole;
use intake_core::outcome::CONTENT_DIGEST_KEY;
use intake_core::state_machine::StageKind;
use intake_core::{ObjectRef, PipelineConfig, StageError};
use intake_runtime::{Stage, StageCx, StageInput, StageOutput, s3_failure};
use tokio::sync::OnceCell;

use crate::command::CommandScanner;
use crate::digest::Hashing;

/// ClamAV cannot scan anything larger; such objects are `unscannable`, never passed.
pub const MAX_SCANNABLE: u64 = 2 * 1024 * 1024 * 1024;

pub const SCAN_TAG: &str = "intake-scan";
pub const SCAN_TIME_TAG: &str = "intake-scan-time";
pub const ENGINE_TAG: &str = "intake-scan-engine";
pub const SIGNATURE_TAG: &str = "intake-signature";
pub const SOURCE_VERSION_TAG: &str = "intake-source-version";

pub enum Scanner {
    Clamd(Clamd),
    Command(CommandScanner),
    /// Development only: nothing is scanned; objects are promoted tagged `unscanned`.
    None,
}

pub struct Scan {
    scanner: Scanner,
    engine: OnceCell<String>,
}

impl Scan {
    pub fn new(scanner: Scanner) -> Self {
        if matches!(scanner, Scanner::None) {
            tracing::warn!(
                "scanner \"none\": uploads are NOT scanned for malware and are promoted as `unscanned`; development only"
            );
        }
        Scan {
            scanner,
            engine: OnceCell::new(),
        }
    }

    /// The scanner that `[stages.scan.scanner]` names (clamd on 127.0.0.1:3310 by default).
    pub fn from_config(config: &PipelineConfig) -> Self {
        let scanner = config.scanner().unwrap_or_default();
        Scan::new(match scanner {
            ScannerConfig::Clamd {
                address,
                timeout_secs,
            } => {
                let mut clamd = Clamd::new(ClamdAddress::from_config(&address));
                clamd.timeout = std::time::Duration::from_secs(u64::from(timeout_secs));
                Scanner::Clamd(clamd)
            }
            ScannerConfig::Command {
                program,
                args,
                timeout_secs,
            } => Scanner::Command(CommandScanner {
                program,
                args,
                timeout: std::time::Duration::from_secs(u64::from(timeout_secs)),
            }),
            ScannerConfig::None => Scanner::None,
        })
    }

    async fn engine(&self, clamd: &Clamd) -> Result<String, StageError> {
        self.engine
            .get_or_try_init(|| async { clamd.version().await })
            .await
            .cloned()
            .map_err(|e| StageError::retryable(e.code(), e.to_string()))
    }
}

impl Stage for Scan {
    const KIND: StageKind = StageKind::Scan;

    async fn process(&self, cx: &StageCx, input: &StageInput) -> Result<StageOutput, StageError> {
        let object = &input.location;
        // The event carries the version's size (S3's own figure, carried in validate's
        // outcome), so a scanner that reads the object needs no HEAD: its GET finds out
        // whether the version is still there. Without a size, or without a scanner (then
        // nothing else would find out), the HEAD asks.
        let reads_the_object = !matches!(self.scanner, Scanner::None);
        let size = if object.size > 0 && reads_the_object {
            object.size
        } else {
            match head_size(cx, object).await? {
                Some(size) => size,
                None => return already_moved(cx, object).await,
            }
        };
        let object = ObjectRef {
            size,
            ..object.clone()
        };

        // The bytes stream to the scanner through a hash: the catalog takes the digest
        // from this outcome instead of reading the object again.
        let (verdict, engine, digest) = match &self.scanner {
            Scanner::None => (None, "none".to_owned(), None),
            Scanner::Clamd(_) if size > MAX_SCANNABLE => (
                Some(Verdict::Unscannable {
                    reason: format!("{size} bytes is over ClamAV's 2 GB limit"),
                }),
                "clamd".to_owned(),
                None,
            ),
            Scanner::Clamd(clamd) => {
                let engine = self.engine(clamd).await?;
                let Some(body) = open_body(cx, &object).await? else {
                    return already_moved(cx, &object).await;
                };
                let mut body = Hashing::new(body);
                let verdict = clamd
                    .scan(&mut body)
                    .await
                    .map_err(|e| StageError::retryable(e.code(), format!("{object}: {e}")))?;
                (Some(verdict), engine, body.finish(size))
            }
            Scanner::Command(command) => {
                let Some(body) = open_body(cx, &object).await? else {
                    return already_moved(cx, &object).await;
                };
                let mut body = Hashing::new(body);
                let verdict = command
                    .scan(&mut body)
                    .await
                    .map_err(|e| StageError::retryable(e.code(), format!("{object}: {e}")))?;
                let engine = format!("command:{}", command.program);
                (Some(verdict), engine, body.finish(size))
            }
        };
        let mut output = act(cx, &object, verdict, &engine, input.attempt == 1).await?;
        if let Some(digest) = digest {
            let value = serde_json::to_value(digest).expect("a digest serialises");
            output.extra.insert(CONTENT_DIGEST_KEY.into(), value);
        }
        Ok(output)
    }
}

/// The size of exactly this version, or `None` when it no longer exists.
async fn head_size(cx: &StageCx, object: &ObjectRef) -> Result<Option<u64>, StageError> {
    let head = cx
        .aws
        .s3
        .head_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .set_version_id(object.version_id.clone())
        .send()
        .await;
    match head {
        Ok(head) => Ok(Some(head.content_length().unwrap_or(0).max(0) as u64)),
        Err(e) if intake_runtime::s3_not_found(&e) => Ok(None),
        Err(e) => Err(s3_failure(intake_aws::error::classify(
            &cx.aws.endpoint,
            "HeadObject",
            &object.to_string(),
            e,
        ))),
    }
}

/// The exact version's bytes as a stream (never buffered whole), or `None` when the
/// version no longer exists (an earlier attempt moved it).
async fn open_body(
    cx: &StageCx,
    object: &ObjectRef,
) -> Result<Option<impl tokio::io::AsyncRead + Unpin + use<>>, StageError> {
    let out = cx
        .aws
        .s3
        .get_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .set_version_id(object.version_id.clone())
        .send()
        .await;
    match out {
        Ok(out) => Ok(Some(out.body.into_async_read())),
        Err(e) if intake_runtime::s3_not_found(&e) => Ok(None),
        Err(e) => Err(s3_failure(intake_aws::error::classify(
            &cx.aws.endpoint,
            "GetObject",
            &object.to_string(),
            e,
        ))),
    }
}

async fn act(
    cx: &StageCx,
    object: &ObjectRef,
    verdict: Option<Verdict>,
    engine: &str,
    first_attempt: bool,
) -> Result<StageOutput, StageError> {
    let now = DateTime::from(SystemTime::now())
        .fmt(Format::DateTime)
        .unwrap_or_default();
    let version = object.version_token().to_owned();
    let unscannable_route = cx
        .config
        .stage(StageKind::Scan)
        .and_then(|s| s.on.get("unscannable"))
        .map(String::as_str);
    let (outcome, label, signature, detail, quarantine) = match &verdict {
        None => (
            "clean",
            "unscanned",
            None,
            Some("scanner \"none\": not scanned".to_owned()),
            false,
        ),
        Some(Verdict::Clean) => ("clean", "clean", None, None, false),
        Some(Verdict::Infected { signature }) => (
            "infected",
            "infected",
            Some(signature.clone()),
            Some(format!("{object}: found {signature}")),
            true,
        ),
        Some(Verdict::Unscannable { reason }) => (
            "unscannable",
            "unscannable",
            None,
            Some(format!("{object}: {reason}")),
            // Fail closed unless pipeline.toml routes unscannable objects onward.
            matches!(unscannable_route, None | Some("quarantined" | "failed")),
        ),
    };
    let role = if quarantine {
        BucketRole::Quarantine
    } else {
        BucketRole::Store
    };
    let mut tags = vec![
        (SCAN_TAG, label),
        (SCAN_TIME_TAG, now.as_str()),
        (ENGINE_TAG, engine),
        (SOURCE_VERSION_TAG, version.as_str()),
    ];
    if let Some(sig) = &signature {
        tags.push((SIGNATURE_TAG, sig.as_str()));
    }
    // A retry after a crash between the copy and the delete reuses that copy. The first
    // attempt has no earlier one to look for, which saves a tag read per object.
    let target = cx.names.bucket(role);
    let moved = if first_attempt {
        objects::copy_version(&cx.aws, object, target, &tags).await
    } else {
        objects::copy_version_once(&cx.aws, object, target, &tags, SOURCE_VERSION_TAG)
            .await
            .map(|(moved, _)| moved)
    }
    .map_err(s3_failure)?;
    objects::delete_version(&cx.aws, object)
        .await
        .map_err(s3_failure)?;

    let mut output = StageOutput {
        outcome: outcome.into(),
        code: (outcome != "clean").then(|| outcome.to_owned()),
        detail,
        location: Some(moved),
        bytes: object.size,
        ..Default::default()
    };
    output.extra.insert("scan".into(), serde_json::json!({"verdict": label, "engine": engine, "signature": signature, "scanned_at": now}));
    Ok(output)
}

/// The upload version is gone: if this stage already moved it (a crash after the delete,
/// before the ledger recorded it), report the same result again.
async fn already_moved(cx: &StageCx, object: &ObjectRef) -> Result<StageOutput, StageError> {
    for role in [BucketRole::Store, BucketRole::Quarantine] {
        let bucket = cx.names.bucket(role);
        let Some((version_id, tags)) = objects::tags_of(&cx.aws, bucket, &object.key).await else {
            continue;
        };
        let tag = |name: &str| tags.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        if tag(SOURCE_VERSION_TAG).as_deref() != Some(object.version_token()) {
            continue;
        }
        let label = tag(SCAN_TAG).unwrap_or_default();
        let outcome = match label.as_str() {
            "clean" | "unscanned" => "clean",
            "infected" => "infected",
            _ => "unscannable",
        };
        let signature = tag(SIGNATURE_TAG);
        let mut output = StageOutput {
            outcome: outcome.into(),
            code: (outcome != "clean").then(|| outcome.to_owned()),
            detail: Some(format!(
                "{object} was already moved to {bucket} by an earlier attempt"
            )),
            location: Some(ObjectRef {
                bucket: bucket.to_owned(),
                version_id,
                sequencer: None,
                ..object.clone()
            }),
            ..Default::default()
        };
        output.extra.insert(
            "scan".into(),
            serde_json::json!({"verdict": label, "engine": tag(ENGINE_TAG), "signature": signature, "scanned_at": tag(SCAN_TIME_TAG)}),
        );
        return Ok(output);
    }
    Err(StageError::permanent(
        "object_gone",
        format!("{object} no longer exists in the uploads bucket; nothing to scan"),
    ))
}
