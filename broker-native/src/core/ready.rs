//! The ready messages of a queue in delivery order: one lane per priority, each a deque in
//! arrival order. Sends append at the back and consumers without selectors take from the
//! front, both O(1); a selector consumer taking from the middle leaves a tombstone that is
//! trimmed from the ends and compacted once tombstones outnumber messages. A message put
//! back (rollback, recover, close) refills its tombstone when it still has one; otherwise
//! (it was taken from the front and its place trimmed) it goes into a small ordered map
//! beside the deque, which iteration merges in, so putting back n messages costs
//! O(n log n) however deep the queue. A lane gives memory back as it drains.

use std::cmp::Reverse;
use std::collections::{BTreeMap, VecDeque};
use std::iter::Peekable;
use std::ops::Bound;

use super::envelope::Envelope;
pub(crate) use super::envelope::OrderKey;

/// Number of JMS priority levels (0–9).
const PRIORITIES: usize = 10;

/// Capacity a lane keeps however empty it gets, so a small queue does not reallocate.
const KEPT_CAPACITY: usize = 64;

/// One message place in a lane; `None` once taken from the middle.
struct Slot {
    seq: u64,
    env: Option<Envelope>,
}

#[derive(Default)]
struct Lane {
    slots: VecDeque<Slot>,
    /// Messages in `slots`.
    live: usize,
    /// Messages put back whose place `slots` no longer has, by arrival.
    returned: BTreeMap<u64, Envelope>,
}

