//! `GET /metrics`: Prometheus text from a registry of the server's own (not a process-wide
//! global, so several servers in one test process do not mix their counts).

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScopeLabels {
    scope: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

pub struct ApiMetrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    rate_limited: Family<ScopeLabels, Counter>,
    auth_failures: Family<CodeLabels, Counter>,
    uploads_signed: Family<MethodLabels, Counter>,
    deletions_queued: Counter,
}

impl ApiMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("intake_api");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
        });
        registry.register(
            "request_duration_seconds",
            "Time to answer a request, by route",
            latency.clone(),
        );
        let rate_limited = Family::<ScopeLabels, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused with 429, by limit (ip, tenant)",
            rate_limited.clone(),
        );
        let auth_failures = Family::<CodeLabels, Counter>::default();
        registry.register(
            "auth_failures",
            "Requests refused with 401, by error code",
            auth_failures.clone(),
        );
        let uploads_signed = Family::<MethodLabels, Counter>::default();
        registry.register(
            "uploads_signed",
            "Upload URLs issued, by method (put, post, multipart)",
            uploads_signed.clone(),
        );
        let deletions_queued = Counter::default();
        registry.register(
            "deletions_queued",
            "File deletions queued for the deletion worker",
            deletions_queued.clone(),
        );
        ApiMetrics {
            registry: Mutex::new(registry),
            requests,
            latency,
            rate_limited,
            auth_failures,
            uploads_signed,
            deletions_queued,
        }
    }

    pub fn observe(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn rate_limited(&self, scope: &str) {
        self.rate_limited
            .get_or_create(&ScopeLabels {
                scope: scope.to_owned(),
            })
            .inc();
    }

    pub fn auth_failed(&self, code: &str) {
        self.auth_failures
            .get_or_create(&CodeLabels {
                code: code.to_owned(),
            })
            .inc();
    }

    pub fn upload_signed(&self, method: &str) {
        self.uploads_signed
            .get_or_create(&MethodLabels {
                method: method.to_owned(),
            })
            .inc();
    }

    pub fn deletion_queued(&self) {
        self.deletions_queued.inc();
    }

    /// The OpenMetrics text exposition, which Prometheus reads.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

impl Default for ApiMetrics {
    fn default() -> Self {
        Self::new()
    }
}
