//! Poll-with-deadline: the replacement for sleeps in tests.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Call `check` until it returns `Some`, at most until `deadline` has passed, pausing briefly
/// between tries. On timeout, panics with `what` and the last state `check` reported, so
/// the failure says what was awaited and what was seen instead.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use std::sync::atomic::{AtomicU32, Ordering};
///
/// let tries = AtomicU32::new(0);
/// let n = intake_testkit::eventually("the third try", Duration::from_secs(5), || async {
///     match tries.fetch_add(1, Ordering::SeqCst) + 1 {
///         n if n >= 3 => Ok(n),
///         n => Err(format!("try {n}")),
///     }
/// })
/// .await;
/// assert_eq!(n, 3);
/// # }
/// ```
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) if started.elapsed() >= deadline => {
                panic!("timed out after {deadline:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn returns_once_the_condition_holds() {
        let calls = AtomicU32::new(0);
        let value = eventually("third call", Duration::from_secs(5), || async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            if n >= 3 {
                Ok(n)
            } else {
                Err(format!("call {n}"))
            }
        })
        .await;
        assert_eq!(value, 3);
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "timed out after 1s waiting for never; last seen: still no")]
    async fn panics_with_the_last_state_on_timeout() {
        eventually::<(), _, _>("never", Duration::from_secs(1), || async {
            Err("still no".to_owned())
        })
        .await;
    }
}
