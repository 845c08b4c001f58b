//! A model-based test of the upload lifecycle: for each of N file ids a random sequence of
//! client actions (sign by PUT, POST or multipart; PUT again; concurrent PUTs; POST twice;
//! multipart with a missing part, then abort; DELETE before, during and after processing;
//! DELETE again; PUT after DELETE) runs against the API, LocalStack, clamd and every worker.
//! After each sequence settles, the API's answer, the ledger, the catalog and every bucket
//! must agree with the model:
//!
//! - nothing landed: `awaiting_upload`, no version anywhere;
//! - otherwise exactly one landed version is the file; every other landed version ended
//!   `quarantined` with `upload_reused` and never reached the store bucket;
//! - a DELETE that was accepted: `deleted`, no bytes anywhere but quarantine's expiring
//!   copies of refused versions, no catalog record, no derivatives;
//! - else `done`, `ready`, downloadable, the download is the file version's bytes, one
//!   stored version and one catalog record, both of the file version.
//!
//! Seeded and replayable: `INTAKE_MODEL_SEED` (printed on every run) and
//! `INTAKE_MODEL_SEQUENCES` (default 200). Prints `sequences=… violations=…`.

mod api_support;
mod lifecycle_support;
mod support;

use std::time::{Duration, Instant};

use api_support::ApiStack;
use futures_util::StreamExt;
use intake_core::names::BucketRole;
use lifecycle_support::{
    GENEROUS_RATE_LIMITS, Rng, derivative_count, multipart, post, put, text_body, versions_of,
};
use reqwest::Method;
use serde_json::json;

/// Sequences in flight at once.
const PARALLEL: usize = 16;
/// How long one sequence may take to settle after its last action.
const SETTLE: Duration = Duration::from_secs(150);
/// Size of the small files; the multipart part size is the test stack's 8 MiB.
const SMALL: usize = 1500;
const PART_SIZE: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Way {
    Put,
    Post,
    Multipart,
}

/// What the client did to one file id, and what it was told.
#[derive(Debug, Default)]
struct Observed {
    actions: Vec<String>,
    /// (S3 version, bytes) of every write S3 accepted.
    landed: Vec<(Option<String>, Vec<u8>)>,
    /// A DELETE answered 202 after something landed.
    delete_accepted: bool,
}

impl Observed {
    fn did(&mut self, action: impl Into<String>) {
        self.actions.push(action.into());
    }
}

