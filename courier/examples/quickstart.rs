//! Sends messages through the embedded broker and receives them: a queue with a selector,
//! a transaction, and a topic with two subscribers.
//!
//! `cargo run --release --example quickstart`

use courier::*;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> Result<()> {
    let started = Instant::now();
    let factory = courier::connect("embedded:").await?;
    let connection = factory.create_connection().await?;
    connection.start().await?;
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await?;

    // Point to point, with a selector evaluated in the broker.
    let orders = Destination::queue("orders");
    let producer = session.create_producer(Some(&orders)).await?;
    for (i, region) in ["eu", "us", "eu", "asia"].into_iter().enumerate() {
        let mut m = Message::text(format!("order #{i}"));
        m.set_property("region", region)?;
        producer.send(&mut m).await?;
        println!(
            "sent     {:<10} region={region:<5} id={}",
            m.body_text().unwrap_or(""),
            m.message_id().unwrap_or("-")
        );
    }
    let eu = session
        .create_consumer(&orders, ConsumerOptions::selector("region = 'eu'"))
        .await?;
    while let Some(m) = eu.receive_timeout(Duration::from_millis(100)).await? {
        println!(
            "received {:<10} by the consumer with selector region = 'eu'",
            m.body_text().unwrap_or("")
        );
    }
    let rest = session
        .create_consumer(&orders, ConsumerOptions::default())
        .await?;
    while let Some(m) = rest.receive_no_wait().await? {
        println!(
            "received {:<10} by a consumer without selector",
            m.body_text().unwrap_or("")
        );
    }

    // A transaction: nothing is visible until commit.
    let tx = connection.create_session(SessionMode::Transacted).await?;
    let jobs = Destination::queue("jobs");
    let tx_producer = tx.create_producer(Some(&jobs)).await?;
    for n in 1..=3 {
        tx_producer
            .send(&mut Message::text(format!("job {n}")))
            .await?;
    }
    let jobs_consumer = session
        .create_consumer(&jobs, ConsumerOptions::default())
        .await?;
    let before = jobs_consumer.receive_no_wait().await?.is_some();
    tx.commit().await?;
    let mut after = 0;
    while jobs_consumer
        .receive_timeout(Duration::from_millis(100))
        .await?
        .is_some()
    {
        after += 1;
    }
    println!("transaction: visible before commit: {before}, received after commit: {after}");

    // Publish/subscribe: every subscriber gets every message.
    let news = Destination::topic("news");
    let a = session
        .create_consumer(&news, ConsumerOptions::default())
        .await?;
    let b = session
        .create_consumer(&news, ConsumerOptions::default())
        .await?;
    session
        .create_producer(Some(&news))
        .await?
        .send(&mut Message::text("courier 0.1 is out"))
        .await?;
    for (name, sub) in [("a", &a), ("b", &b)] {
        if let Some(m) = sub.receive_timeout(Duration::from_secs(1)).await? {
            println!(
                "subscriber {name} received {:?}",
                m.body_text().unwrap_or("")
            );
        }
    }

    connection.close().await?;
    println!("done in {:?}", started.elapsed());
    Ok(())
}
