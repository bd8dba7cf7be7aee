//! Latency: the runner's clock and HDR histograms of what it measured.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::time::Instant;

/// The runner's monotonic clock. Producers stamp messages with [`Clock::now_ns`], consumers
/// subtract; both run in the runner's process, so no clock synchronisation is involved.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    /// A clock whose epoch is now.
    pub fn start() -> Self {
        Clock {
            epoch: Instant::now(),
        }
    }

    /// Nanoseconds since the epoch.
    pub fn now_ns(&self) -> u64 {
        self.ns_at(Instant::now())
    }

    /// Nanoseconds from the epoch to `at` (0 before the epoch).
    pub fn ns_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }
}

/// What a workload's latency figures measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyKind {
    /// From the producer's send call to the consumer's receipt.
    SendToReceive,
    /// The duration of each receive call, for queues filled before consumers start.
    ReceiveCall,
    /// Not measured (the memory workload).
    None,
}

/// Records latencies in nanoseconds, with three significant digits, in an HDR histogram.
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    histogram: Histogram<u64>,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyRecorder {
    /// An empty recorder; it grows to whatever range it is given.
    pub fn new() -> Self {
        LatencyRecorder {
            histogram: Histogram::new(3).expect("3 significant digits are within 0..=5"),
        }
    }

    /// Records one latency.
    pub fn record_ns(&mut self, nanos: u64) {
        let nanos = nanos.max(1);
        // `record` grows the histogram to fit; it fails only if the range cannot be indexed,
        // and then the largest trackable value is the honest stand-in.
        if self.histogram.record(nanos).is_err() {
            self.histogram.saturating_record(nanos);
        }
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &LatencyRecorder) {
        // Both histograms auto-resize, so adding cannot run out of range.
        self.histogram
            .add(&other.histogram)
            .expect("auto-resizing histograms accept every value");
    }

    /// Samples recorded.
    pub fn len(&self) -> u64 {
        self.histogram.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.histogram.is_empty()
    }

    /// Percentiles of what was recorded; `None` when nothing was.
    pub fn summary(&self) -> Option<LatencySummary> {
        if self.histogram.is_empty() {
            return None;
        }
        let us = |nanos: u64| nanos as f64 / 1_000.0;
        let h = &self.histogram;
        Some(LatencySummary {
            samples: h.len(),
            mean_us: h.mean() / 1_000.0,
            p50_us: us(h.value_at_quantile(0.50)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        })
    }
}

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Samples recorded.
    pub samples: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest sample.
    pub max_us: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_merged_recorders() {
        let mut a = LatencyRecorder::new();
        let mut b = LatencyRecorder::new();
        for n in 1..=900 {
            a.record_ns(n * 1_000);
        }
        for n in 901..=1_000 {
            b.record_ns(n * 1_000);
        }
        a.merge(&b);
        let s = a.summary().unwrap();
        assert_eq!(s.samples, 1_000);
        assert!((s.p50_us - 500.0).abs() < 1.0, "{s:?}");
        assert!((s.p99_us - 990.0).abs() < 1.0, "{s:?}");
        assert!(LatencyRecorder::new().summary().is_none());
    }
}
