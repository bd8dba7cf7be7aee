//! Topics and their subscriptions. Each subscription stores its messages in a queue of its
//! own; publishing copies a message into every subscription whose selector and no-local
//! setting accept it (§4.2, §6.11).

use courier_api::selector::Selector;
use courier_api::Destination;
use parking_lot::RwLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use super::limits::Budget;
use super::queue::{Envelope, Origin, Queue};
use super::store::Recorder;
use crate::config::DestinationPolicy;

/// The four kinds of topic subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubscriptionKind {
    /// One consumer; lives with it.
    NonDurable,
    /// Named, many consumers; lives while it has one.
    SharedNonDurable,
    /// Named by client id + name; one consumer at a time; kept until unsubscribed.
    Durable,
    /// Named; many consumers; kept until unsubscribed.
    SharedDurable,
}

impl SubscriptionKind {
    /// True for the kinds that outlive their consumers.
    pub fn is_durable(self) -> bool {
        matches!(
            self,
            SubscriptionKind::Durable | SubscriptionKind::SharedDurable
        )
    }

    /// True for the kinds that allow several consumers.
    pub fn is_shared(self) -> bool {
        matches!(
            self,
            SubscriptionKind::SharedNonDurable | SubscriptionKind::SharedDurable
        )
    }
}

/// Whose messages a no-local subscription skips.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NoLocal {
    /// Messages sent by this connection.
    Connection(u64),
    /// Messages sent by any connection with this client id (durable subscriptions).
    ClientId(Arc<str>),
}

impl NoLocal {
    fn excludes(&self, origin: &Origin) -> bool {
        match self {
            NoLocal::Connection(id) => origin.connection == *id,
            NoLocal::ClientId(id) => origin.client_id.as_deref() == Some(&**id),
        }
    }
}

/// One subscription to a topic.
pub(crate) struct Subscription {
    /// Its kind.
    pub kind: SubscriptionKind,
    /// The topic it listens to.
    pub topic: Destination,
    /// Its selector, applied on publish.
    pub selector: Option<Selector>,
    /// Whose messages it skips.
    pub no_local: Option<NoLocal>,
    /// Where its messages wait.
    pub queue: Arc<Queue>,
    /// The account of what its store holds, under the topic's policy for this kind.
    pub budget: Arc<Budget>,
    active: AtomicUsize,
}

impl Subscription {
    /// A new subscription with an empty store.
    pub fn new(
        kind: SubscriptionKind,
        topic: Destination,
        selector: Option<Selector>,
        no_local: Option<NoLocal>,
        store_name: String,
        recorder: Option<Recorder>,
        budget: Arc<Budget>,
    ) -> Self {
        Subscription {
            kind,
            queue: Arc::new(Queue::recorded(Destination::queue(store_name), recorder)),
            budget,
            topic,
            selector,
            no_local,
            active: AtomicUsize::new(0),
        }
    }

    /// True when a message from `origin` belongs in this subscription.
    pub fn accepts(&self, env: &Envelope) -> bool {
        !self
            .no_local
            .as_ref()
            .is_some_and(|n| n.excludes(&env.origin))
            && self.selector.as_ref().is_none_or(|s| s.matches(env))
    }

    /// True when the subscription was made with the same topic, selector and no-local.
    pub fn same_definition(
        &self,
        topic: &Destination,
        selector: Option<&str>,
        no_local: bool,
    ) -> bool {
        self.topic == *topic
            && self.selector.as_ref().map(Selector::text) == selector
            && self.no_local.is_some() == no_local
    }

    /// Consumers attached now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Counts a consumer attaching.
    pub fn attach(&self) {
        self.active.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a consumer leaving; returns how many are left.
    pub fn detach(&self) -> usize {
        self.active.fetch_sub(1, Ordering::Relaxed) - 1
    }
}

/// A topic: the list of its subscriptions.
pub(crate) struct Topic {
    subscriptions: RwLock<Vec<Arc<Subscription>>>,
    deleted: std::sync::atomic::AtomicBool,
    /// The policy its subscriptions' stores follow.
    pub policy: DestinationPolicy,
    /// Whether housekeeping may delete it once unused (plain topics made on demand).
    pub auto_delete: bool,
    /// Housekeeping epoch of its last lookup.
    pub touched: AtomicU64,
}

impl Topic {
    /// A topic without subscriptions, under `policy`, looked up in housekeeping epoch
    /// `epoch`.
    pub fn new(policy: DestinationPolicy, auto_delete: bool, epoch: u64) -> Self {
        Topic {
            subscriptions: RwLock::new(Vec::new()),
            deleted: std::sync::atomic::AtomicBool::new(false),
            policy,
            auto_delete,
            touched: AtomicU64::new(epoch),
        }
    }

    /// The subscriptions that accept `env`.
    pub fn accepting(&self, env: &Envelope) -> Vec<Arc<Subscription>> {
        self.subscriptions
            .read()
            .iter()
            .filter(|sub| sub.accepts(env))
            .cloned()
            .collect()
    }

    /// Adds a subscription; `false` (not added) once the topic is deleted.
    #[must_use]
    pub fn add(&self, sub: Arc<Subscription>) -> bool {
        let mut subs = self.subscriptions.write();
        if self.is_deleted() {
            return false;
        }
        subs.push(sub);
        true
    }

    /// Deletes the topic if it has no subscription, atomically with [`Topic::add`].
    pub fn delete_if_unused(&self) -> bool {
        let subs = self.subscriptions.write();
        if !subs.is_empty() {
            return false;
        }
        self.deleted.store(true, Ordering::SeqCst);
        true
    }

    /// Removes a subscription and deletes its stored messages.
    pub fn remove(&self, sub: &Arc<Subscription>) {
        self.subscriptions.write().retain(|s| !Arc::ptr_eq(s, sub));
        sub.queue.delete();
    }

    /// Deletes a temporary topic: later sends fail, subscriptions are dropped.
    pub fn delete(&self) {
        self.deleted.store(true, Ordering::Relaxed);
        for sub in std::mem::take(&mut *self.subscriptions.write()) {
            sub.queue.delete();
        }
    }

    /// True once deleted.
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Relaxed)
    }

    /// Number of subscriptions.
    pub fn subscription_count(&self) -> usize {
        self.subscriptions.read().len()
    }
}
