//! What the statistics cost: a send and receive through the embedded broker (whose hot paths
//! bump the per-destination counters) against one [`Broker::snapshot`] of a broker holding
//! 1000 queues (what a `/metrics` scrape or `courier stats` pays). The ratio says how many
//! messages' worth of work a scrape takes.
//!
//! Run with `cargo bench -p courier-broker --bench stats`.

use courier_api::{ConnectionFactory, ConsumerOptions, Destination, Message, SessionMode};
use courier_broker::{Broker, BrokerConfig};
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;

fn stats(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let broker = Broker::new(BrokerConfig::default());
    let (producer, consumer, _connection) = rt.block_on(async {
        let connection = broker
            .factory()
            .create_connection()
            .await
            .expect("connection");
        connection.start().await.expect("start");
        let session = connection
            .create_session(SessionMode::AutoAcknowledge)
            .await
            .expect("session");
        let queue = Destination::queue("bench");
        let consumer = session
            .create_consumer(&queue, ConsumerOptions::default())
            .await
            .expect("consumer");
        let producer = session
            .create_producer(Some(&queue))
            .await
            .expect("producer");
        (producer, consumer, connection)
    });
    let mut group = c.benchmark_group("stats");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("send_and_receive_one_message", |b| {
        b.iter(|| {
            rt.block_on(async {
                producer
                    .send(&mut Message::text("x".repeat(100)))
                    .await
                    .expect("send");
                consumer
                    .receive()
                    .await
                    .expect("receive")
                    .expect("a message");
            })
        })
    });
    let full = Broker::new(BrokerConfig::default());
    rt.block_on(async {
        let connection = full
            .factory()
            .create_connection()
            .await
            .expect("connection");
        let session = connection
            .create_session(SessionMode::AutoAcknowledge)
            .await
            .expect("session");
        let producer = session.create_producer(None).await.expect("producer");
        for i in 0..1000 {
            producer
                .send_to(
                    &Destination::queue(format!("q{i}")),
                    &mut Message::text("x"),
                )
                .await
                .expect("send");
        }
    });
    group.bench_function("snapshot_of_1000_queues", |b| {
        b.iter(|| full.snapshot().destinations.len())
    });
    group.finish();
}

criterion_group!(benches, stats);
criterion_main!(benches);
