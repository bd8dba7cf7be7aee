//! The consumers waiting on a queue, and how an arriving message picks the one to wake.
//!
//! A consumer that found nothing registers with a ticket (a counter, so the lowest ticket
//! has waited longest and competing consumers take turns). Waiters are kept by kind:
//! consumers without a selector in one ordered map; consumers whose selector requires an
//! identifier to equal one of a few values (the selector's index plan) under each of those
//! values, so a send finds its candidates by one hash lookup whatever the number of waiters;
//! other selector consumers in a third map.
//!
//! The sender evaluates a candidate's selector only when that is cheap (short selector,
//! small message text). A consumer that accepts is taken off the wait list and woken with an
//! *offer* for the message. A consumer whose selector is too costly to check in the sender
//! stays on the wait list and gets the offer in its inbox: it evaluates the offered messages
//! on its own task, one message each, without rescanning the queue (it has seen everything
//! else already). A consumer that leaves without taking an offered message (its selector
//! declined it, it took another one, its receive was cancelled or timed out, it closed)
//! passes the offer on to the next candidate in ticket order that was waiting before the
//! message arrived — so no wakeup is lost, and no message wakes more than one consumer at a
//! time.

use courier_api::selector::{Selector, SelectorSource};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::Arc;
use tokio::sync::Notify;

use super::queue::{Envelope, IndexKey, IndexPlan};
use super::ready::OrderKey;

/// Most work (selector length × message text length) a sender spends evaluating one
/// waiting consumer's selector; dearer selectors are evaluated by the consumer itself.
const SENDER_EVALUATION_BUDGET: usize = 1 << 20;

/// Most offers a waiting consumer keeps to check itself before it is taken off the wait
/// list (and rescans instead).
const MAX_INBOX: usize = 256;

/// A message offered to a woken consumer: the message's place and the range of tickets
/// still to try. Only consumers that were waiting before it arrived may need it (later ones
/// looked at it when they registered), and candidates are tried in ticket order, so a
/// passed-on offer starts after the consumer that passed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Offer {
    /// The offered message.
    pub key: OrderKey,
    /// The lowest ticket still to try.
    pub from: u64,
    /// Consumers with a ticket below this were waiting when the message arrived.
    pub bound: u64,
}

/// Where a consumer stands in its queue's wait list (changed only under the queue lock).
#[derive(Debug, Default)]
struct WaitState {
    /// Its ticket while it is registered as waiting.
    ticket: Option<u64>,
    /// Messages it was woken for and has not dealt with yet.
    offers: Vec<Offer>,
}

/// A consumer's place at a queue: its selector and how to wake it.
#[derive(Debug)]
pub(crate) struct ConsumerSlot {
    /// Messages this consumer may take; `None` takes all.
    pub(crate) selector: Option<Selector>,
    pub(crate) plan: Option<IndexPlan>,
    /// Woken when a message it may take arrives.
    pub notify: Notify,
    /// Waiting state; only locked under the queue lock, so never contended.
    wait: Mutex<WaitState>,
    /// Whether this slot counts as a user of the index its plan needs (under the queue lock).
    pub(crate) indexed: AtomicBool,
    /// Takes so far (under the queue lock): the index is built on the second, so one-off
    /// consumers (take one entry by id) scan instead of indexing the whole queue.
    pub(crate) takes: AtomicU32,
}

impl ConsumerSlot {
    /// A slot for a consumer with this selector.
    pub fn new(selector: Option<Selector>) -> Self {
        let plan = selector.as_ref().and_then(IndexPlan::for_selector);
        ConsumerSlot {
            selector,
            plan,
            notify: Notify::new(),
            wait: Mutex::new(WaitState::default()),
            indexed: AtomicBool::new(false),
            takes: AtomicU32::new(0),
        }
    }

    /// Whether the consumer's selector selects `env`.
    pub(crate) fn accepts(&self, env: &Envelope) -> bool {
        self.selector.as_ref().is_none_or(|s| s.matches(env))
    }

    /// Takes the offers this consumer holds.
    pub(crate) fn take_offers(&self) -> Vec<Offer> {
        std::mem::take(&mut self.wait.lock().offers)
    }

    /// Whether the consumer is registered as waiting.
    pub(crate) fn is_waiting(&self) -> bool {
        self.wait.lock().ticket.is_some()
    }