async fn wait_settled(
    stack: &ApiStack,
    file_id: &str,
    key: &str,
    landed: usize,
) -> Result<String, String> {
    let p = &stack.pipeline;
    let uploads = p.bucket(BucketRole::Uploads).to_owned();
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < SETTLE {
        let entry = p
            .ledger
            .upload_get(file_id)
            .await
            .map_err(|e| e.to_string())?;
        let state = entry.map(|e| e.file_state).unwrap_or_default();
        let history = p
            .ledger
            .history(&uploads, key)
            .await
            .map_err(|e| e.to_string())?;
        let versions_terminal = history.len() >= landed
            && history.iter().all(|h| {
                matches!(
                    h.state.as_str(),
                    "done" | "quarantined" | "failed" | "deleted"
                )
            });
        let file_terminal = matches!(
            state.as_str(),
            "done" | "quarantined" | "failed" | "deleted" | "awaiting_upload"
        );
        if versions_terminal && file_terminal {
            return Ok(state);
        }
        last = format!(
            "file {state}; versions {:?}",
            history
                .iter()
                .map(|h| (&h.version, &h.state))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!("did not settle in {SETTLE:?}: {last}"))
}

/// One random sequence for one file id; the violations found.
async fn run_sequence(stack: &ApiStack, n: usize, seed: u64) -> (Vec<String>, Observed) {
    let mut rng = Rng::new(seed);
    let mut seen = Observed::default();
    let tenant = format!("tenant-m{}", n % 4);
    let token = stack.token(&tenant, "user-1");
    let method = match rng.below(10) {
        0..=4 => Way::Put,
        5..=7 => Way::Post,
        _ => Way::Multipart,
    };
    // A multipart with a missing part needs two parts; a complete one uses one small part.
    let missing_part = method == Way::Multipart && rng.chance(40);
    let size = if missing_part {
        PART_SIZE + SMALL
    } else {
        SMALL
    };
    let mut request =
        json!({"filename": format!("model-{n}.txt"), "size": size, "content_type": "text/plain"});
    request["method"] = json!(match method {
        Way::Put => "put",
        Way::Post => "post",
        Way::Multipart => "multipart",
    });
    let signed = stack.sign(&token, request).await;
    seen.did(format!("sign {method:?} size {size}"));
    let file_id = signed["file_id"].as_str().unwrap().to_owned();
    let key = signed["key"].as_str().unwrap().to_owned();
    let path = format!("/v1/files/{file_id}");
    let mut violations = Vec::new();
    let mut counter = 0;
    let mut body = |rng: &mut Rng| {
        counter += 1;
        text_body(
            &format!("file {n} write {counter} {}", rng.next_u64()),
            size,
        )
    };

    if rng.chance(10) {
        let (status, answer) = stack.call(Method::DELETE, &path, Some(&token), None).await;
        seen.did(format!("DELETE before upload -> {status}"));
        if status != 409 || answer["error"]["code"] != "not_uploaded" {
            violations.push(format!(
                "DELETE before any upload answered {status} {answer}"
            ));
        }
    }

    // Land: one write, two in a row, or two or three at once.
    let write = |bytes: Vec<u8>| {
        let signed = &signed;
        async move {
            match method {
                Way::Put => put(stack, signed, bytes.clone()).await,
                _ => post(stack, signed, bytes.clone()).await,
            }
        }
    };
    match method {
        Way::Put | Way::Post => match rng.below(10) {
            0 => seen.did("no upload"),
            1..=5 => {
                let b = body(&mut rng);
                let (status, version) = write(b.clone()).await;
                seen.did(format!("write -> {status}"));
                if status / 100 == 2 {
                    seen.landed.push((version, b));
                }
            }
            6..=7 => {
                for _ in 0..2 {
                    let b = body(&mut rng);
                    let (status, version) = write(b.clone()).await;
                    seen.did(format!("write again -> {status}"));
                    if status / 100 == 2 {
                        seen.landed.push((version, b));
                    }
                }
            }
            _ => {
                let count = 2 + rng.below(2) as usize;
                let bodies: Vec<Vec<u8>> = (0..count).map(|_| body(&mut rng)).collect();
                let results =
                    futures_util::future::join_all(bodies.iter().map(|b| write(b.clone()))).await;
                for ((status, version), b) in results.into_iter().zip(bodies) {
                    seen.did(format!("concurrent write -> {status}"));
                    if status / 100 == 2 {
                        seen.landed.push((version, b));
                    }
                }
            }
        },
        Way::Multipart => {
            let b = body(&mut rng);
            let parts: Vec<u64> = if missing_part { vec![2] } else { vec![1] };
            let (status, answer) = multipart(stack, &token, &signed, &b, &parts).await;
            seen.did(format!("multipart parts {parts:?} complete -> {status}"));
            if missing_part {
                if status != 400 || answer["error"]["code"] != "complete_failed" {
                    violations.push(format!(
                        "a completion with a missing part answered {status} {answer}"
                    ));
                }
                if rng.chance(50) {
                    let (status, _) = stack
                        .call(
                            Method::DELETE,
                            &format!("/v1/uploads/{file_id}"),
                            Some(&token),
                            None,
                        )
                        .await;
                    seen.did(format!("abort -> {status}"));
                    if status != 204 {
                        violations.push(format!("abort answered {status}"));
                    }
                }
            } else if status == 200 {
                seen.landed.push((None, b));
            } else {
                violations.push(format!(
                    "a one-part multipart completion answered {status} {answer}"
                ));
            }
        }
    }

    // DELETE while the pipeline may still be working on it.
    if !seen.landed.is_empty() && rng.chance(15) {
        let (status, answer) = stack.call(Method::DELETE, &path, Some(&token), None).await;
        seen.did(format!("DELETE at once -> {status}"));
        match status {
            202 => seen.delete_accepted = true,
            // The ledger has not accepted a version yet: nothing to delete so far.
            409 if answer["error"]["code"] == "not_uploaded" => {}
            _ => violations.push(format!(
                "DELETE during processing answered {status} {answer}"
            )),
        }
    }
    if let Err(e) = wait_settled(stack, &file_id, &key, seen.landed.len()).await {
        violations.push(e);
    }

    // After it settled: maybe DELETE (and again), maybe use the URL once more.
    if !seen.landed.is_empty() && !seen.delete_accepted && rng.chance(45) {
        let (status, answer) = stack.call(Method::DELETE, &path, Some(&token), None).await;
        seen.did(format!("DELETE -> {status}"));
        if status == 202 {
            seen.delete_accepted = true;
        } else {
            violations.push(format!(
                "DELETE of a settled file answered {status} {answer}"
            ));
        }
    }
    if seen.delete_accepted {
        if let Err(e) = wait_settled(stack, &file_id, &key, seen.landed.len()).await {
            violations.push(e);
        }
        if rng.chance(50) {
            let (status, answer) = stack.call(Method::DELETE, &path, Some(&token), None).await;
            seen.did(format!("DELETE again -> {status}"));
            if status != 202 || answer["state"] != "deleted" {
                violations.push(format!("a second DELETE answered {status} {answer}"));
            }
        }
    }
    if method != Way::Multipart && rng.chance(35) {
        let b = body(&mut rng);
        let (status, version) = write(b.clone()).await;
        seen.did(format!("write after settling -> {status}"));
        if status / 100 == 2 {
            seen.landed.push((version, b));
        }
        if let Err(e) = wait_settled(stack, &file_id, &key, seen.landed.len()).await {
            violations.push(e);
        }
    }
    violations.extend(check(stack, &token, &file_id, &key, &seen).await);
    (violations, seen)
}

/// The model's invariants for one settled file.
async fn check(
    stack: &ApiStack,
    token: &str,
    file_id: &str,
    key: &str,
    seen: &Observed,
) -> Vec<String> {
    let mut v = Vec::new();
    let p = &stack.pipeline;
    let uploads = p.bucket(BucketRole::Uploads).to_owned();
    let (status, file) = stack
        .call(
            Method::GET,
            &format!("/v1/files/{file_id}"),
            Some(token),
            None,
        )
        .await;
    if status != 200 {
        return vec![format!("GET file answered {status} {file}")];
    }
    let state = file["state"].as_str().unwrap_or_default().to_owned();
    let file_version = p.ledger.file_version(&uploads, key).await.unwrap();
    let history = p.ledger.history(&uploads, key).await.unwrap();
    let stored = versions_of(p, BucketRole::Store, key).await;
    let in_uploads = versions_of(p, BucketRole::Uploads, key).await;
    let quarantined = versions_of(p, BucketRole::Quarantine, key).await;
    let records = p.ledger.catalog_find(&uploads, key).await.unwrap();
    if !in_uploads.is_empty() {
        v.push(format!(
            "{} version(s) left in the uploads bucket",
            in_uploads.len()
        ));
    }
    if history.len() != seen.landed.len() {
        v.push(format!(
            "{} write(s) landed but the ledger knows {} version(s)",
            seen.landed.len(),
            history.len()
        ));
    }
    let Some(file_version) = file_version else {
        if !seen.landed.is_empty() {
            v.push("writes landed but no version is the file".to_owned());
        }
        if state != "awaiting_upload" {
            v.push(format!("nothing landed but the API says {state}"));
        }
        if !stored.is_empty() || !quarantined.is_empty() || !records.is_empty() {
            v.push("nothing landed but a bucket or the catalog holds something".to_owned());
        }
        return v;
    };
    // Every other version was refused as reused and never promoted.
    for h in history.iter().filter(|h| h.version != file_version) {
        let last = h.transitions.last();
        if h.state != "quarantined" || last.and_then(|t| t.code.as_deref()) != Some("upload_reused")
        {
            v.push(format!(
                "version {} is {} ({last:?}), not refused as upload_reused",
                h.version, h.state
            ));
        }
    }
    if quarantined.iter().any(|q| {
        q.tag("intake-source-version") == Some(file_version.as_str())
            || q.tag("intake-reason") != Some("upload_reused")
    }) {
        v.push(format!(
            "quarantine holds something other than refused versions: {quarantined:?}"
        ));
    }
    let file_state = history
        .iter()
        .find(|h| h.version == file_version)
        .map(|h| h.state.clone())
        .unwrap_or_default();
    // The bytes the file must have: those of the write S3 gave the file's version id, or
    // (a POST or multipart answer without a version id) one of the writes that landed.
    let file_bodies: Vec<&Vec<u8>> = match seen
        .landed
        .iter()
        .find(|(version, _)| version.as_deref() == Some(file_version.as_str()))
    {
        Some((_, b)) => vec![b],
        None => seen.landed.iter().map(|(_, b)| b).collect(),
    };
    if seen.delete_accepted {
        if state != "deleted" || file_state != "deleted" || file["ready"] != false {
            v.push(format!(
                "deleted file: API {state} ready {}, ledger {file_state}",
                file["ready"]
            ));
        }
        if !stored.is_empty() || !records.is_empty() {
            v.push(format!(
                "deleted file still has {} stored version(s), {} record(s)",
                stored.len(),
                records.len()
            ));
        }
        let tenant = key.split('/').next().unwrap_or_default();
        if derivative_count(p, tenant, key, &file_version).await != 0 {
            v.push("deleted file still has derivatives".to_owned());
        }
    } else {
        if state != "done" || file_state != "done" || file["ready"] != true {
            v.push(format!(
                "file: API {state} ready {}, ledger {file_state}",
                file["ready"]
            ));
            return v;
        }
        if stored.len() != 1
            || stored[0].tag("intake-source-version") != Some(file_version.as_str())
        {
            v.push(format!(
                "store holds {stored:?}, not just the file version {file_version}"
            ));
        }
        if records.len() != 1 || records[0].record.upload.version != file_version {
            v.push(format!(
                "{} catalog record(s), not one of the file version",
                records.len()
            ));
        }
        let (status, link) = stack
            .call(
                Method::GET,
                &format!("/v1/files/{file_id}/download"),
                Some(token),
                None,
            )
            .await;
        if status != 200 {
            v.push(format!("a done file's download answered {status} {link}"));
        } else {
            let bytes = stack
                .http
                .get(link["url"].as_str().unwrap())
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            if !file_bodies.iter().any(|b| b.as_slice() == bytes.as_ref()) {
                v.push("the download is not the file version's bytes".to_owned());
            }
        }
    }
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn random_client_sequences_keep_one_file_one_life() {
    let seed: u64 = std::env::var("INTAKE_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let sequences: usize = std::env::var("INTAKE_MODEL_SEQUENCES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    println!(
        "lifecycle model: seed={seed} sequences={sequences} (replay with INTAKE_MODEL_SEED={seed})"
    );
    let mut stack =
        ApiStack::start("INTAKE_TEST_JWT_SECRET_MODEL", GENEROUS_RATE_LIMITS, true).await;
    stack.spawn_workers().await;
    let started = Instant::now();
    let stack_ref = &stack;
    let results: Vec<(usize, Vec<String>, Observed)> = futures_util::stream::iter(0..sequences)
        .map(|n| async move {
            let (violations, seen) =
                run_sequence(stack_ref, n, seed ^ (n as u64).wrapping_mul(0x9E37_79B9)).await;
            (n, violations, seen)
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let mut violations = 0;
    let mut writes = 0;
    let mut deleted = 0;
    for (n, found, seen) in &results {
        writes += seen.landed.len();
        deleted += usize::from(seen.delete_accepted);
        if !found.is_empty() {
            violations += found.len();
            println!("sequence {n}: {:?}\n  violations: {found:#?}", seen.actions);
        }
    }
    println!(
        "lifecycle model: seed={seed} sequences={} writes_landed={writes} deleted={deleted} violations={violations} in {:.0?}",
        results.len(),
        started.elapsed()
    );
    stack.shutdown().await;
    assert_eq!(violations, 0, "replay with INTAKE_MODEL_SEED={seed}");
}
