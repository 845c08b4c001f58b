//! [`Queue`] in memory, with SQS's delivery rules: a received message is invisible for the
//! visibility timeout and then comes back with its receive count one higher; only the
//! latest receipt of a message acknowledges or delays it; a message received more than
//! `max_receive_count` times moves to the dead-letter queue (the redrive policy). Time is
//! tokio's, so tests under a paused clock run timeouts in no time.
//!
//! Used by the runtime's protocol tests and by anything that wants a pipeline without a
//! queue service; tested itself below.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::{
    Attribute, Delivery, Queue, QueueError, VisibilityChange, dead_letter_attributes,
    dead_letter_body,
};
use crate::batch::BoxFuture;

/// A message as the queue holds it.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub message_id: String,
    pub body: String,
    pub attributes: BTreeMap<String, Attribute>,
    pub receive_count: u32,
    visible_at: Instant,
    receipt: Option<String>,
}

#[derive(Default)]
struct State {
    messages: VecDeque<StoredMessage>,
    next_id: u64,
    /// Calls the next `acknowledge`/`change_visibility` answer with errors (fault injection).
    failing_acknowledges: u32,
    /// Receives and probes fail, as on a queue service that does not answer.
    unreachable: bool,
    calls: BTreeMap<&'static str, u64>,
}

/// An in-memory queue. Clones share the queue.
#[derive(Clone)]
pub struct MemoryQueue {
    name: String,
    visibility: Duration,
    max_receive_count: u32,
    dead_letters: Option<Box<MemoryQueue>>,
    state: Arc<Mutex<State>>,
    arrivals: Arc<Notify>,
}

impl MemoryQueue {
    /// A queue with `visibility` as its visibility timeout and, like a stage queue, a DLQ
    /// (`<name>-dlq`) that takes a message on its receive after `max_receive_count`.
    pub fn with_dlq(name: &str, visibility: Duration, max_receive_count: u32) -> MemoryQueue {
        let dlq = MemoryQueue::plain(&format!("{name}-dlq"), visibility);
        MemoryQueue {
            dead_letters: Some(Box::new(dlq)),
            max_receive_count: max_receive_count.max(1),
            ..MemoryQueue::plain(name, visibility)
        }
    }

    /// A queue without a redrive policy (a DLQ itself).
    pub fn plain(name: &str, visibility: Duration) -> MemoryQueue {
        MemoryQueue {
            name: name.to_owned(),
            visibility,
            max_receive_count: u32::MAX,
            dead_letters: None,
            state: Arc::default(),
            arrivals: Arc::new(Notify::new()),
        }
    }

    /// The dead-letter queue, if this queue has one.
    pub fn dlq(&self) -> Option<&MemoryQueue> {
        self.dead_letters.as_deref()
    }

    /// Sends a message; returns its id.
    pub fn send(&self, body: &str) -> String {
        self.send_with(body, BTreeMap::new())
    }

    pub fn send_with(&self, body: &str, attributes: BTreeMap<String, Attribute>) -> String {
        let mut state = self.state.lock().expect("queue lock");
        state.next_id += 1;
        let message_id = format!("{}-{}", self.name, state.next_id);
        state.messages.push_back(StoredMessage {
            message_id: message_id.clone(),
            body: body.to_owned(),
            attributes,
            receive_count: 0,
            visible_at: Instant::now(),
            receipt: None,
        });
        drop(state);
        self.arrivals.notify_waiters();
        message_id
    }

    /// Every message still on the queue, visible or not.
    pub fn messages(&self) -> Vec<StoredMessage> {
        let state = self.state.lock().expect("queue lock");
        state.messages.iter().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.state.lock().expect("queue lock").messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many calls of each kind the queue answered (`ReceiveMessage`, ...).
    pub fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.state.lock().expect("queue lock").calls.clone()
    }

    /// Ends every message's visibility timeout now, as if it had run out (tests that stall
    /// a worker without waiting).
    pub fn make_all_visible(&self) {
        let now = Instant::now();
        for message in &mut self.state.lock().expect("queue lock").messages {
            message.visible_at = message.visible_at.min(now);
        }
        self.arrivals.notify_waiters();
    }

