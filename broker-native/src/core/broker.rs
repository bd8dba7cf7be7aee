//! The broker core: destinations, subscriptions, client ids and routing. Each queue and
//! topic has its own lock; the registries are read-mostly, so sends do not contend on a
//! global lock.

use courier_api::selector::Selector;
use courier_api::spi::now_millis;
use courier_api::{Destination, DestinationKind, Error, Message, Result};
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::limits::{Budget, Charge, Full, Memory, StorePolicy};
use super::paging;
use super::policy::policy_for;
use super::queue::{Envelope, Origin, Queue};
use super::session::PendingSend;
use super::store::{
    DurableSubscription, NoStore, Record, Recorder, Recovered, Removal, Store, StoreKey,
    StoredMessage, Ticket,
};
use super::subscription::{NoLocal, Subscription, SubscriptionKind, Topic};
use crate::config::{BrokerConfig, DeadLetter, WhenFull};

/// Key of a named subscription: client id (if any) and name.
pub(crate) type SubscriptionKey = (Option<Arc<str>>, String);

/// Courier's broker, running in this process.
///
/// Cheap to clone: clones share one broker. Connect to it through `Broker::factory` (the embedded adapter).
///
/// ```
/// use courier_broker::{Broker, BrokerConfig};
/// use courier_api::ConnectionFactory;
/// let broker = Broker::new(BrokerConfig::default());
/// let factory = broker.factory();
/// assert_eq!(factory.capabilities().backend, "embedded");
/// ```
#[derive(Clone)]
pub struct Broker {
    pub(crate) core: Arc<BrokerCore>,
}

impl Broker {
    /// Starts an in-memory broker. Its housekeeping (auto-delete of unused destinations)
    /// runs on the tokio runtime current here, or else on that of its first connection.
    pub fn new(config: BrokerConfig) -> Self {
        let core = Arc::new(BrokerCore::new(config));
        core.start_housekeeping();
        Broker { core }
    }

    /// Starts a broker whose durable events go to `store`, with the state the store
    /// replayed (see [`crate::store`]): its queues, durable subscriptions and messages, and
    /// id counters that go on after the largest ids recorded. Fails on a recovered message
    /// that does not decode or names a store the state does not hold.
    pub fn with_store(
        config: BrokerConfig,
        store: Arc<dyn Store>,
        recovered: Recovered,
    ) -> Result<Self> {
        let core = Arc::new(BrokerCore::with_store(config, store));
        core.restore(recovered)?;
        core.start_housekeeping();
        Ok(Broker { core })
    }

    /// Whether the broker's store keeps anything (a journal), so persistent messages
    /// survive a restart.
    pub fn is_durable(&self) -> bool {
        self.core.persists
    }

    /// Resolves once every record the store took before this call is settled (see
    /// [`crate::store::Store::synced`]).
    pub(crate) fn synced(&self) -> futures::future::BoxFuture<'static, ()> {
        self.core.store.synced()
    }

    /// The broker's settings.
    pub fn config(&self) -> &BrokerConfig {
        &self.core.config
    }

    /// Messages stored in the queue `name` (ready or delayed), if it exists.
    pub fn queue_depth(&self, name: &str) -> Option<usize> {
        self.core
            .queues
            .read()
            .get(&Destination::queue(name))
            .map(|q| q.queue.depth())
    }

    /// What the broker holds now: destinations, stored message copies and their bytes.
    pub fn stats(&self) -> BrokerStats {
        let core = &self.core;
        BrokerStats {
            queues: core.queues.read().len(),
            topics: core.topics.read().len(),
            stored_messages: core.memory.messages(),
            stored_bytes: core.memory.used(),
            max_memory: core.memory.max(),
            dropped_messages: core.dropped.load(Ordering::Relaxed),
        }
    }
}

/// A snapshot of what a [`Broker`] holds, from [`Broker::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerStats {
    /// Queues that exist now (plain, temporary and the dead-letter queue; subscription
    /// stores not included).
    pub queues: usize,
    /// Topics that exist now.
    pub topics: usize,
    /// Message copies held: stored, delayed, or delivered and not yet acknowledged (a
    /// message published to three subscriptions counts three times).
    pub stored_messages: usize,
    /// Bytes charged for them against [`BrokerConfig::max_memory`].
    pub stored_bytes: usize,
    /// The broker-wide memory limit.
    pub max_memory: usize,
    /// Messages dropped so far by [`WhenFull::DropOldest`] policies.
    pub dropped_messages: u64,
}

impl Default for Broker {
    fn default() -> Self {
        Broker::new(BrokerConfig::default())
    }
}

pub(crate) struct BrokerCore {
    pub config: BrokerConfig,
    /// Users and their grants, from `config`.
    pub(crate) access: crate::access::Access,
    pub(crate) queues: RwLock<HashMap<Destination, Arc<QueueStore>>>,
    pub(crate) topics: RwLock<HashMap<Destination, Arc<Topic>>>,
    temporary_owners: Mutex<HashMap<Destination, u64>>,
    pub(crate) durable: Mutex<HashMap<SubscriptionKey, Arc<Subscription>>>,
    pub(crate) shared: Mutex<HashMap<SubscriptionKey, Arc<Subscription>>>,
    client_ids: Mutex<HashSet<String>>,
    /// The next message id (arrival sequence number); stable across restarts.
    seq: AtomicU64,
    /// The next durable-subscription id; stable across restarts.
    subscription_ids: AtomicU64,
    next_id: AtomicU64,
    /// Where durable events go.
    pub(crate) store: Arc<dyn Store>,
    /// Connections open now, for the statistics.
    pub(crate) connections: super::stats::Gauge,
    /// Whether `store` keeps anything: when not, no record is made at all.
    persists: bool,
    /// Distinguishes this broker's message ids and temporary names from any other's.
    pub instance: String,
    /// The broker-wide memory account.
    memory: Arc<Memory>,
    /// Messages dropped by drop-oldest policies.
    dropped: AtomicU64,
    /// Housekeeping epoch: advanced by each sweep; lookups stamp it on what they touch.
    pub(crate) epoch: AtomicU64,
    /// Whether the housekeeping task runs.
    pub(crate) housekeeping: AtomicBool,
}

