//! Lanes: the sessions a space works through.
//!
//! A JMS session is single-threaded, so concurrent operations on one space need sessions of
//! their own. A lane is one client-acknowledge session with a producer and a few cached
//! consumers; the space keeps idle lanes in a pool, and an operation checks one out for its
//! duration. Client acknowledgement makes a take safe to interrupt: the entry is removed
//! from the queue when received, but only acknowledged once decoded and about to be
//! returned, so a take cancelled or failing in between gives the entry back.

use courier_api::{
    Connection, Consumer, ConsumerOptions, Destination, Message, Producer, Result, Session,
    SessionMode,
};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

use crate::duration::is_forever;

/// Idle lanes kept beyond this are closed.
const MAX_IDLE_LANES: usize = 64;

/// Consumers a lane keeps open for templates it may see again.
const CACHED_CONSUMERS: usize = 8;

/// How long a receive waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Only what is there now.
    No,
    /// Up to this long.
    For(Duration),
    /// Until something comes.
    Forever,
}

impl Wait {
    /// The wait for an operation timeout: zero is no wait, [`crate::FOREVER`] (or any wait
    /// beyond a century) waits for ever.
    pub fn from_timeout(timeout: Duration) -> Self {
        if timeout.is_zero() {
            Wait::No
        } else if is_forever(timeout) {
            Wait::Forever
        } else {
            Wait::For(timeout)
        }
    }

    /// The shorter of this wait and `limit`.
    pub fn at_most(self, limit: Duration) -> Self {
        match self {
            _ if limit.is_zero() => Wait::No,
            Wait::No => Wait::No,
            Wait::For(d) => Wait::For(d.min(limit)),
            Wait::Forever => Wait::For(limit),
        }
    }
}

/// Receives from `consumer`, waiting as `wait` says.
pub(crate) async fn receive(consumer: &dyn Consumer, wait: Wait) -> Result<Option<Message>> {
    match wait {
        Wait::No => consumer.receive_no_wait().await,
        Wait::For(d) => consumer.receive_timeout(d).await,
        Wait::Forever => consumer.receive().await,
    }
}

/// Consumers kept open per (queue, selector), most recently used first, so a loop taking
/// with the same template does not make a consumer per take.
#[derive(Default)]
pub(crate) struct ConsumerCache {
    entries: Vec<(Destination, Option<String>, Box<dyn Consumer>)>,
}

impl ConsumerCache {
    /// The consumer on `queue` with `selector`, made on `session` when not cached.
    pub async fn get(
        &mut self,
        session: &dyn Session,
        queue: &Destination,
        selector: Option<&str>,
    ) -> Result<&dyn Consumer> {
        let found = self
            .entries
            .iter()
            .position(|(q, s, _)| q == queue && s.as_deref() == selector);
        match found {
            Some(0) => {}
            Some(i) => {
                let entry = self.entries.remove(i);
                self.entries.insert(0, entry);
            }
            None => {
                let options = ConsumerOptions {
                    selector: selector.map(str::to_owned),
                    no_local: false,
                    // No credit ahead: an entry is taken only by a waiting take.
                    prefetch: None,
                };
                let consumer = session.create_consumer(queue, options).await?;
                self.entries
                    .insert(0, (queue.clone(), selector.map(str::to_owned), consumer));
                if self.entries.len() > CACHED_CONSUMERS {
                    if let Some((_, _, evicted)) = self.entries.pop() {
                        close_consumer(evicted);
                    }
                }
            }
        }
        Ok(self.entries[0].2.as_ref())
    }

    /// Closes every cached consumer in the background.
    pub fn close_all(&mut self) {
        for (_, _, consumer) in self.entries.drain(..) {
            close_consumer(consumer);
        }
    }
}

/// One session of the pool, with its producer and cached consumers.
pub(crate) struct Lane {
    pub session: Box<dyn Session>,
    pub producer: Box<dyn Producer>,
    pub consumers: ConsumerCache,
}

impl Lane {
    /// Opens a lane: a session in `mode` and a producer without a default destination.
    pub async fn open(connection: &dyn Connection, mode: SessionMode) -> Result<Lane> {
        let session = connection.create_session(mode).await?;
        let producer = session.create_producer(None).await?;
        Ok(Lane {
            session,
            producer,
            consumers: ConsumerCache::default(),
        })
    }

    /// Closes the lane in the background; unacknowledged entries go back to the space.
    fn close(mut self) {
        self.consumers.close_all();
        close_session(self.session);
    }
}

/// The pool of idle lanes of one space.
pub(crate) struct Lanes {
    connection: Arc<dyn Connection>,
    idle: Mutex<Vec<Lane>>,
}

impl Lanes {
    /// An empty pool over `connection`.
    pub fn new(connection: Arc<dyn Connection>) -> Arc<Self> {
        Arc::new(Lanes {
            connection,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// The connection the lanes' sessions belong to.
    pub fn connection(&self) -> &Arc<dyn Connection> {
        &self.connection
    }

    /// An idle lane, or a new one.
    pub async fn checkout(self: &Arc<Self>) -> Result<LaneGuard> {
        let idle = self.idle.lock().pop();
        let lane = match idle {
            Some(lane) => lane,
            None => Lane::open(self.connection.as_ref(), SessionMode::ClientAcknowledge).await?,
        };
        Ok(LaneGuard {
            lanes: self.clone(),
            lane: Some(lane),
        })
    }
}

/// A checked-out lane. [`LaneGuard::release`] returns it to the pool; dropping it instead —
/// an operation that failed or was cancelled midway — closes its session, which gives back
/// whatever it received and did not acknowledge.
pub(crate) struct LaneGuard {
    lanes: Arc<Lanes>,
    lane: Option<Lane>,
}

impl LaneGuard {
    /// Returns the lane to the pool for the next operation.
    pub fn release(mut self) {
        if let Some(lane) = self.lane.take() {
            let mut idle = self.lanes.idle.lock();
            if idle.len() < MAX_IDLE_LANES {
                idle.push(lane);
                return;
            }
            drop(idle);
            lane.close();
        }
    }

    /// The lane's session, producer and consumers.
    pub fn lane(&mut self) -> &mut Lane {
        self.lane
            .as_mut()
            .expect("a lane guard holds its lane until released or dropped")
    }
}

impl Drop for LaneGuard {
    fn drop(&mut self) {
        if let Some(lane) = self.lane.take() {
            lane.close();
        }
    }
}

/// Closes a session without waiting, from a destructor or a path that has nothing to do
/// with the outcome. Outside a tokio runtime the session is dropped instead, which backends
/// treat as a close.
pub(crate) fn close_session(session: Box<dyn Session>) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = session.close().await;
        });
    }
}

/// Closes a consumer without waiting (see [`close_session`]).
pub(crate) fn close_consumer(consumer: Box<dyn Consumer>) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = consumer.close().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_map_to_waits() {
        assert_eq!(Wait::from_timeout(Duration::ZERO), Wait::No);
        assert_eq!(
            Wait::from_timeout(Duration::from_secs(1)),
            Wait::For(Duration::from_secs(1))
        );
        assert_eq!(Wait::from_timeout(Duration::MAX), Wait::Forever);
        assert_eq!(
            Wait::Forever.at_most(Duration::from_millis(5)),
            Wait::For(Duration::from_millis(5))
        );
        assert_eq!(
            Wait::For(Duration::from_secs(1)).at_most(Duration::ZERO),
            Wait::No
        );
    }
}
