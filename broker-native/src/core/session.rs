//! The core session: what one session owes the broker, whichever way it came in (the
//! embedded adapter in-process, a server connection over TCP). Both are thin layers over it.
//!
//! - Every delivery gets a **tag**: a `u64` counting up from 1 within the session, so a
//!   layer (or a wire protocol) names a delivery with eight bytes and settles it later.
//! - **Unacknowledged deliveries** (client-ack and transacted sessions, and messages a
//!   listener holds in any mode) are kept by tag, oldest first, each with the queue it came
//!   from and its envelope, whose sequence number is the message's stable identity in that
//!   queue: an acknowledgement names exactly which message it removes.
//! - **Pending transactional work**: the sends of the open transaction, published all or
//!   none at commit; the transaction's acknowledgements are its unacknowledged deliveries.
//! - Recover, rollback and close return the unacknowledged messages to their queues (or to
//!   the dead-letter queue once they used their delivery attempts), in delivery order.

use courier_api::spi::{self, now_millis};
use courier_api::{Error, InDoubtOperation, Message, Result};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use super::broker::{Admitted, BrokerCore, Route};
use super::envelope::{Envelope, Origin};
use super::queue::Queue;
use super::store::Ticket;

/// A message sent in a transaction, waiting for commit.
pub(crate) struct PendingSend {
    /// Where it goes, resolved when it was sent.
    pub route: Route,
    /// The stamped message.
    pub message: Message,
    /// Its sender.
    pub origin: Arc<Origin>,
}

/// A delivery the session has not acknowledged yet.
pub(crate) struct Unacked {
    /// Its tag in the session.
    pub tag: u64,
    /// The queue (or subscription store) it was taken from.
    pub queue: Arc<Queue>,
    /// The message, with its stable sequence number and delivery count.
    pub envelope: Envelope,
}

/// A message handed to the application.
pub(crate) struct Delivered {
    /// Its tag in the session, for [`CoreSession::settle`].
    pub tag: u64,
    /// The message with its delivery headers stamped.
    pub message: Message,
    /// Resolves once the delivery's count is durable (a persistent message kept for a later
    /// acknowledgement, on a durable broker). Await it before the application sees the
    /// message: a crash in between must bring the message back `redelivered`.
    pub recorded: Option<Ticket>,
}

#[derive(Default)]
struct SessionState {
    /// The last tag given out.
    last_tag: u64,
    /// Delivered and not yet acknowledged, by tag (so oldest first). A deque: a consumer
    /// with a prefetch holds up to that many, and settles them oldest first, which a `Vec`
    /// pays for with a shift of every later entry.
    unacked: VecDeque<Unacked>,
    /// Sends of the open transaction.
    pending: Vec<PendingSend>,
    closed: bool,
}

/// A session's per-delivery tags, unacknowledged deliveries and pending transactional work.
pub(crate) struct CoreSession {
    broker: Arc<BrokerCore>,
    state: Mutex<SessionState>,
}

/// The deliveries a commit acknowledges, returned to their queues if the commit is dropped
/// before it ends.
struct RollbackOnDrop<'a>(&'a CoreSession, Option<VecDeque<Unacked>>);

impl Drop for RollbackOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(unacked) = self.1.take() {
            self.0.redeliver_all(unacked);
        }
    }
}

/// A recorded commit, applied when dropped unless taken out (its ticket failed).
struct ApplyOnDrop<'a>(&'a CoreSession, Option<(Vec<Admitted>, VecDeque<Unacked>)>);

impl Drop for ApplyOnDrop<'_> {
    fn drop(&mut self) {
        if let Some((admitted, unacked)) = self.1.take() {
            self.0.apply(admitted, unacked);
        }
    }
}

impl CoreSession {
    /// A session on `broker` with nothing delivered or pending.
    pub fn new(broker: Arc<BrokerCore>) -> Self {
        CoreSession {
            broker,
            state: Mutex::new(SessionState::default()),
        }
    }

