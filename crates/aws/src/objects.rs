//! Moving one exact object version between buckets, as the stages do it: a version-pinned
//! `CopyObject` that keeps the metadata and replaces the tags, then deleting that version
//! from its source. Both steps are idempotent, so a retry finishes a half-done move.
//! Also: rewriting one version in place in another storage class (metadata and tags kept),
//! the versions of a key, and the tags of one version.

use aws_sdk_s3::types::{MetadataDirective, StorageClass, Tag, Tagging, TaggingDirective};
use intake_core::ObjectRef;
use intake_core::s3_key::encode_copy_source_key;

use crate::clients::AwsClients;
use crate::error::{AwsError, CallSite, classify};

/// S3's limit for a single CopyObject; larger objects need a multipart copy.
pub const MAX_SINGLE_COPY: u64 = 5 * 1024 * 1024 * 1024;

/// S3's limit of tags on one object version.
pub const MAX_TAGS: usize = 10;

/// URL-encode tags for the `x-amz-tagging` header.
fn tagging<K: AsRef<str>, V: AsRef<str>>(tags: &[(K, V)]) -> String {
    tags.iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                encode_copy_source_key(k.as_ref()),
                encode_copy_source_key(v.as_ref()).replace('/', "%2F")
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

/// What a copy does with the source's tags.
#[derive(Debug, Clone, Copy)]
enum TagsOnCopy<'a> {
    /// Replace them with these.
    Set(&'a [(&'a str, &'a str)]),
    /// Keep the source version's own.
    Keep,
}

/// Where and how a version is copied.
#[derive(Debug, Clone, Copy)]
struct CopyTo<'a> {
    bucket: &'a str,
    tags: TagsOnCopy<'a>,
    /// `None`: the bucket's default (STANDARD).
    storage_class: Option<&'a str>,
    limits: CopyLimits,
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

/// [`copy_version`], unless an earlier attempt already made this copy: when the current
/// version of the key in `bucket` carries the tag `marker_tag` with the value that `tags`
/// gives it (the source's version), that version is returned and nothing is copied. Upload
/// keys hold one upload each, so in a versioned bucket a retried copy (a worker killed
/// after the copy, before it was recorded) would otherwise leave a second version behind.
/// The returned flag says whether a copy was made now.
pub async fn copy_version_once(
    aws: &AwsClients,
    source: &ObjectRef,
    bucket: &str,
    tags: &[(&str, &str)],
    marker_tag: &str,
) -> Result<(ObjectRef, bool), AwsError> {
    let marker = tags
        .iter()
        .find(|(k, _)| *k == marker_tag)
        .map(|(_, v)| *v)
        .ok_or_else(|| AwsError::InvalidRequest {
            what: format!("a copy of {source} to bucket {bucket}"),
            problem: format!("its tags lack the marker tag {marker_tag}"),
        })?;
    if let Some((version_id, current)) = current_tags(aws, bucket, &source.key).await?
        && current.iter().any(|(k, v)| k == marker_tag && v == marker)
    {
        // The ETag, as a fresh copy would report it.
        let head = aws
            .s3
            .head_object()
            .bucket(bucket)
            .key(&source.key)
            .set_version_id(version_id.clone())
            .send()
            .await
            .map_err(|e| {
                classify(
                    &aws.endpoint,
                    "HeadObject",
                    &format!("s3://{bucket}/{} (an earlier copy)", source.key),
                    e,
                )
            })?;
        let earlier = ObjectRef {
            bucket: bucket.to_owned(),
            key: source.key.clone(),
            version_id,
            etag: head.e_tag().map(str::to_owned),
            size: source.size,
            tenant: source.tenant.clone(),
            user: source.user.clone(),
            sequencer: None,
        };
        return Ok((earlier, false));
    }
    Ok((copy_version(aws, source, bucket, tags).await?, true))
}

/// Tags and version id of the current version of `key`, `None` when the key has none; any
/// other failure is an error (guessing "absent" would make a second copy).
async fn current_tags(
    aws: &AwsClients,
    bucket: &str,
    key: &str,
) -> Result<Option<(Option<String>, Vec<(String, String)>)>, AwsError> {
    match aws
        .s3
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .send()
        .await
    {
        Ok(out) => Ok(Some((
            out.version_id().map(str::to_owned),
            tag_pairs(out.tag_set()),
        ))),
        Err(e)
            if matches!(
                crate::error::service_code(&e),
                Some("NoSuchKey" | "NotFound")
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(classify(
            &aws.endpoint,
            "GetObjectTagging",
            &format!("s3://{bucket}/{key}"),
            e,
        )),
    }
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
    let to = CopyTo {
        bucket,
        tags: TagsOnCopy::Set(tags),
        storage_class: None,
        limits,
    };
    copy(aws, source, to).await
}

/// Rewrite exactly `source` (its version) under its own key in `storage_class`, keeping its
/// metadata and tags. In a versioned bucket this makes a new version and leaves `source`
/// in place (still billed in its old class): delete it once the new one is recorded.
/// Objects over `limits.single_max` are copied in parts.
pub async fn change_storage_class(
    aws: &AwsClients,
    source: &ObjectRef,
    storage_class: &str,
    limits: CopyLimits,
) -> Result<ObjectRef, AwsError> {
    let to = CopyTo {
        bucket: &source.bucket,
        tags: TagsOnCopy::Keep,
        storage_class: Some(storage_class),
        limits,
    };
    copy(aws, source, to).await
}

async fn copy(aws: &AwsClients, source: &ObjectRef, to: CopyTo<'_>) -> Result<ObjectRef, AwsError> {
    let bucket = to.bucket;
    let (version_id, etag) = if source.size > to.limits.single_max {
        multipart_copy(aws, source, to).await?
    } else {
        let request = aws
            .s3
            .copy_object()
            .bucket(bucket)
            .key(&source.key)
            .copy_source(copy_source(source))
            .metadata_directive(MetadataDirective::Copy)
            .set_storage_class(to.storage_class.map(StorageClass::from));
        let request = match to.tags {
            TagsOnCopy::Set(tags) => request
                .tagging_directive(TaggingDirective::Replace)
                .tagging(tagging(tags)),
            TagsOnCopy::Keep => request.tagging_directive(TaggingDirective::Copy),
        };
        let copied = request.send().await.map_err(|e| {
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
    to: CopyTo<'_>,
) -> Result<(Option<String>, Option<String>), AwsError> {
    let bucket = to.bucket;
    let site = CallSite::new(&aws.endpoint, format!("{source} to bucket {bucket}"));
    // S3 allows 10,000 parts: grow the parts for very large objects.
    let part_size = to
        .limits
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
    // A multipart upload starts empty: what a single copy carries over is set here.
    let tags = match to.tags {
        TagsOnCopy::Set(tags) => tagging(tags),
        TagsOnCopy::Keep => tagging(&version_tags(aws, source).await?),
    };
    let upload = aws
        .s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(&source.key)
        .set_content_type(head.content_type().map(str::to_owned))
        .set_content_encoding(head.content_encoding().map(str::to_owned))
        .set_content_disposition(head.content_disposition().map(str::to_owned))
        .set_content_language(head.content_language().map(str::to_owned))
        .set_cache_control(head.cache_control().map(str::to_owned))
        .set_metadata(head.metadata().cloned())
        .set_storage_class(to.storage_class.map(StorageClass::from))
        .tagging(tags)
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
    Some((
        out.version_id().map(str::to_owned),
        tag_pairs(out.tag_set()),
    ))
}

fn tag_pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

/// Tags of exactly this version.
pub async fn version_tags(
    aws: &AwsClients,
    object: &ObjectRef,
) -> Result<Vec<(String, String)>, AwsError> {
    let out = aws
        .s3
        .get_object_tagging()
        .bucket(&object.bucket)
        .key(&object.key)
        .set_version_id(object.version_id.clone())
        .send()
        .await
        .map_err(|e| classify(&aws.endpoint, "GetObjectTagging", &object.to_string(), e))?;
    Ok(tag_pairs(out.tag_set()))
}

/// Set one tag on exactly this version, keeping its other tags. Tags are not data: the
/// version stays the same version. A version that already has [`MAX_TAGS`] other tags is
/// refused with [`AwsError::Conflict`] before S3 is asked.
pub async fn add_tag(
    aws: &AwsClients,
    object: &ObjectRef,
    key: &str,
    value: &str,
) -> Result<(), AwsError> {
    let mut tags = version_tags(aws, object).await?;
    if tags.iter().any(|(k, v)| k == key && v == value) {
        return Ok(());
    }
    tags.retain(|(k, _)| k != key);
    if tags.len() >= MAX_TAGS {
        return Err(AwsError::Conflict {
            resource: object.to_string(),
            message: format!(
                "cannot add the tag {key}={value}: the version already has {MAX_TAGS} tags, S3's limit; remove one of them and retry"
            ),
        });
    }
    tags.push((key.to_owned(), value.to_owned()));
    let tag_set = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .expect("key and value are set");
    aws.s3
        .put_object_tagging()
        .bucket(&object.bucket)
        .key(&object.key)
        .set_version_id(object.version_id.clone())
        .tagging(
            Tagging::builder()
                .set_tag_set(Some(tag_set))
                .build()
                .expect("the tag set is set"),
        )
        .send()
        .await
        .map_err(|e| classify(&aws.endpoint, "PutObjectTagging", &object.to_string(), e))?;
    Ok(())
}

/// One stored version of a key (delete markers are not versions with bytes). Its storage
/// class is not listed here: LocalStack lists every version as STANDARD; ask
/// [`storage_class_of`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    /// `"null"` in a bucket that was never versioned.
    pub version_id: String,
    pub size: u64,
    pub etag: Option<String>,
}

/// The storage class of exactly this version, as S3 names it (`STANDARD`, `GLACIER_IR`...).
pub async fn storage_class_of(aws: &AwsClients, object: &ObjectRef) -> Result<String, AwsError> {
    let head = aws
        .s3
        .head_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .set_version_id(object.version_id.clone())
        .send()
        .await
        .map_err(|e| classify(&aws.endpoint, "HeadObject", &object.to_string(), e))?;
    // S3 leaves the header out for STANDARD.
    Ok(head
        .storage_class()
        .map_or("STANDARD", |c| c.as_str())
        .to_owned())
}

/// Every version of exactly `key` (not of longer keys that start with it), newest first.
pub async fn versions_of(
    aws: &AwsClients,
    bucket: &str,
    key: &str,
) -> Result<Vec<StoredVersion>, AwsError> {
    let site = CallSite::new(&aws.endpoint, format!("s3://{bucket}/{key}"));
    let mut versions = Vec::new();
    let (mut key_marker, mut version_marker) = (None, None);
    loop {
        let page = aws
            .s3
            .list_object_versions()
            .bucket(bucket)
            .prefix(key)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
            .map_err(site.fail("ListObjectVersions"))?;
        // Listed in key order: once a longer key shows up, this key's versions are done.
        let mut past_key = false;
        for v in page.versions() {
            if v.key() != Some(key) {
                past_key = true;
                continue;
            }
            versions.push(StoredVersion {
                version_id: v.version_id().unwrap_or("null").to_owned(),
                size: v.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                etag: v.e_tag().map(str::to_owned),
            });
        }
        if past_key || page.is_truncated() != Some(true) {
            return Ok(versions);
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        version_marker = page.next_version_id_marker().map(str::to_owned);
    }
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
