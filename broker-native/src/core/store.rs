//! The storage hook: the one place a durable store (the journal) hears of every event that
//! changes what must survive a restart, and the state it hands back on start-up.
//!
//! The core calls [`Store::record`] with a [`Record`] for:
//! - a **persistent message accepted** outside a transaction ([`Record::Message`]): its stable
//!   id, the stores it went to (one queue, or the durable subscriptions of a topic) and its
//!   bytes in the api's frozen encoding ([`courier_api::Message::encode`]);
//! - a **message removed** ([`Record::Removed`]): acknowledged, expired, dropped by a
//!   drop-oldest policy; or **moved to the dead-letter queue** ([`Record::DeadLettered`]);
//! - a **delivery count changed** ([`Record::DeliveryCount`]): recorded when a message is
//!   delivered to be acknowledged later (client acknowledgement, transactions) and when a
//!   delivered message goes back to its queue (recover, rollback, close, a failed listener),
//!   so a message delivered and unacknowledged at a crash comes back redelivered with its
//!   count (an auto-acknowledged delivery is removed at once and needs no count);
//! - a **transaction committed** ([`Record::Commit`]): one record with all its persistent
//!   sends and all its acknowledgements, so replay sees all of it or none;
//! - a **plain queue created or deleted**, a **durable subscription created or deleted**.
//!   (Topics hold nothing: a durable subscription's record names its topic, which is made
//!   again on demand. Temporary destinations and non-durable subscriptions never reach the
//!   store, nor does any non-persistent message.)
//!
//! # Contract
//! - `record` is called in the order the events happen to each message (a message's add
//!   before its removal), sometimes under a queue's lock: it must queue the record and
//!   return without blocking or calling back into the broker.
//! - `record` answers at once with a refusal (the send fails with that error; a full disk
//!   is [`courier_api::Error::ResourceLimit`]) or with a [`Ticket`] that resolves once the
//!   record is durable (or failed to become so).
//! - A persistent send is confirmed to its producer only after its ticket resolves; the
//!   message may be delivered before that (a consumer's acknowledgement is recorded after
//!   the add it removes, so replay stays consistent).
//! - A commit's effects (its messages in their queues, its acknowledgements) become visible
//!   only after its ticket resolves. A commit whose ticket fails rolls back; one whose
//!   committer gives up waiting is applied anyway (the record may be on disk).
//! - Removals, returned-delivery counts and lifecycle records are not waited for: a crash
//!   may return a message acknowledged just before it (at-least-once, flagged redelivered).
//! - A delivery count recorded for a kept delivery is waited for before the application sees
//!   the message: in-process, on its ticket; by the TCP server, on [`Store::synced`] once per
//!   batch of frames, just before they leave the process (many deliveries, one `fdatasync`).
//!
//! # Start-up
//! A store replays its records into a [`Recovered`] state and the broker is built from it
//! ([`crate::Broker::with_store`]): plain queues, durable subscriptions, the messages of each
//! with their delivery counts, and the largest message and subscription ids ever recorded,
//! from which the id counters go on (the largest + 1), so every id a record names stays
//! unique across restarts.

use bytes::Bytes;
use courier_api::{Error, Result};
use futures::future::BoxFuture;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::oneshot;

use super::envelope::Envelope;

/// A message store as the journal names it; stable across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StoreKey {
    /// A plain queue (the dead-letter queue included), by name.
    Queue(Arc<str>),
    /// A durable subscription's store, by its id ([`DurableSubscription::id`]).
    Subscription(u64),
}

/// Why a message left its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// A consumer acknowledged it.
    Acknowledged,
    /// Its expiration passed.
    Expired,
    /// A drop-oldest policy made room with it.
    Dropped,
}

/// A persistent message accepted into one or more stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its stable id (the broker's arrival sequence number, shared by all its copies).
    pub id: u64,
    /// The stores holding a copy.
    pub stores: Vec<StoreKey>,
    /// The message in the api's frozen encoding.
    pub bytes: Bytes,
    /// The core keeps only a stub of it in memory ([`crate::core::paging`]) and may ask for
    /// it back with [`Store::read`] as soon as `record` returns — before the record is
    /// durable: the store must keep these bytes readable until it can read them from disk.
    pub read_back: bool,
}

