//! Removing objects for good: listing every version (and delete marker) under a prefix and
//! deleting them in batches. Deleting a version that is already gone succeeds, so a retried
//! purge finishes what an interrupted one started.

use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use crate::clients::AwsClients;
use crate::error::{AwsError, classify};

/// One version (or delete marker) of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    pub key: String,
    /// `None` in an unversioned bucket.
    pub version_id: Option<String>,
}

/// DeleteObjects takes at most this many keys per call.
const DELETE_BATCH: usize = 1000;

/// Every version and delete marker whose key starts with `prefix`, all pages.
pub async fn list_versions(
    aws: &AwsClients,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<VersionEntry>, AwsError> {
    let resource = format!("s3://{bucket}/{prefix}*");
    let mut entries = Vec::new();
    let mut key_marker = None;
    let mut version_marker = None;
    loop {
        let page = aws
            .s3
            .list_object_versions()
            .bucket(bucket)
            .prefix(prefix)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
            .map_err(|e| classify(&aws.endpoint, "ListObjectVersions", &resource, e))?;
        let versions = page.versions().iter().map(|v| (v.key(), v.version_id()));
        let markers = page
            .delete_markers()
            .iter()
            .map(|m| (m.key(), m.version_id()));
        for (key, version) in versions.chain(markers) {
            if let Some(key) = key {
                entries.push(VersionEntry {
                    key: key.to_owned(),
                    version_id: version.filter(|v| *v != "null").map(str::to_owned),
                });
            }
        }
        if page.is_truncated() != Some(true) {
            return Ok(entries);
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        version_marker = page.next_version_id_marker().map(str::to_owned);
        if key_marker.is_none() {
            return Ok(entries);
        }
    }
}

/// Every version of exactly `key` (not of keys that merely start with it).
pub async fn versions_of_key(
    aws: &AwsClients,
    bucket: &str,
    key: &str,
) -> Result<Vec<VersionEntry>, AwsError> {
    let mut entries = list_versions(aws, bucket, key).await?;
    entries.retain(|e| e.key == key);
    Ok(entries)
}

/// Deletes exactly these versions, in batches. Returns how many were deleted; a version that
/// is already gone counts as done (S3 answers 204, LocalStack `NoSuchVersion`), any other
/// refusal is an error naming the key (the rest of its batch is deleted all the same).
pub async fn delete_versions(
    aws: &AwsClients,
    bucket: &str,
    entries: &[VersionEntry],
) -> Result<usize, AwsError> {
    let mut deleted = 0;
    for batch in entries.chunks(DELETE_BATCH) {
        let objects = batch
            .iter()
            .map(|e| {
                ObjectIdentifier::builder()
                    .key(&e.key)
                    .set_version_id(e.version_id.clone())
                    .build()
                    .expect("key is set")
            })
            .collect();
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .expect("objects are set");
        let resource = format!("{} versions in s3://{bucket}", batch.len());
        let out = aws
            .s3
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| classify(&aws.endpoint, "DeleteObjects", &resource, e))?;
        let gone = |code: Option<&str>| matches!(code, Some("NoSuchVersion" | "NoSuchKey"));
        let refusals: Vec<_> = out.errors().iter().filter(|e| !gone(e.code())).collect();
        if let Some(refused) = refusals.first() {
            return Err(AwsError::Call {
                operation: "DeleteObjects",
                resource: format!(
                    "s3://{bucket}/{} (version {})",
                    refused.key().unwrap_or("?"),
                    refused.version_id().unwrap_or("null")
                ),
                code: refused.code().map(str::to_owned),
                message: format!(
                    "{} ({} of {} refused)",
                    refused.message().unwrap_or("refused"),
                    refusals.len(),
                    batch.len()
                ),
            });
        }
        deleted += batch.len() - out.errors().len();
    }
    Ok(deleted)
}
