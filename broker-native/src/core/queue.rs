//! A queue's message store: ready messages by priority then arrival, delayed messages by due
//! time, the consumers waiting on it (see [`super::waiters`]), the index that lets selector
//! consumers find their next message without scanning, and the expiry index its reaper
//! works from (see [`super::expiry`]). Topic subscriptions are queues too.

use courier_api::selector::{Selector, SelectorSource, SelectorValue};
use courier_api::{Destination, Message};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

pub(crate) use super::envelope::{Envelope, LazyNow, Origin};
use super::envelope::{OrderKey, DELIVERY_COUNT};
use super::expiry::{ExpiryIndex, ReaperState, ReaperWake, REAP_BATCH};
use super::ready::Ready;
use super::store::{Recorder, Removal};
pub(crate) use super::waiters::ConsumerSlot;
use super::waiters::{Offer, Waiters};

/// Most indexes a queue keeps; beyond it, unused ones make room.
const MAX_INDEXES: usize = 8;

/// A value as the index keys it. Numbers are keyed by their `f64` value so that `5` and
/// `5.0` share a bucket, as they compare equal in selectors; rare collisions between large
/// integers only cost a selector check, never a missed message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum IndexKey {
    Bool(bool),
    Number(u64),
    String(Arc<str>),
}

impl IndexKey {
    /// The key of a selector value; `None` for NaN, which equals nothing.
    pub(crate) fn of(value: &SelectorValue) -> Option<IndexKey> {
        let number = |f: f64| {
            let f = if f == 0.0 { 0.0 } else { f };
            (!f.is_nan()).then(|| IndexKey::Number(f.to_bits()))
        };
        match value {
            SelectorValue::Bool(b) => Some(IndexKey::Bool(*b)),
            SelectorValue::Long(n) => number(*n as f64),
            SelectorValue::Double(f) => number(*f),
            SelectorValue::String(s) => Some(IndexKey::String(s.clone())),
        }
    }
}

/// How a consumer's selector uses the index: one identifier and the values it must equal.
#[derive(Debug)]
pub(crate) struct IndexPlan {
    /// The identifier the selector requires to equal one of `keys`.
    pub(crate) identifier: Arc<str>,
    /// The values it may equal.
    pub(crate) keys: Vec<IndexKey>,
}

impl IndexPlan {
    /// Picks the most selective equality condition the selector requires, if any.
    pub(crate) fn for_selector(selector: &Selector) -> Option<IndexPlan> {
        selector
            .required_equalities()
            .into_iter()
            .filter(|(ident, _)| ident != DELIVERY_COUNT)
            .filter_map(|(ident, values)| {
                // A set to drop repeated values: an `IN` list may hold 100 000 of them.
                let mut seen = HashSet::with_capacity(values.len());
                let mut keys: Vec<IndexKey> = Vec::with_capacity(values.len());
                for value in &values {
                    let key = IndexKey::of(value)?;
                    if seen.insert(key.clone()) {
                        keys.push(key);
                    }
                }
                Some(IndexPlan {
                    identifier: Arc::from(ident),
                    keys,
                })
            })
            .min_by_key(|plan| plan.keys.len())
    }
}

/// What a browser looks for: its selector and the index plan that serves it.
#[derive(Debug)]
pub(crate) struct BrowseFilter {
    selector: Option<Selector>,
    plan: Option<IndexPlan>,
}

impl BrowseFilter {
    /// A filter for this selector.
    pub fn new(selector: Option<Selector>) -> Self {
        let plan = selector.as_ref().and_then(IndexPlan::for_selector);
        BrowseFilter { selector, plan }
    }

    /// The selector's text.
    pub fn selector_text(&self) -> Option<&str> {
        self.selector.as_ref().map(Selector::text)
    }
}

/// The result of [`Queue::take`].
// Returned by value once per receive; boxing the envelope would add an allocation instead.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Take {
    /// A message for the consumer.
    Message(Envelope),
    /// Nothing to take now; the earliest delivery time of a delayed message, if any.
    Empty { next_due: Option<u64> },
}

/// Ready messages of one identifier, bucketed by value, in delivery order.
#[derive(Default)]
struct IdentifierIndex {
    users: usize,
    buckets: HashMap<IndexKey, BTreeSet<OrderKey>>,
}

impl IdentifierIndex {
    fn insert(&mut self, identifier: &str, env: &Envelope) {
        if let Some(key) = env
            .selector_value(identifier)
            .as_ref()
            .and_then(IndexKey::of)
        {
            self.buckets.entry(key).or_default().insert(env.key());
        }
    }

