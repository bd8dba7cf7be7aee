//! Send-and-receive throughput of the embedded broker, one producer and one consumer task,
//! on a queue and on a topic with one subscriber (run by hand, in release mode, to compare
//! builds in the same run).
//!
//! ```text
//! cargo run --release -p courier-broker --example throughput -- [messages]
//! ```

use courier_api::*;
use courier_broker::Broker;
use std::time::Instant;

async fn run(destination: Destination, messages: u64) -> Result<f64> {
    let broker = Broker::default();
    let connection = broker.factory().create_connection().await?;
    connection.start().await?;
    let consumer_session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let consumer = consumer_session
        .create_consumer(&destination, ConsumerOptions::default())
        .await?;
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let producer = session.create_producer(Some(&destination)).await?;
    let started = Instant::now();
    let receiver = tokio::spawn(async move {
        for _ in 0..messages {
            consumer.receive().await?.expect("a message");
        }
        Ok::<_, Error>(consumer)
    });
    let body = "x".repeat(100);
    for _ in 0..messages {
        producer.send(&mut Message::text(body.as_str())).await?;
    }
    receiver.await.expect("the receiver runs")?;
    Ok(messages as f64 / started.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let messages: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let queue = run(Destination::queue("throughput"), messages).await?;
    let topic = run(Destination::topic("throughput"), messages).await?;
    println!("queue {queue:.0} msg/s, topic {topic:.0} msg/s");
    Ok(())
}
