//! When a producer sends: its share of the messages or of the time, at its share of the rate.

use std::time::{Duration, Instant};

use super::bounds::StampBounds;
use super::spec::Limit;

/// How long a producer keeps sending.
#[derive(Debug, Clone, Copy)]
enum Quota {
    Count(u64),
    Until(Instant),
}

/// The send schedule of one producer: how many messages (or until when), and, at a fixed
/// rate, when each is due.
///
/// At a fixed rate a message is sent at its due time or, when the producer is behind, at once:
/// the producer catches up rather than skipping. Tokio's timers tick every millisecond, so a
/// paced producer sends each millisecond's messages together and sleeps in between; it does
/// not spin, which on a small machine would take the CPU the backend needs. A paced message is
/// stamped with its *intended* send time, not the moment it went: when the sender stalls
/// (the backend pushed back, the machine was busy), the messages that should have gone
/// meanwhile carry that wait in their latency instead of hiding it (no coordinated omission).
/// The achieved send rate shows when a backend could not keep up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    quota: Quota,
    /// Start and nanoseconds between messages.
    pace: Option<(Instant, f64)>,
}

impl Schedule {
    /// The schedule of producer `index` of `producers` for a run starting at `start`.
    pub fn new(
        limit: Limit,
        rate: Option<u64>,
        producers: usize,
        index: usize,
        start: Instant,
    ) -> Self {
        let quota = match limit {
            Limit::Messages(total) => Quota::Count(share(total, producers, index)),
            Limit::Duration(d) => Quota::Until(start + d),
        };
        let pace = rate.map(|r| (start, 1e9 * producers as f64 / r as f64));
        Schedule { quota, pace }
    }

    /// Messages this producer sends, when known in advance.
    pub fn planned(&self) -> Option<u64> {
        match self.quota {
            Quota::Count(n) => Some(n),
            Quota::Until(_) => None,
        }
    }

    /// Waits until message number `sent` (from 0) is due; returns the time to stamp it with
    /// — its due time when paced (earlier than now when the producer is behind), else now —
    /// or `None` once the producer is done.
    pub async fn next(&self, sent: u64) -> Option<Instant> {
        if let Quota::Count(n) = self.quota {
            if sent >= n {
                return None;
            }
        }
        let mut now = Instant::now();
        let mut stamp = now;
        if let Some((start, gap_ns)) = self.pace {
            let due = start + Duration::from_nanos((sent as f64 * gap_ns) as u64);
            if due > now {
                tokio::time::sleep_until(due.into()).await;
                now = Instant::now();
            }
            stamp = due;
        }
        match self.quota {
            Quota::Until(end) if now >= end => None,
            _ => Some(stamp),
        }
    }
}

/// Producer `index`'s share of `total`: as even as possible, the first ones taking the rest.
pub(crate) fn share(total: u64, parts: usize, index: usize) -> u64 {
    let parts = parts.max(1) as u64;
    total / parts + u64::from((index as u64) < total % parts)
}

/// The stamps producers following `schedules` can send: their planned counts, or limits they
/// announce as they go when a run is open-ended.
pub(crate) fn stamp_bounds(schedules: &[Schedule]) -> StampBounds {
    match schedules
        .iter()
        .map(Schedule::planned)
        .collect::<Option<Vec<u64>>>()
    {
        Some(planned) => StampBounds::fixed(&planned),
        None => StampBounds::open(schedules.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        assert_eq!(
            (0..3).map(|i| share(10, 3, i)).collect::<Vec<_>>(),
            [4, 3, 3]
        );
        assert_eq!((0..4).map(|i| share(10, 4, i)).sum::<u64>(), 10);
    }

    #[tokio::test]
    async fn a_paced_producer_behind_its_schedule_stamps_the_intended_time() {
        // 1 000 msgs/s: message 50 was due 50 ms after the start, long before now.
        let start = Instant::now() - Duration::from_secs(1);
        let s = Schedule::new(Limit::Messages(100), Some(1_000), 1, 0, start);
        let stamped = s.next(50).await.unwrap();
        assert_eq!(stamped, start + Duration::from_millis(50));
        let unpaced = Schedule::new(Limit::Messages(100), None, 1, 0, start);
        assert!(unpaced.next(50).await.unwrap() >= start + Duration::from_secs(1));
    }

    #[tokio::test]
    async fn counted_schedules_stop() {
        let s = Schedule::new(Limit::Messages(5), None, 2, 0, Instant::now());
        assert_eq!(s.planned(), Some(3));
        assert!(s.next(2).await.is_some());
        assert!(s.next(3).await.is_none());
        let timed = Schedule::new(Limit::Duration(Duration::ZERO), None, 1, 0, Instant::now());
        assert!(timed.next(0).await.is_none());
    }
}
