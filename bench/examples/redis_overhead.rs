//! The Redis backend's overhead, measured in one run against raw redis-rs on the same server.
//!
//! ```text
//! cargo run --release -p courier-bench --features redis --example redis_overhead
//! cargo run --release -p courier-bench --features redis --example redis_overhead -- --messages 50000 --deep 1000000
//! ```
//!
//! 1. Plain queue, 1 producer → 1 consumer, 100 B, auto-ack: the standard workload
//!    `queue-1x1-100b-auto` through `courier-redis`, and the same count of 100 B payloads
//!    through raw `XADD` / `XREADGROUP` (one entry per read) / `XACK` on a stream: the
//!    adapter's throughput as a share of the raw one.
//! 2. Selector receive on a deep queue: `key = 'hit'` messages behind `--deep` (then 1 000)
//!    non-matching ones; the time per receive on each, and their ratio.
//!
//! Uses the server at `--url` (default the machine's Redis); its keys are deleted after.

use clap::Parser;
use courier_api::{ConsumerOptions, Destination, Message, SessionMode};
use courier_bench::{AckMode, FlowSpec, Limit, Scenario, Topology, Workload};
use redis::streams::{StreamReadOptions, StreamReadReply};
use std::time::{Duration, Instant};

/// Redis backend overhead.
#[derive(Debug, Parser)]
struct Args {
    /// The Redis server.
    #[arg(long, default_value = "redis://127.0.0.1:6379/0")]
    url: String,
    /// Messages in the plain-queue comparison.
    #[arg(long, default_value_t = 20_000)]
    messages: u64,
    /// Depth of the deep queue in the selector comparison.
    #[arg(long, default_value_t = 100_000)]
    deep: u64,
    /// Selector receives timed on each queue.
    #[arg(long, default_value_t = 100)]
    receives: u64,
}

type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> Fallible<()> {
    let args = Args::parse();
    let run = uuid::Uuid::new_v4().simple().to_string();

    let workload = Workload::new(
        "queue-1x1-100b-auto",
        "queue, 1 producer → 1 consumer, 100 B, auto-ack",
        Scenario::Flow(FlowSpec {
            message_size: 100,
            ack: AckMode::Auto,
            limit: Limit::Messages(args.messages),
            ..FlowSpec::new(Topology::Queue {
                producers: 1,
                consumers: 1,
            })
        }),
    );
    let factory = courier::connect(&args.url).await?;
    let adapter = courier_bench::run(factory.as_ref(), &workload).await?;
    assert!(
        adapter.check.passed(),
        "the adapter lost or reordered messages"
    );
    let raw = raw_streams(&args.url, &run, args.messages).await?;
    let adapter_rate = adapter.msgs_per_sec();
    println!(
        "plain queue 1→1 100 B auto-ack, {} messages: courier-redis {:.0} msgs/s, raw XADD/XREADGROUP/XACK {:.0} msgs/s: {:.1} % of raw",
        args.messages,
        adapter_rate,
        raw,
        100.0 * adapter_rate / raw
    );

    let deep = selector_receive(factory.as_ref(), &run, args.deep, args.receives).await?;
    let shallow = selector_receive(factory.as_ref(), &run, 1_000, args.receives).await?;
    println!(
        "selector receive (key = 'hit' behind N non-matching): {} deep {:?}/receive, 1000 deep {:?}/receive: {:.1}×",
        args.deep,
        deep,
        shallow,
        deep.as_secs_f64() / shallow.as_secs_f64()
    );
    cleanup(&args.url, &run).await?;
    Ok(())
}

/// 1 producer XADDs `n` 100 B entries while 1 consumer reads them one per XREADGROUP and
/// XACKs each: messages per second from the first send to the last ack.
async fn raw_streams(url: &str, run: &str, n: u64) -> Fallible<f64> {
    let client = redis::Client::open(url)?;
    let mut producer = client.get_multiplexed_async_connection().await?;
    let mut consumer = client.get_multiplexed_async_connection().await?;
    let stream = format!("bench-{run}-stream");
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("g")
        .arg("$")
        .arg("MKSTREAM")
        .query_async(&mut producer)
        .await?;
    let payload = vec![b'x'; 100];
    let start = Instant::now();
    let send = {
        let stream = stream.clone();
        tokio::spawn(async move {
            for _ in 0..n {
                let _: String = redis::cmd("XADD")
                    .arg(&stream)
                    .arg("*")
                    .arg("b")
                    .arg(&payload)
                    .query_async(&mut producer)
                    .await?;
            }
            Ok::<_, redis::RedisError>(())
        })
    };
    let options = StreamReadOptions::default()
        .group("g", "c")
        .count(1)
        .block(1000);
    let mut received = 0;
    while received < n {
        let reply: StreamReadReply = redis::cmd("XREADGROUP")
            .arg(&options)
            .arg("STREAMS")
            .arg(&stream)
            .arg(">")
            .query_async(&mut consumer)
            .await?;
        for key in reply.keys {
            for entry in key.ids {
                let _: i64 = redis::cmd("XACK")
                    .arg(&stream)
                    .arg("g")
                    .arg(&entry.id)
                    .query_async(&mut consumer)
                    .await?;
                received += 1;
            }
        }
    }
    send.await??;
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Fills a queue with `depth` non-matching messages, then `receives` matching ones; times
/// the selector receives of the matching ones.
async fn selector_receive(
    factory: &dyn courier_api::ConnectionFactory,
    run: &str,
    depth: u64,
    receives: u64,
) -> Fallible<Duration> {
    let queue = Destination::queue(format!("bench-{run}-deep-{depth}"));
    let fill = 8;
    let mut tasks = Vec::new();
    for part in 0..fill {
        let connection = factory.create_connection().await?;
        let queue = queue.clone();
        tasks.push(tokio::spawn(async move {
            let session = connection
                .create_session(SessionMode::AutoAcknowledge)
                .await?;
            let producer = session.create_producer(Some(&queue)).await?;
            for _ in (part..depth).step_by(fill as usize) {
                let mut m = Message::text("x".repeat(100));
                m.set_property("key", "miss")?;
                producer.send(&mut m).await?;
            }
            connection.close().await
        }));
    }
    for t in tasks {
        t.await??;
    }
    let connection = factory.create_connection().await?;
    connection.start().await?;
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let producer = session.create_producer(Some(&queue)).await?;
    for _ in 0..receives {
        let mut m = Message::text("x".repeat(100));
        m.set_property("key", "hit")?;
        producer.send(&mut m).await?;
    }
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::selector("key = 'hit'"))
        .await?;
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