    fn remove(&mut self, identifier: &str, env: &Envelope) {
        if let Some(key) = env
            .selector_value(identifier)
            .as_ref()
            .and_then(IndexKey::of)
        {
            if let Some(bucket) = self.buckets.get_mut(&key) {
                bucket.remove(&env.key());
                if bucket.is_empty() {
                    self.buckets.remove(&key);
                    // Give memory back as the queue drains (halving at a quarter: amortised).
                    let capacity = self.buckets.capacity();
                    if capacity > 64 && self.buckets.len() * 4 < capacity {
                        self.buckets.shrink_to(self.buckets.len() * 2);
                    }
                }
            }
        }
    }
}

/// A queue's contents and waiting consumers, under the queue lock.
#[derive(Default)]
pub(crate) struct QueueState {
    ready: Ready,
    /// Ready messages that expire, by expiration.
    pub(crate) expiry: ExpiryIndex,
    /// The queue's reaper task, if one runs.
    pub(crate) reaper: ReaperState,
    delayed: BTreeMap<(u64, u64), Envelope>,
    /// Registered consumers, by address.
    slots: HashMap<usize, Arc<ConsumerSlot>>,
    /// The consumers waiting for a message.
    waiters: Waiters,
    /// Indexes by identifier. An index outlives its last consumer (selector consumers come
    /// and go, e.g. per tuple-space template) until room is needed for another.
    index: HashMap<Arc<str>, IdentifierIndex>,
    /// How often consumers asked for an identifier that has no index yet.
    asked: HashMap<Arc<str>, u32>,
    /// Hears of the persistent messages expiring here, when the queue is durable.
    recorder: Option<Recorder>,
}

impl QueueState {
    fn insert_ready(&mut self, env: Envelope) {
        for (identifier, idx) in self.index.iter_mut() {
            idx.insert(identifier, &env);
        }
        self.expiry.insert(&env);
        self.ready.insert(env);
    }

    fn remove_ready(&mut self, key: &OrderKey) -> Option<Envelope> {
        let env = self.ready.remove(key)?;
        for (identifier, idx) in self.index.iter_mut() {
            idx.remove(identifier, &env);
        }
        self.expiry.remove(&env);
        Some(env)
    }

    /// Drops up to `max` ready messages expired at `now`; returns how many.
    pub(crate) fn drop_expired(&mut self, now: u64, max: usize) -> usize {
        let expired = self.expiry.expired(now, max);
        for key in &expired {
            self.remove_expired(key);
        }
        expired.len()
    }

    /// Removes the expired ready message at `key`, telling the store.
    fn remove_expired(&mut self, key: &OrderKey) {
        if let Some(env) = self.remove_ready(key) {
            if let Some(recorder) = &self.recorder {
                recorder.removed(&env, Removal::Expired);
            }
        }
    }

