//! Broker statistics: the counters the hot paths bump and the snapshot read from them.
//!
//! Each queue (and each topic subscription's store) carries a [`QueueCounters`]: messages in,
//! deliveries out, redeliveries and dead letters, bumped with relaxed atomic adds — no lock,
//! no allocation per message. The broker counts its open connections the same way. A
//! [`StatsSnapshot`] gathers them with what the broker knows already (depths, consumers,
//! memory against its limit, the store's own figures), for `courier stats` (the `Stats` op)
//! and the Prometheus endpoint of `courier serve --metrics`. Rates are not kept: a reader
//! computes them from two snapshots of the monotonic counters, as Prometheus's `rate()` does.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Broker;

/// Monotonic counters of one queue or subscription store.
#[derive(Debug, Default)]
pub(crate) struct QueueCounters {
    enqueued: AtomicU64,
    delivered: AtomicU64,
    redelivered: AtomicU64,
    dead_lettered: AtomicU64,
}

impl QueueCounters {
    /// A message was stored (became deliverable or delayed).
    pub fn enqueued(&self) {
        self.enqueued.fetch_add(1, Ordering::Relaxed);
    }

    /// A message was handed to a consumer; `count` is its delivery count after it.
    pub fn delivered(&self, count: u32) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        if count > 1 {
            self.redelivered.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A message used up its delivery attempts and went to the dead-letter queue.
    pub fn dead_lettered(&self) {
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
    }

    fn read(&self) -> [u64; 4] {
        [
            self.enqueued.load(Ordering::Relaxed),
            self.delivered.load(Ordering::Relaxed),
            self.redelivered.load(Ordering::Relaxed),
            self.dead_lettered.load(Ordering::Relaxed),
        ]
    }
}

/// A gauge of open connections: [`Gauge::up`] when one opens, [`Gauge::down`] when it ends.
#[derive(Debug, Default)]
pub(crate) struct Gauge(AtomicU64);

impl Gauge {
    /// One more.
    pub fn up(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// One fewer.
    pub fn down(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What a durable store tells about its writes: the journal's group commits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    /// `fdatasync` calls made for batches.
    pub fsyncs: u64,
    /// Their total time, in nanoseconds (with `fsyncs`, the mean latency).
    pub fsync_nanos: u64,
    /// The longest one, in nanoseconds.
    pub fsync_max_nanos: u64,
    /// Batches written.
    pub batches: u64,
    /// Records written in them (with `batches`, the mean batch size).
    pub records: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Bytes the journal's segment files take on disk now (after compaction).
    pub disk_bytes: u64,
    /// Segment files making up the journal now.
    pub segments: u64,
}

/// Whether a destination row is a queue or a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DestinationType {
    /// A queue (plain, temporary, or the dead-letter queue).
    Queue,
    /// A topic: its figures are the sums over its subscriptions' stores.
    Topic,
}

/// The figures of one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationStats {
    /// Its name.
    pub name: String,
    /// Queue or topic.
    pub kind: DestinationType,
    /// Messages stored now, ready or delayed (for a topic: in all its subscriptions).
    pub depth: u64,
    /// Messages delivered and not acknowledged yet.
    pub unacked: u64,
    /// Consumers attached now.
    pub consumers: u64,
    /// Subscriptions (topics; 0 for a queue).
    pub subscriptions: u64,
    /// Messages stored in it so far (for a topic: copies stored in its subscriptions).
    pub messages_in: u64,
    /// Deliveries to consumers so far, redeliveries included.
    pub messages_out: u64,
    /// Deliveries of a message delivered before.
    pub redelivered: u64,
    /// Messages moved to the dead-letter queue after their last attempt.
    pub dead_lettered: u64,
}

/// What a broker holds and has done, at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// The destinations, by name (queues, then topics).
    pub destinations: Vec<DestinationStats>,
    /// Connections open now (in process and over TCP).
    pub connections: u64,
    /// Bytes charged for stored messages against the memory limit.
    pub memory_used: u64,
    /// The broker-wide memory limit.
    pub memory_limit: u64,
    /// Message copies held.
    pub stored_messages: u64,
    /// Messages dropped by drop-oldest policies so far.
    pub dropped_messages: u64,
    /// The journal's figures, for a durable broker; `None` in memory.
    pub store: Option<StoreStats>,
    /// The broker process's resident memory in bytes (`VmRSS`), where the platform tells
    /// it (Linux); for `embedded:` the process is the application's. Unlike
    /// [`StatsSnapshot::memory_used`] it counts everything: indexes, connections, the
    /// allocator's overhead.
    pub resident_bytes: Option<u64>,
}

impl StatsSnapshot {
    /// The row of `name` of `kind`, if it exists.
    pub fn destination(&self, kind: DestinationType, name: &str) -> Option<&DestinationStats> {
        self.destinations
            .iter()
            .find(|d| d.kind == kind && d.name == name)
    }
}

impl Broker {
    /// What the broker holds and has done now: every destination's figures, connections,
    /// memory against its limit, and the journal's figures when it is durable.
    pub fn snapshot(&self) -> StatsSnapshot {
        self.snapshot_of(|_| true)
    }