/// A queue with its account and housekeeping marks.
pub(crate) struct QueueStore {
    /// The messages.
    pub queue: Arc<Queue>,
    /// What they hold, under the queue's policy.
    pub budget: Arc<Budget>,
    /// Whether housekeeping may delete it once unused (plain queues made on demand).
    pub(crate) auto_delete: bool,
    /// Housekeeping epoch of its last lookup.
    pub(crate) touched: AtomicU64,
    /// Set by housekeeping while it decides whether to delete the queue: a send admitted
    /// meanwhile sees it and looks the queue up again.
    pub(crate) retiring: AtomicBool,
}

impl QueueStore {
    /// False once deleted or being deleted.
    fn is_live(&self) -> bool {
        !self.retiring.load(Ordering::SeqCst) && !self.queue.is_deleted()
    }
}

/// A resolved destination, kept by producers and transactions so a send does not look the
/// destination up again.
#[derive(Clone)]
pub(crate) enum Route {
    /// A queue (plain or temporary).
    Queue(Arc<QueueStore>),
    /// A topic (plain or temporary).
    Topic(Arc<Topic>),
}

impl Route {
    /// False once the destination was deleted: a temporary destination, or a plain one
    /// auto-deleted while unused (a send then looks it up again, making it afresh).
    pub fn is_live(&self) -> bool {
        match self {
            Route::Queue(q) => q.is_live(),
            Route::Topic(t) => !t.is_deleted(),
        }
    }
}

/// Where an admitted message goes, with the charges that reserve its room.
enum Targets {
    /// Nowhere (a topic without accepting subscriptions, or a copy dropped by policy).
    None,
    /// One queue; `true` when its copy is paged (stored as a stub, see [`super::paging`]).
    One(Arc<Queue>, Charge, bool),
    /// Several subscriptions of a topic, each with whether its copy is paged.
    Many(Vec<(Arc<Queue>, Charge, bool)>),
}

/// A message admitted under the limits of every store it goes to, ready to be stored.
pub(crate) struct Admitted {
    env: Envelope,
    targets: Targets,
    /// The stub stored for paged copies, made when paging applies to the message.
    stub: Option<Arc<Message>>,
}

impl Admitted {
    /// Stores the message; `now` is the time the send happens.
    /// The durable stores among its targets.
    fn durable_stores(&self) -> Vec<StoreKey> {
        let key = |q: &Arc<Queue>| q.recorder().map(|r| r.key().clone());
        match &self.targets {
            Targets::None => Vec::new(),
            Targets::One(queue, ..) => key(queue).into_iter().collect(),
            Targets::Many(targets) => targets.iter().filter_map(|(q, ..)| key(q)).collect(),
        }
    }

    /// Whether any copy is stored paged, to be read back from the store.
    fn any_paged(&self) -> bool {
        match &self.targets {
            Targets::None => false,
            Targets::One(_, _, paged) => *paged,
            Targets::Many(targets) => targets.iter().any(|(_, _, paged)| *paged),
        }
    }

    /// The record of this message for a durable store: `None` unless it is persistent and
    /// goes to at least one durable store. Its id must be assigned.
    pub(crate) fn stored(&self, core: &BrokerCore) -> Option<StoredMessage> {
        if !core.persists || !self.env.is_persistent() {
            return None;
        }
        let stores = self.durable_stores();
        (!stores.is_empty()).then(|| StoredMessage {
            id: self.env.seq,
            stores,
            bytes: self.env.message.encode(),
            read_back: self.any_paged(),
        })
    }

    /// Stores the message in its targets (it becomes deliverable); `now` is the time the
    /// send happens. Its id must be assigned.
    pub(crate) fn store(self, now: u64) {
        let mut env = self.env;
        let stub = self.stub;
        let page = |env: &mut Envelope, paged: bool| {
            if let (true, Some(stub)) = (paged, &stub) {
                env.message = stub.clone();
                env.paged = true;
            }
        };
        match self.targets {
            Targets::None => {}
            Targets::One(queue, charge, paged) => {
                env.charge = Some(charge);
                queue.counters.enqueued();
                page(&mut env, paged);
                queue.enqueue(env, now);
            }
            Targets::Many(targets) => {
                for (queue, charge, paged) in targets {
                    // `env` carries no charge yet: the clone charges nothing.
                    let mut copy = env.clone();
                    copy.charge = Some(charge);
                    queue.counters.enqueued();
                    page(&mut copy, paged);
                    queue.enqueue(copy, now);
                }
            }
        }
    }
}

/// What a consumer asks of [`BrokerCore::subscribe`].
pub(crate) struct SubscriptionRequest<'a> {
    pub kind: SubscriptionKind,
    pub topic: &'a Destination,
    pub name: Option<&'a str>,
    pub client_id: Option<Arc<str>>,
    pub selector: Option<Selector>,
    pub no_local: bool,
    pub connection: u64,
}