    /// Hands a message taken from `queue` to the application: counts the delivery, stamps
    /// the delivery headers and gives it a tag. When `keep`, the session remembers it until
    /// it is acknowledged ([`Self::settle`], [`Self::acknowledge_all`], commit) or returned
    /// (recover, rollback, close); otherwise it is acknowledged now. A message taken while
    /// the session closed goes back untouched and `None` is returned.
    ///
    /// A paged message is read back from the store first, outside every lock (see
    /// [`super::paging`]); kept, it stays a stub in the session. A read that fails puts the
    /// message back and returns the store's error.
    pub fn deliver(
        &self,
        queue: &Arc<Queue>,
        mut env: Envelope,
        keep: bool,
    ) -> Result<Option<Delivered>> {
        if self.state.lock().closed {
            queue.put_back(env);
            return Ok(None);
        }
        let whole = match super::paging::read_back(queue.recorder(), &env) {
            Ok(whole) => whole,
            Err(e) => {
                queue.put_back(env);
                return Err(e);
            }
        };
        let mut state = self.state.lock();
        if state.closed {
            drop(state);
            queue.put_back(env);
            return Ok(None);
        }
        state.last_tag += 1;
        let tag = state.last_tag;
        env.delivery_count += 1;
        let count = env.delivery_count;
        queue.counters.delivered(count);
        let mut recorded = None;
        let mut message = if keep {
            let message = Message::clone(&whole);
            // Recorded now, not only when it comes back: a message delivered and not yet
            // acknowledged when the broker is killed returns redelivered, with this count.
            recorded = queue.recorder().and_then(|r| r.delivered(&env));
            queue.delivered_unacked();
            state.unacked.push_back(Unacked {
                tag,
                queue: queue.clone(),
                envelope: env,
            });
            message
        } else {
            drop(state);
            self.broker.acknowledged(queue, &env);
            drop(env);
            Arc::try_unwrap(whole).unwrap_or_else(|m| Message::clone(&m))
        };
        let header = spi::header_mut(&mut message);
        header.delivery_count = count;
        header.redelivered = count > 1;
        spi::mark_received(&mut message);
        Ok(Some(Delivered {
            tag,
            message,
            recorded,
        }))
    }

    /// Settles the kept delivery `tag` alone: acknowledged when `ack`, else returned to its
    /// queue. `false` when the session holds no such delivery (already settled by an
    /// acknowledge, recover, rollback or close).
    pub fn settle(&self, tag: u64, ack: bool) -> bool {
        let found = {
            let mut state = self.state.lock();
            let at = state.unacked.binary_search_by_key(&tag, |u| u.tag).ok();
            at.and_then(|at| state.unacked.remove(at))
        };
        match found {
            Some(unacked) if ack => self.acknowledge_each([unacked]),
            Some(unacked) => self.redeliver_all([unacked]),
            None => return false,
        }
        true
    }

    /// Acknowledges every kept delivery (client acknowledgement: all the session consumed).
    pub fn acknowledge_all(&self) {
        let unacked = std::mem::take(&mut self.state.lock().unacked);
        self.acknowledge_each(unacked);
    }

    /// Returns every kept delivery to its queue (recover); returns how many.
    pub fn recover(&self) -> usize {
        let unacked = std::mem::take(&mut self.state.lock().unacked);
        let n = unacked.len();
        self.redeliver_all(unacked);
        n
    }

    /// Drops the open transaction's sends and returns its received messages to their
    /// queues; returns how many were returned.
    pub fn rollback(&self) -> usize {
        let unacked = {
            let mut state = self.state.lock();
            state.pending.clear();
            std::mem::take(&mut state.unacked)
        };
        let n = unacked.len();
        self.redeliver_all(unacked);
        n
    }

    /// Closes the session: later deliveries go back untouched, the open transaction's sends
    /// are dropped and its kept deliveries return to their queues; returns how many did.
    /// Idempotent.
    pub fn close(&self) -> usize {
        let unacked = {
            let mut state = self.state.lock();
            state.closed = true;
            state.pending.clear();
            std::mem::take(&mut state.unacked)
        };
        let n = unacked.len();
        self.redeliver_all(unacked);
        n
    }

