//! Shared by the upload-lifecycle tests: what the buckets, the ledger and the catalog hold
//! for one file, a seeded random source for the model-based test, and the client actions
//! (PUT, POST, multipart) with the S3 version each landed.

// Each test binary uses a different part of it.
#![allow(dead_code)]

use intake_core::ObjectRef;
use intake_core::names::BucketRole;
use reqwest::Method;
use serde_json::{Value, json};

use crate::api_support::ApiStack;
use crate::support::Pipeline;

/// The lifecycle tests' `[api]` additions: rate limits well above what the concurrent
/// sequences and their polling send from one address.
pub const GENEROUS_RATE_LIMITS: &str = "[api.rate_limits]\nper_ip_per_minute = 1000000\nper_tenant_per_minute = 1000000\nburst = 100000\n";

/// SplitMix64: a tiny seeded generator, so a failing sequence replays from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// One object version in a bucket with its tags.
#[derive(Debug, Clone)]
pub struct StoredVersion {
    pub version_id: String,
    pub tags: Vec<(String, String)>,
}

impl StoredVersion {
    pub fn tag(&self, name: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every version (not delete markers) of exactly `key` in the bucket of `role`, with tags.
pub async fn versions_of(p: &Pipeline, role: BucketRole, key: &str) -> Vec<StoredVersion> {
    let bucket = p.bucket(role);
    let listed = p
        .aws
        .s3
        .list_object_versions()
        .bucket(bucket)
        .prefix(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("listing versions of {key} in {bucket}: {e:?}"));
    let mut out = Vec::new();
    for v in listed.versions() {
        if v.key() != Some(key) {
            continue;
        }
        let version_id = v.version_id().unwrap_or("null").to_owned();
        let tags = p
            .aws
            .s3
            .get_object_tagging()
            .bucket(bucket)
            .key(key)
            .version_id(&version_id)
            .send()
            .await
            .map(|t| {
                t.tag_set()
                    .iter()
                    .map(|t| (t.key().to_owned(), t.value().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        out.push(StoredVersion { version_id, tags });
    }
    out
}

/// How many derivative objects the upload version `version` of `key` has.
pub async fn derivative_count(p: &Pipeline, tenant: &str, key: &str, version: &str) -> usize {
    let upload = ObjectRef {
        bucket: p.bucket(BucketRole::Uploads).to_owned(),
        key: key.to_owned(),
        version_id: Some(version.to_owned()),
        etag: None,
        size: 0,
        tenant: Some(tenant.to_owned()),
        user: None,
        sequencer: None,
    };
    let listed = p
        .aws
        .s3
        .list_object_versions()
        .bucket(p.bucket(BucketRole::Derivatives))
        .prefix(upload.derivatives_prefix())
        .send()
        .await
        .expect("listing derivatives");
    listed.versions().len()
}

/// PUT `bytes` to the signed URL: the HTTP status and the S3 version it made, if any.
pub async fn put(stack: &ApiStack, signed: &Value, bytes: Vec<u8>) -> (u16, Option<String>) {
    let response = stack.put_signed(signed, bytes).await;
    landed(response).await
}

/// POST `bytes` with the signed form fields, as a browser form would.
pub async fn post(stack: &ApiStack, signed: &Value, bytes: Vec<u8>) -> (u16, Option<String>) {
    let post = &signed["post"];
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in post["fields"].as_object().unwrap() {
        form = form.text(name.clone(), value.as_str().unwrap().to_owned());
    }
    form = form.part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name("upload"),
    );
    let response = stack
        .http
        .post(post["url"].as_str().unwrap())
        .multipart(form)
        .send()
        .await
        .unwrap();
    landed(response).await
}

async fn landed(response: reqwest::Response) -> (u16, Option<String>) {
    let status = response.status().as_u16();
    let version = response
        .headers()
        .get("x-amz-version-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let _ = response.bytes().await;
    (status, version)
}

/// Uploads the given part numbers of a multipart upload (each `bytes` long, cut from
/// `body`) and completes it with `complete_with` (part number and ETag; a missing part
/// gets a made-up ETag): the API's status and answer for the completion.
pub async fn multipart(
    stack: &ApiStack,
    token: &str,
    signed: &Value,
    body: &[u8],
    upload_parts: &[u64],
) -> (u16, Value) {
    let file_id = signed["file_id"].as_str().unwrap();
    let part_count = signed["multipart"]["part_count"].as_u64().unwrap();
    let part_size = signed["multipart"]["part_size"].as_u64().unwrap() as usize;
    let mut etags = Vec::new();
    if !upload_parts.is_empty() {
        let (status, parts) = stack
            .call(
                Method::POST,
                &format!("/v1/uploads/{file_id}/parts"),
                Some(token),
                Some(json!({"part_numbers": upload_parts})),
            )
            .await;
        assert_eq!(status, 200, "signing parts: {parts}");
        for part in parts["parts"].as_array().unwrap() {
            let n = part["part_number"].as_u64().unwrap() as usize;
            let start = (n - 1) * part_size;
            let end = (start + part_size).min(body.len());
            let response = stack
                .http
                .put(part["url"].as_str().unwrap())
                .body(body[start..end].to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "part {n}");
            let etag = response.headers()["etag"].to_str().unwrap().to_owned();
            etags.push((n as u64, etag));
        }
    }
    let parts: Vec<Value> = (1..=part_count)
        .map(|n| {
            let etag = etags
                .iter()
                .find(|(m, _)| *m == n)
                .map(|(_, e)| e.clone())
                .unwrap_or_else(|| "\"00000000000000000000000000000000\"".to_owned());
            json!({"part_number": n, "etag": etag})
        })
        .collect();
    stack
        .call(
            Method::POST,
            &format!("/v1/uploads/{file_id}/complete"),
            Some(token),
            Some(json!({"parts": parts})),
        )
        .await
}

/// A text file of exactly `len` bytes whose content says which upload it was.
pub fn text_body(label: &str, len: usize) -> Vec<u8> {
    let mut body = format!("{label}\n").into_bytes();
    while body.len() < len {
        body.extend_from_slice(b"an ordinary line of an ordinary text file\n");
    }
    body.truncate(len);
    if let Some(last) = body.last_mut() {
        *last = b'\n';
    }
    body
}
