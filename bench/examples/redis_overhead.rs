//! The Redis backend's overhead, measured in one run against raw redis-rs on the same server.
//!
//! ```text
//! cargo run --release -p courier-bench --features redis --example redis_overhead
//! cargo run --release -p courier-bench --features redis --example redis_overhead -- \
//!     --url redis://127.0.0.1:6390/0 --messages 20000 --deep 1000000
//! ```
//!
//! 1. Plain queues, each case of {1→1, 4×4} × {100 B, 1 KiB} × {non-persistent, persistent} ×
//!    {auto-ack, client-ack every 100}: the workload through `courier-redis` (the bench
//!    crate's flow runner, which checks every message arrived once and in order), then the same
//!    count of payloads through raw `XADD` / `XREADGROUP` (one entry per read) / `XACK` (per
//!    message, or per 100 with client-ack) on a stream with one consumer group: the adapter's
//!    throughput as a share of the raw one. Both run against the same server in one process.
//! 2. Selector receive on a deep queue: `key = 'hit'` messages behind `--deep` (then 1 000)
//!    non-matching ones; the time per receive on each, and their ratio.
//!
//! Uses the server at `--url` (default the machine's Redis); its keys are deleted after.

use clap::Parser;
use courier_api::{ConsumerOptions, DeliveryMode, Destination, Message, SessionMode};
use courier_bench::{AckMode, FlowSpec, Limit, Scenario, Topology, Workload};
use redis::streams::{StreamReadOptions, StreamReadReply};
use std::time::{Duration, Instant};

/// Redis backend overhead.
#[derive(Debug, Parser)]
struct Args {
    /// The Redis server.
    #[arg(long, default_value = "redis://127.0.0.1:6379/0")]
    url: String,
    /// Messages per plain-queue case.
    #[arg(long, default_value_t = 20_000)]
    messages: u64,
    /// Only the cases whose name contains this (e.g. `1x1-100b-np-auto`).
    #[arg(long)]
    only: Option<String>,
    /// Each case this many times, adapter and raw alternating; the median ratio is reported.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Depth of the deep queue in the selector comparison (0 skips it).
    #[arg(long, default_value_t = 100_000)]
    deep: u64,
    /// Selector receives timed on each queue.
    #[arg(long, default_value_t = 100)]
    receives: u64,
}

type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

/// Messages per client acknowledgement in the client-ack cases.
const CLIENT_BATCH: u32 = 100;

/// One plain-queue case.
#[derive(Debug, Clone, Copy)]
struct Case {
    clients: usize,
    size: usize,
    persistent: bool,
    client_ack: bool,
}

impl Case {
    fn name(&self) -> String {
        format!(
            "{0}x{0}-{1}-{2}-{3}",
            self.clients,
            if self.size == 100 { "100b" } else { "1k" },
            if self.persistent { "p" } else { "np" },
            if self.client_ack { "client" } else { "auto" }
        )
    }

    fn all() -> Vec<Case> {
        let mut cases = Vec::new();
        for clients in [1, 4] {
            for size in [100, 1024] {
                for persistent in [false, true] {
                    for client_ack in [false, true] {
                        cases.push(Case {
                            clients,
                            size,
                            persistent,
                            client_ack,
                        });
                    }
                }
            }
        }
        cases
    }

    fn workload(&self, messages: u64) -> Workload {
        Workload::new(
            "redis-overhead",
            "a plain-queue case of the Redis overhead",
            Scenario::Flow(FlowSpec {
                message_size: self.size,
                ack: if self.client_ack {
                    AckMode::Client {
                        batch: CLIENT_BATCH,
                    }
                } else {
                    AckMode::Auto
                },
                delivery_mode: if self.persistent {
                    DeliveryMode::Persistent
                } else {
                    DeliveryMode::NonPersistent
                },
                limit: Limit::Messages(messages),
                ..FlowSpec::new(Topology::Queue {
                    producers: self.clients,
                    consumers: self.clients,
                })
            }),
        )
    }
}

