//! The ready messages of a queue in delivery order: one lane per priority, each a deque in
//! arrival order. Sends append at the back and consumers without selectors take from the
//! front, both O(1); a selector consumer taking from the middle leaves a tombstone that is
//! trimmed from the ends and compacted once tombstones outnumber messages.

use std::cmp::Reverse;
use std::collections::VecDeque;

use crate::queue::Envelope;

/// Delivery order: higher priority first, then arrival.
pub(crate) type OrderKey = (Reverse<u8>, u64);

/// Number of JMS priority levels (0–9).
const PRIORITIES: usize = 10;

/// One message place in a lane; `None` once taken from the middle.
struct Slot {
    seq: u64,
    env: Option<Envelope>,
}

#[derive(Default)]
struct Lane {
    slots: VecDeque<Slot>,
    live: usize,
}

impl Lane {
    fn position(&self, seq: u64) -> Result<usize, usize> {
        // Consumers without selectors take the front: skip the search for it.
        match self.slots.front() {
            Some(first) if first.seq == seq => Ok(0),
            _ => self.slots.binary_search_by_key(&seq, |s| s.seq),
        }
    }

    fn trim(&mut self) {
        while self.slots.front().is_some_and(|s| s.env.is_none()) {
            self.slots.pop_front();
        }
        while self.slots.back().is_some_and(|s| s.env.is_none()) {
            self.slots.pop_back();
        }
        if self.slots.len() > 64 && self.slots.len() > 2 * self.live {
            self.slots.retain(|s| s.env.is_some());
        }
    }
}

/// Ready messages of one queue.
#[derive(Default)]
pub(crate) struct Ready {
    lanes: [Lane; PRIORITIES],
    len: usize,
}

fn lane_of(env: &Envelope) -> usize {
    (env.message.priority() as usize).min(PRIORITIES - 1)
}

impl Ready {
    /// Adds a message at its place (the back, unless it is a redelivery).
    pub fn insert(&mut self, env: Envelope) {
        let lane = &mut self.lanes[lane_of(&env)];
        let seq = env.seq;
        let slot = Slot {
            seq,
            env: Some(env),
        };
        match lane.slots.back() {
            Some(last) if last.seq >= seq => match lane.position(seq) {
                Ok(i) => lane.slots[i] = slot,
                Err(i) => lane.slots.insert(i, slot),
            },
            _ => lane.slots.push_back(slot),
        }
        lane.live += 1;
        self.len += 1;
    }

    /// The message at `key`.
    pub fn get(&self, key: &OrderKey) -> Option<&Envelope> {
        let lane = &self.lanes[key.0 .0 as usize];
        let i = lane.position(key.1).ok()?;
        lane.slots[i].env.as_ref()
    }

    /// Takes the message at `key` out.
    pub fn remove(&mut self, key: &OrderKey) -> Option<Envelope> {
        let lane = &mut self.lanes[key.0 .0 as usize];
        let i = lane.position(key.1).ok()?;
        let env = lane.slots[i].env.take()?;
        lane.live -= 1;
        self.len -= 1;
        lane.trim();
        Some(env)
    }

    /// Every message, in delivery order.
    pub fn iter(&self) -> impl Iterator<Item = &Envelope> {
        self.lanes
            .iter()
            .rev()
            .flat_map(|lane| lane.slots.iter().filter_map(|s| s.env.as_ref()))
    }

    /// The messages after `after` (all when `None`), in delivery order.
    pub fn iter_after(&self, after: Option<OrderKey>) -> impl Iterator<Item = &Envelope> {
        let (top, from_seq) = match after {
            Some((Reverse(p), seq)) => (p as usize, Some(seq)),
            None => (PRIORITIES - 1, None),
        };
        self.lanes[..=top]
            .iter()
            .enumerate()
            .rev()
            .flat_map(move |(p, lane)| {
                let skip = match from_seq {
                    Some(seq) if p == top => lane.slots.partition_point(|s| s.seq <= seq),
                    _ => 0,
                };
                lane.slots.range(skip..).filter_map(|s| s.env.as_ref())
            })
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Drops every message.
    pub fn clear(&mut self) {
        *self = Ready::default();
    }
}

/// The delivery-order key of a stored message.
pub(crate) fn order_key(env: &Envelope) -> OrderKey {
    (Reverse(lane_of(env) as u8), env.seq)
}