/// A durable subscription's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableSubscription {
    /// Its store's id, unique across restarts.
    pub id: u64,
    /// The topic's name.
    pub topic: Arc<str>,
    /// The client id it belongs to (`None` for a shared subscription made without one).
    pub client_id: Option<Arc<str>>,
    /// Its name.
    pub name: String,
    /// Its selector's text.
    pub selector: Option<String>,
    /// Whether it skips messages from connections with its client id.
    pub no_local: bool,
    /// Whether it is shared.
    pub shared: bool,
}

/// One durable event, as the core reports it to a [`Store`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A persistent message sent outside a transaction.
    Message(StoredMessage),
    /// A message left `store`.
    Removed {
        /// Where it was.
        store: StoreKey,
        /// Its id.
        id: u64,
        /// Why.
        why: Removal,
    },
    /// Message `id` moved from `from` to the dead-letter queue `to`, where it is message
    /// `new_id` with its delivery count reset.
    DeadLettered {
        /// Where it was.
        from: StoreKey,
        /// Its id there.
        id: u64,
        /// The dead-letter queue.
        to: StoreKey,
        /// Its id in the dead-letter queue.
        new_id: u64,
    },
    /// A delivered message went back to `store` having been delivered `count` times.
    DeliveryCount {
        /// Where it is.
        store: StoreKey,
        /// Its id.
        id: u64,
        /// Deliveries so far.
        count: u32,
    },
    /// A transaction committed: its persistent sends and its acknowledgements, all or none.
    Commit {
        /// Messages it sent.
        sends: Vec<StoredMessage>,
        /// Messages it acknowledged: store and id.
        acks: Vec<(StoreKey, u64)>,
    },
    /// A plain queue was made.
    QueueCreated(Arc<str>),
    /// A plain queue was deleted with its messages.
    QueueDeleted(Arc<str>),
    /// A durable subscription was made.
    SubscriptionCreated(DurableSubscription),
    /// A durable subscription was deleted with its messages.
    SubscriptionDeleted(u64),
}

/// Where the broker's durable events go.
pub trait Store: Send + Sync {
    /// False for a store that keeps nothing: the core then skips making records at all (no
    /// encoding, no calls), so an in-memory broker pays nothing for the hook.
    fn is_durable(&self) -> bool;

    /// Takes one record (see the module docs for the contract): a refusal now, or a ticket
    /// that resolves once the record is durable.
    fn record(&self, record: Record) -> Result<Ticket>;

    /// Takes one record whose outcome nobody waits for (a removal, a count put back): a
    /// refusal now, else nothing. A store can skip making a ticket for it; by default it
    /// makes one and drops it. [`Store::synced`] still covers it.
    fn fire(&self, record: Record) -> Result<()> {
        self.record(record).map(drop)
    }

    /// Figures of its writes (fsyncs, batches) for the broker's statistics; `None` when it
    /// keeps none.
    fn stats(&self) -> Option<super::stats::StoreStats> {
        None
    }

    /// A future resolving once every record taken before this call is settled (durable, or
    /// failed to its own waiter), without a record of its own: a caller that dropped a
    /// ticket waits with it before acting on what the record promised. Ready at once for a
    /// store that keeps nothing.
    fn synced(&self) -> BoxFuture<'static, ()> {
        Box::pin(std::future::ready(()))
    }

    /// The bytes of the live copy of message `id` in `store`, for a paged message
    /// ([`crate::core::paging`]): the core keeps its stub and reads the rest back when it is
    /// delivered. A store that keeps nothing cannot serve it.
    fn read(&self, store: &StoreKey, id: u64) -> Result<Bytes> {
        let _ = (store, id);
        Err(Error::unsupported(
            "embedded",
            "reading back a message from a store that keeps none",
        ))
    }
}

/// The store of an in-memory broker: keeps nothing, confirms at once.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoStore;

impl Store for NoStore {
    fn is_durable(&self) -> bool {
        false
    }

    fn record(&self, _record: Record) -> Result<Ticket> {
        Ok(Ticket::done())
    }
}

/// A promise that a record becomes durable: a future resolving to `Ok` once it is, or to the
/// store's error. A persistent send is confirmed once it resolves (its receipt waits for it), and a
/// commit awaits it before its effects become visible.
#[must_use = "a ticket confirms nothing until awaited"]
#[derive(Debug)]
pub struct Ticket(TicketState);

#[derive(Debug)]
enum TicketState {
    Done,
    Pending(oneshot::Receiver<Result<()>>),
}

/// The store's side of a pending [`Ticket`]: resolves it. Dropping it unresolved (the store
/// stopped) resolves the ticket with [`Error::InDoubt`]: the record may or may not be on disk.
#[derive(Debug)]
pub struct Confirm(oneshot::Sender<Result<()>>);