    /// The next `n` acknowledge calls fail for every entry, as an unreachable queue would.
    pub fn fail_next_acknowledges(&self, n: u32) {
        self.state.lock().expect("queue lock").failing_acknowledges = n;
    }

    /// While `true`, receives and probes fail as on a queue service that does not answer
    /// (`queue_unavailable`); acknowledgements and the rest still work.
    pub fn set_unreachable(&self, unreachable: bool) {
        self.state.lock().expect("queue lock").unreachable = unreachable;
    }

    fn unreachable(&self, operation: &'static str) -> Result<(), QueueError> {
        if self.state.lock().expect("queue lock").unreachable {
            return Err(QueueError::Call {
                operation,
                queue: self.name.clone(),
                detail: "injected: the queue does not answer".into(),
            });
        }
        Ok(())
    }

    /// Takes up to `max` visible messages now, moving over-received ones to the DLQ.
    fn take_visible(&self, max: usize) -> (Vec<Delivery>, Option<Instant>) {
        let now = Instant::now();
        let mut state = self.state.lock().expect("queue lock");
        let mut taken = Vec::new();
        let mut next_visible: Option<Instant> = None;
        let mut index = 0;
        while index < state.messages.len() && taken.len() < max {
            let message = &state.messages[index];
            if message.visible_at > now {
                next_visible =
                    Some(next_visible.map_or(message.visible_at, |t| t.min(message.visible_at)));
                index += 1;
                continue;
            }
            if message.receive_count >= self.max_receive_count
                && let Some(dlq) = &self.dead_letters
            {
                let moved = state.messages.remove(index).expect("index is in range");
                dlq.send_with(&moved.body, moved.attributes);
                continue;
            }
            state.next_id += 1;
            let receipt = format!("{}-receipt-{}", self.name, state.next_id);
            let message = &mut state.messages[index];
            message.receive_count += 1;
            message.visible_at = now + self.visibility;
            message.receipt = Some(receipt.clone());
            taken.push(Delivery {
                message_id: message.message_id.clone(),
                receipt,
                body: message.body.clone(),
                receive_count: message.receive_count,
                attributes: message.attributes.clone(),
            });
            index += 1;
        }
        (taken, next_visible)
    }

    fn count(&self, call: &'static str) {
        *self
            .state
            .lock()
            .expect("queue lock")
            .calls
            .entry(call)
            .or_default() += 1;
    }

    fn stale(&self, operation: &'static str, receipt: &str) -> QueueError {
        QueueError::StaleReceipt {
            operation,
            queue: self.name.clone(),
            detail: format!("receipt {receipt} is not the message's latest"),
        }
    }
}

impl Queue for MemoryQueue {
    fn name(&self) -> &str {
        &self.name
    }

    fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<Delivery>, QueueError>> {
        Box::pin(async move {
            self.count("ReceiveMessage");
            self.unreachable("ReceiveMessage")?;
            let deadline = Instant::now() + wait;
            loop {
                // Registered before looking, so a send between the look and the wait wakes us.
                let arrived = self.arrivals.notified();
                let (taken, next_visible) = self.take_visible(max.clamp(1, 10));
                if !taken.is_empty() || Instant::now() >= deadline {
                    return Ok(taken);
                }
                let until = next_visible.map_or(deadline, |t| t.min(deadline));
                tokio::select! {
                    _ = arrived => {}
                    _ = tokio::time::sleep_until(until) => {}
                }
            }
        })
    }

