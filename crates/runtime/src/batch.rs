//! Turning many single calls into few batch calls without changing what each caller sees.
//!
//! A caller [`Batcher::submit`]s one entry and waits for that entry's own result, exactly
//! as if it had made the call alone, so the protocol's order of durability (record, then
//! publish, then mark, then delete) holds per message. Behind it, entries that arrive
//! within one flush window (or until a batch is full) go out in one call; a partial
//! failure fails only the entries it names.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

/// A boxed future, as the queue and topic seams return them (they are used as trait objects).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The most entries AWS takes in one batch call (SQS and SNS batch APIs alike).
pub const MAX_BATCH: usize = 10;

/// Makes the batch call for a batch of entries and answers one result per entry, in order.
pub type FlushFn<T, E> =
    Arc<dyn Fn(Vec<T>) -> BoxFuture<'static, Vec<Result<(), E>>> + Send + Sync>;

/// Why a submitted entry got no answer from its batch call.
pub trait BatchLost {
    /// The flusher is gone (the worker is shutting down) or answered fewer results than
    /// entries: the entry's effect is unknown, which callers treat as a retryable failure.
    fn lost(what: &'static str) -> Self;
}

/// Gathers entries into batches of at most [`MAX_BATCH`], waiting at most `window` after
/// the first entry of a batch. Cloning shares the same flusher.
pub struct Batcher<T, E> {
    what: &'static str,
    sender: mpsc::UnboundedSender<(T, oneshot::Sender<Result<(), E>>)>,
}

impl<T, E> Clone for Batcher<T, E> {
    fn clone(&self) -> Self {
        Batcher {
            what: self.what,
            sender: self.sender.clone(),
        }
    }
}

impl<T: Send + 'static, E: BatchLost + Send + 'static> Batcher<T, E> {
    /// Starts the flusher task. `what` names the call in errors ("DeleteMessageBatch").
    /// A zero `window` sends whatever is waiting at once (batches still form under load).
    pub fn start(what: &'static str, window: Duration, flush: FlushFn<T, E>) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(flush_loop(what, window, receiver, flush));
        Batcher { what, sender }
    }

    /// Submits one entry and waits for its own result.
    pub async fn submit(&self, entry: T) -> Result<(), E> {
        let (reply, answer) = oneshot::channel();
        if self.sender.send((entry, reply)).is_err() {
            return Err(E::lost(self.what));
        }
        answer.await.unwrap_or_else(|_| Err(E::lost(self.what)))
    }
}

type Pending<T, E> = (T, oneshot::Sender<Result<(), E>>);

async fn flush_loop<T: Send + 'static, E: BatchLost + Send + 'static>(
    what: &'static str,
    window: Duration,
    mut receiver: mpsc::UnboundedReceiver<Pending<T, E>>,
    flush: FlushFn<T, E>,
) {
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + window;
        while batch.len() < MAX_BATCH {
            // Whatever is already waiting joins without a wait; then up to the deadline.
            match receiver.try_recv() {
                Ok(entry) => {
                    batch.push(entry);
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) if window.is_zero() => break,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(entry)) => batch.push(entry),
                Ok(None) | Err(_) => break,
            }
        }
        // Each batch is sent on its own task so that a slow call does not hold back the
        // next window's entries.
        let flush = flush.clone();
        tokio::spawn(async move {
            let (entries, replies): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
            let mut results = flush(entries).await.into_iter();
            for reply in replies {
                let result = results.next().unwrap_or_else(|| Err(E::lost(what)));
                let _ = reply.send(result);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Debug, PartialEq)]
    struct Lost(&'static str);
    impl BatchLost for Lost {
        fn lost(what: &'static str) -> Self {
            Lost(what)
        }
    }

    type Seen = Arc<Mutex<Vec<Vec<u32>>>>;

    /// A flusher that records the batches it saw and fails odd entries.
    fn recording() -> (FlushFn<u32, Lost>, Seen) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let flush: FlushFn<u32, Lost> = Arc::new(move |entries: Vec<u32>| {
            log.lock().unwrap().push(entries.clone());
            Box::pin(async move {
                entries
                    .into_iter()
                    .map(|n| if n % 2 == 1 { Err(Lost("odd")) } else { Ok(()) })
                    .collect()
            })
        });
        (flush, seen)
    }

    #[tokio::test(start_paused = true)]
    async fn entries_within_a_window_share_one_call_and_get_their_own_results() {
        let (flush, seen) = recording();
        let batcher = Batcher::start("Test", Duration::from_millis(20), flush);
        let mut tasks = Vec::new();
        for n in 0..25u32 {
            let b = batcher.clone();
            tasks.push(tokio::spawn(async move { (n, b.submit(n).await) }));
        }
        for task in tasks {
            let (n, result) = task.await.unwrap();
            assert_eq!(result.is_ok(), n % 2 == 0, "entry {n}: {result:?}");
        }
        let batches = seen.lock().unwrap().clone();
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            [10, 10, 5]
        );
        let mut all: Vec<u32> = batches.concat();
        all.sort();
        assert_eq!(all, (0..25).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_entry_waits_no_longer_than_the_window() {
        let (flush, seen) = recording();
        let batcher = Batcher::start("Test", Duration::from_millis(20), flush);
        let started = tokio::time::Instant::now();
        batcher.submit(2).await.unwrap();
        let waited = started.elapsed();
        assert!(waited <= Duration::from_millis(21), "waited {waited:?}");
        assert_eq!(*seen.lock().unwrap(), vec![vec![2]]);
    }

    #[tokio::test]
    async fn a_short_answer_fails_the_unanswered_entries_instead_of_hanging() {
        let flush: FlushFn<u32, Lost> =
            Arc::new(|_entries: Vec<u32>| Box::pin(async { vec![Ok(())] }));
        let batcher = Batcher::start("Short", Duration::from_millis(5), flush);
        let (a, b) = tokio::join!(batcher.submit(0), batcher.submit(1));
        let results = [a, b];
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        assert!(results.contains(&Err(Lost("Short"))));
    }
}
