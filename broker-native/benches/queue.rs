//! Queue costs that must not grow faster than the work (issue 12): putting a big batch back
//! into a deep queue, sending while consumers wait (an expensive selector; thousands of
//! selector consumers), and creating many consumers in one session.
//!
//! Run with `cargo bench -p courier-broker --bench queue`.

use courier_api::{
    Connection, ConnectionFactory, Consumer, ConsumerOptions, Destination, Message, Producer,
    Session, SessionMode,
};
use courier_broker::{BrokerConfig, EmbeddedFactory};
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A started connection on a fresh broker that never dead-letters.
async fn connect() -> Box<dyn Connection> {
    let factory = EmbeddedFactory::new(BrokerConfig {
        max_delivery_attempts: None,
        ..BrokerConfig::default()
    });
    let connection = factory.create_connection().await.expect("connection");
    connection.start().await.expect("start");
    connection
}

async fn send_n(producer: &dyn Producer, n: usize) {
    for i in 0..n {
        let mut m = Message::text("x".repeat(100));
        m.set_property("i", i as i64).expect("property");
        producer.send(&mut m).await.expect("send");
    }
}

/// Rollback of `BATCH` received messages into a queue holding `REST` more: every message
/// goes back to its place ahead of the rest (issue 12.10).
fn rollback_batch_into_deep_queue(c: &mut Criterion) {
    const BATCH: usize = 30_000;
    const REST: usize = 60_000;
    let rt = runtime();
    let (session, consumer, _connection) = rt.block_on(async {
        let connection = connect().await;
        let queue = Destination::queue("deep");
        let sender = connection
            .create_session(SessionMode::AutoAcknowledge)
            .await
            .expect("session");
        let producer = sender
            .create_producer(Some(&queue))
            .await
            .expect("producer");
        send_n(&*producer, BATCH + REST).await;
        let session = connection
            .create_session(SessionMode::Transacted)
            .await
            .expect("session");
        let consumer = session
            .create_consumer(&queue, ConsumerOptions::default())
            .await
            .expect("consumer");
        (session, consumer, connection)
    });
    let mut group = c.benchmark_group("rollback");
    group.sample_size(10);
    group.bench_function("30k_into_60k_deep_queue", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    for _ in 0..BATCH {
                        consumer
                            .receive_no_wait()
                            .await
                            .expect("receive")
                            .expect("a message");
                    }
                    let started = Instant::now();
                    session.rollback().await.expect("rollback");
                    total += started.elapsed();
                }
                total
            })
        })
    });
    group.finish();
}

/// Spawns a consumer task that waits in `receive` (and receives again after each message)
/// until the connection closes.
fn spawn_waiting(consumer: Box<dyn Consumer>, session: Box<dyn Session>) {
    tokio::spawn(async move {
        while let Ok(Some(_)) = consumer.receive().await {}
        drop(session);
    });
}

/// A send while one consumer waits with a selector that is costly to evaluate (a LIKE with
/// a 1000-character pattern) and the message has a 100 kB property it looks at, which the
/// pattern nearly matches everywhere
/// (issue 12.11): the sender must not evaluate it.
fn send_with_costly_selector_waiting(c: &mut Criterion) {
    let rt = runtime();
    let (producer, _sender, connection) = rt.block_on(async {
        let connection = connect().await;
        let queue = Destination::queue("costly");
        let session = connection
            .create_session(SessionMode::AutoAcknowledge)
            .await
            .expect("session");
        // Every position of the property matches the pattern for ~1000 characters before
        // failing at the final 'x': the costliest case for a LIKE matcher.
        let pattern = format!("%{}x%", "ab".repeat(500));
        let consumer = session
            .create_consumer(
                &queue,
                ConsumerOptions::selector(format!("big LIKE '{pattern}'")),
            )
            .await
            .expect("consumer");
        spawn_waiting(consumer, session);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let sender = connection
            .create_session(SessionMode::AutoAcknowledge)
            .await
            .expect("session");
        let producer = sender
            .create_producer(Some(&queue))
            .await
            .expect("producer");
        (producer, sender, connection)
    });
    let big = "ab".repeat(50_000);
    let mut group = c.benchmark_group("send_waiting");
    group.sample_size(10);
    group.bench_function("costly_like_selector_100kB_property", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut m = Message::text("x");
                    m.set_property("big", big.as_str()).expect("property");
                    let started = Instant::now();
                    producer.send(&mut m).await.expect("send");
                    total += started.elapsed();
                }
                total
            })
        })
    });
    group.finish();
    rt.block_on(async { connection.close().await.expect("close") });
}

/// A send while 5 000 consumers wait, each selecting its own `JMSCorrelationID`, for a
/// message none of them selects (issue 12.12): the wakeup search must not visit them all.
fn send_with_many_keyed_waiters(c: &mut Criterion) {
    const WAITERS: usize = 5_000;
    let rt = runtime();
    let queue = Destination::queue("keyed");
    let (producer, drain, _sender, connection) = rt.block_on(async {
        let connection = connect().await;
        for i in 0..WAITERS {
            let session = connection
                .create_session(SessionMode::AutoAcknowledge)
                .await
                .expect("session");
            let consumer = session
                .create_consumer(
                    &queue,
                    ConsumerOptions::selector(format!("JMSCorrelationID = 'c{i}'")),
                )
                .await
                .expect("consumer");
            spawn_waiting(consumer, session);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let sender = connection
            .create_session(SessionMode::AutoAcknowledge)
            .await
            .expect("session");
        let producer = sender
            .create_producer(Some(&queue))
            .await
            .expect("producer");
        let drain = sender
            .create_consumer(
                &queue,
                ConsumerOptions::selector("JMSCorrelationID = 'none'"),
            )
            .await
            .expect("consumer");
        (producer, drain, sender, connection)
    });
    let mut group = c.benchmark_group("send_waiting");
    group.bench_function("5000_keyed_waiters_no_match", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut m = Message::text("x");
                    m.set_correlation_id("none").expect("correlation id");
                    let started = Instant::now();
                    producer.send(&mut m).await.expect("send");
                    total += started.elapsed();
                }
                // Keep the queue short between samples.
                while drain.receive_no_wait().await.expect("drain").is_some() {}
                total
            })
        })
    });
    group.finish();
    rt.block_on(async { connection.close().await.expect("close") });
}

/// Creating 20 000 consumers in one session (issue 12.12).
fn create_many_consumers_in_one_session(c: &mut Criterion) {
    const CONSUMERS: usize = 20_000;
    let rt = runtime();
    let mut group = c.benchmark_group("create_consumers");
    group.sample_size(10);
    group.bench_function("20000_in_one_session", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let connection = connect().await;
                    let session = connection
                        .create_session(SessionMode::AutoAcknowledge)
                        .await
                        .expect("session");
                    let queue = Destination::queue("many");
                    let mut consumers = Vec::with_capacity(CONSUMERS);
                    let started = Instant::now();
                    for _ in 0..CONSUMERS {
                        consumers.push(
                            session
                                .create_consumer(&queue, ConsumerOptions::default())
                                .await
                                .expect("consumer"),
                        );
                    }
                    total += started.elapsed();
                    drop(consumers);
                    connection.close().await.expect("close");
                }
                total
            })
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    rollback_batch_into_deep_queue,
    send_with_costly_selector_waiting,
    send_with_many_keyed_waiters,
    create_many_consumers_in_one_session
);
criterion_main!(benches);