impl BrokerCore {
    pub(crate) fn new(config: BrokerConfig) -> Self {
        BrokerCore::with_store(config, Arc::new(NoStore))
    }

    /// A core whose durable events go to `store`.
    pub(crate) fn with_store(config: BrokerConfig, store: Arc<dyn Store>) -> Self {
        BrokerCore {
            access: crate::access::Access::new(&config),
            persists: store.is_durable(),
            store,
            subscription_ids: AtomicU64::new(1),
            memory: Arc::new(Memory::new(config.max_memory)),
            dropped: AtomicU64::new(0),
            connections: Default::default(),
            epoch: AtomicU64::new(0),
            housekeeping: AtomicBool::new(false),
            config,
            queues: RwLock::default(),
            topics: RwLock::default(),
            temporary_owners: Mutex::default(),
            durable: Mutex::default(),
            shared: Mutex::default(),
            client_ids: Mutex::default(),
            seq: AtomicU64::new(1),
            next_id: AtomicU64::new(1),
            instance: uuid::Uuid::new_v4().simple().to_string(),
        }
    }

    /// A fresh id for a connection, session or producer.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    // ---- client ids -------------------------------------------------------------------

    pub fn claim_client_id(&self, id: &str) -> Result<()> {
        if !self.client_ids.lock().insert(id.to_owned()) {
            return Err(Error::InvalidClientId(id.to_owned()));
        }
        Ok(())
    }

    pub fn release_client_id(&self, id: &str) {
        self.client_ids.lock().remove(id);
    }

    // ---- destinations -----------------------------------------------------------------

    /// The queue for `destination`; plain queues are created on first use, temporary ones
    /// must exist.
    pub fn queue(&self, destination: &Destination) -> Result<Arc<Queue>> {
        self.queue_store(destination).map(|s| s.queue.clone())
    }

    /// A new queue store for `destination` with the policy its name selects.
    fn new_queue_store(&self, destination: &Destination, auto_delete: bool) -> Arc<QueueStore> {
        let policy = policy_for(&self.config, destination.name());
        let is_dlq = destination.name() == self.config.dead_letter_queue;
        let recorder = (self.persists && !destination.is_temporary()).then(|| {
            Recorder::new(
                self.store.clone(),
                StoreKey::Queue(Arc::from(destination.name())),
            )
        });
        let store_policy = if is_dlq {
            StorePolicy::dead_letter_queue(policy)
        } else {
            StorePolicy::of(policy)
        };
        Arc::new(QueueStore {
            queue: Arc::new(Queue::recorded(destination.clone(), recorder)),
            budget: Budget::new(store_policy, self.memory.clone()),
            auto_delete: auto_delete && policy.auto_delete && !is_dlq,
            touched: AtomicU64::new(self.epoch.load(Ordering::Relaxed)),
            retiring: AtomicBool::new(false),
        })
    }

    /// Marks a lookup of a destination, so housekeeping keeps it.
    fn touch(&self, touched: &AtomicU64) {
        let epoch = self.epoch.load(Ordering::Relaxed);
        if touched.load(Ordering::Relaxed) != epoch {
            touched.store(epoch, Ordering::Relaxed);
        }
    }

    /// The queue store for `destination`, made on first use for plain queues.
    fn queue_store(&self, destination: &Destination) -> Result<Arc<QueueStore>> {
        if let Some(q) = self.queues.read().get(destination) {
            self.touch(&q.touched);
            return Ok(q.clone());
        }
        match destination.kind() {
            DestinationKind::Queue => {
                destination.validate()?;
                let mut queues = self.queues.write();
                if let Some(store) = queues.get(destination) {
                    self.touch(&store.touched);
                    return Ok(store.clone());
                }
                let store = self.new_queue_store(destination, true);
                if let Some(recorder) = store.queue.recorder() {
                    // Not waited for: the records of its messages come after this one.
                    let name = Arc::from(destination.name());
                    drop(recorder.store().record(Record::QueueCreated(name))?);
                }
                queues.insert(destination.clone(), store.clone());
                Ok(store)
            }
            DestinationKind::TemporaryQueue => Err(Error::invalid_destination(
                destination.to_string(),
                "temporary queue does not exist (deleted, or its connection closed)",
            )),
            _ => Err(Error::invalid_destination(
                destination.to_string(),
                "not a queue",
            )),
        }
    }

    /// The topic for `destination`, created on first use unless temporary.
    pub fn topic(&self, destination: &Destination) -> Result<Arc<Topic>> {
        if let Some(t) = self.topics.read().get(destination) {
            self.touch(&t.touched);
            return Ok(t.clone());
        }
        match destination.kind() {
            DestinationKind::Topic => {
                destination.validate()?;
                let mut topics = self.topics.write();
                let topic = topics
                    .entry(destination.clone())
                    .or_insert_with(|| self.new_topic(destination, true));
                self.touch(&topic.touched);
                Ok(topic.clone())
            }
            DestinationKind::TemporaryTopic => Err(Error::invalid_destination(
                destination.to_string(),
                "temporary topic does not exist (deleted, or its connection closed)",
            )),
            _ => Err(Error::invalid_destination(
                destination.to_string(),
                "not a topic",
            )),
        }
    }

    /// Where messages for `destination` go: its queue, or its topic's subscriptions. Plain
    /// destinations are created on first use; temporary ones must exist.
    pub fn route(&self, destination: &Destination) -> Result<Route> {
        if destination.is_queue() {
            self.queue_store(destination).map(Route::Queue)
        } else {
            self.topic(destination).map(Route::Topic)
        }
    }