    /// Moves delayed messages that are due to the ready store, offering each to the waiting
    /// consumers like an arrival.
    fn promote_due(&mut self, now: &LazyNow) {
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now.get() {
                break;
            }
            let env = entry.remove();
            self.arrive(env);
        }
    }

    /// Counts a take by `slot` and makes it a user of the index its selector's plan needs,
    /// building the index when it does not exist yet — but only once the identifier proves
    /// worth it (a second take by this consumer, or a second consumer selecting on it), so a
    /// one-off consumer (take one entry by id) scans instead of indexing the whole queue.
    fn use_index(&mut self, slot: &ConsumerSlot) {
        let takes = slot.takes.fetch_add(1, Ordering::Relaxed);
        let Some(plan) = &slot.plan else { return };
        if slot.indexed.load(Ordering::Relaxed) {
            return;
        }
        if !self.index.contains_key(&plan.identifier) {
            let asked = self.asked.entry(plan.identifier.clone()).or_insert(0);
            *asked += 1;
            if takes == 0 && *asked < 2 {
                return;
            }
            if self.index.len() >= MAX_INDEXES {
                // Make room by dropping an index no consumer uses now.
                let idle = self
                    .index
                    .iter()
                    .find(|(_, idx)| idx.users == 0)
                    .map(|(identifier, _)| identifier.clone());
                if let Some(identifier) = idle {
                    self.index.remove(&identifier);
                }
            }
        }
        let ready = &self.ready;
        let idx = self
            .index
            .entry(plan.identifier.clone())
            .or_insert_with(|| {
                let mut idx = IdentifierIndex::default();
                for env in ready.iter() {
                    idx.insert(&plan.identifier, env);
                }
                idx
            });
        idx.users += 1;
        slot.indexed.store(true, Ordering::Relaxed);
    }

    /// Adds a ready message and wakes a waiting consumer for it.
    fn arrive(&mut self, env: Envelope) {
        let offer = Offer {
            key: env.key(),
            from: 0,
            bound: self.waiters.arrival_bound(),
        };
        self.insert_ready(env);
        self.offer(offer);
    }

    /// Wakes the longest-waiting consumer registered before `offer.bound` that may take the
    /// offered message, if it is still ready. See [`super::waiters`].
    fn offer(&mut self, offer: Offer) {
        let Some(env) = self.ready.get(&offer.key) else {
            return;
        };
        if let Some(slot) = self.waiters.choose(env, offer) {
            slot.notify.notify_one();
        }
    }

    /// Passes on the offers a consumer leaves without taking (all but `taken`).
    fn pass_on(&mut self, offers: Vec<Offer>, taken: Option<OrderKey>) {
        for offer in offers {
            if Some(offer.key) != taken {
                self.offer(offer);
            }
        }
    }

    /// Wakes every waiting consumer without deregistering them, so each looks again (a
    /// delayed message became due earlier than they planned to wake).
    fn wake_all(&self) {
        for slot in self.waiters.all() {
            slot.notify.notify_one();
        }
    }

    /// The first ready message `slot` accepts, found through the index when the slot's
    /// selector has an indexed equality, by a scan otherwise. Expired messages met on the way
    /// are collected in `expired`.
    fn find(
        &self,
        slot: &ConsumerSlot,
        now: &LazyNow,
        expired: &mut Vec<OrderKey>,
    ) -> Option<OrderKey> {
        let mut accept = |env: &Envelope| {
            if env.expired(now) {
                expired.push(env.key());
                false
            } else {
                slot.accepts(env)
            }
        };
        match self.first_indexed(slot.plan.as_ref(), None, &mut accept) {
            Some(found) => found,
            None => self.ready.iter().find(|env| accept(env)).map(Envelope::key),
        }
    }

    /// The first ready message after `after` that `accept` takes, looked up in the index
    /// that serves `plan`: each bucket is in delivery order, so the first acceptable message
    /// of each bucket is a candidate and the earliest candidate wins. `None` when no index
    /// serves the plan (the caller scans instead).
    fn first_indexed(
        &self,
        plan: Option<&IndexPlan>,
        after: Option<OrderKey>,
        mut accept: impl FnMut(&Envelope) -> bool,
    ) -> Option<Option<OrderKey>> {
        let plan = plan?;
        let idx = self.index.get(&plan.identifier)?;
        let from = match after {
            Some(key) => Bound::Excluded(key),
            None => Bound::Unbounded,
        };
        let found = plan
            .keys
            .iter()
            .filter_map(|k| idx.buckets.get(k))
            .filter_map(|bucket| {
                bucket
                    .range((from, Bound::Unbounded))
                    .find(|key| self.ready.get(key).is_some_and(&mut accept))
            })
            .min()
            .copied();
        Some(found)
    }
}

/// A queue, or the store of one topic subscription.
pub(crate) struct Queue {
    destination: Destination,
    /// Shared with the reaper task, which holds it weakly.
    state: Arc<Mutex<QueueState>>,
    reaper_wake: ReaperWake,
    unacked: AtomicUsize,
    deleted: AtomicBool,
    /// Hears of the persistent messages leaving it, when the queue is durable.
    recorder: Option<Recorder>,
    /// Messages in and out, for the broker's statistics.
    pub(crate) counters: super::stats::QueueCounters,
}

impl Queue {
    /// An empty queue whose contents no store hears of.
    #[cfg(test)]
    pub fn new(destination: Destination) -> Self {
        Queue::recorded(destination, None)
    }

    /// An empty queue; `recorder`, if any, hears of its persistent messages expiring.
    pub fn recorded(destination: Destination, recorder: Option<Recorder>) -> Self {
        let state = QueueState {
            recorder: recorder.clone(),
            ..QueueState::default()
        };
        Queue {
            destination,
            state: Arc::new(Mutex::new(state)),
            reaper_wake: ReaperWake::default(),
            unacked: AtomicUsize::new(0),
            deleted: AtomicBool::new(false),
            recorder,
            counters: Default::default(),
        }
    }

    /// The store's handle on this queue, when it is durable.
    pub fn recorder(&self) -> Option<&Recorder> {
        self.recorder.as_ref()
    }

