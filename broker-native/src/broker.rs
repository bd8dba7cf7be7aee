//! The broker core: destinations, subscriptions, client ids and routing. Each queue and
//! topic has its own lock; the registries are read-mostly, so sends do not contend on a
//! global lock.

use courier_api::producer::now_millis;
use courier_api::selector::Selector;
use courier_api::{Destination, DestinationKind, Error, Message, Result};
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::config::BrokerConfig;
use crate::embedded::EmbeddedFactory;
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
    /// Starts an in-memory broker.
    pub fn new(config: BrokerConfig) -> Self {
        Broker {
            core: Arc::new(BrokerCore::new(config)),
        }
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
            .map(|q| q.depth())
    }
}

impl Default for Broker {
    fn default() -> Self {
        Broker::new(BrokerConfig::default())
    }
}

pub(crate) struct BrokerCore {
    pub config: BrokerConfig,
    queues: RwLock<HashMap<Destination, Arc<Queue>>>,
    topics: RwLock<HashMap<Destination, Arc<Topic>>>,
    temporary_owners: Mutex<HashMap<Destination, u64>>,
    durable: Mutex<HashMap<SubscriptionKey, Arc<Subscription>>>,
    shared: Mutex<HashMap<SubscriptionKey, Arc<Subscription>>>,
    client_ids: Mutex<HashSet<String>>,
    seq: AtomicU64,
    next_id: AtomicU64,
    /// Distinguishes this broker's message ids and temporary names from any other's.
    pub instance: String,
}

/// A resolved destination, kept by producers and transactions so a send does not look the
/// destination up again.
#[derive(Clone)]
pub(crate) enum Route {
    /// A queue (plain or temporary).
    Queue(Arc<Queue>),
    /// A topic (plain or temporary).
    Topic(Arc<Topic>),
}

impl Route {
    /// False once the destination was deleted (a temporary destination).
    pub fn is_live(&self) -> bool {
        match self {
            Route::Queue(q) => !q.is_deleted(),
            Route::Topic(t) => !t.is_deleted(),
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
        if let Some(q) = self.queues.read().get(destination) {
            return Ok(q.clone());
        }
        match destination.kind() {
            DestinationKind::Queue => {
                destination.validate()?;
                let mut queues = self.queues.write();
                Ok(queues
                    .entry(destination.clone())
                    .or_insert_with(|| Arc::new(Queue::new(destination.clone())))
                    .clone())
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
            return Ok(t.clone());
        }
        match destination.kind() {
            DestinationKind::Topic => {
                destination.validate()?;
                let mut topics = self.topics.write();
                Ok(topics
                    .entry(destination.clone())
                    .or_insert_with(|| Arc::new(Topic::new()))
                    .clone())
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
            self.queue(destination).map(Route::Queue)
        } else {
            self.topic(destination).map(Route::Topic)
        }
    }

    /// Delivers a stamped message along `route`; `now` is the time the send happens.
    pub fn publish(&self, route: &Route, message: Message, origin: &Arc<Origin>, now: u64) {
        let env = Envelope {
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            message: Arc::new(message),
            origin: origin.clone(),
            delivery_count: 0,
        };
        match route {
            Route::Queue(q) => q.enqueue(env, now),
            Route::Topic(t) => t.publish(env, now),
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
            self.queues.write().insert(
                destination.clone(),
                Arc::new(Queue::new(destination.clone())),
            );
        } else {
            self.topics
                .write()
                .insert(destination.clone(), Arc::new(Topic::new()));
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
                if !force && q.consumer_count() > 0 {
                    return Err(Error::illegal_state("temporary queue still has consumers"));
                }
                q.delete();
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
            let sub = Arc::new(Subscription::new(
                req.kind,
                req.topic.clone(),
                selector,
                no_local.clone(),
                store,
            ));
            topic.add(sub.clone());
            sub.attach();
            sub
        };
        let Some(name) = req.name else {
            let store = store_name("");
            return Ok(new_sub(store, req.selector));
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
        let sub = new_sub(store_name(name), req.selector);
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
        let exhausted = self
            .config
            .max_delivery_attempts
            .is_some_and(|max| env.delivery_count >= max);
        // The dead-letter queue itself redelivers for ever: a dead letter is never dropped.
        if !exhausted || queue.destination() == &dlq {
            queue.requeue(env);
            return;
        }
        queue.acknowledged();
        tracing::debug!(message_id = ?env.message.message_id(), from = %queue.destination(), "dead-lettering");
        match self.queue(&dlq) {
            Ok(q) => q.enqueue(
                Envelope {
                    delivery_count: 0,
                    ..env
                },
                now_millis(),
            ),
            Err(e) => tracing::error!(error = %e, "dead-letter queue unusable; message dropped"),
        }
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