impl Lane {
    fn position(&self, seq: u64) -> Result<usize, usize> {
        // Consumers without selectors take the front, and a send offers the message it just
        // put at the back: skip the search for either.
        match (self.slots.front(), self.slots.back()) {
            (Some(first), _) if first.seq == seq => Ok(0),
            (_, Some(last)) if last.seq == seq => Ok(self.slots.len() - 1),
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
        if self.slots.len() > KEPT_CAPACITY && self.slots.len() > 2 * self.live {
            self.slots.retain(|s| s.env.is_some());
        }
        // Give memory back once the lane is far below its capacity; halving only at a
        // quarter keeps the copies amortised O(1) per message and never thrashes.
        let capacity = self.slots.capacity();
        if capacity > KEPT_CAPACITY && self.slots.len() * 4 < capacity {
            self.slots
                .shrink_to((self.slots.len() * 2).max(KEPT_CAPACITY));
        }
    }

    fn get(&self, seq: u64) -> Option<&Envelope> {
        match self.position(seq) {
            Ok(i) => self.slots[i].env.as_ref(),
            Err(_) => self.returned.get(&seq),
        }
    }

    /// The lane's messages with a sequence number above `after`, in arrival order.
    fn iter_after(&self, after: Option<u64>) -> impl Iterator<Item = &Envelope> {
        let skip = after.map_or(0, |seq| self.slots.partition_point(|s| s.seq <= seq));
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        let returned = self.returned.range((from, Bound::Unbounded));
        MergeBySeq {
            slots: self
                .slots
                .range(skip..)
                .filter_map(|s| s.env.as_ref())
                .peekable(),
            returned: returned.map(|(_, env)| env).peekable(),
        }
    }
}

/// Two runs of messages ordered by sequence number, merged.
struct MergeBySeq<A: Iterator, B: Iterator> {
    slots: Peekable<A>,
    returned: Peekable<B>,
}

impl<'a, A, B> Iterator for MergeBySeq<A, B>
where
    A: Iterator<Item = &'a Envelope>,
    B: Iterator<Item = &'a Envelope>,
{
    type Item = &'a Envelope;

    fn next(&mut self) -> Option<&'a Envelope> {
        match (self.slots.peek(), self.returned.peek()) {
            (Some(a), Some(b)) if b.seq < a.seq => self.returned.next(),
            (Some(_), _) => self.slots.next(),
            (None, _) => self.returned.next(),
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
    /// Adds a message at its place (the back, unless it is put back).
    pub fn insert(&mut self, env: Envelope) {
        let lane = &mut self.lanes[lane_of(&env)];
        let seq = env.seq;
        match lane.slots.back() {
            Some(last) if last.seq >= seq => match lane.position(seq) {
                Ok(i) if lane.slots[i].env.is_none() => {
                    lane.slots[i].env = Some(env);
                    lane.live += 1;
                }
                _ => {
                    if lane.returned.insert(seq, env).is_some() {
                        return; // already stored: nothing to count
                    }
                }
            },
            _ => {
                lane.slots.push_back(Slot {
                    seq,
                    env: Some(env),
                });
                lane.live += 1;
            }
        }
        self.len += 1;
    }

    /// The message at `key`.
    pub fn get(&self, key: &OrderKey) -> Option<&Envelope> {
        self.lanes[key.0 .0 as usize].get(key.1)
    }

    /// Takes the message at `key` out.
    pub fn remove(&mut self, key: &OrderKey) -> Option<Envelope> {
        let lane = &mut self.lanes[key.0 .0 as usize];
        let env = match lane.position(key.1) {
            Ok(i) => {
                let env = lane.slots[i].env.take()?;
                lane.live -= 1;
                lane.trim();
                env
            }
            Err(_) => lane.returned.remove(&key.1)?,
        };
        self.len -= 1;
        Some(env)
    }

    /// Every message, in delivery order.
    pub fn iter(&self) -> impl Iterator<Item = &Envelope> {
        self.iter_after(None)
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
            .flat_map(move |(p, lane)| lane.iter_after(if p == top { from_seq } else { None }))
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Message places allocated, for tests of memory given back.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.lanes.iter().map(|l| l.slots.capacity()).sum()
    }

    /// Drops every message.
    pub fn clear(&mut self) {
        *self = Ready::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use courier_api::{spi, Message};

    fn env(seq: u64, priority: u8) -> Envelope {
        let mut message = Message::text("x");
        spi::header_mut(&mut message).priority = priority;
        Envelope::unsent(seq, message)
    }

    fn seqs(ready: &Ready) -> Vec<u64> {
        ready.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn messages_put_back_merge_in_delivery_order() {
        let mut ready = Ready::default();
        for seq in 0..20 {
            ready.insert(env(seq, 4));
        }
        // Take the first eight from the front and two from the middle.
        let mut taken: Vec<Envelope> = (0..8)
            .map(|s| ready.remove(&(Reverse(4), s)).unwrap())
            .collect();
        taken.push(ready.remove(&(Reverse(4), 12)).unwrap());
        taken.push(ready.remove(&(Reverse(4), 13)).unwrap());
        ready.insert(env(20, 4));
        ready.insert(env(21, 7));
        for e in taken.into_iter().rev() {
            ready.insert(e);
        }
        let mut expected = vec![21];
        expected.extend(0..21);
        assert_eq!(seqs(&ready), expected);
        assert_eq!(ready.len(), 22);
        let after: Vec<u64> = ready
            .iter_after(Some((Reverse(4), 5)))
            .map(|e| e.seq)
            .collect();
        assert_eq!(after, (6..21).collect::<Vec<_>>());
        for seq in [3, 12, 0, 20] {
            assert_eq!(ready.get(&(Reverse(4), seq)).map(|e| e.seq), Some(seq));
            assert!(ready.remove(&(Reverse(4), seq)).is_some());
            assert!(ready.get(&(Reverse(4), seq)).is_none());
        }
        assert_eq!(ready.len(), 18);
    }

    #[test]
    fn a_drained_lane_gives_its_memory_back() {
        let mut ready = Ready::default();
        for seq in 0..100_000 {
            ready.insert(env(seq, 4));
        }
        assert!(ready.capacity() >= 100_000);
        for seq in 0..100_000 {
            ready.remove(&(Reverse(4), seq)).unwrap();
        }
        assert!(
            ready.capacity() <= KEPT_CAPACITY * PRIORITIES,
            "a drained queue keeps {} places",
            ready.capacity()
        );
    }
}