impl Ticket {
    /// A ticket already resolved with `Ok`.
    pub fn done() -> Ticket {
        Ticket(TicketState::Done)
    }

    /// A ticket resolved later through its [`Confirm`].
    pub fn pending() -> (Ticket, Confirm) {
        let (tx, rx) = oneshot::channel();
        (Ticket(TicketState::Pending(rx)), Confirm(tx))
    }

    /// Whether the ticket is resolved with `Ok` already (nothing to wait for).
    pub fn is_done(&self) -> bool {
        matches!(self.0, TicketState::Done)
    }
}

impl Confirm {
    /// Resolves the ticket: `Ok` once the record is durable, else the reason it is not.
    pub fn resolve(self, outcome: Result<()>) {
        // The ticket's holder may have stopped waiting; nothing is owed to it then.
        let _ = self.0.send(outcome);
    }
}

impl Future for Ticket {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match &mut self.get_mut().0 {
            TicketState::Done => Poll::Ready(Ok(())),
            TicketState::Pending(rx) => Pin::new(rx).poll(cx).map(|outcome| {
                outcome.unwrap_or_else(|_| {
                    Err(Error::InDoubt {
                        operation: courier_api::InDoubtOperation::Send,
                        reason: "the store stopped before confirming the record".into(),
                    })
                })
            }),
        }
    }
}

/// What a store's replay hands the core on start-up ([`crate::Broker::with_store`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Plain queues that exist.
    pub queues: Vec<Arc<str>>,
    /// Durable subscriptions that exist.
    pub subscriptions: Vec<DurableSubscription>,
    /// Messages still stored, one entry per copy, in any order (each store orders its own by
    /// priority and id).
    pub messages: Vec<RecoveredMessage>,
    /// The largest message id ever recorded (removed messages included); 0 if none.
    pub max_message_id: u64,
    /// The largest durable-subscription id ever recorded (deleted ones included); 0 if none.
    pub max_subscription_id: u64,
}

/// One stored copy of a message, from a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredMessage {
    /// The store holding it.
    pub store: StoreKey,
    /// Its id.
    pub id: u64,
    /// How often it was delivered (and returned) before.
    pub delivery_count: u32,
    /// The message in the api's frozen encoding.
    pub bytes: Bytes,
}

/// A durable store's handle on one of its message stores: records events about the
/// persistent messages in it. Queues that are not durable (temporary ones, non-durable
/// subscriptions) or belong to a broker without a durable store have none.
#[derive(Clone)]
pub(crate) struct Recorder {
    store: Arc<dyn Store>,
    key: StoreKey,
}

impl Recorder {
    /// A handle recording events of the store `key`.
    pub fn new(store: Arc<dyn Store>, key: StoreKey) -> Self {
        Recorder { store, key }
    }

    /// The store's key.
    pub fn key(&self) -> &StoreKey {
        &self.key
    }

    /// The store the events go to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Records `env` leaving this store, if it is persistent. Not waited for; a refusal is
    /// logged (the message is gone from memory either way).
    pub fn removed(&self, env: &Envelope, why: Removal) {
        if env.is_persistent() {
            self.fire(Record::Removed {
                store: self.key.clone(),
                id: env.seq,
                why,
            });
        }
    }

    /// Records the delivery count of `env`, handed out for a later acknowledgement, if it
    /// is persistent: the ticket resolves once the count is durable. The message must not
    /// reach the application before it does, or a crash could bring it back without
    /// `redelivered`. `None` when nothing is recorded (or the store refused: logged, and the
    /// delivery goes on — the message is still kept, only its count may come back short).
    pub fn delivered(&self, env: &Envelope) -> Option<Ticket> {
        if !env.is_persistent() {
            return None;
        }
        let record = Record::DeliveryCount {
            store: self.key.clone(),
            id: env.seq,
            count: env.delivery_count,
        };
        match self.store.record(record) {
            Ok(ticket) => Some(ticket),
            Err(e) => {
                tracing::error!(error = %e, "the store refused a delivery count");
                None
            }
        }
    }

    /// Records `env` going back to this store after a delivery, if it is persistent.
    pub fn returned(&self, env: &Envelope) {
        if env.is_persistent() {
            self.fire(Record::DeliveryCount {
                store: self.key.clone(),
                id: env.seq,
                count: env.delivery_count,
            });
        }
    }