    /// What a sender may conclude about this consumer and `env` without costly work.
    fn verdict(&self, env: &Envelope, text_len: &mut Option<usize>) -> Verdict {
        let Some(selector) = &self.selector else {
            return Verdict::Accepts;
        };
        let text = *text_len.get_or_insert_with(|| message_text_len(env));
        if selector.text().len().saturating_mul(text.max(1)) > SENDER_EVALUATION_BUDGET {
            return Verdict::Unchecked;
        }
        #[cfg(test)]
        tests::SENDER_EVALUATIONS.with(|n| n.set(n.get() + 1));
        if selector.matches(env) {
            Verdict::Accepts
        } else {
            Verdict::Declines
        }
    }
}

/// Bytes of text a selector may look at in a message: string properties and the string
/// headers selectors can name.
fn message_text_len(env: &Envelope) -> usize {
    let m = &env.message;
    let props: usize = m
        .properties()
        .iter()
        .map(|(name, value)| match value {
            courier_api::Value::String(s) => name.len() + s.len(),
            _ => name.len() + 8,
        })
        .sum();
    props
        + m.correlation_id().map_or(0, str::len)
        + m.message_type().map_or(0, str::len)
        + m.message_id().map_or(0, str::len)
}

/// A sender's view of one candidate.
enum Verdict {
    /// Its selector selects the message (or it has none).
    Accepts,
    /// Its selector does not select the message.
    Declines,
    /// Too costly to check here: the consumer checks on its own task.
    Unchecked,
}

/// Waiting consumers ordered by ticket.
type ByTicket = BTreeMap<u64, Arc<ConsumerSlot>>;

/// The consumers waiting on one queue.
#[derive(Default)]
pub(crate) struct Waiters {
    next_ticket: u64,
    /// Consumers without a selector.
    plain: ByTicket,
    /// Consumers whose selector requires an identifier to equal one of its plan's keys,
    /// registered under each key.
    keyed: HashMap<Arc<str>, HashMap<IndexKey, ByTicket>>,
    /// Other selector consumers.
    other: ByTicket,
}

impl Waiters {
    /// The bound for a message arriving now: every consumer registered so far.
    pub fn arrival_bound(&self) -> u64 {
        self.next_ticket
    }

    /// Registers `slot` as waiting (again, at the back, if it already was).
    pub fn register(&mut self, slot: &Arc<ConsumerSlot>) {
        self.deregister(slot);
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        slot.wait.lock().ticket = Some(ticket);
        match (&slot.selector, &slot.plan) {
            (None, _) => {
                self.plain.insert(ticket, slot.clone());
            }
            (Some(_), Some(plan)) => {
                let by_key = self.keyed.entry(plan.identifier.clone()).or_default();
                for key in &plan.keys {
                    by_key
                        .entry(key.clone())
                        .or_default()
                        .insert(ticket, slot.clone());
                }
            }
            (Some(_), None) => {
                self.other.insert(ticket, slot.clone());
            }
        }
    }

    /// Removes `slot` from the waiters; false when it was not registered.
    pub fn deregister(&mut self, slot: &ConsumerSlot) -> bool {
        let Some(ticket) = slot.wait.lock().ticket.take() else {
            return false;
        };
        match (&slot.selector, &slot.plan) {
            (None, _) => {
                self.plain.remove(&ticket);
            }
            (Some(_), Some(plan)) => {
                if let Some(by_key) = self.keyed.get_mut(&plan.identifier) {
                    for key in &plan.keys {
                        if let Some(bucket) = by_key.get_mut(key) {
                            bucket.remove(&ticket);
                            if bucket.is_empty() {
                                by_key.remove(key);
                            }
                        }
                    }
                    if by_key.is_empty() {
                        self.keyed.remove(&plan.identifier);
                    } else if by_key.capacity() > 64 && by_key.len() * 4 < by_key.capacity() {
                        by_key.shrink_to(by_key.len() * 2);
                    }
                }
            }
            (Some(_), None) => {
                self.other.remove(&ticket);
            }
        }
        true
    }