#[tokio::main]
async fn main() -> Fallible<()> {
    let args = Args::parse();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let factory = courier::connect(&args.url).await?;
    let mut ratios = Vec::new();
    for case in Case::all() {
        let name = case.name();
        if args
            .only
            .as_ref()
            .is_some_and(|o| !name.contains(o.as_str()))
        {
            continue;
        }
        let mut runs = Vec::new();
        for i in 0..args.repeat.max(1) {
            let before = Cost::now(&args.url).await?;
            let adapter =
                courier_bench::run(factory.as_ref(), &case.workload(args.messages)).await?;
            assert!(
                adapter.check.passed(),
                "{name}: the adapter lost or reordered messages"
            );
            let middle = Cost::now(&args.url).await?;
            let raw =
                raw_streams(&args.url, &format!("{run}-{name}-{i}"), case, args.messages).await?;
            let after = Cost::now(&args.url).await?;
            let n = args.messages as f64;
            runs.push(Run {
                adapter: adapter.msgs_per_sec(),
                raw,
                adapter_cost: middle.since(&before, n),
                raw_cost: after.since(&middle, n),
            });
            cleanup(&args.url, &run).await?;
        }
        runs.sort_by(|a, b| (a.adapter / a.raw).total_cmp(&(b.adapter / b.raw)));
        let r = &runs[runs.len() / 2];
        println!(
            "{name:<18} courier-redis {:>7.0} msgs/s, raw XADD/XREADGROUP/XACK {:>7.0} msgs/s: {:>5.2} of raw | per message: server {:>5.1} vs {:>5.1} µs, client CPU {:>5.1} vs {:>5.1} µs: cost {:>4.2} of raw",
            r.adapter,
            r.raw,
            r.adapter / r.raw,
            r.adapter_cost.0,
            r.raw_cost.0,
            r.adapter_cost.1,
            r.raw_cost.1,
            (r.raw_cost.0 + r.raw_cost.1) / (r.adapter_cost.0 + r.adapter_cost.1),
        );
        ratios.push(r.adapter / r.raw);
    }
    if !ratios.is_empty() {
        let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let max = ratios.iter().copied().fold(0.0, f64::max);
        println!(
            "plain queues, {} cases of {} messages: {min:.2} to {max:.2} of raw",
            ratios.len(),
            args.messages
        );
    }
    if args.deep > 0 {
        let deep = selector_receive(factory.as_ref(), &run, args.deep, args.receives).await?;
        let shallow = selector_receive(factory.as_ref(), &run, 1_000, args.receives).await?;
        println!(
            "selector receive (key = 'hit' behind N non-matching): {} deep {:?}/receive, 1000 deep {:?}/receive: {:.2}×",
            args.deep,
            deep,
            shallow,
            deep.as_secs_f64() / shallow.as_secs_f64()
        );
    }
    cleanup(&args.url, &run).await?;
    Ok(())
}

/// One run of a case: throughputs, and (server µs, client CPU µs) per message of each side.
struct Run {
    adapter: f64,
    raw: f64,
    adapter_cost: (f64, f64),
    raw_cost: (f64, f64),
}

/// CPU spent so far: by the Redis server on commands (`INFO commandstats`, µs) and by this
/// process (`/proc/self/stat` utime + stime, µs). Under a loaded machine throughput is noisy;
/// the CPU a message costs is not.
struct Cost {
    server_us: f64,
    client_us: f64,
}

impl Cost {
    async fn now(url: &str) -> Fallible<Cost> {
        let client = redis::Client::open(url)?;
        let mut c = client.get_multiplexed_async_connection().await?;
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut c)
            .await?;
        let server_us = stats
            .lines()
            .filter_map(|l| l.split(",usec=").nth(1))
            .filter_map(|rest| rest.split(',').next()?.parse::<f64>().ok())
            .sum();
        let stat = std::fs::read_to_string("/proc/self/stat")?;
        // Fields after the command name (which ends with ')'): utime is the 12th, stime the 13th.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: f64 = fields
            .get(11)
            .zip(fields.get(12))
            .and_then(|(u, s)| Some(u.parse::<f64>().ok()? + s.parse::<f64>().ok()?))
            .unwrap_or(0.0);
        // The kernel's USER_HZ is 100 on Linux.
        Ok(Cost {
            server_us,
            client_us: ticks * 10_000.0,
        })
    }

    /// Per message since `earlier`: (server µs, client µs).
    fn since(&self, earlier: &Cost, messages: f64) -> (f64, f64) {
        (
            (self.server_us - earlier.server_us) / messages,
            (self.client_us - earlier.client_us) / messages,
        )
    }
}

