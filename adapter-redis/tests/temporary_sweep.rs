//! The keys of a temporary destination whose connection crashed are deleted by the lease
//! sweep of the connections still alive, against the machine's Redis.

use courier_api::{Destination, Message, SessionMode};
use std::time::Duration;

fn url() -> String {
    std::env::var("COURIER_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// The keys under a destination root (SCAN).
async fn keys_under(c: &mut redis::aio::MultiplexedConnection, root: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut cursor = 0_u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{}*", root.replace('{', "\\{").replace('}', "\\}")))
            .arg("COUNT")
            .arg(10_000)
            .query_async(c)
            .await
            .expect("SCAN");
        found.extend(keys);
        if next == 0 {
            return found;
        }
        cursor = next;
    }
}

/// A connection that makes a temporary queue and a temporary topic with a subscriber, sends
/// to both, then dies without closing: its runtime is dropped (its socket with it).
fn crash_with_temporaries(url: String) -> (Destination, Destination) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let factory = courier_redis::connect(&url).await.expect("a factory");
            let conn = factory.create_connection().await.expect("a connection");
            let session = conn
                .create_session(SessionMode::ClientAcknowledge)
                .await
                .expect("a session");
            let queue = session.create_temporary_queue().await.expect("a queue");
            let topic = session.create_temporary_topic().await.expect("a topic");
            let subscriber = session
                .create_consumer(&topic, Default::default())
                .await
                .expect("a subscriber");
            let producer = session.create_producer(None).await.expect("a producer");
            for destination in [&queue, &topic] {
                for i in 0..3 {
                    producer
                        .send_to(destination, &mut Message::text(format!("m{i}")))
                        .await
                        .expect("sent");
                }
            }
            conn.start().await.expect("started");
            let held = subscriber.receive_no_wait().await.expect("received");
            assert!(held.is_some(), "the subscriber holds a message in flight");
            // A crash: nothing is closed, the runtime (and its socket) just goes away.
            std::mem::forget((subscriber, producer, session, conn, factory));
            (queue, topic)
        })
    })
    .join()
    .expect("the crashing thread")
}

#[tokio::test]
async fn a_crashed_connections_temporary_destinations_are_deleted() -> courier_api::Result<()> {
    let url = format!("{}?heartbeat=100ms", url());
    let (queue, topic) = crash_with_temporaries(url.clone());
    let roots = [
        courier_redis::keys::root(&queue),
        courier_redis::keys::root(&topic),
    ];
    let client = redis::Client::open(self::url()).expect("a client");
    let mut raw = client
        .get_multiplexed_async_connection()
        .await
        .expect("a raw connection");
    for root in &roots {
        let keys = keys_under(&mut raw, root).await;
        assert!(
            keys.iter().any(|k| k.contains(":m:")),
            "{root} has its messages before the sweep: {keys:?}"
        );
    }
    // A live connection's heartbeat sweeps.
    let factory = courier_redis::connect(&url).await?;
    let alive = factory.create_connection().await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut left = Vec::new();
        for root in &roots {
            left.extend(keys_under(&mut raw, root).await);
            let registered: bool = redis::cmd("HEXISTS")
                .arg(courier_redis::keys::TEMPORARIES)
                .arg(root)
                .query_async(&mut raw)
                .await
                .expect("HEXISTS");
            if registered {
                left.push(format!("registry entry of {root}"));
            }
        }
        if left.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the crashed connection's temporary destinations were not deleted: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Sending to them is still refused.
    let session = alive.create_session(SessionMode::AutoAcknowledge).await?;
    let producer = session.create_producer(Some(&queue)).await?;
    let refused = producer.send(&mut Message::text("late")).await;
    assert!(
        refused.is_err(),
        "a send to a swept temporary queue: {refused:?}"
    );
    alive.close().await
}
