//! How a selector receive's cost depends on the depth of the queue (issue 17): fills one fresh
//! queue per depth with 100 B messages, one in ten with `key = 'hit'` and the rest with
//! `key = 'miss'`, opens a consumer with the selector `key = 'hit'` (served by the equality
//! index) on each, then times `RECEIVES` receives per queue, one at a time, taking turns
//! between the queues (so that every depth sees the same load of a shared machine); then
//! deletes the queues.
//!
//! ```text
//! cargo run --release -p courier-redis --example selector_depth -- [URL] [DEPTH...]
//! ```
//! (default `redis://127.0.0.1:6379/0`, depths 1000 and 1000000). Prints, per depth, the fill
//! time, the consumer's creation (which indexes the messages already there), and the receives'
//! mean and median in µs; the last line is the deepest queue's mean over the shallowest's.

use std::time::{Duration, Instant};

use courier_api::{
    Connection, Consumer, ConsumerOptions, Destination, Message, Result, Session, SessionMode,
};

/// Receives timed per depth.
const RECEIVES: usize = 100;

/// One queue under test.
struct Deep {
    depth: usize,
    queue: Destination,
    connection: Box<dyn Connection>,
    session: Box<dyn Session>,
    consumer: Box<dyn Consumer>,
    filled: Duration,
    created: Duration,
    times: Vec<Duration>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379/0".to_string());
    let mut depths: Vec<usize> = args.filter_map(|a| a.parse().ok()).collect();
    if depths.is_empty() {
        depths = vec![1_000, 1_000_000];
    }
    let mut deeps = Vec::new();
    for depth in depths {
        let prepared = prepare(&url, depth).await;
        match prepared {
            Ok(deep) => deeps.push(deep),
            Err(e) => {
                clean(deeps).await;
                return Err(e);
            }
        }
    }
    let mut failed = None;
    'rounds: for _ in 0..RECEIVES {
        for deep in deeps.iter_mut() {
            if deep.times.len() >= deep.depth / 10 {
                continue;
            }
            let asked = Instant::now();
            match deep.consumer.receive_timeout(Duration::from_secs(30)).await {
                Ok(Some(_)) => deep.times.push(asked.elapsed()),
                Ok(None) => {
                    failed = Some(courier_api::Error::illegal_state(
                        "a selected message did not come",
                    ));
                    break 'rounds;
                }
                Err(e) => {
                    failed = Some(e);
                    break 'rounds;
                }
            }
        }
    }
    let means: Vec<Duration> = deeps.iter().map(report).collect();
    clean(deeps).await;
    if let Some(e) = failed {
        return Err(e);
    }
    if let (Some(first), Some(last)) = (means.first(), means.last()) {
        println!(
            "deepest / shallowest mean receive: {:.2}",
            last.as_secs_f64() / first.as_secs_f64()
        );
    }
    Ok(())
}

/// Fills a queue `depth` deep and opens its selector consumer.
async fn prepare(url: &str, depth: usize) -> Result<Deep> {
    let factory = courier_redis::connect(url).await?;
    let connection = factory.create_connection().await?;
    connection.start().await?;
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let queue = Destination::queue(format!(
        "selector-depth-{depth}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let filled = Instant::now();
    let producer = session.create_producer(Some(&queue)).await?;
    let mut receipts = Vec::new();
    for i in 0..depth {
        let mut message = Message::bytes(vec![0xA5; 100]);
        message.set_property("key", if i % 10 == 0 { "hit" } else { "miss" })?;
        receipts.push(producer.send_async(message).await?);
        if receipts.len() >= 10_000 {
            for receipt in receipts.drain(..) {
                receipt.await?;
            }
        }
    }
    for receipt in receipts {
        receipt.await?;
    }
    producer.close().await?;
    let filled = filled.elapsed();
    let created = Instant::now();
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::selector("key = 'hit'"))
        .await;
    let consumer = match consumer {
        Ok(consumer) => consumer,
        Err(e) => {
            let _ = session.delete_destination(&queue).await;
            return Err(e);
        }
    };
    Ok(Deep {
        depth,
        queue,
        connection,
        session,
        consumer,
        filled,
        created: created.elapsed(),
        times: Vec::with_capacity(RECEIVES),
    })
}

/// Prints a queue's figures; returns its mean receive.
fn report(deep: &Deep) -> Duration {
    let mut times = deep.times.clone();
    let mean = times.iter().sum::<Duration>() / times.len().max(1) as u32;
    times.sort();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    println!(
        "depth {:>9}: filled in {:.1} s, consumer created in {:.3} s, {} receives: mean {:.0} µs, median {:.0} µs",
        deep.depth,
        deep.filled.as_secs_f64(),
        deep.created.as_secs_f64(),
        times.len(),
        mean.as_secs_f64() * 1e6,
        median.as_secs_f64() * 1e6
    );
    mean
}

/// Closes the consumers and deletes the queues.
async fn clean(deeps: Vec<Deep>) {
    for deep in deeps {
        let _ = deep.consumer.close().await;
        if let Err(e) = deep.session.delete_destination(&deep.queue).await {
            eprintln!("{} not deleted: {e}", deep.queue);
        }
        let _ = deep.connection.close().await;
    }
}
