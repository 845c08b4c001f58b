//! Moving one exact object version between buckets, as the stages do it: a version-pinned
//! `CopyObject` that keeps the metadata and replaces the tags, then deleting that version
//! from its source. Both steps are idempotent, so a retry finishes a half-done move.

use aws_sdk_s3::types::{MetadataDirective, TaggingDirective};
use intake_core::ObjectRef;
use intake_core::s3_key::encode_copy_source_key;

use crate::clients::AwsClients;
use crate::error::{AwsError, classify};

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

/// Copy exactly `source` (its version) to the same key in `bucket`, with `tags`.
pub async fn copy_version(
    aws: &AwsClients,
    source: &ObjectRef,
    bucket: &str,
    tags: &[(&str, &str)],
) -> Result<ObjectRef, AwsError> {
    if source.size > MAX_SINGLE_COPY {
        return Err(AwsError::Conflict {
            resource: source.to_string(),
            message: format!(
                "{} bytes is over S3's 5 GB single-copy limit; multipart copy is not implemented yet",
                source.size
            ),
        });
    }
    let mut copy_source = format!("{}/{}", source.bucket, encode_copy_source_key(&source.key));
    if let Some(v) = &source.version_id {
        copy_source.push_str(&format!("?versionId={v}"));
    }
    let copied = aws
        .s3
        .copy_object()
        .bucket(bucket)
        .key(&source.key)
        .copy_source(copy_source)
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
    Ok(ObjectRef {
        bucket: bucket.to_owned(),
        key: source.key.clone(),
        version_id: copied.version_id().map(str::to_owned),
        etag: copied
            .copy_object_result()
            .and_then(|r| r.e_tag())
            .map(str::to_owned),
        size: source.size,
        tenant: source.tenant.clone(),
        user: source.user.clone(),
        sequencer: None,
    })
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