    /// Picks the consumer to wake for `env`: among those with a ticket in the offer's range,
    /// the longest waiting one that accepts it or whose selector is too costly to check
    /// here. One that accepts is taken off the wait list; one left to check stays on it.
    /// Either gets the offer, passed on from its own ticket.
    pub fn choose(&mut self, env: &Envelope, offer: Offer) -> Option<Arc<ConsumerSlot>> {
        let mut text_len = None;
        // The best candidate so far; later candidates must have a lower ticket.
        let mut best: Option<(u64, Arc<ConsumerSlot>, bool)> = None;
        let range = |limit: u64| offer.from..limit.max(offer.from);
        let mut limit = offer.bound;
        if let Some((&ticket, slot)) = self.plain.range(range(limit)).next() {
            best = Some((ticket, slot.clone(), true));
            limit = ticket;
        }
        for (identifier, by_key) in &self.keyed {
            let Some(key) = env
                .selector_value(identifier)
                .as_ref()
                .and_then(IndexKey::of)
            else {
                continue;
            };
            let Some(bucket) = by_key.get(&key) else {
                continue;
            };
            if let Some(found) = first_candidate(bucket, range(limit), env, &mut text_len) {
                limit = found.0;
                best = Some(found);
            }
        }
        if let Some(found) = first_candidate(&self.other, range(limit), env, &mut text_len) {
            best = Some(found);
        }
        let (ticket, slot, accepts) = best?;
        let inbox_full = {
            let mut wait = slot.wait.lock();
            wait.offers.push(Offer {
                from: ticket + 1,
                ..offer
            });
            wait.offers.len() >= MAX_INBOX
        };
        // A consumer with a full inbox leaves the list: it rescans once instead, and later
        // messages go to other candidates, so its inbox stays bounded.
        if accepts || inbox_full {
            self.deregister(&slot);
        }
        Some(slot)
    }

    /// Every waiting consumer (each once).
    pub fn all(&self) -> Vec<Arc<ConsumerSlot>> {
        let mut all: BTreeMap<u64, Arc<ConsumerSlot>> = BTreeMap::new();
        let keyed = self
            .keyed
            .values()
            .flat_map(|by_key| by_key.values())
            .flatten();
        for (ticket, slot) in self.plain.iter().chain(&self.other).chain(keyed) {
            all.entry(*ticket).or_insert_with(|| slot.clone());
        }
        all.into_values().collect()
    }
}

