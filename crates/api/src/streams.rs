//! Caps on open `GET /v1/files/{id}/events` streams, per tenant and per process
//! (`[api] max_event_streams_per_tenant`, `max_event_streams`). An open stream holds a
//! [`StreamSlot`]; the slot is released when the stream is dropped, which is when it ends
//! or when the client goes away (the server drops the response body of a closed
//! connection).
//!
//! Every stream reads the ledger twice a second for up to ten minutes, so without a cap
//! one tenant could keep the database busy for everyone with a few hundred streams.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;

use crate::error::ApiError;

/// What `Retry-After` says to a refused stream: streams end at a file's final state, so
/// slots come free within seconds while files are moving.
pub const STREAM_RETRY_AFTER_SECS: u64 = 10;

/// The open streams of this process, counted per tenant.
#[derive(Clone, Debug)]
pub struct StreamSlots {
    counts: Arc<Mutex<Counts>>,
    max_total: u32,
    max_per_tenant: u32,
}

#[derive(Debug, Default)]
struct Counts {
    total: u32,
    per_tenant: HashMap<String, u32>,
}

/// One open stream's place; dropping it frees the place.
#[derive(Debug)]
pub struct StreamSlot {
    counts: Arc<Mutex<Counts>>,
    tenant: String,
}

impl StreamSlots {
    pub fn new(max_total: u32, max_per_tenant: u32) -> StreamSlots {
        StreamSlots {
            counts: Arc::default(),
            max_total,
            max_per_tenant,
        }
    }

    /// A slot for one more stream of `tenant`, or `429 too_many_streams` saying which
    /// cap was reached and what to do instead.
    pub fn try_open(&self, tenant: &str) -> Result<StreamSlot, ApiError> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let tenant_open = counts.per_tenant.get(tenant).copied().unwrap_or(0);
        let refusal = if tenant_open >= self.max_per_tenant {
            Some(format!(
                "this tenant already has {tenant_open} event streams open, the most allowed \
                 ([api] max_event_streams_per_tenant = {}); close one, or poll GET \
                 /v1/files/{{file_id}} instead",
                self.max_per_tenant
            ))
        } else if counts.total >= self.max_total {
            Some(format!(
                "the server already has {} event streams open, the most allowed ([api] \
                 max_event_streams = {}); retry later, or poll GET /v1/files/{{file_id}} instead",
                counts.total, self.max_total
            ))
        } else {
            None
        };
        if let Some(message) = refusal {
            return Err(ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "too_many_streams",
                message,
                retry_after: Some(STREAM_RETRY_AFTER_SECS),
            });
        }
        counts.total += 1;
        *counts.per_tenant.entry(tenant.to_owned()).or_default() += 1;
        Ok(StreamSlot {
            counts: self.counts.clone(),
            tenant: tenant.to_owned(),
        })
    }

    /// Streams open now: in the whole process, and of `tenant`.
    pub fn open(&self, tenant: &str) -> (u32, u32) {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let of_tenant = counts.per_tenant.get(tenant).copied().unwrap_or(0);
        (counts.total, of_tenant)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_tenant.get_mut(&self.tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                // Tenants come and go: keep no entry for one with nothing open.
                counts.per_tenant.remove(&self.tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(slots: &StreamSlots, tenant: &str) -> ApiError {
        slots.try_open(tenant).expect_err("over the cap")
    }

    #[test]
    fn a_tenant_gets_its_cap_and_no_more_and_others_are_unaffected() {
        let slots = StreamSlots::new(10, 2);
        let a1 = slots.try_open("a").unwrap();
        let _a2 = slots.try_open("a").unwrap();
        let err = refused(&slots, "a");
        assert_eq!(
            (err.status, err.code, err.retry_after),
            (StatusCode::TOO_MANY_REQUESTS, "too_many_streams", Some(10))
        );
        assert!(
            err.message.contains("max_event_streams_per_tenant = 2"),
            "{}",
            err.message
        );
        let _b = slots.try_open("b").unwrap();
        assert_eq!(slots.open("a"), (3, 2));
        drop(a1);
        assert_eq!(slots.open("a"), (2, 1));
        let _a3 = slots
            .try_open("a")
            .expect("a dropped stream frees its place");
    }

    #[test]
    fn the_process_cap_holds_across_tenants() {
        let slots = StreamSlots::new(3, 2);
        let held: Vec<StreamSlot> = ["a", "b", "c"]
            .iter()
            .map(|t| slots.try_open(t).unwrap())
            .collect();
        let err = refused(&slots, "d");
        assert!(
            err.message.contains("max_event_streams = 3"),
            "{}",
            err.message
        );
        drop(held);
        assert_eq!(slots.open("a"), (0, 0));
        assert!(slots.counts.lock().unwrap().per_tenant.is_empty());
        slots.try_open("d").unwrap();
    }
}
