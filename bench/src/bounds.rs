//! The stamps a run can legitimately produce, so a consumer can refuse a forged or corrupted
//! stamp before it sizes anything by it.
//!
//! A [`DeliveryLog`](crate::DeliveryLog) keeps one bit per sequence number and one track per
//! producer, indexed by the stamp read from the message body. A body that says producer
//! `u32::MAX` or sequence 2^40 would make it allocate gigabytes to exbibytes; such a message
//! was never sent by the run, so the log counts it as unexpected instead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How far ahead of its sends a producer of an open-ended run announces its sequence limit:
/// one atomic store per this many messages.
const ANNOUNCE_AHEAD: u64 = 4096;

/// Per producer of a run, a limit that every sequence it sends stays below.
///
/// For a run whose message counts are known in advance, the limits are those counts
/// ([`StampBounds::fixed`]). For an open-ended run (a duration limit) they start at zero and
/// each producer raises its own, a few thousand messages ahead, before it sends
/// ([`StampBounds::open`], [`StampBounds::announce`]); the message itself then carries the
/// raised limit to the consumer (a send happens before its receipt). Either way a log's memory
/// stays proportional to what the run really sent.
///
/// ```
/// use courier_bench::StampBounds;
/// let bounds = StampBounds::fixed(&[10, 3]);
/// assert!(bounds.admits(1, 2));
/// assert!(!bounds.admits(1, 3));
/// assert!(!bounds.admits(2, 0));
/// ```
#[derive(Debug, Clone)]
pub struct StampBounds {
    limits: Arc<[AtomicU64]>,
}

impl StampBounds {
    /// Producer `p` sends at most `sent[p]` messages, sequences `0..sent[p]`.
    pub fn fixed(sent: &[u64]) -> Self {
        StampBounds {
            limits: sent.iter().map(|&n| AtomicU64::new(n)).collect(),
        }
    }

    /// `producers` producers whose counts are not known yet: each announces its sequences
    /// with [`StampBounds::announce`] before sending them.
    pub fn open(producers: usize) -> Self {
        StampBounds {
            limits: (0..producers).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Called by producer `producer` before it sends `sequence`: raises its limit past
    /// `sequence` when needed. Only that producer may call it for its index.
    pub fn announce(&self, producer: u32, sequence: u64) {
        let Some(limit) = self.limits.get(producer as usize) else {
            return;
        };
        if sequence >= limit.load(Ordering::Relaxed) {
            limit.store(sequence.saturating_add(ANNOUNCE_AHEAD), Ordering::Release);
        }
    }

    /// True when `producer` exists in the run and may have sent `sequence`.
    pub fn admits(&self, producer: u32, sequence: u64) -> bool {
        self.limits
            .get(producer as usize)
            .is_some_and(|limit| sequence < limit.load(Ordering::Acquire))
    }

    /// Number of producers in the run.
    pub fn producers(&self) -> usize {
        self.limits.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_bounds_follow_announcements() {
        let bounds = StampBounds::open(2);
        assert!(!bounds.admits(0, 0));
        bounds.announce(0, 0);
        assert!(bounds.admits(0, 0));
        assert!(bounds.admits(0, ANNOUNCE_AHEAD - 1));
        assert!(!bounds.admits(0, ANNOUNCE_AHEAD));
        assert!(!bounds.admits(1, 0), "limits are per producer");
        bounds.announce(0, ANNOUNCE_AHEAD);
        assert!(bounds.admits(0, 2 * ANNOUNCE_AHEAD - 1));
        bounds.announce(0, u64::MAX);
        assert!(bounds.admits(0, u64::MAX - 1));
        bounds.announce(7, 0); // not a producer of the run: ignored
        assert_eq!(bounds.producers(), 2);
    }

    #[test]
    fn fixed_bounds_are_the_counts() {
        let bounds = StampBounds::fixed(&[0, 5]);
        assert!(!bounds.admits(0, 0));
        assert!(bounds.admits(1, 4));
        assert!(!bounds.admits(1, 5));
        assert!(!bounds.admits(u32::MAX, 0));
    }
}
