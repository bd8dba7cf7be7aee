//! Resident memory of a durable broker holding a persistent backlog, with and without paging.
//!
//! ```text
//! cargo run --release -p courier-broker --example paging_rss -- paged 1000000 1024
//! cargo run --release -p courier-broker --example paging_rss -- whole 1000000 1024
//! ```
//!
//! Arguments: `paged` (paging threshold 64 MiB) or `whole` (no paging), the number of
//! messages, the body size in bytes. Sends the backlog to one queue in transactions of 1 000
//! messages (one journal record and one fsync each), then prints the process's resident
//! memory (`VmRSS`) and the broker's memory charge; then closes the broker, reopens it from
//! its journal (replay) and prints both again, then drains the queue checking every body.
//! Run each mode in its own process: resident memory is the process's.

use courier_api::{ConnectionFactory, Destination, Message, SessionMode};
use courier_broker::storage::{open_broker, JournalOptions};
use courier_broker::{Broker, BrokerConfig};
use std::time::Instant;

/// The process's resident memory in MiB, from `/proc/self/status`.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(f64::NAN);
    kib / 1024.0
}

fn report(when: &str, broker: &Broker, started: Instant) {
    let stats = broker.stats();
    println!(
        "{when:>14}: {:>9} messages, charged {:>8.1} MiB, RSS {:>8.1} MiB ({:.1} s)",
        stats.stored_messages,
        stats.stored_bytes as f64 / (1 << 20) as f64,
        rss_mib(),
        started.elapsed().as_secs_f64()
    );
}

fn body(n: u64, size: usize) -> String {
    let mut text = format!("{n}:");
    text.extend(std::iter::repeat_n('x', size.saturating_sub(text.len())));
    text
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> courier_api::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let paged = match args.first().map(String::as_str) {
        Some("paged") => true,
        Some("whole") => false,
        _ => {
            eprintln!("usage: paging_rss paged|whole [messages] [body bytes]");
            std::process::exit(2);
        }
    };
    let count: u64 = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let size: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1024);
    let config = BrokerConfig {
        max_memory: 16 << 30,
        paging_threshold: Some(if paged { 64 << 20 } else { usize::MAX }),
        ..BrokerConfig::default()
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let queue = Destination::queue("backlog");
    println!(
        "{} mode, {count} messages of {size} B",
        if paged { "paged" } else { "whole" }
    );
    let started = Instant::now();
    println!("{:>14}: RSS {:>8.1} MiB", "start", rss_mib());

    let (broker, store, _) = open_broker(dir.path(), config.clone(), JournalOptions::default())?;
    {
        let connection = broker.factory().create_connection().await?;
        let session = connection.create_session(SessionMode::Transacted).await?;
        let producer = session.create_producer(Some(&queue)).await?;
        for n in 0..count {
            producer.send(&mut Message::text(body(n, size))).await?;
            if n % 1000 == 999 {
                session.commit().await?;
            }
        }
        session.commit().await?;
        connection.close().await?;
    }
    report("sent", &broker, started);
    drop(broker);
    store.journal().close();
    drop(store);

    let (broker, store, replay) = open_broker(dir.path(), config, JournalOptions::default())?;
    report("replayed", &broker, started);
    println!("{:>14}: {replay:?}", "replay report");
    {
        let connection = broker.factory().create_connection().await?;
        connection.start().await?;
        let session = connection
            .create_session(SessionMode::DupsOkAcknowledge)
            .await?;
        let consumer = session.create_consumer(&queue, Default::default()).await?;
        for n in 0..count {
            let m = consumer
                .receive_timeout(std::time::Duration::from_secs(10))
                .await?
                .expect("the backlog is whole");
            assert_eq!(m.body_text(), Some(body(n, size).as_str()), "message {n}");
        }
        connection.close().await?;
    }
    report("drained", &broker, started);
    drop(broker);
    store.journal().close();
    Ok(())
}
