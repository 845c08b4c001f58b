//! Presigned uploads against a real LocalStack with signature validation on
//! (`S3_SKIP_SIGNATURE_VALIDATION=0`, set by the testkit; a host-mode LocalStack named by
//! `INTAKE_TEST_ENDPOINT` must be started with it too). A plain HTTP client plays the browser:
//! what it may upload is decided by S3 from the signature or policy, never by the client.
//!
//! LocalStack does not check presigned POST policies as S3 does (no signature check, no
//! refusal of fields the policy does not cover); the last test pins what it does instead, and
//! the POST test recomputes the signature independently, as S3 would.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use hmac::{Hmac, Mac};
use intake_aws::AwsClients;
use intake_aws::presign::{
    PresignedPost, PresignedPut, abort_multipart, complete_multipart, create_multipart, plan_parts,
    presign_part, presign_post, presign_put,
};
use intake_testkit::{LocalStack, unique_pipeline_name};
use sha2::{Digest, Sha256};

const MIB: usize = 1024 * 1024;
const TTL: Duration = Duration::from_secs(300);
/// LocalStack checks a presigned signature with the secret of an access key registered in its
/// IAM, or with `test` for any other key; the testkit's default credentials have another
/// secret, so every presigned request here is signed as `test`/`test`.
const SECRET: &str = "test";

struct Fixture {
    _localstack: LocalStack,
    aws: AwsClients,
    bucket: String,
    http: reqwest::Client,
}

/// LocalStack, clients signing as `test`, and a versioned bucket of this test's own.
async fn fixture() -> Fixture {
    let localstack = LocalStack::start().await.expect("LocalStack");
    let config = localstack
        .sdk_config()
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "test", SECRET, None, None, "test",
        )))
        .build();
    let aws = AwsClients::from_sdk_config(&config);
    let bucket = unique_pipeline_name();
    aws.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    aws.s3
        .put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    Fixture {
        _localstack: localstack,
        aws,
        bucket,
        http: reqwest::Client::new(),
    }
}

/// Bytes that differ at every offset modulo 251, so a misplaced part would show.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i >> 20) as u8)
        .collect()
}

/// S3's error code from an XML error body.
fn s3_code(body: &str) -> &str {
    body.split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map_or("(no code)", |(code, _)| code)
}

/// PUT `body` to a presigned URL with its signed headers, `content_type` replacing the signed
/// one when given. Content-Length is left to the client, which derives it from the body, as
/// a browser does.
async fn put(
    http: &reqwest::Client,
    signed: &PresignedPut,
    body: Vec<u8>,
    content_type: Option<&str>,
) -> (u16, String, Option<String>) {
    let mut request = http.put(&signed.url).body(body);
    for (name, value) in &signed.headers {
        match name.as_str() {
            "content-length" => {}
            "content-type" => request = request.header(name, content_type.unwrap_or(value)),
            _ => request = request.header(name, value),
        }
    }
    let response = request.send().await.expect("PUT reaches LocalStack");
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, response.text().await.unwrap_or_default(), etag)
}

/// POST the form `fields` (in order) and then `file`, as a browser form does.
async fn post(
    http: &reqwest::Client,
    url: &str,
    fields: &[(String, String)],
    file: Vec<u8>,
) -> (u16, String) {
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in fields {
        form = form.text(name.clone(), value.clone());
    }
    let part = reqwest::multipart::Part::bytes(file)
        .file_name("upload.bin")
        .mime_str("application/octet-stream")
        .unwrap();
    let response = http
        .post(url)
        .multipart(form.part("file", part))
        .send()
        .await
        .expect("POST reaches LocalStack");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// The POST's fields with `name` set to `value`.
fn with_field(post: &PresignedPost, name: &str, value: &str) -> Vec<(String, String)> {
    post.fields
        .iter()
        .map(|(k, v)| {
            let v = if k == name { value } else { v.as_str() };
            (k.clone(), v.to_owned())
        })
        .collect()
}

fn field<'a>(post: &'a PresignedPost, name: &str) -> &'a str {
    &post.fields.iter().find(|(k, _)| k == name).unwrap().1
}