    /// [`Broker::snapshot`] listing only the destinations `visible` lets through (the
    /// caller's permissions). Takes each registry and queue lock briefly, one at a time.
    pub(crate) fn snapshot_of(
        &self,
        visible: impl Fn(&courier_api::Destination) -> bool,
    ) -> StatsSnapshot {
        let core = &self.core;
        let mut destinations = Vec::new();
        let queues: Vec<_> = core
            .queues
            .read()
            .iter()
            .filter(|(d, _)| visible(d))
            .map(|(d, q)| (d.name().to_owned(), q.queue.clone()))
            .collect();
        for (name, queue) in queues {
            let [messages_in, messages_out, redelivered, dead_lettered] = queue.counters.read();
            destinations.push(DestinationStats {
                name,
                kind: DestinationType::Queue,
                depth: queue.depth() as u64,
                unacked: queue.unacked() as u64,
                consumers: queue.consumer_count() as u64,
                subscriptions: 0,
                messages_in,
                messages_out,
                redelivered,
                dead_lettered,
            });
        }
        let topics: Vec<_> = core
            .topics
            .read()
            .iter()
            .filter(|(d, _)| visible(d))
            .map(|(d, t)| (d.name().to_owned(), t.clone()))
            .collect();
        for (name, topic) in topics {
            let mut row = DestinationStats {
                name,
                kind: DestinationType::Topic,
                depth: 0,
                unacked: 0,
                consumers: 0,
                subscriptions: 0,
                messages_in: 0,
                messages_out: 0,
                redelivered: 0,
                dead_lettered: 0,
            };
            for sub in topic.subscriptions() {
                let [i, o, r, d] = sub.queue.counters.read();
                row.subscriptions += 1;
                row.depth += sub.queue.depth() as u64;
                row.unacked += sub.queue.unacked() as u64;
                row.consumers += sub.queue.consumer_count() as u64;
                row.messages_in += i;
                row.messages_out += o;
                row.redelivered += r;
                row.dead_lettered += d;
            }
            destinations.push(row);
        }
        destinations.sort_by(|a, b| (a.kind as u8, &a.name).cmp(&(b.kind as u8, &b.name)));
        let stats = self.stats();
        StatsSnapshot {
            destinations,
            connections: core.connections.get(),
            memory_used: stats.stored_bytes as u64,
            memory_limit: stats.max_memory as u64,
            stored_messages: stats.stored_messages as u64,
            dropped_messages: stats.dropped_messages,
            store: core.store.stats(),
            resident_bytes: resident_bytes(),
        }
    }
}

/// This process's resident set size in bytes (`VmRSS` of `/proc/self/status`); `None`
/// where there is no such file.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Permissions;
    use crate::{BrokerConfig, User};
    use courier_api::{
        ConnectionFactory, ConsumerOptions, Destination, Error, Message, SessionMode,
    };
    use std::time::Duration;

    const WAIT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn counters_follow_sends_deliveries_redeliveries_and_dead_letters() {
        let broker = Broker::new(BrokerConfig {
            max_delivery_attempts: Some(2),
            ..BrokerConfig::default()
        });
        let factory = broker.factory();
        let connection = factory.create_connection().await.unwrap();
        connection.start().await.unwrap();
        assert_eq!(broker.snapshot().connections, 1);
        let session = connection
            .create_session(SessionMode::ClientAcknowledge)
            .await
            .unwrap();
        let queue = Destination::queue("q");
        let topic = Destination::topic("t");
        let consumer = session
            .create_consumer(&queue, ConsumerOptions::default())
            .await
            .unwrap();
        let subscriber = session
            .create_consumer(&topic, ConsumerOptions::default())
            .await
            .unwrap();
        let producer = session.create_producer(None).await.unwrap();
        producer
            .send_to(&queue, &mut Message::text("a"))
            .await
            .unwrap();
        for _ in 0..2 {
            producer
                .send_to(&topic, &mut Message::text("b"))
                .await
                .unwrap();
        }
        // Delivered, returned, delivered again (a redelivery), returned: dead-lettered.
        for _ in 0..2 {
            assert!(consumer.receive_timeout(WAIT).await.unwrap().is_some());
            session.recover().await.unwrap();
        }
        let s = broker.snapshot();
        let q = s.destination(DestinationType::Queue, "q").unwrap();
        assert_eq!(
            (q.depth, q.consumers, q.messages_in, q.messages_out),
            (0, 1, 1, 2)
        );
        assert_eq!((q.redelivered, q.dead_lettered), (1, 1));
        let dlq = s
            .destination(DestinationType::Queue, &broker.config().dead_letter_queue)
            .unwrap();
        assert_eq!((dlq.depth, dlq.messages_in), (1, 1));
        let t = s.destination(DestinationType::Topic, "t").unwrap();
        assert_eq!(
            (t.subscriptions, t.consumers, t.depth, t.messages_in),
            (1, 1, 2, 2)
        );
        assert!(s.memory_used > 0 && s.memory_limit > 0);
        assert_eq!(s.store, None, "an in-memory broker has no journal");
        #[cfg(target_os = "linux")]
        assert!(s.resident_bytes.is_some_and(|b| b > 1 << 20), "{s:?}");
        drop(subscriber);
        connection.close().await.unwrap();
        assert_eq!(broker.snapshot().connections, 0);
    }

    #[tokio::test]
    async fn stats_need_admin_on_every_destination_and_hide_what_a_rule_withholds() {
        let user = |name: &str| User::with_password(name, "pw").unwrap();
        let broker = Broker::new(BrokerConfig {
            users: vec![
                user("ops")
                    .allow("#", Permissions::ALL)
                    .allow("secret.#", Permissions::SEND),
                user("app").allow("orders.#", Permissions::ALL),
            ],
            ..BrokerConfig::default()
        });
        for name in ["orders.new", "secret.plans"] {
            broker.core.queue(&Destination::queue(name)).unwrap();
        }
        let factory = broker.factory();
        let ops = factory.connect_embedded(Some(("ops", "pw"))).await.unwrap();
        let seen = ops.broker_stats().unwrap();
        let names: Vec<&str> = seen.destinations.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["orders.new"], "secret.# withholds admin");
        let app = factory.connect_embedded(Some(("app", "pw"))).await.unwrap();
        assert!(matches!(app.broker_stats(), Err(Error::NotAuthorized(_))));
    }
}
