//! Step 1: the body → the objects to work on, or poison. Every field of an event that a
//! retry cannot change, the bucket first, is checked here, before the ledger or S3 is
//! touched: a malformed event is poison on its first receive instead of a retryable
//! store or S3 failure on every receive.

use intake_core::event::{Incoming, parse_body_from};
use intake_core::names::BucketRole;
use intake_core::state_machine::StageKind;

use super::Shared;
use crate::queue::Delivery;
use crate::stage::{Stage, StageInput};

pub enum Decoded {
    Inputs(Vec<StageInput>),
    /// S3's `s3:TestEvent`, sent once when a notification is configured.
    TestEvent,
    Poison {
        code: &'static str,
        reason: String,
    },
}

pub fn inputs<S: Stage>(shared: &Shared<S>, delivery: &Delivery) -> Decoded {
    let parsed = parse_body_from(&delivery.body, shared.cx.names.bucket(BucketRole::Uploads));
    let incoming = match parsed {
        Ok(incoming) => incoming,
        Err(poison) => {
            return Decoded::Poison {
                code: poison.code,
                reason: poison.reason,
            };
        }
    };
    // Deletion requests belong on the deletion queue and nothing else does: a message on
    // the wrong queue would otherwise be acted on by the wrong worker.
    let is_delete = matches!(incoming, Incoming::Delete(_));
    if is_delete != (S::KIND == StageKind::Delete) && !matches!(incoming, Incoming::S3TestEvent) {
        let reason = format!(
            "a {} on the {} queue: deletion requests go to the deletion queue only, events to stage queues only",
            if is_delete {
                "deletion request"
            } else {
                "pipeline event"
            },
            S::KIND
        );
        return Decoded::Poison {
            code: "wrong_queue",
            reason,
        };
    }
    let inputs = match incoming {
        Incoming::S3TestEvent => return Decoded::TestEvent,
        Incoming::S3(objects) => objects
            .into_iter()
            .map(|o| StageInput {
                location: o.clone(),
                object: o,
                upstream: None,
                attempt: 0,
            })
            .collect(),
        Incoming::Delete(request) => vec![StageInput {
            location: request.object.clone(),
            object: request.object,
            upstream: None,
            attempt: 0,
        }],
        Incoming::Outcome(outcome) => vec![StageInput {
            object: outcome.object.clone(),
            location: outcome.current_location().clone(),
            upstream: Some(*outcome),
            attempt: 0,
        }],
    };
    Decoded::Inputs(inputs)
}
