//! What access control costs on the send path: a send and its receive through a producer
//! without a destination (checked on every send) on the default broker (anonymous,
//! unchecked) and as a user with ten rules, and through a producer with its destination
//! (checked once, when it was made).
//!
//! Run with `cargo bench -p courier-broker --bench access`.

use courier_api::{
    ConnectionFactory, Consumer, ConsumerOptions, Destination, Message, Producer, SessionMode,
};
use courier_broker::{BrokerConfig, EmbeddedFactory, Permissions, User};
use criterion::{criterion_group, criterion_main, Criterion};
use tokio::runtime::Runtime;

/// A producer (with or without its destination) and a consumer on `orders.eu.paris`,
/// connected anonymously to the default broker or as a user with ten rules.
async fn pair(restricted: bool, identified: bool) -> (Box<dyn Producer>, Box<dyn Consumer>) {
    let queue = Destination::queue("orders.eu.paris");
    let factory = if restricted {
        let mut user = User::with_password("bench", "pw").expect("user");
        for i in 0..9 {
            user = user.allow(format!("other{i}.#"), Permissions::ALL);
        }
        user = user.allow("orders.#", Permissions::SEND | Permissions::RECEIVE);
        EmbeddedFactory::new(BrokerConfig {
            users: vec![user],
            ..BrokerConfig::default()
        })
        .with_credentials("bench", "pw")
    } else {
        EmbeddedFactory::default()
    };
    let connection = factory.create_connection().await.expect("connection");
    connection.start().await.expect("start");
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .expect("session");
    let producer = session
        .create_producer(identified.then_some(&queue))
        .await
        .expect("producer");
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await
        .expect("consumer");
    (producer, consumer)
}

fn send_and_receive(c: &mut Criterion) {
    let rt = Runtime::new().expect("runtime");
    let queue = Destination::queue("orders.eu.paris");
    let mut group = c.benchmark_group("access_send_receive");
    for (label, restricted, identified) in [
        ("unidentified_anonymous", false, false),
        ("unidentified_ten_rules", true, false),
        ("identified_anonymous", false, true),
        ("identified_ten_rules", true, true),
    ] {
        let (producer, consumer) = rt.block_on(pair(restricted, identified));
        group.bench_function(label, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut m = Message::text("x");
                    if identified {
                        producer.send(&mut m).await.expect("send");
                    } else {
                        producer.send_to(&queue, &mut m).await.expect("send");
                    }
                    consumer
                        .receive_no_wait()
                        .await
                        .expect("receive")
                        .expect("the message");
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, send_and_receive);
criterion_main!(benches);