/// The first consumer in `waiting` with a ticket in `range` that accepts `env` (`true`) or
/// must check it itself (`false`).
fn first_candidate(
    waiting: &ByTicket,
    range: std::ops::Range<u64>,
    env: &Envelope,
    text_len: &mut Option<usize>,
) -> Option<(u64, Arc<ConsumerSlot>, bool)> {
    waiting
        .range(range)
        .find_map(|(ticket, slot)| match slot.verdict(env, text_len) {
            Verdict::Accepts => Some((*ticket, slot.clone(), true)),
            Verdict::Unchecked => Some((*ticket, slot.clone(), false)),
            Verdict::Declines => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::queue::{Queue, Take};
    use courier_api::{Destination, Message};
    use std::cell::Cell;

    thread_local! {
        /// Selector evaluations done by senders on this thread.
        pub(super) static SENDER_EVALUATIONS: Cell<usize> = const { Cell::new(0) };
    }

    fn evaluations() -> usize {
        SENDER_EVALUATIONS.with(Cell::get)
    }

    fn envelope(seq: u64, message: Message) -> Envelope {
        Envelope::unsent(seq, message)
    }

    fn slot(queue: &Queue, selector: Option<&str>) -> Arc<ConsumerSlot> {
        let slot = Arc::new(ConsumerSlot::new(
            selector.map(|s| Selector::parse(s).expect("valid selector")),
        ));
        queue.add_slot(slot.clone());
        slot
    }

    /// Registers `slot` as waiting, as a receive that found nothing does.
    fn wait(queue: &Queue, slot: &Arc<ConsumerSlot>) {
        assert!(matches!(queue.take(slot, true), Take::Empty { .. }));
        assert!(slot.is_waiting());
    }

    fn offered(slot: &ConsumerSlot) -> usize {
        slot.wait.lock().offers.len()
    }

    #[test]
    fn a_send_finds_its_keyed_waiter_among_thousands_without_visiting_the_others() {
        let queue = Queue::new(Destination::queue("q"));
        let slots: Vec<_> = (0..5_000)
            .map(|i| slot(&queue, Some(&format!("JMSCorrelationID = 'c{i}'"))))
            .collect();
        for s in &slots {
            wait(&queue, s);
        }
        let before = evaluations();
        let mut m = Message::text("x");
        m.set_correlation_id("c4321").unwrap();
        queue.enqueue(envelope(1, m), 0);
        assert!(
            evaluations() - before <= 1,
            "the sender evaluated {} selectors",
            evaluations() - before
        );
        let woken: Vec<usize> = (0..slots.len())
            .filter(|&i| offered(&slots[i]) > 0)
            .collect();
        assert_eq!(
            woken,
            vec![4321],
            "only the consumer selecting c4321 is woken"
        );
        let mut m = Message::text("y");
        m.set_correlation_id("nobody").unwrap();
        let before = evaluations();
        queue.enqueue(envelope(2, m), 0);
        assert_eq!(
            evaluations(),
            before,
            "no waiter selects it: nothing to evaluate"
        );
        assert!(matches!(queue.take(&slots[4321], true), Take::Message(e) if e.seq == 1));
    }

    #[test]
    fn a_costly_selector_is_evaluated_by_its_consumer_not_by_the_sender() {
        let queue = Queue::new(Destination::queue("q"));
        let pattern = format!("%{}%", "ab".repeat(500));
        let costly = slot(&queue, Some(&format!("big LIKE '{pattern}'")));
        wait(&queue, &costly);
        let mut m = Message::text("x");
        m.set_property("big", "a".repeat(10_000)).unwrap();
        let before = evaluations();
        queue.enqueue(envelope(1, m), 0);
        assert_eq!(
            evaluations(),
            before,
            "the sender evaluated the costly selector"
        );
        assert_eq!(
            offered(&costly),
            1,
            "the consumer is woken to check the message"
        );
        assert!(
            costly.is_waiting(),
            "it stays on the wait list while it checks"
        );
        // Its own check declines the message; it keeps waiting without a rescan.
        assert!(matches!(queue.take(&costly, true), Take::Empty { .. }));
        assert!(costly.is_waiting());
        assert_eq!(offered(&costly), 0);
        assert_eq!(queue.depth(), 1);
    }

    #[test]
    fn a_declined_offer_goes_to_the_next_waiter_and_stops_after_the_last() {
        let queue = Queue::new(Destination::queue("q"));
        let pattern = format!("%{}%", "zz".repeat(500));
        let first = slot(&queue, Some(&format!("big LIKE '{pattern}'")));
        let second = slot(&queue, Some(&format!("big LIKE '{pattern}'")));
        wait(&queue, &first);
        wait(&queue, &second);
        let mut m = Message::text("x");
        m.set_property("big", "a".repeat(10_000)).unwrap();
        queue.enqueue(envelope(1, m), 0);
        assert_eq!((offered(&first), offered(&second)), (1, 0));
        assert!(matches!(queue.take(&first, true), Take::Empty { .. }));
        assert_eq!((offered(&first), offered(&second)), (0, 1), "passed on");
        assert!(matches!(queue.take(&second, true), Take::Empty { .. }));
        assert_eq!(
            (offered(&first), offered(&second)),
            (0, 0),
            "nobody else was waiting before it arrived: the chain ends"
        );
    }

    #[test]
    fn a_wakeup_of_a_consumer_that_stops_waiting_goes_to_the_next() {
        let queue = Queue::new(Destination::queue("q"));
        let a = slot(&queue, None);
        let b = slot(&queue, None);
        wait(&queue, &a);
        wait(&queue, &b);
        queue.enqueue(envelope(1, Message::text("x")), 0);
        assert_eq!(
            (offered(&a), offered(&b)),
            (1, 0),
            "the longest waiting first"
        );
        assert!(!a.is_waiting());
        // A's receive is cancelled (timeout, select!, drop).
        queue.stop_waiting(&a);
        assert_eq!((offered(&a), offered(&b)), (0, 1), "B gets the wakeup");
        assert!(matches!(queue.take(&b, true), Take::Message(e) if e.seq == 1));
    }

    #[test]
    fn competing_plain_consumers_take_turns() {
        let queue = Queue::new(Destination::queue("q"));
        let slots: Vec<_> = (0..3).map(|_| slot(&queue, None)).collect();
        for s in &slots {
            wait(&queue, s);
        }
        let mut order = Vec::new();
        for seq in 1..=6 {
            queue.enqueue(envelope(seq, Message::text("x")), 0);
            let i = (0..3)
                .find(|&i| offered(&slots[i]) > 0)
                .expect("someone woken");
            assert!(matches!(queue.take(&slots[i], true), Take::Message(_)));
            wait(&queue, &slots[i]);
            order.push(i);
        }
        assert_eq!(order, vec![0, 1, 2, 0, 1, 2]);
    }
}