/// The case's producers XADD `n` entries in all while its consumers, in one group, read one
/// entry per XREADGROUP and XACK each (or every [`CLIENT_BATCH`] with client-ack): messages
/// per second from the first send to the last ack.
async fn raw_streams(url: &str, run: &str, case: Case, n: u64) -> Fallible<f64> {
    let client = redis::Client::open(url)?;
    let mut admin = client.get_multiplexed_async_connection().await?;
    let stream = format!("bench-{run}-stream");
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("g")
        .arg("$")
        .arg("MKSTREAM")
        .query_async(&mut admin)
        .await?;
    let mut producers = Vec::new();
    let mut consumers = Vec::new();
    for _ in 0..case.clients {
        producers.push(client.get_multiplexed_async_connection().await?);
        consumers.push(client.get_multiplexed_async_connection().await?);
    }
    let payload = vec![b'x'; case.size];
    let per_producer = n / case.clients as u64;
    let total = per_producer * case.clients as u64;
    let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let last = std::sync::Arc::new(std::sync::Mutex::new(None::<Instant>));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for mut producer in producers {
        let (stream, payload) = (stream.clone(), payload.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_producer {
                let _: String = redis::cmd("XADD")
                    .arg(&stream)
                    .arg("*")
                    .arg("b")
                    .arg(&payload)
                    .query_async(&mut producer)
                    .await?;
            }
            Ok::<_, redis::RedisError>(())
        }));
    }
    for (c, mut consumer) in consumers.into_iter().enumerate() {
        let (stream, received, last) = (stream.clone(), received.clone(), last.clone());
        let batch = if case.client_ack { CLIENT_BATCH } else { 1 } as usize;
        tasks.push(tokio::spawn(async move {
            let options = StreamReadOptions::default()
                .group("g", format!("c{c}"))
                .count(1)
                .block(100);
            let mut unacked = Vec::new();
            while received.load(std::sync::atomic::Ordering::SeqCst) < total {
                let reply: StreamReadReply = redis::cmd("XREADGROUP")
                    .arg(&options)
                    .arg("STREAMS")
                    .arg(&stream)
                    .arg(">")
                    .query_async(&mut consumer)
                    .await?;
                for key in reply.keys {
                    for entry in key.ids {
                        unacked.push(entry.id);
                        if received.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == total {
                            *last.lock().expect("not poisoned") = Some(Instant::now());
                        }
                    }
                }
                if unacked.len() >= batch {
                    let _: i64 = redis::cmd("XACK")
                        .arg(&stream)
                        .arg("g")
                        .arg(&unacked)
                        .query_async(&mut consumer)
                        .await?;
                    unacked.clear();
                }
            }
            if !unacked.is_empty() {
                let _: i64 = redis::cmd("XACK")
                    .arg(&stream)
                    .arg("g")
                    .arg(&unacked)
                    .query_async(&mut consumer)
                    .await?;
            }
            Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    // Up to the last receive, as the flow runner measures the adapter.
    let end = last
        .lock()
        .expect("not poisoned")
        .unwrap_or_else(Instant::now);
    Ok(total as f64 / (end - start).as_secs_f64())
}
/// Fills a queue with `depth` non-matching messages (8 connections, transacted), then
/// `receives` matching ones; times the selector receives of the matching ones.
async fn selector_receive(
    factory: &dyn courier_api::ConnectionFactory,
    run: &str,
    depth: u64,
    receives: u64,
) -> Fallible<Duration> {
    let queue = Destination::queue(format!("bench-{run}-deep-{depth}"));
    // The selector consumer comes first, so its equality index is kept by every send rather
    // than backfilled over the whole queue in one script call.
    let connection = factory.create_connection().await?;
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::selector("key = 'hit'"))
        .await?;
    let fill = 8;
    let mut tasks = Vec::new();
    for part in 0..fill {
        let connection = factory.create_connection().await?;
        let queue = queue.clone();
        tasks.push(tokio::spawn(async move {
            // Transacted, 1 000 sends per commit: one script call per 1 000 messages.
            let session = connection.create_session(SessionMode::Transacted).await?;
            let producer = session.create_producer(Some(&queue)).await?;
            for (i, _) in (part..depth).step_by(fill as usize).enumerate() {
                let mut m = Message::text("x".repeat(100));
                m.set_property("key", "miss")?;
                producer.send(&mut m).await?;
                if i % 1_000 == 999 {
                    session.commit().await?;
                }
            }
            session.commit().await?;
            connection.close().await
        }));
    }
    for t in tasks {
        t.await??;
    }
    connection.start().await?;
    let producer = session.create_producer(Some(&queue)).await?;
    for _ in 0..receives {
        let mut m = Message::text("x".repeat(100));
        m.set_property("key", "hit")?;
        producer.send(&mut m).await?;
    }
    let start = Instant::now();
    for _ in 0..receives {
        consumer
            .receive_timeout(Duration::from_secs(60))
            .await?
            .expect("a matching message");
    }
    let per = start.elapsed() / receives as u32;
    connection.close().await?;
    Ok(per)
}

/// Deletes this run's keys, and the workload runner's queues (`courier.bench.*`).
async fn cleanup(url: &str, run: &str) -> Fallible<()> {
    for pattern in [format!("*{run}*"), "courier:{q:courier.bench.*".to_string()] {
        delete_matching(url, &pattern).await?;
    }
    Ok(())
}

/// Deletes the keys matching a SCAN pattern.
async fn delete_matching(url: &str, pattern: &str) -> Fallible<()> {
    let client = redis::Client::open(url)?;
    let mut c = client.get_multiplexed_async_connection().await?;
    let mut cursor = 0_u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(10_000)
            .query_async(&mut c)
            .await?;
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut c).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
