//! Intake's one clock: milliseconds since the Unix epoch, from the system in production and
//! moved by hand in tests (so the ledger's lease expiry is tested without sleeping). Every
//! crate that needs "now" for the ledger, the API or the CLI reads it here.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The system clock now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    Clock::system().now_ms()
}

/// A source of the current time in milliseconds since the Unix epoch.
#[derive(Clone, Debug, Default)]
pub struct Clock(Source);

#[derive(Clone, Debug, Default)]
enum Source {
    #[default]
    System,
    Manual(ManualClock),
}

impl Clock {
    pub fn system() -> Clock {
        Clock(Source::System)
    }

    pub fn now_ms(&self) -> i64 {
        match &self.0 {
            Source::System => {
                let since = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or(Duration::ZERO);
                millis(since)
            }
            Source::Manual(m) => m.now_ms(),
        }
    }
}

/// A clock that only moves when told to. Clones share one time.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start_ms: i64) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(start_ms)))
    }

    pub fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(millis(by), Ordering::SeqCst);
    }
}

impl From<ManualClock> for Clock {
    fn from(m: ManualClock) -> Clock {
        Clock(Source::Manual(m))
    }
}

/// Whole milliseconds of a duration, saturating: a lease of "forever" must not wrap
/// around into the past.
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
