//! Housekeeping: deleting destinations made on demand once they are unused (Artemis'
//! `auto-delete-queues`). A task on the current tokio runtime sweeps the registries every
//! quarter of [`crate::BrokerConfig::auto_delete_delay`] (at most every 5 s); it holds the
//! broker weakly, so it ends with the broker, and is started again by the next connection
//! if its runtime ends first.
//!
//! Each sweep advances an epoch; every lookup of a destination stamps the current epoch on
//! it. A destination is deleted when it was not looked up for the delay, stores nothing
//! (no message, delayed or unacknowledged, and no send admitted on its way in), and has no
//! consumer or subscription. Temporary destinations and the dead-letter queue are never
//! auto-deleted. A route a producer or transaction keeps to a deleted destination is no
//! longer live, so their next send looks the destination up again and makes it afresh.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::broker::{BrokerCore, QueueStore};
use super::store::Record;
use super::subscription::Topic;

/// Shortest and longest time between sweeps.
const MIN_INTERVAL: Duration = Duration::from_millis(10);
const MAX_INTERVAL: Duration = Duration::from_secs(5);

/// Sweeps between two sweeps that may delete, and sweeps a destination must stay unused.
fn schedule(delay: Duration) -> (Duration, u64) {
    let interval = (delay / 4).clamp(MIN_INTERVAL, MAX_INTERVAL);
    // A lookup just before a sweep ages by a whole epoch at once: one epoch more than the
    // delay needs, so no destination goes before its delay.
    let epochs = delay.as_nanos().div_ceil(interval.as_nanos()) + 1;
    (interval, u64::try_from(epochs).unwrap_or(u64::MAX))
}

/// Clears the running mark when the task ends (broker dropped, or its runtime shut down),
/// so the next connection starts it again.
struct Running(Weak<BrokerCore>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(core) = self.0.upgrade() {
            core.housekeeping.store(false, Ordering::Release);
        }
    }
}

impl BrokerCore {
    /// Starts the housekeeping task on the current tokio runtime, if auto-delete is on,
    /// a runtime is current and the task is not running yet.
    pub(crate) fn start_housekeeping(self: &Arc<Self>) {
        let Some(delay) = self.config.auto_delete_delay else {
            return;
        };
        if self.housekeeping.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.housekeeping.swap(true, Ordering::AcqRel) {
            return;
        }
        let (interval, idle_epochs) = schedule(delay);
        let running = Running(Arc::downgrade(self));
        runtime.spawn(async move {
            let running = running;
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(core) = running.0.upgrade() else {
                    break;
                };
                core.sweep(idle_epochs);
            }
        });
    }

    /// One sweep: advances the epoch and deletes the destinations unused for
    /// `idle_epochs` epochs.
    pub(crate) fn sweep(&self, idle_epochs: u64) {
        let epoch = self.epoch.fetch_add(1, Ordering::Relaxed) + 1;
        let idle = |touched: &AtomicU64| {
            epoch.saturating_sub(touched.load(Ordering::Relaxed)) >= idle_epochs
        };
        // Nothing but the registry holds the queue: no consumer or browser, and none being
        // made (it holds the queue between the lookup and attaching), no unacknowledged
        // message. Checked again under the registry's write lock, where no lookup can clone
        // it meanwhile.
        let unused_queue = |store: &QueueStore| {
            store.auto_delete
                && idle(&store.touched)
                && store.budget.count() == 0
                && Arc::strong_count(&store.queue) == 1
                && store.queue.unacked() == 0
                && store.queue.consumer_count() == 0
        };
        let unused_topic = |topic: &Topic| {
            topic.auto_delete && idle(&topic.touched) && topic.subscription_count() == 0
        };

        let candidates: Vec<_> = self
            .queues
            .read()
            .iter()
            .filter(|(_, store)| unused_queue(store))
            .map(|(d, _)| d.clone())
            .collect();
        if !candidates.is_empty() {
            let mut queues = self.queues.write();
            for destination in candidates {
                let Some(store) = queues.get(&destination) else {
                    continue;
                };
                // Mark first, then check again: a send admitted before the mark is seen in
                // the count; one admitted after it sees the mark and looks the queue up
                // again (after this write lock is released).
                store.retiring.store(true, Ordering::SeqCst);
                if unused_queue(store) {
                    store.queue.delete();
                    if let Some(recorder) = store.queue.recorder() {
                        recorder.fire(Record::QueueDeleted(Arc::from(destination.name())));
                    }
                    queues.remove(&destination);
                } else {
                    store.retiring.store(false, Ordering::SeqCst);
                }
            }
            if queues.capacity() > 64 && queues.len() < queues.capacity() / 4 {
                queues.shrink_to_fit();
            }
        }

        let candidates: Vec<_> = self
            .topics
            .read()
            .iter()
            .filter(|(_, topic)| unused_topic(topic))
            .map(|(d, _)| d.clone())
            .collect();
        if !candidates.is_empty() {
            let mut topics = self.topics.write();
            for destination in candidates {
                // Deleted only if still without subscriptions, atomically with respect to a
                // subscriber adding one (it then looks the topic up again).
                if topics
                    .get(&destination)
                    .is_some_and(|t| unused_topic(t) && t.delete_if_unused())
                {
                    topics.remove(&destination);
                }
            }
            if topics.capacity() > 64 && topics.len() < topics.capacity() / 4 {
                topics.shrink_to_fit();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_saturates() {
        assert_eq!(
            schedule(Duration::from_secs(1)),
            (Duration::from_millis(250), 5)
        );
        assert_eq!(schedule(Duration::ZERO), (MIN_INTERVAL, 1));
        let (interval, epochs) = schedule(Duration::MAX);
        assert_eq!(interval, MAX_INTERVAL);
        assert!(epochs > 1_000_000_000);
    }
}
