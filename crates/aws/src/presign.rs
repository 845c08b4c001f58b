//! Presigned uploads: a client sends its bytes straight to S3, and S3 itself holds the upload
//! to what was granted. A presigned PUT (or part) signs Content-Length and Content-Type, so any
//! other size or type fails S3's signature check; a presigned POST carries a SigV4 policy with
//! the exact key, the type and a `content-length-range`. Multipart uploads are created,
//! completed and aborted here with the server's credentials; [`plan_parts`] (in `parts`)
//! checks a part plan against S3's multipart limits before anything is created, and `policy`
//! builds and signs POST policies.
//!
//! Everything is signed with the credentials of the clients' `SdkConfig` (cached, see
//! [`AwsClients`]); a presigned URL or form stops working when those credentials expire, so
//! every `expires_at_ms` is the earlier of the requested expiry and theirs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use crate::AwsClients;
use crate::error::{AwsError, CallSite, is_code};

mod parts;
mod policy;

pub use parts::{PartPlanError, plan_parts};
use policy::{PostPolicy, post_fields};

const MIB: u64 = 1024 * 1024;
/// Every part but the last must be at least this large (S3 refuses with `EntityTooSmall`).
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// The largest part, and the largest object one PUT or POST may carry.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * MIB;
/// Part numbers run 1..=10,000.
pub const MAX_PARTS: u32 = 10_000;
/// The largest object S3 stores.
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * MIB;
/// SigV4 presigned requests live at most seven days.
pub const MAX_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// A presigned PUT (of an object or of one multipart part).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresignedPut {
    pub url: String,
    /// Headers the request must carry with exactly these values, since they are signed. It
    /// includes `content-length`: HTTP clients (and browsers, which forbid setting it) derive
    /// that from the body, which must therefore be exactly that many bytes.
    pub headers: Vec<(String, String)>,
    /// When the URL stops working, in milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
}

/// A browser-style POST: send `fields` in this order as `multipart/form-data`, then the bytes
/// as a last field named `file` (S3 ignores fields after `file`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresignedPost {
    pub url: String,
    pub fields: Vec<(String, String)>,
    /// When the policy expires, in milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
}

/// Presigned PUT whose signature covers Content-Type and Content-Length, so S3 itself refuses
/// a body of another size or type, and `If-None-Match: *`, so S3 refuses (412) a second PUT
/// of the key while the first version is still in the bucket: a client's retry of a PUT
/// that had in fact succeeded is told so instead of storing a second version. (The pipeline
/// refuses any later version anyway, `upload_reused`: a POST or a PUT after promotion moved
/// the first one out gets past S3.)
pub async fn presign_put(
    aws: &AwsClients,
    bucket: &str,
    key: &str,
    content_type: &str,
    content_length: u64,
    expires: Duration,
) -> Result<PresignedPut, AwsError> {
    let what = format!("a PUT to s3://{bucket}/{key}");
    let length = single_request_size(&what, content_length, "upload it in parts")?;
    let credentials = aws.signing_credentials(&what).await?;
    let validity = Validity::new(&what, expires, &credentials)?;
    let site = CallSite::new(&aws.endpoint, format!("s3://{bucket}/{key}"));
    let request = aws
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .content_length(length)
        .if_none_match("*")
        .customize()
        .config_override(signed_with(credentials))
        .presigned(validity.config(&what)?)
        .await
        .map_err(site.fail("PutObject (presign)"))?;
    presigned_put(bucket, key, "PutObject (presign)", request, &validity, true)
}

/// Browser-style POST policy (SigV4, AWS4-HMAC-SHA256): the bucket, this exact key, this
/// Content-Type, a size in `min_size..=max_size`, and the signing fields (with
/// `x-amz-security-token` when the credentials carry a session token).
pub async fn presign_post(
    aws: &AwsClients,
    bucket: &str,
    key: &str,
    content_type: &str,
    min_size: u64,
    max_size: u64,
    expires: Duration,
) -> Result<PresignedPost, AwsError> {
    let what = format!("a POST to s3://{bucket}/{key}");
    single_request_size(&what, max_size, "upload it in parts")?;
    if min_size > max_size {
        return Err(AwsError::InvalidRequest {
            what,
            problem: format!(
                "the minimum size {min_size} is over the maximum {max_size}; give min <= max"
            ),
        });
    }
    let credentials = aws.signing_credentials(&what).await?;
    let validity = Validity::new(&what, expires, &credentials)?;
    let fields = post_fields(&PostPolicy {
        bucket,
        key,
        content_type,
        min_size,
        max_size,
        credentials: &credentials,
        region: &aws.region,
        start: validity.start,
        expires: validity.expires,
    });
    let url = match &aws.endpoint_url {
        // An endpoint override means LocalStack or an S3-compatible store: path-style, as
        // the clients use.
        Some(endpoint) => format!("{}/{bucket}", endpoint.trim_end_matches('/')),
        None => format!("https://{bucket}.s3.{}.amazonaws.com/", aws.region),
    };
    Ok(PresignedPost {
        url,
        fields,
        expires_at_ms: validity.expires_at_ms,
    })
}

