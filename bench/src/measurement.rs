//! What one run of a workload measured, against a backend or against the raw channel.

use std::time::Duration;

use super::check::CheckReport;
use super::latency::{LatencyKind, LatencySummary};

/// The figures of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// Messages received (for a topic, by all subscriptions together; for the memory
    /// workload, messages queued).
    pub messages: u64,
    /// The measured span: first send to last receive for flows, the receive phase for deep
    /// queues, the fill for the memory workload.
    pub elapsed: Duration,
    /// Messages sent (or used to fill a queue).
    pub sent: u64,
    /// From the first to the last send.
    pub send_elapsed: Duration,
    /// What the latency figures measure.
    pub latency_kind: LatencyKind,
    /// Latency percentiles, when measured.
    pub latency: Option<LatencySummary>,
    /// The exactly-once and order check.
    pub check: CheckReport,
    /// Delivery stopped before every expected message arrived (see the check for what is
    /// missing).
    pub stalled: bool,
    /// Resident memory, for the memory workload.
    pub memory: Option<MemoryFigure>,
}

impl Measurement {
    /// Messages per second over [`Measurement::elapsed`].
    pub fn msgs_per_sec(&self) -> f64 {
        rate(self.messages, self.elapsed)
    }

    /// Sends per second over [`Measurement::send_elapsed`].
    pub fn sends_per_sec(&self) -> f64 {
        rate(self.sent, self.send_elapsed)
    }
}

fn rate(count: u64, span: Duration) -> f64 {
    if span.is_zero() {
        0.0
    } else {
        count as f64 / span.as_secs_f64()
    }
}

/// The broker's memory before and after filling a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryFigure {
    /// Messages queued between the two readings.
    pub queued: u64,
    /// Bytes before (resident, or Redis's `used_memory`: see `source`).
    pub rss_before: u64,
    /// Bytes after.
    pub rss_after: u64,
    /// What was read.
    pub source: crate::MemorySource,
}

impl MemoryFigure {
    /// Resident bytes gained per queued message.
    pub fn bytes_per_message(&self) -> f64 {
        if self.queued == 0 {
            return 0.0;
        }
        self.rss_after.saturating_sub(self.rss_before) as f64 / self.queued as f64
    }
}
