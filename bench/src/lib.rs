//! # courier-bench
//!
//! The workload runner: measures any Courier backend with the same code. It is a crate of its
//! own so the user-facing `courier` crate carries no benchmarking code; the command line's
//! `courier bench` (crate `courier-cli`) drives it. It reaches backends through
//! [`courier::connect`], so its features `native`, `amqp` and `redis` are those of `courier`.
//!
//! A [`Workload`] describes producers and consumers on a queue or a topic — message size, count
//! or duration, delivery mode, acknowledgement mode, transactions, a fixed send rate, selectors
//! — or a deep queue drained by selectors, or the memory a queue takes. [`run`] drives it
//! through any [`ConnectionFactory`](courier::ConnectionFactory); [`run_ceiling`] drives the same
//! workload over raw `tokio::sync::mpsc` channels carrying the same messages, the in-process
//! ceiling; [`run_raw`] drives the same queue workloads through a broker's own client library
//! (raw lapin, raw redis-rs Streams — the baselines of the `amqp://` and `redis://` backends,
//! features `amqp` and `redis`); [`measure`] runs a backend and the ceiling and returns a [`Report`], printable as a [`Table`] row or a
//! JSON line.
//!
//! Every message carries a [`Stamp`] — producer, sequence number, send time — in the first bytes
//! of its body. Consumers check that each message arrived exactly once and in per-producer
//! order ([`CheckReport`]) and record send→receive latency in an HDR histogram.
//!
//! ```no_run
//! use courier_bench::{FlowSpec, Limit, Scenario, Table, Topology, Workload};
//!
//! # #[tokio::main]
//! # async fn main() -> courier::Result<()> {
//! let workload = Workload::new(
//!     "queue-2x2",
//!     "two producers, two consumers",
//!     Scenario::Flow(FlowSpec {
//!         limit: Limit::Messages(10_000),
//!         ..FlowSpec::new(Topology::Queue { producers: 2, consumers: 2 })
//!     }),
//! );
//! let report = courier_bench::measure("embedded:", &workload).await?;
//! assert!(report.passed(), "{}", report.failure().unwrap_or_default());
//! print!("{}", Table(&[report]));
//! # Ok(()) }
//! ```
//!
//! `cargo run --release -p courier-cli -- bench --url embedded:` runs the [`standard`] set.

// Denied, not forbidden: `memory::release_free_memory` calls glibc's `malloc_trim`, the
// crate's one `unsafe` block, allowed there alone.
#![deny(unsafe_code)]

mod baseline;
mod bounds;
mod catalog;
mod check;
mod deep_queue;
mod endpoint;
mod flow;
mod latency;
mod measurement;
mod memory;
mod payload;
mod raw;
mod report;
mod runner;
mod schedule;
mod spec;
mod task;

pub use bounds::StampBounds;
pub use catalog::{find, standard};
pub use check::{verify, CheckReport, DeliveryLog, Expectation, Violation};
pub use latency::{Clock, LatencyKind, LatencyRecorder, LatencySummary};
pub use measurement::{Measurement, MemoryFigure};
pub use memory::{resident_bytes, MemoryGauge, MemorySource};
pub use payload::{key_selector, key_value, Stamp, KEY_PROPERTY};
pub use raw::{run_raw, RawClient, RawQueueType, RedisServer, DEFAULT_PREFETCH, REDIS_READ_BATCH};
pub use report::{Report, Table};
pub use runner::{measure, measure_repeated, run, run_at, run_ceiling};
pub use spec::{
    AckMode, DeepQueueSpec, FlowSpec, Limit, MemorySpec, Overrides, Scenario, Topology, Workload,
    MAX_SEND_WINDOW,
};
