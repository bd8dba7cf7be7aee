//! A queue's message store: ready messages by priority then arrival, delayed messages by due
//! time, and the consumers waiting on it. Topic subscriptions are queues too.

use courier_api::selector::Selector;
use courier_api::{Destination, Message};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// Number of JMS priority levels (0–9).
const PRIORITIES: usize = 10;

/// Who sent a message, for no-local subscriptions.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    /// Id of the sending connection.
    pub connection: u64,
    /// Client id of the sending connection, if set.
    pub client_id: Option<Arc<str>>,
}

/// A message as the broker keeps it.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    /// Arrival order within the broker; ties within a priority are broken by it.
    pub seq: u64,
    /// The stamped message.
    pub message: Message,
    /// Its sender.
    pub origin: Arc<Origin>,
    /// How many times it was delivered so far.
    pub delivery_count: u32,
}

impl Envelope {
    fn expired(&self, now: u64) -> bool {
        let e = self.message.expiration();
        e != 0 && e <= now
    }

    fn due_at(&self) -> u64 {
        self.message.delivery_time()
    }
}

/// A consumer's place at a queue: its selector and how to wake it.
#[derive(Debug)]
pub(crate) struct ConsumerSlot {
    /// Messages this consumer may take; `None` takes all.
    pub selector: Option<Selector>,
    /// Woken when a message it may take arrives.
    pub notify: Notify,
    /// Set (under the queue lock) while the consumer found nothing and is about to wait.
    waiting: AtomicBool,
}

impl ConsumerSlot {
    /// A slot for a consumer with this selector.
    pub fn new(selector: Option<Selector>) -> Self {
        ConsumerSlot {
            selector,
            notify: Notify::new(),
            waiting: AtomicBool::new(false),
        }
    }

    fn accepts(&self, message: &Message) -> bool {
        self.selector.as_ref().is_none_or(|s| s.matches(message))
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

#[derive(Default)]
struct QueueState {
    ready: [BTreeMap<u64, Envelope>; PRIORITIES],
    delayed: BTreeMap<(u64, u64), Envelope>,
    slots: Vec<Arc<ConsumerSlot>>,
}

impl QueueState {
    fn insert_ready(&mut self, env: Envelope) {
        let p = (env.message.priority() as usize).min(PRIORITIES - 1);
        self.ready[p].insert(env.seq, env);
    }

    fn promote_due(&mut self, now: u64) {
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let env = entry.remove();
            self.insert_ready(env);
        }
    }

    fn wake(&self, message: Option<&Message>) {
        for slot in &self.slots {
            if slot.waiting.load(Ordering::Relaxed) && message.is_none_or(|m| slot.accepts(m)) {
                slot.waiting.store(false, Ordering::Relaxed);
                slot.notify.notify_one();
            }
        }
    }
}

/// A queue, or the store of one topic subscription.
pub(crate) struct Queue {
    destination: Destination,
    state: Mutex<QueueState>,
    unacked: AtomicUsize,
    deleted: AtomicBool,
}

impl Queue {
    /// An empty queue.
    pub fn new(destination: Destination) -> Self {
        Queue {
            destination,
            state: Mutex::new(QueueState::default()),
            unacked: AtomicUsize::new(0),
            deleted: AtomicBool::new(false),
        }
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
        if env.due_at() > now {
            st.delayed.insert((env.due_at(), env.seq), env);
            // Waiters recompute how long to sleep.
            st.wake(None);
        } else {
            st.wake(Some(&env.message));
            st.insert_ready(env);
        }
    }

    /// Puts delivered messages back (recover, rollback, close), at their original place.
    pub fn requeue(&self, env: Envelope) {
        self.unacked.fetch_sub(1, Ordering::Relaxed);
        if self.is_deleted() {
            return;
        }
        let mut st = self.state.lock();
        st.wake(Some(&env.message));
        st.insert_ready(env);
    }

    /// Takes the first deliverable message `slot` accepts, dropping expired ones on the way.
    /// When there is none, marks the slot as waiting so the next matching arrival wakes it.
    pub fn take(&self, slot: &ConsumerSlot, now: u64) -> Take {
        let mut st = self.state.lock();
        st.promote_due(now);
        let mut expired = Vec::new();
        let mut found = None;
        'levels: for p in (0..PRIORITIES).rev() {
            for (seq, env) in st.ready[p].iter() {
                if env.expired(now) {
                    expired.push((p, *seq));
                } else if slot.accepts(&env.message) {
                    found = Some((p, *seq));
                    break 'levels;
                }
            }
        }
        for (p, seq) in expired {
            st.ready[p].remove(&seq);
        }
        if let Some((p, seq)) = found {
            if let Some(env) = st.ready[p].remove(&seq) {
                return Take::Message(env);
            }
        }
        slot.waiting.store(true, Ordering::Relaxed);
        Take::Empty {
            next_due: st.delayed.first_key_value().map(|(k, _)| k.0),
        }
    }

    /// The deliverable messages a browser with `selector` sees, in delivery order.
    pub fn snapshot(&self, selector: Option<&Selector>, now: u64) -> Vec<Message> {
        let mut st = self.state.lock();
        st.promote_due(now);
        let mut out = Vec::new();
        for p in (0..PRIORITIES).rev() {
            for env in st.ready[p].values() {
                if !env.expired(now) && selector.is_none_or(|s| s.matches(&env.message)) {
                    out.push(env.message.clone());
                }
            }
        }
        out
    }

    /// Registers a consumer.
    pub fn add_slot(&self, slot: Arc<ConsumerSlot>) {
        self.state.lock().slots.push(slot);
    }

    /// Removes a consumer.
    pub fn remove_slot(&self, slot: &Arc<ConsumerSlot>) {
        self.state.lock().slots.retain(|s| !Arc::ptr_eq(s, slot));
    }

    /// Number of registered consumers.
    pub fn consumer_count(&self) -> usize {
        self.state.lock().slots.len()
    }

    /// Messages stored, ready or delayed (expired ones not yet dropped included).
    pub fn depth(&self) -> usize {
        let st = self.state.lock();
        st.ready.iter().map(BTreeMap::len).sum::<usize>() + st.delayed.len()
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
        st.ready = Default::default();
        st.delayed.clear();
        for slot in &st.slots {
            slot.notify.notify_one();
        }
    }

    /// True once deleted.
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Relaxed)
    }
}
