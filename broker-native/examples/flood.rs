//! Floods one queue nobody reads and reports the process's memory: the broker's memory limit
//! stops the producer (run by hand, in release mode).
//!
//! ```text
//! cargo run --release -p courier-broker --example flood -- [messages] [max_memory_mib] [topic]
//! ```
//!
//! Without `max_memory_mib` (or with `0`) the default limit (a quarter of the machine's
//! memory) applies. With `topic`, the messages go to a topic whose one non-durable
//! subscriber never reads (its default limit applies).
//! Sends fail at once when the limit is reached (the queue's policy here is `Fail`, so the
//! run ends instead of waiting out the block timeout).

use courier_api::*;
use courier_broker::{Broker, BrokerConfig, DestinationPolicy, WhenFull};
use std::time::Instant;

/// Resident memory of this process in KiB, from `/proc/self/status`.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let messages: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000_000);
    let mut config = BrokerConfig {
        default_policy: DestinationPolicy {
            when_full: WhenFull::Fail,
            ..DestinationPolicy::default()
        },
        ..BrokerConfig::default()
    };
    if let Some(mib) = args.next().and_then(|a| a.parse::<usize>().ok()) {
        if mib > 0 {
            config.max_memory = mib * 1024 * 1024;
        }
    }
    let topic = args.next().as_deref() == Some("topic");
    let broker = Broker::new(config);
    let connection = broker.factory().create_connection().await?;
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let destination = if topic {
        Destination::topic("flood")
    } else {
        Destination::queue("flood")
    };
    let _idle_subscriber = if topic {
        Some(
            session
                .create_consumer(&destination, ConsumerOptions::default())
                .await?,
        )
    } else {
        None
    };
    let producer = session.create_producer(Some(&destination)).await?;
    let body = "x".repeat(100);
    let before = rss_kib();
    let started = Instant::now();
    let mut sent = 0u64;
    let mut stopped = None;
    while sent < messages {
        match producer.send(&mut Message::text(body.as_str())).await {
            Ok(()) => sent += 1,
            Err(e) => {
                stopped = Some(e);
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    let after = rss_kib();
    let stats = broker.stats();
    println!(
        "sent {sent} of {messages} in {:.2} s; stopped by: {}",
        elapsed.as_secs_f64(),
        stopped.map_or_else(|| "nothing".to_owned(), |e| e.to_string())
    );
    println!("dropped by policy: {}", stats.dropped_messages);
    println!(
        "RSS +{} MiB ({} -> {} MiB); broker charged {} MiB for {} messages, limit {} MiB",
        (after.saturating_sub(before)) / 1024,
        before / 1024,
        after / 1024,
        stats.stored_bytes / (1024 * 1024),
        stats.stored_messages,
        stats.max_memory / (1024 * 1024)
    );
    Ok(())
}