/// Start a multipart upload of `key` with this Content-Type; returns the upload id.
pub async fn create_multipart(
    aws: &AwsClients,
    bucket: &str,
    key: &str,
    content_type: &str,
) -> Result<String, AwsError> {
    let site = CallSite::new(&aws.endpoint, format!("s3://{bucket}/{key}"));
    let created = aws
        .s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .send()
        .await
        .map_err(site.fail("CreateMultipartUpload"))?;
    created.upload_id.ok_or_else(|| AwsError::Call {
        operation: "CreateMultipartUpload",
        resource: format!("s3://{bucket}/{key}"),
        code: None,
        message: "the answer carried no upload id; check that the endpoint is S3".into(),
    })
}

/// Presigned PUT of one part, its Content-Length signed so S3 refuses a part of another size.
/// The response's `ETag` header is what [`complete_multipart`] needs for the part.
pub async fn presign_part(
    aws: &AwsClients,
    bucket: &str,
    key: &str,
    upload_id: &str,
    part_number: i32,
    content_length: u64,
    expires: Duration,
) -> Result<PresignedPut, AwsError> {
    let what = format!("part {part_number} of upload {upload_id} to s3://{bucket}/{key}");
    if !(1..=MAX_PARTS as i32).contains(&part_number) {
        return Err(AwsError::InvalidRequest {
            what,
            problem: format!("part numbers run from 1 to {MAX_PARTS}"),
        });
    }
    let length = single_request_size(&what, content_length, "use smaller parts")?;
    let credentials = aws.signing_credentials(&what).await?;
    let validity = Validity::new(&what, expires, &credentials)?;
    let site = CallSite::new(&aws.endpoint, format!("s3://{bucket}/{key}"));
    let request = aws
        .s3
        .upload_part()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .part_number(part_number)
        .content_length(length)
        .customize()
        .config_override(signed_with(credentials))
        .presigned(validity.config(&what)?)
        .await
        .map_err(site.fail("UploadPart (presign)"))?;
    presigned_put(
        bucket,
        key,
        "UploadPart (presign)",
        request,
        &validity,
        false,
    )
}

/// Complete a multipart upload from `(part number, ETag)` pairs, in any order; returns the
/// new object's version id (`None` in an unversioned bucket).
pub async fn complete_multipart(
    aws: &AwsClients,
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: &[(i32, String)],
) -> Result<Option<String>, AwsError> {
    let mut sorted = parts.to_vec();
    // S3 wants ascending part numbers; callers collect ETags as concurrent PUTs finish.
    sorted.sort_by_key(|(number, _)| *number);
    if sorted.is_empty() || sorted.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(AwsError::InvalidRequest {
            what: format!("completing upload {upload_id} to s3://{bucket}/{key}"),
            problem: "the parts must be at least one, each part number once".into(),
        });
    }
    let upload = CompletedMultipartUpload::builder()
        .set_parts(Some(
            sorted
                .into_iter()
                .map(|(number, etag)| {
                    CompletedPart::builder()
                        .part_number(number)
                        .e_tag(etag)
                        .build()
                })
                .collect(),
        ))
        .build();
    let site = CallSite::new(
        &aws.endpoint,
        format!("upload {upload_id} to s3://{bucket}/{key}"),
    );
    let completed = aws
        .s3
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(upload)
        .send()
        .await
        .map_err(site.fail("CompleteMultipartUpload"))?;
    Ok(completed.version_id)
}

/// Abort a multipart upload and free its parts. An upload already gone (`NoSuchUpload`:
/// aborted before, or completed) counts as done, so retries are safe.
pub async fn abort_multipart(
    aws: &AwsClients,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<(), AwsError> {
    let site = CallSite::new(
        &aws.endpoint,
        format!("upload {upload_id} to s3://{bucket}/{key}"),
    );
    match aws
        .s3
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_code(&e, &["NoSuchUpload"]) => Ok(()),
        Err(e) => Err(site.fail("AbortMultipartUpload")(e)),
    }
}

/// The moment a presigned request is signed (whole seconds, as SigV4 dates are), how long it
/// lives, and when it really stops working.
struct Validity {
    start: SystemTime,
    expires: Duration,
    expires_at_ms: i64,
}

