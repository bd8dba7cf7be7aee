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

use crate::config::{BrokerConfig, DeadLetter, WhenFull};
use crate::embedded::EmbeddedFactory;
use crate::limits::{Budget, Charge, Full, Memory, StorePolicy, ENVELOPE_OVERHEAD};
use crate::policy::policy_for;
use crate::queue::{Envelope, Origin, Queue};
use crate::subscription::{NoLocal, Subscription, SubscriptionKind, Topic};

/// Key of a named subscription: client id (if any) and name.
type SubscriptionKey = (Option<Arc<str>>, String);

/// Courier's broker, running in this process.
///
/// Cheap to clone: clones share one broker. Connect to it through [`Broker::factory`].
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

    /// A connection factory that talks to this broker in-process.
    pub fn factory(&self) -> EmbeddedFactory {
        EmbeddedFactory::from_broker(self.clone())
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
    durable: Mutex<HashMap<SubscriptionKey, Arc<Subscription>>>,
    shared: Mutex<HashMap<SubscriptionKey, Arc<Subscription>>>,
    client_ids: Mutex<HashSet<String>>,
    seq: AtomicU64,
    next_id: AtomicU64,
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
    /// One queue.
    One(Arc<Queue>, Charge),
    /// Several subscriptions of a topic.
    Many(Vec<(Arc<Queue>, Charge)>),
}

/// A message admitted under the limits of every store it goes to, ready to be stored.
pub(crate) struct Admitted {
    env: Envelope,
    targets: Targets,
}

impl Admitted {
    /// Stores the message; `now` is the time the send happens.
    fn store(self, core: &BrokerCore, now: u64) {
        let mut env = self.env;
        env.seq = core.seq.fetch_add(1, Ordering::Relaxed);
        match self.targets {
            Targets::None => {}
            Targets::One(queue, charge) => {
                env.charge = Some(charge);
                queue.enqueue(env, now);
            }
            Targets::Many(targets) => {
                for (queue, charge) in targets {
                    // `env` carries no charge yet: the clone charges nothing.
                    let mut copy = env.clone();
                    copy.charge = Some(charge);
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
    fn new(config: BrokerConfig) -> Self {
        BrokerCore {
            access: crate::access::Access::new(&config),
            memory: Arc::new(Memory::new(config.max_memory)),
            dropped: AtomicU64::new(0),
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
        let store_policy = if is_dlq {
            StorePolicy::dead_letter_queue(policy)
        } else {
            StorePolicy::of(policy)
        };
        Arc::new(QueueStore {
            queue: Arc::new(Queue::new(destination.clone())),
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
                let store = queues
                    .entry(destination.clone())
                    .or_insert_with(|| self.new_queue_store(destination, true));
                self.touch(&store.touched);
                Ok(store.clone())
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
    /// `cancel` ends the wait (the session closed).
    pub async fn publish(
        &self,
        route: &Route,
        message: Message,
        origin: &Arc<Origin>,
        now: u64,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let admitted = self.admit(route, message, origin, cancel).await?;
        admitted.store(self, now);
        Ok(())
    }

    /// Delivers a transaction's sends, all or none: each is admitted first (waiting for room
    /// under a blocking policy), then all are stored.
    pub async fn publish_all(
        &self,
        sends: Vec<(Route, Message, Arc<Origin>)>,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let mut admitted = Vec::with_capacity(sends.len());
        for (route, message, origin) in sends {
            admitted.push(self.admit(&route, message, &origin, cancel).await?);
        }
        let now = now_millis();
        for a in admitted {
            a.store(self, now);
        }
        Ok(())
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
        let bytes = message.size_hint().saturating_add(ENVELOPE_OVERHEAD);
        let env = Envelope {
            seq: 0,
            message: Arc::new(message),
            origin: origin.clone(),
            delivery_count: 0,
            charge: None,
        };
        let mut route = route.clone();
        loop {
            if !route.is_live() {
                route = self.route_again(&env.message)?;
            }
            let targets = match &route {
                Route::Queue(store) => {
                    let charge = self
                        .charge(&store.budget, &store.queue, bytes, cancel)
                        .await?;
                    if !store.is_live() {
                        // Deleted by housekeeping meanwhile: release and look it up again.
                        continue;
                    }
                    match charge {
                        Some(charge) => Targets::One(store.queue.clone(), charge),
                        None => Targets::None,
                    }
                }
                Route::Topic(topic) => {
                    let mut charges = Vec::new();
                    for sub in topic.accepting(&env) {
                        if let Some(charge) =
                            self.charge(&sub.budget, &sub.queue, bytes, cancel).await?
                        {
                            charges.push((sub.queue.clone(), charge));
                        }
                    }
                    if charges.is_empty() {
                        Targets::None
                    } else {
                        Targets::Many(charges)
                    }
                }
            };
            return Ok(Admitted { env, targets });
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
        let store_name = |name: &str| {
            format!(
                "subscription.{}.{}.{}",
                req.client_id.as_deref().unwrap_or(""),
                name,
                self.next_id()
            )
        };
        let new_sub = |store: String, selector: Option<Selector>| {
            let policy = if req.kind.is_durable() {
                StorePolicy::of(&topic.policy)
            } else {
                StorePolicy::non_durable(&topic.policy)
            };
            let sub = Arc::new(Subscription::new(
                req.kind,
                req.topic.clone(),
                selector,
                no_local.clone(),
                store,
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
            let store = store_name("");
            return new_sub(store, req.selector);
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
        }
        let sub = new_sub(store_name(name), req.selector)?;
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
        Ok(())
    }

    // ---- redelivery -------------------------------------------------------------------

    /// Puts a delivered, unacknowledged message back, or dead-letters it once it has used
    /// its delivery attempts.
    pub fn redeliver(&self, queue: &Queue, env: Envelope) {
        let dlq = Destination::queue(&self.config.dead_letter_queue);
        let limit = match env.charge.as_ref().map(|c| c.budget().policy.dead_letter) {
            None | Some(DeadLetter::Broker) => self.config.max_delivery_attempts,
            Some(DeadLetter::Never) => None,
            Some(DeadLetter::After(max)) => Some(max),
        };
        let exhausted = limit.is_some_and(|max| env.delivery_count >= max);
        // The dead-letter queue itself redelivers for ever: a dead letter is never dropped.
        if !exhausted || queue.destination() == &dlq {
            queue.requeue(env);
            return;
        }
        queue.acknowledged();
        tracing::debug!(message_id = ?env.message.message_id(), from = %queue.destination(), "dead-lettering");
        match self.queue_store(&dlq) {
            Ok(q) => {
                // The dead letter moves its charge from its queue to the dead-letter queue.
                let bytes = env.charge.as_ref().map_or_else(
                    || env.message.size_hint().saturating_add(ENVELOPE_OVERHEAD),
                    Charge::bytes,
                );
                let charge = Some(q.budget.force_charge(bytes));
                q.queue.enqueue(
                    Envelope {
                        delivery_count: 0,
                        charge,
                        ..env
                    },
                    now_millis(),
                )
            }
            Err(e) => tracing::error!(error = %e, "dead-letter queue unusable; message dropped"),
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
