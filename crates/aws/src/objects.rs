//! Moving one exact object version between buckets, as the stages do it: a version-pinned
//! `CopyObject` that keeps the metadata and replaces the tags, then deleting that version
//! from its source. Both steps are idempotent, so a retry finishes a half-done move.

use aws_sdk_s3::types::{MetadataDirective, TaggingDirective};
use intake_core::ObjectRef;
use intake_core::s3_key::encode_copy_source_key;

use crate::clients::AwsClients;
use crate::error::{AwsError, CallSite, classify};

/// S3's limit for a single CopyObject; larger objects need a multipart copy.
pub const MAX_SINGLE_COPY: u64 = 5 * 1024 * 1024 * 1024;

/// URL-encode tags for the `x-amz-tagging` header.
fn tagging(tags: &[(&str, &str)]) -> String {
    tags.iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                encode_copy_source_key(k),
                encode_copy_source_key(v).replace('/', "%2F")
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// When to switch to a multipart copy, and how big its parts are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyLimits {
    /// Largest object copied with one CopyObject (S3 allows 5 GB).
    pub single_max: u64,
    /// Part size of a multipart copy (S3 allows 5 MiB to 5 GiB and 10,000 parts).
    pub part_size: u64,
}

impl Default for CopyLimits {
    fn default() -> Self {
        CopyLimits {
            single_max: MAX_SINGLE_COPY,
            part_size: 512 * 1024 * 1024,
        }
    }
}

fn copy_source(source: &ObjectRef) -> String {
    let mut copy_source = format!("{}/{}", source.bucket, encode_copy_source_key(&source.key));
    if let Some(v) = &source.version_id {
        copy_source.push_str(&format!("?versionId={v}"));
    }
    copy_source
}

/// Copy exactly `source` (its version) to the same key in `bucket`, with `tags`.
pub async fn copy_version(
    aws: &AwsClients,
    source: &ObjectRef,
    bucket: &str,
    tags: &[(&str, &str)],
) -> Result<ObjectRef, AwsError> {
    copy_version_with(aws, source, bucket, tags, CopyLimits::default()).await
}

/// [`copy_version`] with explicit limits: objects over `single_max` are copied in parts
/// (UploadPartCopy), keeping Content-Type and user metadata like a single copy does.
pub async fn copy_version_with(
    aws: &AwsClients,
    source: &ObjectRef,
    bucket: &str,
    tags: &[(&str, &str)],
    limits: CopyLimits,
) -> Result<ObjectRef, AwsError> {
    let (version_id, etag) = if source.size > limits.single_max {
        multipart_copy(aws, source, bucket, tags, limits).await?
    } else {
        let copied = aws
            .s3
            .copy_object()
            .bucket(bucket)
            .key(&source.key)
            .copy_source(copy_source(source))
            .metadata_directive(MetadataDirective::Copy)
            .tagging_directive(TaggingDirective::Replace)
            .tagging(tagging(tags))
            .send()
            .await
            .map_err(|e| {
                classify(
                    &aws.endpoint,
                    "CopyObject",
                    &format!("{source} to bucket {bucket}"),
                    e,
                )
            })?;
        (
            copied.version_id().map(str::to_owned),
            copied
                .copy_object_result()
                .and_then(|r| r.e_tag())
                .map(str::to_owned),
        )
    };
    Ok(ObjectRef {
        bucket: bucket.to_owned(),
        key: source.key.clone(),
        version_id,
        etag,
        size: source.size,
        tenant: source.tenant.clone(),
        user: source.user.clone(),
        sequencer: None,
    })
}

async fn multipart_copy(
    aws: &AwsClients,
    source: &ObjectRef,
    bucket: &str,
    tags: &[(&str, &str)],
    limits: CopyLimits,
) -> Result<(Option<String>, Option<String>), AwsError> {
    let site = CallSite::new(&aws.endpoint, format!("{source} to bucket {bucket}"));
    // S3 allows 10,000 parts: grow the parts for very large objects.
    let part_size = limits
        .part_size
        .max(source.size.div_ceil(10_000))
        .max(5 * 1024 * 1024);
    let head = aws
        .s3
        .head_object()
        .bucket(&source.bucket)
        .key(&source.key)
        .set_version_id(source.version_id.clone())
        .send()
        .await
        .map_err(site.fail("HeadObject"))?;
    let upload = aws
        .s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(&source.key)
        .set_content_type(head.content_type().map(str::to_owned))
        .set_metadata(head.metadata().cloned())
        .tagging(tagging(tags))
        .send()
        .await
        .map_err(site.fail("CreateMultipartUpload"))?;
    let upload_id = upload.upload_id().unwrap_or_default().to_owned();
    let copy_parts = async {
        let mut parts = Vec::new();
        let mut start = 0u64;
        let mut number = 1;
        while start < source.size {
            let end = (start + part_size).min(source.size) - 1;
            let part = aws
                .s3
                .upload_part_copy()
                .bucket(bucket)
                .key(&source.key)
                .upload_id(&upload_id)
                .part_number(number)
                .copy_source(copy_source(source))
                .copy_source_range(format!("bytes={start}-{end}"))
                .send()
                .await
                .map_err(site.fail("UploadPartCopy"))?;
            parts.push(
                aws_sdk_s3::types::CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(
                        part.copy_part_result()
                            .and_then(|r| r.e_tag())
                            .map(str::to_owned),
                    )
                    .build(),
            );
            start = end + 1;
            number += 1;
        }
        aws.s3
            .complete_multipart_upload()
            .bucket(bucket)
            .key(&source.key)
            .upload_id(&upload_id)
            .multipart_upload(
                aws_sdk_s3::types::CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(site.fail("CompleteMultipartUpload"))
    };
    match copy_parts.await {
        Ok(done) => Ok((
            done.version_id().map(str::to_owned),
            done.e_tag().map(str::to_owned),
        )),
        Err(e) => {
            // Leave no orphaned parts behind (the lifecycle rule would, after a day).
            let _ = aws
                .s3
                .abort_multipart_upload()
                .bucket(bucket)
                .key(&source.key)
                .upload_id(&upload_id)
                .send()
                .await;
            Err(e)
        }
    }
}

/// Delete exactly this version (not a delete marker: the bytes go).
pub async fn delete_version(aws: &AwsClients, object: &ObjectRef) -> Result<(), AwsError> {
    aws.s3
        .delete_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .set_version_id(object.version_id.clone())
        .send()
        .await
        .map_err(|e| classify(&aws.endpoint, "DeleteObject", &object.to_string(), e))?;
    Ok(())
}

/// Tags of the current version of `key` in `bucket`, or `None` if there is none.
pub async fn tags_of(
    aws: &AwsClients,
    bucket: &str,
    key: &str,
) -> Option<(Option<String>, Vec<(String, String)>)> {
    let out = aws
        .s3
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    let tags = out
        .tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    Some((out.version_id().map(str::to_owned), tags))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tags_are_url_encoded() {
        assert_eq!(
            super::tagging(&[
                ("intake-scan", "infected"),
                ("intake-signature", "Win.Test/EICAR 1")
            ]),
            "intake-scan=infected&intake-signature=Win.Test%2FEICAR%201"
        );
    }
}