    /// Adds a send to the open transaction. Fails once the session is closed.
    pub fn send_later(&self, send: PendingSend) -> Result<()> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(Error::illegal_state("the session is closed"));
        }
        state.pending.push(send);
        Ok(())
    }

    /// Publishes now (outside a transaction): stored when the future resolves, with the
    /// store's ticket that confirms it once durable (done at once for an in-memory broker or a
    /// non-persistent message). `now` is the send time. Waits for room under a blocking
    /// policy until `cancel`.
    ///
    /// The broker's publish future itself, not an `async fn` around it: a wrapper would
    /// make every send's future costlier to move.
    pub fn send_now<'a>(
        &'a self,
        route: &'a Route,
        message: Message,
        origin: &'a Arc<Origin>,
        now: u64,
        cancel: &'a CancellationToken,
    ) -> impl Future<Output = Result<Ticket>> + 'a {
        self.broker.publish(route, message, origin, now, cancel)
    }

    /// Commits the open transaction: publishes its sends all or none and acknowledges its
    /// received messages, as one store record whose ticket is awaited before any of it
    /// becomes visible. A failure (no room under a failing policy, a deleted temporary
    /// destination, `cancel`, the store refusing or failing the record) rolls the whole
    /// transaction back: [`Error::TransactionRolledBack`] (or [`Error::InDoubt`] when the
    /// store cannot tell whether it has the record). Dropping the future while it waits for
    /// room rolls back; dropping it once the record is made applies the commit at once.
    pub async fn commit(&self, cancel: &CancellationToken) -> Result<()> {
        let (pending, unacked) = {
            let mut state = self.state.lock();
            (
                std::mem::take(&mut state.pending),
                std::mem::take(&mut state.unacked),
            )
        };
        let mut received = RollbackOnDrop(self, Some(unacked));
        let admitted = self.broker.admit_all(pending, cancel).await;
        let unacked = received.1.take().unwrap_or_default();
        let rolled_back = |e: Error| match e {
            Error::InDoubt { reason, .. } => Error::InDoubt {
                operation: InDoubtOperation::Commit,
                reason,
            },
            e => Error::TransactionRolledBack(e.to_string()),
        };
        let admitted = match admitted {
            Ok(admitted) => admitted,
            Err(e) => {
                self.redeliver_all(unacked);
                return Err(rolled_back(e));
            }
        };
        let acks = unacked.iter().map(|u| (&u.queue, &u.envelope));
        let ticket = match self.broker.record_commit(&admitted, acks) {
            None => None,
            Some(Ok(ticket)) => Some(ticket),
            Some(Err(e)) => {
                drop(admitted);
                self.redeliver_all(unacked);
                return Err(rolled_back(e));
            }
        };
        let mut apply = ApplyOnDrop(self, Some((admitted, unacked)));
        if let Some(ticket) = ticket {
            if let Err(e) = ticket.await {
                if let Some((admitted, unacked)) = apply.1.take() {
                    drop(admitted);
                    self.redeliver_all(unacked);
                }
                return Err(rolled_back(e));
            }
        }
        drop(apply);
        Ok(())
    }

    fn redeliver_all(&self, unacked: impl IntoIterator<Item = Unacked>) {
        for u in unacked {
            self.broker.redeliver(&u.queue, u.envelope);
        }
    }

    /// Acknowledges each delivery, telling the store.
    fn acknowledge_each(&self, unacked: impl IntoIterator<Item = Unacked>) {
        for u in unacked {
            u.queue.acknowledged();
            self.broker.acknowledged(&u.queue, &u.envelope);
        }
    }

    /// Applies a recorded commit: its messages become deliverable, its acknowledgements
    /// take effect (the commit record already told the store of both).
    fn apply(&self, admitted: Vec<Admitted>, unacked: VecDeque<Unacked>) {
        let now = now_millis();
        for a in admitted {
            a.store(now);
        }
        for u in unacked {
            u.queue.acknowledged();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::queue::{ConsumerSlot, Take};
    use crate::BrokerConfig;
    use courier_api::Destination;

    /// A broker with the queue `q` holding `n` messages whose bodies are their numbers.
    fn broker_with(n: u64) -> (Arc<BrokerCore>, Arc<Queue>) {
        let broker = Arc::new(BrokerCore::new(BrokerConfig::default()));
        let queue = broker.queue(&Destination::queue("q")).unwrap();
        for seq in 1..=n {
            queue.enqueue(Envelope::unsent(seq, Message::text(seq.to_string())), 0);
        }
        (broker, queue)
    }

    fn take(queue: &Arc<Queue>) -> Envelope {
        let slot = Arc::new(ConsumerSlot::new(None));
        match queue.take(&slot, false) {
            Take::Message(env) => env,
            Take::Empty { .. } => panic!("queue empty"),
        }
    }

    #[test]
    fn tags_count_up_and_settle_names_one_delivery() {
        let (broker, queue) = broker_with(3);
        let session = CoreSession::new(broker);
        let tags: Vec<u64> = (0..3)
            .map(|_| {
                session
                    .deliver(&queue, take(&queue), true)
                    .unwrap()
                    .unwrap()
                    .tag
            })
            .collect();
        assert_eq!(tags, [1, 2, 3]);
        assert_eq!(queue.unacked(), 3);
        // Acknowledge the middle one, return the first: only they are settled.
        assert!(session.settle(2, true));
        assert!(session.settle(1, false));
        assert!(!session.settle(2, true), "a tag settles once");
        assert_eq!(queue.unacked(), 1);
        // Message 1 is back, redelivered; message 2 is gone for good.
        let back = session
            .deliver(&queue, take(&queue), true)
            .unwrap()
            .unwrap();
        assert_eq!(back.tag, 4);
        assert_eq!(back.message.body_text(), Some("1"));
        assert!(back.message.redelivered());
        assert_eq!(session.recover(), 2);
        assert_eq!(queue.depth(), 2);
    }

    #[test]
    fn close_returns_messages_and_refuses_later_work() {
        let (broker, queue) = broker_with(2);
        let session = CoreSession::new(broker);
        session
            .deliver(&queue, take(&queue), true)
            .unwrap()
            .unwrap();
        assert_eq!(session.close(), 1);
        assert_eq!(queue.depth(), 2);
        // A message taken while the session closed goes back untouched.
        assert!(session
            .deliver(&queue, take(&queue), true)
            .unwrap()
            .is_none());
        assert_eq!(queue.depth(), 2);
        let send = PendingSend {
            route: session.broker.route(&Destination::queue("q")).unwrap(),
            message: Message::text("late"),
            origin: Arc::new(Origin {
                connection: 1,
                client_id: None,
            }),
        };
        assert!(matches!(
            session.send_later(send),
            Err(Error::IllegalState(_))
        ));
    }
}
