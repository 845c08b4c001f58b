//! Counting the requests Intake makes, by service and operation, in its own AWS clients:
//! an SDK interceptor on every client sees each attempt before it goes on the wire (a
//! retried call counts once per attempt, as the endpoint sees it). `intake bench pipeline`
//! reports them per object; `intake run` writes them out when `INTAKE_CALL_COUNTS` names
//! a file.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Requests made so far, keyed `Service.Operation` (`SQS.DeleteMessageBatch`). Clones
/// share the counts.
#[derive(Clone, Debug, Default)]
pub struct CallCounts(Arc<Mutex<BTreeMap<String, u64>>>);

impl CallCounts {
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }

    fn add(&self, service: &str, operation: &str) {
        if let Ok(mut counts) = self.0.lock() {
            *counts.entry(format!("{service}.{operation}")).or_default() += 1;
        }
    }

    /// The interceptor that feeds these counts, for a client's config builder.
    pub(crate) fn interceptor(&self) -> CountCalls {
        CountCalls(self.clone())
    }
}

#[derive(Debug)]
pub(crate) struct CountCalls(CallCounts);

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "IntakeCountCalls"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        config: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(metadata) = config.load::<Metadata>() {
            self.0.add(metadata.service(), metadata.name());
        }
        Ok(())
    }
}