    /// The destination this queue serves.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// Adds a message: ready at once, or held until its delivery time.
    pub fn enqueue(&self, env: Envelope, now: u64) {
        if self.is_deleted() {
            return;
        }
        let mut st = self.state.lock();
        let due = env.due_at();
        if due > now {
            let earliest = st.delayed.first_key_value().is_none_or(|(k, _)| due < k.0);
            st.delayed.insert((due, env.seq), env);
            if earliest {
                // Waiters recompute how long to sleep.
                st.wake_all();
            }
        } else {
            st.arrive(env);
            super::expiry::schedule(&mut st, &self.state, &self.reaper_wake);
        }
    }

    /// Puts a delivered message back (recover, rollback, close), at its original place.
    pub fn requeue(&self, env: Envelope) {
        self.unacked.fetch_sub(1, Ordering::Relaxed);
        self.put_back(env);
    }

    /// Puts a taken message back at its original place without counting it as delivered.
    pub fn put_back(&self, env: Envelope) {
        if self.is_deleted() {
            return;
        }
        let mut st = self.state.lock();
        st.arrive(env);
        super::expiry::schedule(&mut st, &self.state, &self.reaper_wake);
    }

    /// Takes the first deliverable message `slot` accepts, dropping expired ones on the way.
    /// When there is none and the consumer `will_wait`, registers the slot as waiting so the
    /// next matching arrival wakes it; it must then call [`Queue::stop_waiting`] if it
    /// leaves without a message. A message the slot was woken for and did not take is
    /// offered to the next waiting consumer.
    pub fn take(&self, slot: &Arc<ConsumerSlot>, will_wait: bool) -> Take {
        let now = LazyNow::new();
        let mut st = self.state.lock();
        // Expired messages go in bounded batches, letting others take the lock in between,
        // so no receive holds it long for an expired backlog the reaper has not reached.
        while st.expiry.next().is_some_and(|at| at <= now.get())
            && st.drop_expired(now.get(), REAP_BATCH) == REAP_BATCH
        {
            drop(st);
            st = self.state.lock();
        }
        st.promote_due(&now);
        super::expiry::schedule(&mut st, &self.state, &self.reaper_wake);
        let offers = slot.take_offers();
        let taken = if will_wait && slot.is_waiting() {
            // Still on the wait list (its selector is costly): it has seen every other ready
            // message, so only the offered ones are new to it. They are checked without the
            // lock, so senders are not held up by the evaluation.
            let offered: Vec<(Offer, Envelope)> = offers
                .into_iter()
                .filter_map(|o| st.ready.get(&o.key).map(|env| (o, env.clone())))
                .collect();
            drop(st);
            let accepted: Vec<bool> = offered
                .iter()
                .map(|(_, env)| !env.expired(&now) && slot.accepts(env))
                .collect();
            st = self.state.lock();
            let mut taken = None;
            for ((offer, _), accepted) in offered.into_iter().zip(accepted) {
                if accepted && taken.is_none() {
                    taken = st.remove_ready(&offer.key);
                    if taken.is_some() {
                        st.waiters.deregister(slot);
                        continue;
                    }
                }
                // Declined, gone, or not needed: the next candidate after it may want it.
                st.offer(offer);
            }
            taken
        } else {
            st.waiters.deregister(slot);
            st.use_index(slot);
            let mut expired = Vec::new();
            let found = st.find(slot, &now, &mut expired);
            for key in &expired {
                st.remove_expired(key);
            }
            let taken = found.and_then(|key| st.remove_ready(&key));
            if taken.is_none() && will_wait {
                st.waiters.register(slot);
            }
            st.pass_on(offers, taken.as_ref().map(Envelope::key));
            taken
        };
        match taken {
            Some(env) => Take::Message(env),
            None => Take::Empty {
                next_due: st.delayed.first_key_value().map(|(k, _)| k.0),
            },
        }
    }

    /// The first deliverable message after `after` that `filter` accepts, for a browser:
    /// found through the index when one serves the filter's selector, by a scan otherwise.
    /// A paged message is read back from the store after the lock is let go; one that no
    /// longer reads back (consumed meanwhile) is passed over.
    pub fn browse_next(
        &self,
        filter: &BrowseFilter,
        mut after: Option<OrderKey>,
    ) -> Option<(OrderKey, Message)> {
        loop {
            let (key, env) = self.browse_candidate(filter, after)?;
            match super::paging::read_back(self.recorder.as_ref(), &env) {
                Ok(message) => return Some((key, Message::clone(&message))),
                Err(e) => {
                    tracing::debug!(error = %e, "a paged message browsed does not read back");
                    after = Some(key);
                }
            }
        }
    }

