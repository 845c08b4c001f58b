//! A deletion request: what `intake delete` (and the API) puts on the deletion queue. It
//! names one upload version; the deletion worker removes every trace of it.

use serde::{Deserialize, Serialize};

use crate::object::ObjectRef;

pub const DELETION_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionRequest {
    /// Schema version; a field named this way also marks the JSON as a deletion request.
    pub intake_delete: u32,
    /// The upload version to delete (the ledger's key: uploads bucket, key, version).
    pub object: ObjectRef,
    /// Who asked (an operator's name, an API caller), for the ledger and logs.
    pub requested_by: String,
    /// Milliseconds since the Unix epoch.
    pub requested_ms: i64,
}

impl DeletionRequest {
    pub fn new(object: ObjectRef, requested_by: impl Into<String>, requested_ms: i64) -> Self {
        DeletionRequest {
            intake_delete: DELETION_SCHEMA_VERSION,
            object,
            requested_by: requested_by.into(),
            requested_ms,
        }
    }
}