async fn exists(aws: &AwsClients, bucket: &str, key: &str) -> bool {
    match aws.s3.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => true,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => false,
        Err(e) => panic!("HeadObject {key}: {e:?}"),
    }
}

async fn get(aws: &AwsClients, bucket: &str, key: &str) -> (Vec<u8>, Option<String>) {
    let got = aws
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let content_type = got.content_type().map(str::to_owned);
    (got.body.collect().await.unwrap().to_vec(), content_type)
}

/// Expect S3 to refuse: a 4xx with `code`, printed so the run shows S3's own words.
fn refused(what: &str, (status, body): (u16, &str), code: &str) {
    println!("{what}: HTTP {status} {}", s3_code(body));
    assert!(
        (400..500).contains(&status) && s3_code(body) == code,
        "{what}: expected a 4xx {code}, got HTTP {status}: {body} (is LocalStack running with \
         S3_SKIP_SIGNATURE_VALIDATION=0?)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_presigned_put_takes_only_the_signed_size_and_type() {
    let f = fixture().await;
    let body = pattern(1000);
    let signed = presign_put(&f.aws, &f.bucket, "t/u/exact.png", "image/png", 1000, TTL)
        .await
        .expect("presign PUT");
    let signed_headers = signed
        .url
        .split("X-Amz-SignedHeaders=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .unwrap();
    println!("X-Amz-SignedHeaders={signed_headers}");
    assert_eq!(
        signed_headers,
        "content-length%3Bcontent-type%3Bhost%3Bif-none-match"
    );
    assert!(
        signed
            .headers
            .contains(&("if-none-match".into(), "*".into())),
        "{:?}",
        signed.headers
    );
    assert!(
        signed
            .headers
            .contains(&("content-type".into(), "image/png".into()))
    );
    assert!(
        signed
            .headers
            .contains(&("content-length".into(), "1000".into()))
    );

    let (status, text, _) = put(&f.http, &signed, body.clone(), None).await;
    assert_eq!(status, 200, "the signed size and type are accepted: {text}");
    let (got, content_type) = get(&f.aws, &f.bucket, "t/u/exact.png").await;
    assert_eq!(got, body);
    assert_eq!(content_type.as_deref(), Some("image/png"));

    // Another URL for another key: each refused attempt must leave nothing behind.
    let key = "t/u/refused.png";
    let signed = presign_put(&f.aws, &f.bucket, key, "image/png", 1000, TTL)
        .await
        .unwrap();
    let (status, text, _) = put(&f.http, &signed, pattern(1001), None).await;
    refused("PUT 1001 bytes", (status, &text), "SignatureDoesNotMatch");
    let (status, text, _) = put(&f.http, &signed, pattern(999), None).await;
    refused("PUT 999 bytes", (status, &text), "SignatureDoesNotMatch");
    let (status, text, _) = put(&f.http, &signed, pattern(1000), Some("text/html")).await;
    refused("PUT as text/html", (status, &text), "SignatureDoesNotMatch");
    assert!(
        !exists(&f.aws, &f.bucket, key).await,
        "no object after refusals"
    );

    // The URL itself still works for exactly what it grants, once: a second PUT of the key
    // (a client's retry of a PUT that had succeeded) is refused while the first is there.
    let (status, _, _) = put(&f.http, &signed, pattern(1000), None).await;
    assert_eq!(status, 200);
    let (status, text, _) = put(&f.http, &signed, pattern(1000), None).await;
    refused(
        "a second PUT of the key",
        (status, &text),
        "PreconditionFailed",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_presigned_post_holds_key_type_and_size_range() {
    let f = fixture().await;
    let key = "t/u/form.png";
    let form = presign_post(&f.aws, &f.bucket, key, "image/png", 10, 1000, TTL)
        .await
        .expect("presign POST");
    assert_eq!(form.url, format!("{}/{}", f.aws.endpoint, f.bucket));

    // LocalStack does not check this signature; S3 would, so recompute it as S3 does.
    let date = &field(&form, "x-amz-date")[..8];
    assert_eq!(
        field(&form, "x-amz-credential"),
        format!("test/{date}/us-east-1/s3/aws4_request")
    );
    assert_eq!(
        field(&form, "x-amz-signature"),
        sigv4_post_signature(SECRET, date, "us-east-1", field(&form, "policy"))
    );

    for (size, code) in [(1001, "EntityTooLarge"), (9, "EntityTooSmall")] {
        let (status, text) = post(&f.http, &form.url, &form.fields, pattern(size)).await;
        refused(&format!("POST {size} bytes"), (status, &text), code);
    }
    assert!(
        !exists(&f.aws, &f.bucket, key).await,
        "no object after refusals"
    );

    let other = "t/u/other.png";
    let (status, text) = post(
        &f.http,
        &form.url,
        &with_field(&form, "key", other),
        pattern(500),
    )
    .await;
    refused("POST to another key", (status, &text), "AccessDenied");
    assert!(!exists(&f.aws, &f.bucket, other).await);
    let as_html = with_field(&form, "Content-Type", "text/html");
    let (status, text) = post(&f.http, &form.url, &as_html, pattern(500)).await;
    refused("POST as text/html", (status, &text), "AccessDenied");
    assert!(!exists(&f.aws, &f.bucket, key).await);

    let body = pattern(500);
    let (status, text) = post(&f.http, &form.url, &form.fields, body.clone()).await;
    assert_eq!(status, 204, "within the range: {text}");
    let (got, content_type) = get(&f.aws, &f.bucket, key).await;
    assert_eq!(got, body);
    assert_eq!(
        content_type.as_deref(),
        Some("image/png"),
        "from the form's Content-Type"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_multipart_upload_through_presigned_parts() {
    let f = fixture().await;
    let key = "t/u/large.bin";
    let (size, part_size) = (64 * MIB, 8 * MIB);
    assert_eq!(plan_parts(size as u64, part_size as u64), Ok(8));
    let body = Arc::new(pattern(size));
    let upload_id = create_multipart(&f.aws, &f.bucket, key, "application/octet-stream")
        .await
        .expect("create multipart");

    // Eight parts, four PUTs at a time, as a browser uploader would.
    let permits = Arc::new(tokio::sync::Semaphore::new(4));
    let (in_flight, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut tasks = tokio::task::JoinSet::new();
    for number in 1..=8i32 {
        let (aws, http, bucket) = (f.aws.clone(), f.http.clone(), f.bucket.clone());
        let (body, permits, upload_id) = (body.clone(), permits.clone(), upload_id.clone());
        let (in_flight, most) = (in_flight.clone(), most.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            let start = (number as usize - 1) * part_size;
            let part = body[start..start + part_size].to_vec();
            let signed = presign_part(
                &aws,
                &bucket,
                key,
                &upload_id,
                number,
                part_size as u64,
                TTL,
            )
            .await
            .expect("presign part");
            let (status, text, etag) = put(&http, &signed, part, None).await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
            assert_eq!(status, 200, "part {number}: {text}");
            (number, etag.expect("a part's ETag"))
        });
    }
    let parts: Vec<(i32, String)> = tasks.join_all().await;
    let most = most.load(Ordering::SeqCst);
    println!("at most {most} part PUTs in flight");
    assert!((1..=4).contains(&most), "{most} in flight");

    let version = complete_multipart(&f.aws, &f.bucket, key, &upload_id, &parts)
        .await
        .expect("complete multipart");
    assert!(version.is_some(), "a versioned bucket gives a version id");
    let head = f
        .aws
        .s3
        .head_object()
        .bucket(&f.bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(size as i64));
    assert_eq!(head.version_id(), version.as_deref());
    assert!(
        head.e_tag().is_some_and(|e| e.ends_with("-8\"")),
        "{:?}",
        head.e_tag()
    );
    let (got, _) = get(&f.aws, &f.bucket, key).await;
    assert_eq!(
        Sha256::digest(&got),
        Sha256::digest(body.as_slice()),
        "same bytes, in order"
    );

    // Another upload: a part of the wrong size is refused, then the upload is aborted, twice.
    let other = "t/u/abandoned.bin";
    let upload_id = create_multipart(&f.aws, &f.bucket, other, "application/octet-stream")
        .await
        .unwrap();
    let signed = presign_part(&f.aws, &f.bucket, other, &upload_id, 1, 5 * MIB as u64, TTL)
        .await
        .unwrap();
    let (status, text, _) = put(&f.http, &signed, pattern(5 * MIB + 1), None).await;
    refused(
        "part of 5 MiB + 1 byte",
        (status, &text),
        "SignatureDoesNotMatch",
    );
    let (status, _, _) = put(&f.http, &signed, pattern(5 * MIB), None).await;
    assert_eq!(status, 200);
    abort_multipart(&f.aws, &f.bucket, other, &upload_id)
        .await
        .expect("abort");
    let listed = f
        .aws
        .s3
        .list_parts()
        .bucket(&f.bucket)
        .key(other)
        .upload_id(&upload_id)
        .send()
        .await;
    assert_eq!(
        listed.err().and_then(|e| e
            .as_service_error()
            .and_then(|s| s.meta().code().map(str::to_owned))),
        Some("NoSuchUpload".to_owned()),
        "the aborted upload is gone"
    );
    abort_multipart(&f.aws, &f.bucket, other, &upload_id)
        .await
        .expect("aborting again is done, not an error");
    assert!(!exists(&f.aws, &f.bucket, other).await);
}

/// Pins LocalStack 4.13.1's POST checks, which are weaker than S3's: it checks the policy's
/// expiry and conditions but never its signature ("TODO: validate the signature" in
/// `localstack/services/s3/presigned_url.py`), and accepts form fields the policy does not
/// cover. S3 refuses both: `SignatureDoesNotMatch` (403) for an altered policy, and
/// `AccessDenied` "Invalid according to Policy: Extra input fields" (403) for an extra field.
/// If this test fails, LocalStack has caught up: turn these into refusals.
#[tokio::test(flavor = "multi_thread")]
async fn localstack_does_not_check_post_signatures_or_extra_fields() {
    use base64::Engine;
    let f = fixture().await;
    let key = "t/u/forged.png";
    let form = presign_post(&f.aws, &f.bucket, key, "image/png", 1, 1000, TTL)
        .await
        .unwrap();

    // The policy widened to 10 MiB after signing, the signature left as it was.
    let engine = base64::engine::general_purpose::STANDARD;
    let policy = String::from_utf8(engine.decode(field(&form, "policy")).unwrap()).unwrap();
    let widened = policy.replace(
        "[\"content-length-range\",1,1000]",
        &format!("[\"content-length-range\",1,{}]", 10 * MIB),
    );
    assert_ne!(widened, policy, "the range is in the policy: {policy}");
    let forged = with_field(&form, "policy", &engine.encode(widened));
    let (status, text) = post(&f.http, &form.url, &forged, pattern(2000)).await;
    println!("forged policy: HTTP {status} (S3: 403 SignatureDoesNotMatch)");
    assert_eq!(status, 204, "LocalStack stores it: {text}");
    let (got, _) = get(&f.aws, &f.bucket, key).await;
    assert_eq!(got.len(), 2000, "over the signed maximum of 1000");

    // A field the policy does not name.
    let mut extra = form.fields.clone();
    extra.insert(2, ("x-amz-meta-injected".into(), "yes".into()));
    let (status, text) = post(&f.http, &form.url, &extra, pattern(10)).await;
    println!("extra field: HTTP {status} (S3: 403 AccessDenied, Extra input fields)");
    assert_eq!(status, 204, "LocalStack stores it: {text}");
    let head = f
        .aws
        .s3
        .head_object()
        .bucket(&f.bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("injected"))
            .map(String::as_str),
        Some("yes")
    );
}

/// S3's POST signature, from its documentation: HMAC-SHA256 over the base64 policy with the
/// key derived from `AWS4` + secret, the date, the region, `s3` and `aws4_request`; hex.
fn sigv4_post_signature(secret: &str, date: &str, region: &str, policy: &str) -> String {
    let hmac = |key: &[u8], data: &str| {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(data.as_bytes());
        mac.finalize().into_bytes().to_vec()
    };
    let key = [date, region, "s3", "aws4_request"]
        .into_iter()
        .fold(format!("AWS4{secret}").into_bytes(), |key, part| {
            hmac(&key, part)
        });
    hmac(&key, policy)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