    /// A new topic for `destination` with the policy its name selects.
    fn new_topic(&self, destination: &Destination, auto_delete: bool) -> Arc<Topic> {
        let policy = policy_for(&self.config, destination.name()).clone();
        let auto_delete = auto_delete && policy.auto_delete;
        Arc::new(Topic::new(
            policy,
            auto_delete,
            self.epoch.load(Ordering::Relaxed),
        ))
    }

    /// Delivers a stamped message along `route` (looked up again if it was auto-deleted);
    /// `now` is the time the send happens. Waits for room under a blocking policy;
    /// `cancel` ends the wait (the session closed). A store refusing the record fails it.
    ///
    /// The message is stored (and may be delivered) when this returns; the ticket resolves
    /// once its record is durable, when it is persistent and goes to a durable store, and at
    /// once otherwise. An awaited send awaits the ticket; a pipelined one hands it to its
    /// receipt, so many sends share one group-committed `fdatasync`.
    pub async fn publish(
        &self,
        route: &Route,
        message: Message,
        origin: &Arc<Origin>,
        now: u64,
        cancel: &CancellationToken,
    ) -> Result<Ticket> {
        let mut admitted = self.admit(route, message, origin, cancel).await?;
        admitted.env.seq = self.next_seq();
        if self.persists {
            if let Some(stored) = admitted.stored(self) {
                let ticket = self.store.record(Record::Message(stored))?;
                admitted.store(now);
                return Ok(ticket);
            }
        }
        admitted.store(now);
        Ok(Ticket::done())
    }

    /// Admits a transaction's sends, all or none (each waits for room under a blocking
    /// policy), and gives them their ids; the commit then records and stores them.
    pub async fn admit_all(
        &self,
        sends: Vec<PendingSend>,
        cancel: &CancellationToken,
    ) -> Result<Vec<Admitted>> {
        let mut admitted = Vec::with_capacity(sends.len());
        for send in sends {
            admitted.push(
                self.admit(&send.route, send.message, &send.origin, cancel)
                    .await?,
            );
        }
        for a in &mut admitted {
            a.env.seq = self.next_seq();
        }
        Ok(admitted)
    }

