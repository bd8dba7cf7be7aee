//! Expiry of ready messages without a consumer: an index of the messages that have an
//! expiration (messages without one cost nothing), and a reaper task per queue that sleeps
//! until the next expiration and drops expired messages in bounded batches, so memory comes
//! back although nobody consumes and no receive pays for a large expired backlog.

use courier_api::spi::now_millis;
use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::Notify;

use super::queue::{Envelope, QueueState};
use super::ready::OrderKey;

/// Most expired messages dropped under one hold of the queue lock.
pub(crate) const REAP_BATCH: usize = 1024;

/// Longest the reaper sleeps before looking again (a far expiration needs no exact timer).
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// Ready messages that have an expiration, by expiration time.
#[derive(Default)]
pub(crate) struct ExpiryIndex {
    by_time: BTreeSet<(u64, OrderKey)>,
}

impl ExpiryIndex {
    /// Notes `env` if it expires.
    pub fn insert(&mut self, env: &Envelope) {
        let at = env.message.expiration();
        if at != 0 {
            self.by_time.insert((at, env.key()));
        }
    }

    /// Forgets `env`.
    pub fn remove(&mut self, env: &Envelope) {
        let at = env.message.expiration();
        if at != 0 {
            self.by_time.remove(&(at, env.key()));
        }
    }

    /// The earliest expiration, if any message expires.
    pub fn next(&self) -> Option<u64> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Up to `max` messages expired at `now`, earliest first.
    pub fn expired(&self, now: u64, max: usize) -> Vec<OrderKey> {
        self.by_time
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(max)
            .map(|(_, key)| *key)
            .collect()
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.by_time = BTreeSet::new();
    }
}

/// Whether a queue's reaper task runs, and until when it sleeps.
#[derive(Default)]
pub(crate) struct ReaperState {
    /// A reaper task exists.
    pub running: bool,
    /// The expiration it sleeps until.
    pub until: Option<u64>,
}

/// The wakeup of a queue's reaper: an earlier expiration arrived, or the queue went away.
pub(crate) type ReaperWake = Arc<Notify>;

/// Starts the reaper of a queue whose state holds an expiring message, or wakes it when
/// that message expires before it planned to look. Outside a tokio runtime nothing is
/// started; expired messages are then dropped when consumers meet them.
pub(crate) fn schedule(st: &mut QueueState, state: &Arc<Mutex<QueueState>>, wake: &ReaperWake) {
    let Some(next) = st.expiry.next() else {
        return;
    };
    if st.reaper.running {
        if st.reaper.until.is_none_or(|until| next < until) {
            wake.notify_one();
        }
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    st.reaper.running = true;
    st.reaper.until = None;
    runtime.spawn(reap(Arc::downgrade(state), wake.clone()));
}

/// The reaper task: drops expired messages in batches, sleeps until the next expiration,
/// and ends when nothing expires any more or the queue is gone.
async fn reap(state: Weak<Mutex<QueueState>>, wake: ReaperWake) {
    loop {
        let woken = wake.notified();
        let (next, more) = {
            let Some(state) = state.upgrade() else {
                return;
            };
            let mut st = state.lock();
            let more = st.drop_expired(now_millis(), REAP_BATCH) == REAP_BATCH;
            let next = st.expiry.next();
            if next.is_none() {
                st.reaper = ReaperState::default();
                return;
            }
            st.reaper.until = next;
            (next, more)
        };
        if more {
            // Let receives and sends in between batches.
            tokio::task::yield_now().await;
            continue;
        }
        let due_in = next.map_or(MAX_SLEEP, |at| {
            // One millisecond past it: a message expires once the clock passes its time.
            Duration::from_millis(at.saturating_sub(now_millis()).saturating_add(1))
        });
        tokio::select! {
            _ = tokio::time::sleep(due_in.min(MAX_SLEEP)) => {}
            _ = woken => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::EmbeddedFactory;
    use courier_api::*;
    use std::time::{Duration, Instant};

    /// Polls `depth` until it is 0 or `within` passed; the last depth seen.
    async fn wait_empty(depth: impl Fn() -> usize, within: Duration) -> usize {
        let started = Instant::now();
        loop {
            let d = depth();
            if d == 0 || started.elapsed() > within {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn expired_messages_are_dropped_without_a_consumer() {
        let factory = EmbeddedFactory::default();
        let connection = factory.create_connection().await.unwrap();
        let session = connection
            .create_session(SessionMode::AutoAcknowledge)
            .await
            .unwrap();
        let queue = Destination::queue("short-lived");
        let producer = session.create_producer(Some(&queue)).await.unwrap();
        producer.set_time_to_live(Duration::from_millis(1)).unwrap();
        for _ in 0..5_000 {
            producer
                .send(&mut Message::text("gone soon"))
                .await
                .unwrap();
        }
        // A message that never expires stays.
        producer.set_time_to_live(Duration::ZERO).unwrap();
        producer.send(&mut Message::text("stays")).await.unwrap();
        let broker = factory.broker().clone();
        let left = wait_empty(
            || broker.queue_depth("short-lived").unwrap() - 1,
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(
            left, 0,
            "expired messages still stored with nobody consuming"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_reaper_ends_when_its_queue_is_deleted() {
        let factory = EmbeddedFactory::default();
        let connection = factory.create_connection().await.unwrap();
        let session = connection
            .create_session(SessionMode::AutoAcknowledge)
            .await
            .unwrap();
        let metrics = tokio::runtime::Handle::current().metrics();
        let before = metrics.num_alive_tasks();
        let queue = session.create_temporary_queue().await.unwrap();
        let producer = session.create_producer(Some(&queue)).await.unwrap();
        producer
            .set_time_to_live(Duration::from_secs(3600))
            .unwrap();
        producer
            .send(&mut Message::text("long-lived"))
            .await
            .unwrap();
        assert_eq!(
            metrics.num_alive_tasks(),
            before + 1,
            "one reaper for the queue"
        );
        session.delete_temporary(&queue).await.unwrap();
        let started = Instant::now();
        while metrics.num_alive_tasks() > before && started.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            metrics.num_alive_tasks(),
            before,
            "the reaper outlived its queue"
        );
    }
}
