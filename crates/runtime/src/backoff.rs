//! How long a retryable failure waits before its message is visible again: exponential in the
//! receive count, with jitter so a burst of failures does not come back as a burst.

use std::time::Duration;

/// SQS refuses visibility timeouts over 12 hours.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(43_200);

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(900),
        }
    }
}

impl Backoff {
    /// Delay before delivery `receive_count + 1`, for a `jitter` in `[0, 1)`: between half and
    /// all of `base * 2^(receive_count - 1)`, capped at `max`.
    pub fn delay(&self, receive_count: u32, jitter: f64) -> Duration {
        let exponent = receive_count.saturating_sub(1).min(30);
        let full = self
            .base
            .saturating_mul(1u32 << exponent)
            .min(self.max)
            .min(MAX_VISIBILITY);
        full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// [`Self::delay`] with a random jitter.
    pub fn delay_random(&self, receive_count: u32) -> Duration {
        self.delay(receive_count, rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_within_jitter_bounds_and_caps() {
        let b = Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
        };
        assert_eq!(b.delay(1, 0.0), Duration::from_secs(1));
        assert_eq!(b.delay(1, 1.0), Duration::from_secs(2));
        assert_eq!(b.delay(3, 1.0), Duration::from_secs(8));
        assert_eq!(b.delay(3, 0.0), Duration::from_secs(4));
        assert_eq!(b.delay(10, 1.0), Duration::from_secs(60), "capped at max");
        assert_eq!(
            b.delay(u32::MAX, 1.0),
            Duration::from_secs(60),
            "no overflow"
        );
        for n in 1..20 {
            let d = b.delay_random(n);
            assert!(d >= b.delay(n, 0.0) && d <= b.delay(n, 1.0));
        }
    }
}