    /// Sends a record nobody waits for.
    pub fn fire(&self, record: Record) {
        fire(&self.store, record);
    }
}

/// Sends `record` to `store` without waiting for it; a refusal is logged.
pub(crate) fn fire(store: &Arc<dyn Store>, record: Record) {
    if let Err(e) = store.fire(record) {
        tracing::error!(error = %e, "the store refused a record");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Broker, BrokerConfig};
    use courier_api::{
        ConnectionFactory, ConsumerOptions, DeliveryMode, Destination, Message, SendOptions,
        SessionMode,
    };
    use parking_lot::Mutex;
    use std::collections::{BTreeMap, BTreeSet};
    use std::time::Duration;

    /// A store that keeps its records in memory, confirming each at once or, when `gated`,
    /// only once [`Fake::open_gate`] is called.
    #[derive(Default)]
    struct Fake {
        records: Mutex<Vec<Record>>,
        gated: bool,
        waiting: Mutex<Vec<Confirm>>,
    }

    impl Fake {
        fn open_gate(&self) {
            for confirm in self.waiting.lock().drain(..) {
                confirm.resolve(Ok(()));
            }
        }
    }

    impl Store for Fake {
        fn is_durable(&self) -> bool {
            true
        }

        fn record(&self, record: Record) -> Result<Ticket> {
            self.records.lock().push(record);
            if !self.gated {
                return Ok(Ticket::done());
            }
            let (ticket, confirm) = Ticket::pending();
            self.waiting.lock().push(confirm);
            Ok(ticket)
        }
    }

    /// A store whose disk is full.
    struct Full;

    impl Store for Full {
        fn is_durable(&self) -> bool {
            true
        }

        fn record(&self, _record: Record) -> Result<Ticket> {
            Err(Error::ResourceLimit("disk full".into()))
        }
    }

    /// Replays records as a journal would: the state they leave.
    fn replay(records: &[Record]) -> Recovered {
        let mut queues = BTreeSet::new();
        let mut subscriptions = BTreeMap::new();
        let mut messages: BTreeMap<(StoreKey, u64), RecoveredMessage> = BTreeMap::new();
        let (mut max_message_id, mut max_subscription_id) = (0, 0);
        let mut add = |messages: &mut BTreeMap<_, _>, m: &StoredMessage| {
            max_message_id = max_message_id.max(m.id);
            for store in &m.stores {
                let copy = RecoveredMessage {
                    store: store.clone(),
                    id: m.id,
                    delivery_count: 0,
                    bytes: m.bytes.clone(),
                };
                messages.insert((store.clone(), m.id), copy);
            }
        };
        for record in records {
            match record {
                Record::Message(m) => add(&mut messages, m),
                Record::Removed { store, id, .. } => {
                    messages.remove(&(store.clone(), *id));
                }
                Record::DeadLettered {
                    from,
                    id,
                    to,
                    new_id,
                } => {
                    let m = messages
                        .remove(&(from.clone(), *id))
                        .expect("known message");
                    let stored = StoredMessage {
                        id: *new_id,
                        stores: vec![to.clone()],
                        bytes: m.bytes,
                        read_back: false,
                    };
                    add(&mut messages, &stored);
                }
                Record::DeliveryCount { store, id, count } => {
                    messages
                        .get_mut(&(store.clone(), *id))
                        .expect("known message")
                        .delivery_count = *count;
                }
                Record::Commit { sends, acks } => {
                    for m in sends {
                        add(&mut messages, m);
                    }
                    for ack in acks {
                        messages.remove(ack);
                    }
                }
                Record::QueueCreated(name) => {
                    queues.insert(name.clone());
                }
                Record::QueueDeleted(name) => {
                    queues.remove(name);
                    messages.retain(|(s, _), _| *s != StoreKey::Queue(name.clone()));
                }
                Record::SubscriptionCreated(def) => {
                    max_subscription_id = max_subscription_id.max(def.id);
                    subscriptions.insert(def.id, def.clone());
                }
                Record::SubscriptionDeleted(id) => {
                    subscriptions.remove(id);
                    messages.retain(|(s, _), _| *s != StoreKey::Subscription(*id));
                }
            }
        }
        Recovered {
            queues: queues.into_iter().collect(),
            subscriptions: subscriptions.into_values().collect(),
            messages: messages.into_values().collect(),
            max_message_id,
            max_subscription_id,
        }
    }

    fn config() -> BrokerConfig {
        BrokerConfig {
            max_delivery_attempts: Some(2),
            ..BrokerConfig::default()
        }
    }

    fn mode(mode: DeliveryMode) -> SendOptions {
        SendOptions {
            delivery_mode: mode,
            ..SendOptions::default()
        }
    }

    const WAIT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn replayed_records_rebuild_queues_subscriptions_counts_and_ids() {
        let store = Arc::new(Fake::default());
        let broker = Broker::with_store(config(), store.clone(), Recovered::default()).unwrap();
        let factory = broker.factory();
        let connection = factory.create_connection().await.unwrap();
        connection.set_client_id("c").await.unwrap();
        connection.start().await.unwrap();
        let auto = connection
            .create_session(SessionMode::AutoAcknowledge)
            .await
            .unwrap();
        let (q, q2, dl, t) = (
            Destination::queue("q"),
            Destination::queue("q2"),
            Destination::queue("dl"),
            Destination::topic("t"),
        );
        // A durable subscription, inactive when the topic message arrives.
        let durable = auto
            .create_durable_consumer(&t, "d", ConsumerOptions::default())
            .await
            .unwrap();
        durable.close().await.unwrap();
        let producer = auto.create_producer(None).await.unwrap();
        for (body, to, m) in [
            ("p1", &q, DeliveryMode::Persistent),
            ("p2", &q, DeliveryMode::Persistent),
            ("np", &q, DeliveryMode::NonPersistent),
            ("p3", &q, DeliveryMode::Persistent),
            ("dead", &dl, DeliveryMode::Persistent),
            ("x", &q2, DeliveryMode::Persistent),
            ("t1", &t, DeliveryMode::Persistent),
        ] {
            producer
                .send_with(Some(to), &mut Message::text(body), &mode(m))
                .await
                .unwrap();
        }
        // p1 acknowledged; p2 delivered once and recovered; np consumed (never recorded).
        let client = connection
            .create_session(SessionMode::ClientAcknowledge)
            .await
            .unwrap();
        let consumer = client
            .create_consumer(&q, ConsumerOptions::default())
            .await
            .unwrap();
        let first = consumer.receive_timeout(WAIT).await.unwrap().unwrap();
        assert_eq!(first.body_text(), Some("p1"));
        client.acknowledge().await.unwrap();
        let second = consumer.receive_timeout(WAIT).await.unwrap().unwrap();
        assert_eq!(second.body_text(), Some("p2"));
        client.recover().await.unwrap();
        consumer.close().await.unwrap();
        // "dead" uses its two delivery attempts and moves to the dead-letter queue.
        let dl_consumer = client
            .create_consumer(&dl, ConsumerOptions::default())
            .await
            .unwrap();
        for _ in 0..2 {
            dl_consumer.receive_timeout(WAIT).await.unwrap().unwrap();
            client.recover().await.unwrap();
        }
        dl_consumer.close().await.unwrap();
        // A transaction sends tx1 and consumes x: one record.
        let tx = connection
            .create_session(SessionMode::Transacted)
            .await
            .unwrap();
        let tx_producer = tx.create_producer(Some(&q)).await.unwrap();
        tx_producer.send(&mut Message::text("tx1")).await.unwrap();
        let tx_consumer = tx
            .create_consumer(&q2, ConsumerOptions::default())
            .await
            .unwrap();
        let x = tx_consumer.receive_timeout(WAIT).await.unwrap().unwrap();
        assert_eq!(x.body_text(), Some("x"));
        tx.commit().await.unwrap();
        let commit = store.records.lock().last().cloned();
        assert!(
            matches!(&commit, Some(Record::Commit { sends, acks }) if sends.len() == 1 && acks.len() == 1),
            "{commit:?}"
        );
        connection.close().await.unwrap();

        let records = store.records.lock().clone();
        assert!(
            records.iter().all(|r| !format!("{r:?}").contains("np")),
            "a non-persistent message never reaches the store"
        );
        let recovered = replay(&records);
        let highest = recovered.max_message_id;
        assert!(highest > 0);

        // A fresh broker from the replay.
        let store2 = Arc::new(Fake::default());
        let broker2 = Broker::with_store(config(), store2.clone(), recovered).unwrap();
        assert_eq!(broker2.queue_depth("q"), Some(3), "p2, p3 and tx1");
        assert_eq!(broker2.queue_depth("q2"), Some(0));
        let dlq = broker2.config().dead_letter_queue.clone();
        assert_eq!(broker2.queue_depth(&dlq), Some(1));
        let connection = broker2.factory().create_connection().await.unwrap();
        connection.set_client_id("c").await.unwrap();
        connection.start().await.unwrap();
        let session = connection
            .create_session(SessionMode::AutoAcknowledge)
            .await
            .unwrap();
        let consumer = session
            .create_consumer(&q, ConsumerOptions::default())
            .await
            .unwrap();
        let p2 = consumer.receive_timeout(WAIT).await.unwrap().unwrap();
        assert_eq!(p2.body_text(), Some("p2"));
        assert!(p2.redelivered());
        assert_eq!(p2.delivery_count(), 2);
        for body in ["p3", "tx1"] {
            let m = consumer.receive_timeout(WAIT).await.unwrap().unwrap();
            assert_eq!(m.body_text(), Some(body));
            assert!(!m.redelivered());
        }
        let durable = session
            .create_durable_consumer(&t, "d", ConsumerOptions::default())
            .await
            .unwrap();
        let t1 = durable.receive_timeout(WAIT).await.unwrap().unwrap();
        assert_eq!(t1.body_text(), Some("t1"));

        // Ids go on after the largest recorded: a new message and a new subscription.
        session
            .create_producer(Some(&q))
            .await
            .unwrap()
            .send(&mut Message::text("new"))
            .await
            .unwrap();
        session
            .create_durable_consumer(&t, "e", ConsumerOptions::default())
            .await
            .unwrap();
        let new_records = store2.records.lock().clone();
        let new_id = new_records.iter().find_map(|r| match r {
            Record::Message(m) => Some(m.id),
            _ => None,
        });
        assert!(new_id.unwrap() > highest);
        let new_sub = new_records.iter().find_map(|r| match r {
            Record::SubscriptionCreated(def) => Some(def.id),
            _ => None,
        });
        assert!(new_sub.unwrap() > replay(&records).max_subscription_id);
    }

    #[tokio::test]
    async fn sends_and_commits_wait_for_their_tickets() {
        let store = Arc::new(Fake {
            gated: true,
            ..Fake::default()
        });
        let broker = Broker::with_store(config(), store.clone(), Recovered::default()).unwrap();
        let connection = broker.factory().create_connection().await.unwrap();
        let q = Destination::queue("q");
        // A persistent send is confirmed only once its record is durable.
        let session = connection
            .create_session(SessionMode::AutoAcknowledge)
            .await
            .unwrap();
        let producer = session.create_producer(Some(&q)).await.unwrap();
        let mut a = Message::text("a");
        let mut send = Box::pin(producer.send(&mut a));
        assert!(tokio::time::timeout(Duration::from_millis(50), &mut send)
            .await
            .is_err());
        store.open_gate();
        send.await.unwrap();
        // A non-persistent one never waits.
        producer
            .send_with(
                None,
                &mut Message::text("b"),
                &mode(DeliveryMode::NonPersistent),
            )
            .await
            .unwrap();
        assert_eq!(broker.queue_depth("q"), Some(2));
        // A commit's messages are invisible until its ticket resolves.
        let tx = connection
            .create_session(SessionMode::Transacted)
            .await
            .unwrap();
        tx.create_producer(Some(&q))
            .await
            .unwrap()
            .send(&mut Message::text("c"))
            .await
            .unwrap();
        let mut commit = Box::pin(tx.commit());
        assert!(tokio::time::timeout(Duration::from_millis(50), &mut commit)
            .await
            .is_err());
        assert_eq!(broker.queue_depth("q"), Some(2));
        store.open_gate();
        commit.await.unwrap();
        assert_eq!(broker.queue_depth("q"), Some(3));
    }

    #[tokio::test]
    async fn a_kept_delivery_waits_for_its_count_to_be_durable() {
        let store = Arc::new(Fake {
            gated: true,
            ..Fake::default()
        });
        let broker = Broker::with_store(config(), store.clone(), Recovered::default()).unwrap();
        let connection = broker.factory().create_connection().await.unwrap();
        connection.start().await.unwrap();
        let q = Destination::queue("q");
        let sender = connection
            .create_session(SessionMode::AutoAcknowledge)
            .await
            .unwrap();
        let producer = sender.create_producer(Some(&q)).await.unwrap();
        let mut a = Message::text("a");
        let mut send = Box::pin(producer.send(&mut a));
        assert!(tokio::time::timeout(Duration::from_millis(20), &mut send)
            .await
            .is_err());
        store.open_gate();
        send.await.unwrap();
        let session = connection
            .create_session(SessionMode::ClientAcknowledge)
            .await
            .unwrap();
        let consumer = session
            .create_consumer(&q, ConsumerOptions::default())
            .await
            .unwrap();
        // The count is not durable yet: the application must not see the message, or a
        // crash now would bring it back without `redelivered`.
        let waited = tokio::time::timeout(Duration::from_millis(50), consumer.receive()).await;
        assert!(
            waited.is_err(),
            "handed out before its delivery count was durable"
        );
        // The cancelled receive gave the message back; once the records are durable it
        // arrives, redelivered (its first delivery was counted).
        store.open_gate();
        let mut receive = Box::pin(consumer.receive());
        let message = loop {
            tokio::select! {
                got = &mut receive => break got.unwrap().unwrap(),
                _ = tokio::time::sleep(Duration::from_millis(5)) => store.open_gate(),
            }
        };
        assert_eq!(message.body_text(), Some("a"));
        assert!(message.redelivered());
        assert_eq!(message.delivery_count(), 2);
        let counted = store
            .records
            .lock()
            .iter()
            .filter(|r| matches!(r, Record::DeliveryCount { .. }))
            .count();
        assert!(counted >= 2, "each kept delivery records its count");
    }

    #[tokio::test]
    async fn a_store_refusing_a_record_fails_the_send_and_the_commit() {
        let broker = Broker::with_store(config(), Arc::new(Full), Recovered::default()).unwrap();
        let connection = broker.factory().create_connection().await.unwrap();
        let session = connection
            .create_session(SessionMode::AutoAcknowledge)
            .await
            .unwrap();
        let q = Destination::queue("q");
        // Creating the queue needs a record too, so resolving it fails.
        let err = session.create_producer(Some(&q)).await.err();
        assert!(matches!(err, Some(Error::ResourceLimit(_))), "{err:?}");
        let producer = session.create_producer(None).await.unwrap();
        let err = producer.send_to(&q, &mut Message::text("a")).await.err();
        assert!(matches!(err, Some(Error::ResourceLimit(_))), "{err:?}");
        // A temporary queue is never recorded, so a persistent send to it succeeds.
        let temporary = session.create_temporary_queue().await.unwrap();
        producer
            .send_to(&temporary, &mut Message::text("b"))
            .await
            .unwrap();
        let tx = connection
            .create_session(SessionMode::Transacted)
            .await
            .unwrap();
        let tx_producer = tx.create_producer(Some(&temporary)).await.unwrap();
        tx_producer.send(&mut Message::text("c")).await.unwrap();
        tx.commit().await.unwrap();
        connection.start().await.unwrap();
        let consumer = session
            .create_consumer(&temporary, ConsumerOptions::default())
            .await
            .unwrap();
        for body in ["b", "c"] {
            let m = consumer.receive_timeout(WAIT).await.unwrap().unwrap();
            assert_eq!(m.body_text(), Some(body));
        }
    }

    #[tokio::test]
    async fn expiry_drops_deletion_and_dead_letters_reach_the_store() {
        use crate::{DestinationPolicy, PolicyRule, WhenFull};
        let config = BrokerConfig {
            destination_policies: vec![PolicyRule::new(
                "small",
                DestinationPolicy {
                    max_depth: Some(1),
                    when_full: WhenFull::DropOldest,
                    ..DestinationPolicy::default()
                },
            )],
            ..config()
        };
        let store = Arc::new(Fake::default());
        let broker =
            Broker::with_store(config.clone(), store.clone(), Recovered::default()).unwrap();
        let connection = broker.factory().create_connection().await.unwrap();
        connection.set_client_id("c").await.unwrap();
        connection.start().await.unwrap();
        let session = connection
            .create_session(SessionMode::ClientAcknowledge)
            .await
            .unwrap();
        let producer = session.create_producer(None).await.unwrap();
        // Expiry: a message living 1 ms, reaped by the queue.
        let short = SendOptions {
            time_to_live: Duration::from_millis(1),
            ..SendOptions::default()
        };
        let expiring = Destination::queue("expiring");
        producer
            .send_with(Some(&expiring), &mut Message::text("e"), &short)
            .await
            .unwrap();
        // Drop-oldest: the second send to a one-message queue drops the first.
        let small = Destination::queue("small");
        for body in ["s1", "s2"] {
            producer
                .send_to(&small, &mut Message::text(body))
                .await
                .unwrap();
        }
        // Two durable subscriptions get one message; both copies are dead-lettered.
        let t = Destination::topic("t");
        let mut consumers = Vec::new();
        for name in ["a", "b"] {
            consumers.push(
                session
                    .create_durable_consumer(&t, name, ConsumerOptions::default())
                    .await
                    .unwrap(),
            );
        }
        producer.send_to(&t, &mut Message::text("t")).await.unwrap();
        for _ in 0..2 {
            for consumer in &consumers {
                consumer.receive_timeout(WAIT).await.unwrap().unwrap();
            }
            session.recover().await.unwrap();
        }
        for consumer in consumers {
            consumer.close().await.unwrap();
        }
        // Both copies are in the dead-letter queue, as distinct messages.
        let dlq = Destination::queue(broker.config().dead_letter_queue.as_str());
        let dead_letters = session
            .create_consumer(&dlq, ConsumerOptions::default())
            .await
            .unwrap();
        for _ in 0..2 {
            let m = dead_letters.receive_timeout(WAIT).await.unwrap().unwrap();
            assert_eq!(m.body_text(), Some("t"));
        }
        session.recover().await.unwrap();
        dead_letters.close().await.unwrap();
        session.unsubscribe("a").await.unwrap();
        // The reaper runs on its own; wait for its record.
        let expired = |records: &[Record]| {
            records.iter().any(|r| {
                matches!(r, Record::Removed { store: StoreKey::Queue(q), why: Removal::Expired, .. } if &**q == "expiring")
            })
        };
        let deadline = tokio::time::Instant::now() + WAIT;
        while !expired(&store.records.lock()) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let records = store.records.lock().clone();
        assert!(expired(&records), "{records:#?}");
        assert!(records.iter().any(|r| matches!(
            r,
            Record::Removed {
                why: Removal::Dropped,
                ..
            }
        )));
        let dead: Vec<u64> = records
            .iter()
            .filter_map(|r| match r {
                Record::DeadLettered { new_id, .. } => Some(*new_id),
                _ => None,
            })
            .collect();
        assert_eq!(dead.len(), 2);
        assert_ne!(dead[0], dead[1], "each dead letter has its own id");
        assert!(records
            .iter()
            .any(|r| matches!(r, Record::SubscriptionDeleted(_))));

        // The replay holds s2, both dead letters and subscription b (empty), nothing else.
        let broker2 =
            Broker::with_store(config, Arc::new(Fake::default()), replay(&records)).unwrap();
        assert_eq!(broker2.queue_depth("expiring"), Some(0));
        assert_eq!(broker2.queue_depth("small"), Some(1));
        let dlq = broker2.config().dead_letter_queue.clone();
        assert_eq!(broker2.queue_depth(&dlq), Some(2));
        let connection = broker2.factory().create_connection().await.unwrap();
        connection.set_client_id("c").await.unwrap();
        let session = connection
            .create_session(SessionMode::AutoAcknowledge)
            .await
            .unwrap();
        assert!(session.unsubscribe("a").await.is_err(), "a was deleted");
        session.unsubscribe("b").await.unwrap();
    }

    #[test]
    fn a_dropped_confirm_leaves_the_ticket_in_doubt() {
        let (ticket, confirm) = Ticket::pending();
        drop(confirm);
        let outcome = futures::executor::block_on(ticket);
        assert!(matches!(outcome, Err(Error::InDoubt { .. })), "{outcome:?}");
    }

    #[test]
    fn recovery_refuses_bad_state() {
        let message = |store| RecoveredMessage {
            store,
            id: 1,
            delivery_count: 0,
            bytes: Message::text("x").encode(),
        };
        let unknown = Recovered {
            messages: vec![message(StoreKey::Subscription(7))],
            ..Recovered::default()
        };
        let err = Broker::with_store(config(), Arc::new(Fake::default()), unknown).err();
        assert!(matches!(err, Some(Error::Decode(_))), "{err:?}");
        let mut garbage = message(StoreKey::Queue("q".into()));
        garbage.bytes = Bytes::from_static(&[1, 0xff, 0xff]);
        let garbage = Recovered {
            messages: vec![garbage],
            ..Recovered::default()
        };
        let err = Broker::with_store(config(), Arc::new(Fake::default()), garbage).err();
        assert!(matches!(err, Some(Error::Decode(_))), "{err:?}");
        let overflow = Recovered {
            max_message_id: u64::MAX,
            ..Recovered::default()
        };
        let err = Broker::with_store(config(), Arc::new(Fake::default()), overflow).err();
        assert!(matches!(err, Some(Error::Decode(_))), "{err:?}");
    }
}
