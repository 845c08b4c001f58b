//! [`ObjectRef`]: one version of one uploaded object, as every stage and outcome names it.

use serde::{Deserialize, Serialize};

/// One version of one object. `version_id` is set for versioned buckets (all of Intake's);
/// `etag` identifies the content when it is not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default)]
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The S3 event sequencer of the upload, to order events for one key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequencer: Option<String>,
}

impl ObjectRef {
    /// What identifies this version for idempotency: the version id, else the ETag.
    pub fn version_token(&self) -> &str {
        self.version_id
            .as_deref()
            .or(self.etag.as_deref())
            .unwrap_or("null")
    }

    /// A stable id of this upload version: 32 hex digits of SHA-256 over bucket, key and
    /// version. Derived keys (renditions) and records use it, so every retry of a stage
    /// writes to the same place and a new upload of the same key gets new ones.
    pub fn object_id(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        for part in [
            self.bucket.as_str(),
            self.key.as_str(),
            self.version_token(),
        ] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        hex::encode(&hasher.finalize()[..16])
    }

    /// Where this upload's derivatives live in the derivatives bucket (see
    /// [`derivatives_prefix`]).
    pub fn derivatives_prefix(&self) -> String {
        derivatives_prefix(self.tenant.as_deref(), &self.object_id())
    }

    /// `s3://bucket/key` (for messages and logs).
    pub fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)?;
        if let Some(v) = &self.version_id {
            write!(f, "?versionId={v}")?;
        }
        Ok(())
    }
}

/// `{tenant}/{object id}/`: the folder of one upload's derivatives (renditions), so that
/// a deletion finds every one of them with a single prefix listing. Objects without a
/// tenant go under `_`.
pub fn derivatives_prefix(tenant: Option<&str>, object_id: &str) -> String {
    format!("{}/{object_id}/", tenant.unwrap_or("_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(key: &str, version: &str) -> ObjectRef {
        ObjectRef {
            bucket: "uploads".into(),
            key: key.into(),
            version_id: Some(version.into()),
            etag: None,
            size: 1,
            tenant: None,
            user: None,
            sequencer: None,
        }
    }

    #[test]
    fn object_id_is_stable_and_distinguishes_versions_and_keys() {
        let a = object("t/u/a.jpg", "v1");
        assert_eq!(a.object_id(), object("t/u/a.jpg", "v1").object_id());
        assert_eq!(a.object_id().len(), 32);
        assert_ne!(a.object_id(), object("t/u/a.jpg", "v2").object_id());
        assert_ne!(a.object_id(), object("t/u/b.jpg", "v1").object_id());
        // Length-prefixed parts: moving a character across the boundary changes the id.
        assert_ne!(object("ab", "c").object_id(), object("a", "bc").object_id());
    }
}