    /// The next message a browser sees, as stored (a stub when paged).
    fn browse_candidate(
        &self,
        filter: &BrowseFilter,
        after: Option<OrderKey>,
    ) -> Option<(OrderKey, Envelope)> {
        let now = LazyNow::new();
        let mut st = self.state.lock();
        st.promote_due(&now);
        let visible = |env: &Envelope| {
            !env.expired(&now) && filter.selector.as_ref().is_none_or(|s| s.matches(env))
        };
        let found = match st.first_indexed(filter.plan.as_ref(), after, visible) {
            Some(found) => found,
            None => st
                .ready
                .iter_after(after)
                .find(|env| visible(env))
                .map(Envelope::key),
        };
        let env = st.ready.get(&found?)?;
        let copy = Envelope {
            seq: env.seq,
            delivery_count: env.delivery_count,
            message: env.message.clone(),
            origin: env.origin.clone(),
            charge: None,
            paged: env.paged,
        };
        Some((env.key(), copy))
    }

    /// Takes out the oldest stored message (ready first, by arrival; else the earliest
    /// delayed one) to make room under a drop-oldest policy. `None` when nothing is stored
    /// (all delivered and unacknowledged). The caller drops it outside the queue lock.
    pub fn take_oldest(&self) -> Option<Envelope> {
        let mut st = self.state.lock();
        // The first message of each priority lane (or of a lower one): the oldest is among them.
        let oldest = (0..=9u8)
            .filter_map(|p| {
                st.ready
                    .iter_after(Some((std::cmp::Reverse(p), 0)))
                    .next()
                    .map(Envelope::key)
            })
            .min_by_key(|key| key.1);
        match oldest {
            Some(key) => st.remove_ready(&key),
            None => st.delayed.pop_first().map(|(_, env)| env),
        }
    }

    /// Called by a consumer that leaves without a message after [`Queue::take`] registered
    /// it as waiting (timeout, cancelled receive, close, stop). A wakeup that was meant for
    /// it is handed on to the next waiting consumer, so none is lost.
    pub fn stop_waiting(&self, slot: &ConsumerSlot) {
        let mut st = self.state.lock();
        st.waiters.deregister(slot);
        let offers = slot.take_offers();
        st.pass_on(offers, None);
    }

    /// Registers a consumer.
    pub fn add_slot(&self, slot: Arc<ConsumerSlot>) {
        let id = Arc::as_ptr(&slot) as usize;
        self.state.lock().slots.insert(id, slot);
    }

    /// Removes a consumer; a wakeup it held goes to the next waiting consumer.
    pub fn remove_slot(&self, slot: &Arc<ConsumerSlot>) {
        let mut st = self.state.lock();
        if st.slots.remove(&(Arc::as_ptr(slot) as usize)).is_none() {
            return;
        }
        if st.slots.capacity() > 64 && st.slots.len() * 4 < st.slots.capacity() {
            let len = st.slots.len();
            st.slots.shrink_to(len * 2);
        }
        st.waiters.deregister(slot);
        let offers = slot.take_offers();
        st.pass_on(offers, None);
        if let (Some(plan), true) = (&slot.plan, slot.indexed.load(Ordering::Relaxed)) {
            if let Some(idx) = st.index.get_mut(&plan.identifier) {
                idx.users -= 1;
            }
        }
    }

    /// Number of registered consumers.
    pub fn consumer_count(&self) -> usize {
        self.state.lock().slots.len()
    }

    /// Messages stored, ready or delayed (expired ones not yet dropped included).
    pub fn depth(&self) -> usize {
        let st = self.state.lock();
        st.ready.len() + st.delayed.len()
    }

    /// Counts a message delivered to a session that has not acknowledged it yet.
    pub fn delivered_unacked(&self) {
        self.unacked.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an acknowledgement of such a message.
    pub fn acknowledged(&self) {
        self.unacked.fetch_sub(1, Ordering::Relaxed);
    }

    /// Messages delivered to sessions and not acknowledged yet.
    pub fn unacked(&self) -> usize {
        self.unacked.load(Ordering::Relaxed)
    }

    /// Deletes the queue: drops its messages and wakes its consumers.
    pub fn delete(&self) {
        self.deleted.store(true, Ordering::Relaxed);
        let mut st = self.state.lock();
        st.ready.clear();
        st.delayed.clear();
        st.expiry.clear();
        self.reaper_wake.notify_one();
        for idx in st.index.values_mut() {
            idx.buckets.clear();
        }
        for slot in st.slots.values() {
            slot.notify.notify_one();
        }
    }

    /// True once deleted.
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Relaxed)
    }
}

/// A queue going away ends its reaper task (which then finds nothing left to expire).
impl Drop for Queue {
    fn drop(&mut self) {
        self.state.lock().expiry.clear();
        self.reaper_wake.notify_one();
    }
}