impl Validity {
    fn new(what: &str, expires: Duration, credentials: &Credentials) -> Result<Self, AwsError> {
        let expires = Duration::from_secs(expires.as_secs());
        if expires.is_zero() || expires > MAX_EXPIRY {
            return Err(AwsError::InvalidRequest {
                what: what.to_owned(),
                problem: format!(
                    "an expiry of {} s is outside SigV4's 1 s to 7 days ({} s)",
                    expires.as_secs(),
                    MAX_EXPIRY.as_secs()
                ),
            });
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let start = UNIX_EPOCH + Duration::from_secs(now);
        let end = credentials
            .expiry()
            .map_or(start + expires, |dies| dies.min(start + expires));
        let expires_at_ms = end
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as i64;
        Ok(Validity {
            start,
            expires,
            expires_at_ms,
        })
    }

    fn config(&self, what: &str) -> Result<PresigningConfig, AwsError> {
        PresigningConfig::builder()
            .start_time(self.start)
            .expires_in(self.expires)
            .build()
            .map_err(|e| AwsError::InvalidRequest {
                what: what.to_owned(),
                problem: e.to_string(),
            })
    }
}

/// A config override that signs with exactly these credentials, so `expires_at_ms` can
/// account for their expiry (the SDK gives the override its own short-lived identity cache).
fn signed_with(credentials: Credentials) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::default().credentials_provider(credentials)
}

/// One PUT or POST carries at most 5 GiB; S3 refuses more with `EntityTooLarge`, after the
/// client has sent it all.
fn single_request_size(what: &str, size: u64, instead: &str) -> Result<i64, AwsError> {
    if size > MAX_PART_SIZE {
        return Err(AwsError::InvalidRequest {
            what: what.to_owned(),
            problem: format!(
                "{size} bytes is over S3's limit of {MAX_PART_SIZE} bytes (5 GiB) for one request; {instead}"
            ),
        });
    }
    Ok(size as i64)
}

/// The URL and headers of a presigned request, refused if the SDK did not sign the headers
/// the guarantee rests on: a URL that S3 would not hold to the size must never be handed out.
fn presigned_put(
    bucket: &str,
    key: &str,
    operation: &'static str,
    request: PresignedRequest,
    validity: &Validity,
    with_type: bool,
) -> Result<PresignedPut, AwsError> {
    let signed = signed_headers(request.uri());
    let required: &[&str] = if with_type {
        &["content-length", "content-type"]
    } else {
        &["content-length"]
    };
    if let Some(missing) = required.iter().find(|h| !signed.contains(h)) {
        return Err(AwsError::Call {
            operation,
            resource: format!("s3://{bucket}/{key}"),
            code: None,
            message: format!(
                "the SDK's presigned URL does not sign {missing} (X-Amz-SignedHeaders={}), so \
                 S3 would not enforce it; refusing to hand it out. Check the aws-sdk-s3 \
                 version (a change in its presigning)",
                signed.join(";")
            ),
        });
    }
    Ok(PresignedPut {
        url: request.uri().to_owned(),
        headers: request
            .headers()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect(),
        expires_at_ms: validity.expires_at_ms,
    })
}

/// The `X-Amz-SignedHeaders` of a presigned URL (`;`-separated, `%3B` when encoded).
fn signed_headers(url: &str) -> Vec<&str> {
    url.split_once('?')
        .into_iter()
        .flat_map(|(_, query)| query.split('&'))
        .find_map(|pair| pair.strip_prefix("X-Amz-SignedHeaders="))
        .map(|list| list.split("%3B").flat_map(|h| h.split(';')).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_capped_by_the_credentials() {
        let soon = SystemTime::now() + Duration::from_secs(60);
        let credentials = Credentials::new("A", "s", None, Some(soon), "test");
        let v = Validity::new("x", Duration::from_secs(3600), &credentials).unwrap();
        let soon_ms = soon.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        assert_eq!(v.expires_at_ms, soon_ms);
        let err = Validity::new("x", MAX_EXPIRY + Duration::from_secs(1), &credentials);
        assert_eq!(err.err().map(|e| e.code()), Some("invalid_request"));
        assert!(Validity::new("x", Duration::from_millis(500), &credentials).is_err());
    }

    #[test]
    fn signed_headers_are_read_from_the_url() {
        let url = "http://h/b/k?X-Amz-Algorithm=A&X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost&X-Amz-Signature=s";
        assert_eq!(
            signed_headers(url),
            ["content-length", "content-type", "host"]
        );
        assert!(signed_headers("http://h/b/k").is_empty());
    }
}
