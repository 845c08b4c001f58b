//! The worker's decoded-image memory budget: an image reserves what its decode may take
//! before it starts, and waits while others hold the rest. A task count alone would let a
//! handful of 100 MP images exhaust a machine sized for photos.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Budget in KiB (so a `u32` permit count covers budgets up to 4 TiB).
#[derive(Clone)]
pub struct MemoryBudget {
    kib: Arc<Semaphore>,
    total_kib: u32,
}

impl MemoryBudget {
    pub fn new(bytes: u64) -> Self {
        let total_kib = u32::try_from(bytes / 1024).unwrap_or(u32::MAX).max(1);
        MemoryBudget {
            kib: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
        }
    }

    /// Waits until `bytes` are free. A request over the whole budget takes all of it (the
    /// image runs alone) rather than waiting forever; the decoder limit bounds it anyway.
    pub async fn reserve(&self, bytes: u64) -> OwnedSemaphorePermit {
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total_kib);
        self.kib
            .clone()
            .acquire_many_owned(kib)
            .await
            .expect("the budget's semaphore is never closed")
    }

    /// KiB free now (for tests and logs).
    pub fn available_kib(&self) -> usize {
        self.kib.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_second_image_waits_for_room_and_runs_once_it_is_freed() {
        let budget = MemoryBudget::new(100 * 1024);
        let first = budget.reserve(80 * 1024).await;
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(40 * 1024).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "40 KiB fit in the 20 KiB left");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("freed room lets the waiting image run")
            .unwrap();
        assert_eq!(budget.available_kib(), 60);
        drop(second);
        assert_eq!(budget.available_kib(), 100);
    }

    #[tokio::test]
    async fn an_image_over_the_whole_budget_runs_alone_instead_of_waiting_forever() {
        let budget = MemoryBudget::new(10 * 1024);
        let permit = tokio::time::timeout(Duration::from_secs(5), budget.reserve(1 << 40))
            .await
            .expect("clamped to the budget");
        assert_eq!(budget.available_kib(), 0);
        drop(permit);
    }
}