    fn acknowledge(&self, receipts: Vec<String>) -> BoxFuture<'_, Vec<Result<(), QueueError>>> {
        Box::pin(async move {
            self.count("DeleteMessageBatch");
            let mut state = self.state.lock().expect("queue lock");
            if state.failing_acknowledges > 0 {
                state.failing_acknowledges -= 1;
                let error = QueueError::Call {
                    operation: "DeleteMessageBatch",
                    queue: self.name.clone(),
                    detail: "injected failure".into(),
                };
                return vec![Err(error); receipts.len()];
            }
            receipts
                .iter()
                .map(|receipt| {
                    let position = state
                        .messages
                        .iter()
                        .position(|m| m.receipt.as_deref() == Some(receipt.as_str()));
                    match position {
                        Some(i) => {
                            state.messages.remove(i);
                            Ok(())
                        }
                        None => Err(self.stale("DeleteMessageBatch", receipt)),
                    }
                })
                .collect()
        })
    }

    fn change_visibility(
        &self,
        changes: Vec<VisibilityChange>,
    ) -> BoxFuture<'_, Vec<Result<(), QueueError>>> {
        Box::pin(async move {
            self.count("ChangeMessageVisibilityBatch");
            let now = Instant::now();
            let results = {
                let mut state = self.state.lock().expect("queue lock");
                changes
                    .iter()
                    .map(|change| {
                        let message = state
                            .messages
                            .iter_mut()
                            .find(|m| m.receipt.as_deref() == Some(change.receipt.as_str()));
                        match message {
                            Some(m) => {
                                m.visible_at = now + change.timeout;
                                Ok(())
                            }
                            None => {
                                Err(self.stale("ChangeMessageVisibilityBatch", &change.receipt))
                            }
                        }
                    })
                    .collect()
            };
            self.arrivals.notify_waiters();
            results
        })
    }

    fn probe(&self) -> BoxFuture<'_, Result<u64, QueueError>> {
        Box::pin(async move {
            self.count("GetQueueAttributes");
            self.unreachable("GetQueueAttributes")?;
            let now = Instant::now();
            let state = self.state.lock().expect("queue lock");
            Ok(state
                .messages
                .iter()
                .filter(|m| m.visible_at <= now)
                .count() as u64)
        })
    }

    fn dead_letter<'a>(
        &'a self,
        delivery: &'a Delivery,
        code: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            self.count("SendMessage");
            let Some(dlq) = &self.dead_letters else {
                return Err(QueueError::Call {
                    operation: "SendMessage",
                    queue: self.name.clone(),
                    detail: "this queue has no dead-letter queue".into(),
                });
            };
            let attributes = dead_letter_attributes(delivery, &self.name, code, reason);
            dlq.send_with(dead_letter_body(delivery), attributes);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::POISON_CODE_ATTRIBUTE;

    const VISIBILITY: Duration = Duration::from_secs(30);

    #[tokio::test(start_paused = true)]
    async fn a_received_message_is_invisible_until_its_timeout_then_comes_back_counted() {
        let queue = MemoryQueue::with_dlq("q", VISIBILITY, 5);
        queue.send("one");
        let first = queue.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].receive_count, 1);
        assert!(queue.receive(10, Duration::ZERO).await.unwrap().is_empty());
        tokio::time::advance(VISIBILITY - Duration::from_millis(1)).await;
        assert!(queue.receive(10, Duration::ZERO).await.unwrap().is_empty());
        tokio::time::advance(Duration::from_millis(1)).await;
        let again = queue.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(again[0].receive_count, 2);
        assert_ne!(again[0].receipt, first[0].receipt);
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_latest_receipt_acknowledges_or_delays() {
        let queue = MemoryQueue::with_dlq("q", VISIBILITY, 5);
        queue.send("one");
        let old = queue.receive(1, Duration::ZERO).await.unwrap().remove(0);
        tokio::time::advance(VISIBILITY).await;
        let new = queue.receive(1, Duration::ZERO).await.unwrap().remove(0);
        let stale = queue.acknowledge(vec![old.receipt.clone()]).await;
        assert_eq!(stale[0].as_ref().unwrap_err().code(), "stale_receipt");
        let delay = VisibilityChange {
            receipt: old.receipt,
            timeout: Duration::ZERO,
        };
        assert!(queue.change_visibility(vec![delay]).await[0].is_err());
        assert_eq!(queue.len(), 1);
        assert!(queue.acknowledge(vec![new.receipt]).await[0].is_ok());
        assert!(queue.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_visibility_change_makes_the_message_receivable_at_once() {
        let queue = MemoryQueue::with_dlq("q", VISIBILITY, 5);
        queue.send("one");
        let got = queue.receive(1, Duration::ZERO).await.unwrap().remove(0);
        let waiting = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.receive(1, Duration::from_secs(20)).await })
        };
        tokio::task::yield_now().await;
        let change = VisibilityChange {
            receipt: got.receipt,
            timeout: Duration::ZERO,
        };
        assert!(queue.change_visibility(vec![change]).await[0].is_ok());
        let started = Instant::now();
        let again = waiting.await.unwrap().unwrap();
        assert_eq!(again.len(), 1);
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_poll_returns_a_message_sent_while_it_waits_and_empty_after_the_wait() {
        let queue = MemoryQueue::with_dlq("q", VISIBILITY, 5);
        let empty = queue.receive(10, Duration::from_secs(20)).await.unwrap();
        assert!(empty.is_empty());
        let waiting = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.receive(10, Duration::from_secs(20)).await })
        };
        tokio::time::sleep(Duration::from_secs(3)).await;
        queue.send("late");
        assert_eq!(waiting.await.unwrap().unwrap()[0].body, "late");
    }

    #[tokio::test(start_paused = true)]
    async fn the_probe_counts_visible_messages_and_fails_like_receives_when_unreachable() {
        let queue = MemoryQueue::with_dlq("q", VISIBILITY, 5);
        assert_eq!(queue.probe().await, Ok(0));
        queue.send("one");
        queue.send("two");
        assert_eq!(queue.probe().await, Ok(2));
        queue.receive(1, Duration::ZERO).await.unwrap();
        assert_eq!(
            queue.probe().await,
            Ok(1),
            "an invisible message is not waiting"
        );
        queue.set_unreachable(true);
        let error = queue.probe().await.unwrap_err();
        assert_eq!(error.code(), "queue_unavailable");
        assert!(
            error.to_string().contains("GetQueueAttributes on queue q"),
            "{error}"
        );
        let receive = queue.receive(1, Duration::ZERO).await.unwrap_err();
        assert_eq!(receive.code(), "queue_unavailable");
        queue.set_unreachable(false);
        assert_eq!(queue.probe().await, Ok(1));
        assert_eq!(queue.calls()["GetQueueAttributes"], 5);
    }

    #[tokio::test(start_paused = true)]
    async fn the_redrive_policy_moves_a_message_after_max_receives() {
        let queue = MemoryQueue::with_dlq("q", VISIBILITY, 3);
        queue.send("poison");
        for expected in 1..=3 {
            let got = queue.receive(1, Duration::ZERO).await.unwrap();
            assert_eq!(got[0].receive_count, expected);
            tokio::time::advance(VISIBILITY).await;
        }
        assert!(queue.receive(1, Duration::ZERO).await.unwrap().is_empty());
        assert!(queue.is_empty());
        let dlq = queue.dlq().unwrap();
        assert_eq!(dlq.messages()[0].body, "poison");
    }

    #[tokio::test(start_paused = true)]
    async fn receives_take_at_most_ten_in_arrival_order_and_dead_letters_carry_the_reason() {
        let queue = MemoryQueue::with_dlq("q", VISIBILITY, 5);
        for i in 0..25 {
            queue.send(&format!("m{i}"));
        }
        let got = queue.receive(50, Duration::ZERO).await.unwrap();
        let bodies: Vec<_> = got.iter().map(|d| d.body.as_str()).collect();
        assert_eq!(bodies, (0..10).map(|i| format!("m{i}")).collect::<Vec<_>>());
        queue
            .dead_letter(&got[0], "bad_json", "not JSON")
            .await
            .unwrap();
        let dead = queue.dlq().unwrap().messages();
        assert_eq!(dead[0].body, "m0");
        assert_eq!(
            dead[0].attributes[POISON_CODE_ATTRIBUTE],
            Attribute::text("bad_json")
        );
        queue.fail_next_acknowledges(1);
        let failed = queue.acknowledge(vec![got[1].receipt.clone()]).await;
        assert_eq!(failed[0].as_ref().unwrap_err().code(), "queue_unavailable");
        assert!(queue.acknowledge(vec![got[1].receipt.clone()]).await[0].is_ok());
        assert_eq!(queue.calls()["DeleteMessageBatch"], 2);
    }
}