    /// Records a commit of the admitted `sends` acknowledging `acks` (queue and message):
    /// one record with the persistent ones that touch durable stores. `None` (nothing to
    /// wait for) when there are none.
    pub fn record_commit<'a>(
        &self,
        sends: &[Admitted],
        acks: impl Iterator<Item = (&'a Arc<Queue>, &'a Envelope)>,
    ) -> Option<Result<Ticket>> {
        if !self.persists {
            return None;
        }
        let sends: Vec<StoredMessage> = sends.iter().filter_map(|a| a.stored(self)).collect();
        let acks: Vec<(StoreKey, u64)> = acks
            .filter(|(_, env)| env.is_persistent())
            .filter_map(|(q, env)| q.recorder().map(|r| (r.key().clone(), env.seq)))
            .collect();
        if sends.is_empty() && acks.is_empty() {
            return None;
        }
        Some(self.store.record(Record::Commit { sends, acks }))
    }

    /// Tells the store that `env`, delivered from `queue`, was acknowledged.
    pub fn acknowledged(&self, queue: &Queue, env: &Envelope) {
        if let Some(recorder) = queue.recorder() {
            recorder.removed(env, Removal::Acknowledged);
        }
    }

    /// The next message id.
    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Reserves room for `message` in every store `route` leads to, under each store's
    /// policy. A route to a plain destination deleted while unused is looked up again; one
    /// to a deleted temporary destination fails.
    async fn admit(
        &self,
        route: &Route,
        message: Message,
        origin: &Arc<Origin>,
        cancel: &CancellationToken,
    ) -> Result<Admitted> {
        let bytes = paging::charge_of(&message);
        // Past the paging threshold, copies in durable stores keep a stub and are charged
        // its size; the body is in the send's record.
        let stub = (self.persists
            && message.delivery_mode() == courier_api::DeliveryMode::Persistent
            && self.memory.used() >= self.config.effective_paging_threshold())
        .then(|| Arc::new(paging::stub(&message)));
        let stub_bytes = stub.as_deref().map(paging::charge_of);
        let cost = |queue: &Queue| match stub_bytes {
            Some(stub_bytes) if queue.recorder().is_some() => (stub_bytes, true),
            _ => (bytes, false),
        };
        let env = Envelope {
            seq: 0,
            message: Arc::new(message),
            origin: origin.clone(),
            delivery_count: 0,
            charge: None,
            paged: false,
        };
        let mut route = route.clone();
        loop {
            if !route.is_live() {
                route = self.route_again(&env.message)?;
            }
            let targets = match &route {
                Route::Queue(store) => {
                    let (bytes, paged) = cost(&store.queue);
                    let charge = self
                        .charge(&store.budget, &store.queue, bytes, cancel)
                        .await?;
                    if !store.is_live() {
                        // Deleted by housekeeping meanwhile: release and look it up again.
                        continue;
                    }
                    match charge {
                        Some(charge) => Targets::One(store.queue.clone(), charge, paged),
                        None => Targets::None,
                    }
                }
                Route::Topic(topic) => {
                    let mut charges = Vec::new();
                    for sub in topic.accepting(&env) {
                        let (bytes, paged) = cost(&sub.queue);
                        if let Some(charge) =
                            self.charge(&sub.budget, &sub.queue, bytes, cancel).await?
                        {
                            charges.push((sub.queue.clone(), charge, paged));
                        }
                    }
                    if charges.is_empty() {
                        Targets::None
                    } else {
                        Targets::Many(charges)
                    }
                }
            };
            return Ok(Admitted {
                env,
                targets,
                stub: stub.clone(),
            });
        }
    }

    /// Drop-oldest: drops the oldest messages of `queue` until a copy of `bytes` fits on
    /// `budget`; `None` (the new copy is dropped) when nothing is left to drop.
    fn drop_for_room(
        &self,
        budget: &Arc<Budget>,
        queue: &Queue,
        bytes: usize,
        full: Full,
    ) -> Option<Charge> {
        if full != Full::Never {
            // Each round frees one message of this store; give up after a few if concurrent
            // senders keep taking the room.
            for _ in 0..16 {
                let Some(oldest) = queue.take_oldest() else {
                    break;
                };
                if let Some(recorder) = queue.recorder() {
                    recorder.removed(&oldest, Removal::Dropped);
                }
                drop(oldest);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                if let Ok(charge) = budget.try_charge(bytes) {
                    return Some(charge);
                }
            }
        }
        self.dropped.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// The route of a message whose route was deleted: plain destinations are looked up
    /// (made afresh); temporary ones are gone.
    fn route_again(&self, message: &Message) -> Result<Route> {
        let Some(destination) = message.destination() else {
            return Err(Error::illegal_state("a sent message has no destination"));
        };
        if destination.is_temporary() {
            return Err(Error::invalid_destination(
                destination.to_string(),
                "the temporary destination was deleted",
            ));
        }
        self.route(destination)
    }

    /// Charges one copy of `bytes` on `budget`, applying its policy when it does not fit:
    /// block (until room, the block timeout or `cancel`), fail, or drop the oldest message
    /// of `queue`. `None`: the copy itself is dropped (drop-oldest with nothing to drop).
    async fn charge(
        &self,
        budget: &Arc<Budget>,
        queue: &Queue,
        bytes: usize,
        cancel: &CancellationToken,
    ) -> Result<Option<Charge>> {
        let full = match budget.try_charge(bytes) {
            Ok(charge) => return Ok(Some(charge)),
            Err(full) => full,
        };
        let policy = &budget.policy;
        let (when_full, block_timeout) = match policy.when_full {
            WhenFull::DropOldestIfStalled(_) if budget.is_stalled() => {
                (WhenFull::DropOldest, policy.block_timeout)
            }
            WhenFull::DropOldestIfStalled(grace) => (WhenFull::Block, grace),
            other => (other, policy.block_timeout),
        };
        let refused = |full: Full| {
            let why = match full {
                Full::Destination => "the destination is full",
                Full::Broker => "the broker's memory limit is reached",
                Full::Never => {
                    "the message can never fit under its destination's or the broker's limits"
                }
            };
            let reason = format!("{why} (sending {bytes} bytes to {})", queue.destination());
            // Room may come later for a full destination or broker (retryable); a copy too
            // large for any limit never fits.
            match full {
                Full::Never => Error::ResourceLimit(reason),
                Full::Destination | Full::Broker => Error::FlowControl(reason),
            }
        };
        match when_full {
            WhenFull::DropOldest | WhenFull::DropOldestIfStalled(_) => {
                Ok(self.drop_for_room(budget, queue, bytes, full))
            }
            WhenFull::Fail => Err(refused(full)),
            WhenFull::Block if full == Full::Never => match policy.when_full {
                // A copy that can never fit a subscription drops rather than fail the publish.
                WhenFull::DropOldestIfStalled(_) => {
                    Ok(self.drop_for_room(budget, queue, bytes, full))
                }
                _ => Err(refused(full)),
            },
            WhenFull::Block => {
                let memory = budget.memory();
                let deadline = Instant::now().checked_add(block_timeout);
                let _waiting = memory.waiting();
                loop {
                    // Listen before retrying, so a release in between is not missed.
                    let room = memory.room.notified();
                    match budget.try_charge(bytes) {
                        Ok(charge) => return Ok(Some(charge)),
                        Err(Full::Never) => return Err(refused(Full::Never)),
                        Err(_) => {}
                    }
                    tokio::select! {
                        _ = room => {}
                        _ = cancel.cancelled() => {
                            return Err(Error::illegal_state("the session closed while a send waited for room"));
                        }
                        _ = sleep_until(deadline) => {
                            if let WhenFull::DropOldestIfStalled(_) = policy.when_full {
                                // No room within the grace: the consumers stalled.
                                budget.stall();
                                return Ok(self.drop_for_room(budget, queue, bytes, full));
                            }
                            return Err(Error::FlowControl(format!(
                                "no room after waiting {block_timeout:?}: {}",
                                refused(full)
                            )));
                        }
                    }
                }
            }
        }
    }

    /// Checks that `connection` may consume from `destination`: temporary destinations only
    /// by the connection that made them.
    pub fn check_consumer_allowed(&self, destination: &Destination, connection: u64) -> Result<()> {
        destination.validate()?;
        if destination.is_temporary() {
            match self.temporary_owners.lock().get(destination) {
                None => {
                    return Err(Error::invalid_destination(
                        destination.to_string(),
                        "temporary destination does not exist",
                    ))
                }
                Some(owner) if *owner != connection => return Err(Error::invalid_destination(
                    destination.to_string(),
                    "only the connection that created a temporary destination may consume from it",
                )),
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Makes a temporary queue or topic owned by `connection`.
    pub fn create_temporary(&self, kind: DestinationKind, connection: u64) -> Destination {
        let name = format!("{}.{}", self.instance, self.next_id());
        let destination = Destination::new(kind, name);
        self.temporary_owners
            .lock()
            .insert(destination.clone(), connection);
        if destination.is_queue() {
            let store = self.new_queue_store(&destination, false);
            self.queues.write().insert(destination.clone(), store);
        } else {
            let topic = self.new_topic(&destination, false);
            self.topics.write().insert(destination.clone(), topic);
        }
        destination
    }

    /// Deletes a temporary destination; `force` skips the active-consumer check (connection
    /// close).
    pub fn delete_temporary(
        &self,
        destination: &Destination,
        connection: u64,
        force: bool,
    ) -> Result<()> {
        let mut owners = self.temporary_owners.lock();
        match owners.get(destination) {
            Some(owner) if *owner == connection => {}
            Some(_) => {
                return Err(Error::illegal_state(
                    "only the connection that created a temporary destination may delete it",
                ))
            }
            None => {
                return Err(Error::invalid_destination(
                    destination.to_string(),
                    "not an existing temporary destination",
                ))
            }
        }
        if destination.is_queue() {
            let mut queues = self.queues.write();
            if let Some(q) = queues.get(destination) {
                if !force && q.queue.consumer_count() > 0 {
                    return Err(Error::illegal_state("temporary queue still has consumers"));
                }
                q.queue.delete();
            }
            queues.remove(destination);
        } else {
            let mut topics = self.topics.write();
            if let Some(t) = topics.get(destination) {
                if !force && t.subscription_count() > 0 {
                    return Err(Error::illegal_state("temporary topic still has consumers"));
                }
                t.delete();
            }
            topics.remove(destination);
        }
        owners.remove(destination);
        Ok(())
    }

    // ---- subscriptions ----------------------------------------------------------------

    /// Finds or makes the subscription a new consumer attaches to, and attaches it.
    pub fn subscribe(&self, req: SubscriptionRequest<'_>) -> Result<Arc<Subscription>> {
        let topic = self.topic(req.topic)?;
        let selector_text = req.selector.as_ref().map(|s| s.text().to_owned());
        if req.kind.is_shared() && req.no_local {
            return Err(Error::invalid_argument(
                "no-local is not available on shared subscriptions",
            ));
        }
        let no_local = match (req.no_local, req.kind) {
            (false, _) => None,
            (true, SubscriptionKind::Durable) => req.client_id.clone().map(NoLocal::ClientId),
            (true, _) => Some(NoLocal::Connection(req.connection)),
        };
        let new_sub = |name: &str, selector: Option<Selector>| {
            let client_id = req.client_id.as_deref().unwrap_or("");
            let (policy, recorder, store) = if req.kind.is_durable() {
                // Durable stores are named by an id that stays unique across restarts.
                let id = self.subscription_ids.fetch_add(1, Ordering::Relaxed);
                let recorder = self
                    .persists
                    .then(|| Recorder::new(self.store.clone(), StoreKey::Subscription(id)));
                if let Some(recorder) = &recorder {
                    let definition = DurableSubscription {
                        id,
                        topic: Arc::from(req.topic.name()),
                        client_id: req.client_id.clone(),
                        name: name.to_owned(),
                        selector: selector_text.clone(),
                        no_local: req.no_local,
                        shared: req.kind.is_shared(),
                    };
                    drop(
                        recorder
                            .store()
                            .record(Record::SubscriptionCreated(definition))?,
                    );
                }
                let store = format!("subscription.{client_id}.{name}.{id}");
                (StorePolicy::of(&topic.policy), recorder, store)
            } else {
                let store = format!("subscription.{client_id}.{name}.{}", self.next_id());
                (StorePolicy::non_durable(&topic.policy), None, store)
            };
            let sub = Arc::new(Subscription::new(
                req.kind,
                req.topic.clone(),
                selector,
                no_local.clone(),
                store,
                recorder,
                Budget::new(policy, self.memory.clone()),
            ));
            // A topic auto-deleted since the lookup is made afresh.
            let mut target = topic.clone();
            while !target.add(sub.clone()) {
                target = self.topic(req.topic)?;
            }
            sub.attach();
            Ok::<_, Error>(sub)
        };
        let Some(name) = req.name else {
            return new_sub("", req.selector);
        };
        check_subscription_name(name)?;
        if req.kind == SubscriptionKind::Durable && req.client_id.is_none() {
            return Err(Error::illegal_state(
                "an unshared durable subscription needs a client id on the connection",
            ));
        }
        let key = (req.client_id.clone(), name.to_owned());
        let map = if req.kind.is_durable() {
            &self.durable
        } else {
            &self.shared
        };
        let mut map = map.lock();
        if let Some(existing) = map.get(&key).cloned() {
            if existing.kind != req.kind {
                return Err(Error::illegal_state(format!(
                    "subscription {name:?} exists as a {} subscription",
                    if existing.kind.is_shared() {
                        "shared"
                    } else {
                        "unshared"
                    }
                )));
            }
            let same = existing.same_definition(req.topic, selector_text.as_deref(), req.no_local);
            if existing.active() > 0 {
                if !same {
                    return Err(Error::illegal_state(format!(
                        "subscription {name:?} is active with another topic, selector or no-local"
                    )));
                }
                if !existing.kind.is_shared() {
                    return Err(Error::illegal_state(format!(
                        "durable subscription {name:?} already has an active consumer"
                    )));
                }
            }
            if same {
                existing.attach();
                return Ok(existing);
            }
            // Inactive with another definition: unsubscribe and make it afresh (§6.11.1).
            self.topic(&existing.topic)?.remove(&existing);
            map.remove(&key);
            forget_subscription(&existing);
        }
        let sub = new_sub(name, req.selector)?;
        map.insert(key, sub.clone());
        Ok(sub)
    }

    /// Detaches a consumer; deletes non-durable subscriptions left without consumers.
    pub fn release(
        &self,
        sub: &Arc<Subscription>,
        client_id: Option<Arc<str>>,
        name: Option<&str>,
    ) {
        let left = sub.detach();
        if left > 0 || sub.kind.is_durable() {
            return;
        }
        if let Ok(topic) = self.topic(&sub.topic) {
            topic.remove(sub);
        } else {
            sub.queue.delete();
        }
        if let (SubscriptionKind::SharedNonDurable, Some(name)) = (sub.kind, name) {
            let mut shared = self.shared.lock();
            let key = (client_id, name.to_owned());
            if shared.get(&key).is_some_and(|s| Arc::ptr_eq(s, sub)) {
                shared.remove(&key);
            }
        }
    }

    /// The topic of the durable subscription `name` of `client_id`, if there is one.
    pub fn durable_topic(&self, client_id: Option<Arc<str>>, name: &str) -> Option<Destination> {
        let key = (client_id, name.to_owned());
        self.durable.lock().get(&key).map(|sub| sub.topic.clone())
    }

    /// Deletes the durable subscription `name` of `client_id`.
    pub fn unsubscribe(&self, client_id: Option<Arc<str>>, name: &str) -> Result<()> {
        let mut durable = self.durable.lock();
        let key = (client_id, name.to_owned());
        let Some(sub) = durable.get(&key).cloned() else {
            return Err(Error::invalid_destination(
                name,
                "no durable subscription with this name for this client id",
            ));
        };
        if sub.active() > 0 {
            return Err(Error::illegal_state(format!(
                "durable subscription {name:?} has an active consumer"
            )));
        }
        if sub.queue.unacked() > 0 {
            return Err(Error::illegal_state(format!(
                "durable subscription {name:?} has messages delivered but not acknowledged"
            )));
        }
        durable.remove(&key);
        match self.topic(&sub.topic) {
            Ok(topic) => topic.remove(&sub),
            Err(_) => sub.queue.delete(),
        }
        forget_subscription(&sub);
        Ok(())
    }

    // ---- redelivery -------------------------------------------------------------------

    /// Tells the store that message `id` of `from` moved to the dead-letter queue `to` as
    /// `dead`: one record when both are durable, an add when only the dead-letter queue is.
    fn record_dead_letter(&self, from: &Queue, to: &Queue, id: u64, dead: &Envelope) {
        let Some(to) = to.recorder() else { return };
        if !dead.is_persistent() {
            return;
        }
        let record = match from.recorder() {
            Some(from) => Record::DeadLettered {
                from: from.key().clone(),
                id,
                to: to.key().clone(),
                new_id: dead.seq,
            },
            None => Record::Message(StoredMessage {
                id: dead.seq,
                stores: vec![to.key().clone()],
                bytes: dead.message.encode(),
                read_back: false,
            }),
        };
        to.fire(record);
    }

    // ---- start-up ---------------------------------------------------------------------

    /// Rebuilds what a store replayed, on a core nobody uses yet, without recording it
    /// again: plain queues, durable subscriptions (inactive), the messages of each with
    /// their delivery counts, and the id counters after the largest ids seen.
    pub fn restore(&self, recovered: Recovered) -> Result<()> {
        let Recovered {
            queues,
            subscriptions,
            mut messages,
            max_message_id,
            max_subscription_id,
        } = recovered;
        let max_message = messages.iter().map(|m| m.id).fold(max_message_id, u64::max);
        let max_subscription = subscriptions
            .iter()
            .map(|s| s.id)
            .fold(max_subscription_id, u64::max);
        let after = |max: u64| {
            max.checked_add(1)
                .ok_or_else(|| Error::Decode("a recovered id is u64::MAX".into()))
        };
        self.seq.store(after(max_message)?, Ordering::Relaxed);
        self.subscription_ids
            .store(after(max_subscription)?, Ordering::Relaxed);

        let mut stores: HashMap<StoreKey, (Arc<Queue>, Arc<Budget>)> = HashMap::new();
        for name in queues {
            let store = self.restore_queue(&name)?;
            stores.insert(StoreKey::Queue(name), store);
        }
        for def in subscriptions {
            let sub = self.restore_subscription(&def)?;
            stores.insert(
                StoreKey::Subscription(def.id),
                (sub.queue.clone(), sub.budget.clone()),
            );
        }
        // In id order, so each store appends in arrival order.
        messages.sort_unstable_by_key(|m| m.id);
        let origin = Arc::new(Origin {
            connection: 0,
            client_id: None,
        });
        let now = now_millis();
        let threshold = self.config.effective_paging_threshold();
        for m in messages {
            let (queue, budget) = match (&m.store, stores.get(&m.store)) {
                (_, Some(store)) => store.clone(),
                (StoreKey::Queue(name), None) => {
                    let store = self.restore_queue(name)?;
                    stores.insert(m.store.clone(), store.clone());
                    store
                }
                (StoreKey::Subscription(id), None) => {
                    return Err(Error::Decode(format!(
                        "recovered message {} is in subscription store {id}, which does not exist",
                        m.id
                    )))
                }
            };
            let mut message = Message::decode(&m.bytes)?;
            drop(m.bytes);
            // Past the paging threshold, a replayed message keeps only its stub, like a sent one.
            let paged = self.memory.used() >= threshold;
            if paged {
                message = paging::stub(&message);
            }
            let bytes = paging::charge_of(&message);
            let env = Envelope {
                seq: m.id,
                delivery_count: m.delivery_count,
                message: Arc::new(message),
                origin: origin.clone(),
                charge: Some(budget.force_charge(bytes)),
                paged,
            };
            queue.enqueue(env, now);
        }
        Ok(())
    }

    /// Makes the plain queue `name` again, unrecorded.
    fn restore_queue(&self, name: &str) -> Result<(Arc<Queue>, Arc<Budget>)> {
        let destination = Destination::queue(name);
        destination.validate()?;
        let store = self
            .queues
            .write()
            .entry(destination.clone())
            .or_insert_with(|| self.new_queue_store(&destination, true))
            .clone();
        Ok((store.queue.clone(), store.budget.clone()))
    }

    /// Makes a durable subscription again, unrecorded and inactive.
    fn restore_subscription(&self, def: &DurableSubscription) -> Result<Arc<Subscription>> {
        let topic_name = Destination::topic(def.topic.as_ref());
        check_subscription_name(&def.name)?;
        let selector = def.selector.as_deref().map(Selector::parse).transpose()?;
        let kind = if def.shared {
            SubscriptionKind::SharedDurable
        } else {
            SubscriptionKind::Durable
        };
        let no_local = match (def.no_local, &def.client_id) {
            (true, Some(id)) => Some(NoLocal::ClientId(id.clone())),
            _ => None,
        };
        let recorder = self
            .persists
            .then(|| Recorder::new(self.store.clone(), StoreKey::Subscription(def.id)));
        let mut topic = self.topic(&topic_name)?;
        let store = format!(
            "subscription.{}.{}.{}",
            def.client_id.as_deref().unwrap_or(""),
            def.name,
            def.id
        );
        let sub = Arc::new(Subscription::new(
            kind,
            topic_name.clone(),
            selector,
            no_local,
            store,
            recorder,
            Budget::new(StorePolicy::of(&topic.policy), self.memory.clone()),
        ));
        while !topic.add(sub.clone()) {
            topic = self.topic(&topic_name)?;
        }
        let key = (def.client_id.clone(), def.name.clone());
        self.durable.lock().insert(key, sub.clone());
        Ok(sub)
    }

    /// Puts a delivered, unacknowledged message back, or dead-letters it once it has used
    /// its delivery attempts.
    pub fn redeliver(&self, queue: &Queue, mut env: Envelope) {
        let dlq = Destination::queue(&self.config.dead_letter_queue);
        let limit = match env.charge.as_ref().map(|c| c.budget().policy.dead_letter) {
            None | Some(DeadLetter::Broker) => self.config.max_delivery_attempts,
            Some(DeadLetter::Never) => None,
            Some(DeadLetter::After(max)) => Some(max),
        };
        let exhausted = limit.is_some_and(|max| env.delivery_count >= max);
        // The dead-letter queue itself redelivers for ever: a dead letter is never dropped.
        if !exhausted || queue.destination() == &dlq {
            if let Some(recorder) = queue.recorder() {
                recorder.returned(&env);
            }
            queue.requeue(env);
            return;
        }
        // A paged message goes to the dead-letter queue whole, under its new id.
        let was_paged = env.paged;
        if let Err(e) = paging::unpage(queue.recorder(), &mut env) {
            tracing::error!(error = %e, "a paged dead letter does not read back; kept in its queue");
            if let Some(recorder) = queue.recorder() {
                recorder.returned(&env);
            }
            queue.requeue(env);
            return;
        }
        queue.acknowledged();
        queue.counters.dead_lettered();
        tracing::debug!(message_id = ?env.message.message_id(), from = %queue.destination(), "dead-lettering");
        match self.queue_store(&dlq) {
            Ok(q) => {
                // The dead letter moves its charge from its queue to the dead-letter queue
                // (its whole size, when it was paged).
                let bytes = match env.charge.as_ref() {
                    Some(charge) if !was_paged => charge.bytes(),
                    _ => paging::charge_of(&env.message),
                };
                let charge = Some(q.budget.force_charge(bytes));
                // A new id in the dead-letter queue: copies of one topic message dead-lettered
                // from several subscriptions are distinct messages there.
                let dead = Envelope {
                    seq: self.next_seq(),
                    delivery_count: 0,
                    charge,
                    ..env
                };
                self.record_dead_letter(queue, &q.queue, env.seq, &dead);
                q.queue.counters.enqueued();
                q.queue.enqueue(dead, now_millis())
            }
            Err(e) => tracing::error!(error = %e, "dead-letter queue unusable; message dropped"),
        }
    }
}

/// Tells the store a durable subscription was deleted, when it is recorded.
fn forget_subscription(sub: &Subscription) {
    if let Some(recorder) = sub.queue.recorder() {
        if let StoreKey::Subscription(id) = recorder.key() {
            recorder.fire(Record::SubscriptionDeleted(*id));
        }
    }
}

/// Sleeps until `at`, or for ever when `None` (a block timeout too long to represent).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Subscription names: letters, digits, `_ . -`, up to 128 characters (§6.11.2 restrictions).
fn check_subscription_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.chars().count() <= 128
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_argument(format!(
            "subscription name {name:?} must be 1-128 letters, digits, '_', '.' or '-'"
        )))
    }
}
