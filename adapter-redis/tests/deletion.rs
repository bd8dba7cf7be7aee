//! Deleting plain destinations (`Session::delete_destination`) against the machine's Redis:
//! no key of a deleted queue or topic is left (messages ready, delayed and held by a
//! connection that died, equality indexes, subscriptions, durable-subscription records), a
//! destination in use is refused, and a durable-subscription record that outlived its topic
//! (a deleting client stopped between the two steps) reads as no subscription.
//! The deleting connection's heartbeat never brings its lease in a deleted destination back.

use std::time::Duration;

use courier_api::{
    Connection, ConsumerOptions, Destination, Error, Message, Result, Session, SessionMode,
};
use redis::aio::MultiplexedConnection;

fn url() -> String {
    std::env::var("COURIER_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// Short heartbeats, so a dead connection's lease lapses within a second.
fn fast_url() -> String {
    format!("{}?heartbeat=100ms", url())
}

fn unique(what: &str) -> String {
    format!("del-test-{what}-{}", uuid::Uuid::new_v4().simple())
}

async fn raw() -> MultiplexedConnection {
    redis::Client::open(url())
        .expect("a client")
        .get_multiplexed_async_connection()
        .await
        .expect("a raw connection")
}

/// Every key under a destination root (SCAN on `root*`).
async fn keys_under(c: &mut MultiplexedConnection, root: &str) -> Vec<String> {
    let pattern = format!("{}*", root.replace('{', "\\{").replace('}', "\\}"));
    let mut found = Vec::new();
    let mut cursor = 0_u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(10_000)
            .query_async(c)
            .await
            .expect("SCAN");
        found.extend(keys);
        if next == 0 {
            found.sort();
            return found;
        }
        cursor = next;
    }
}

async fn exists(c: &mut MultiplexedConnection, key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query_async::<i64>(c)
        .await
        .expect("EXISTS")
        == 1
}

fn text_with(body: &str, k: &str) -> Message {
    let mut m = Message::text(body);
    m.set_property("k", k).expect("a property");
    m
}

async fn connect(url: &str, client_id: Option<&str>) -> Result<Box<dyn Connection>> {
    let factory = courier_redis::connect(url).await?;
    let conn = factory.create_connection().await?;
    if let Some(id) = client_id {
        conn.set_client_id(id).await?;
    }
    conn.start().await?;
    Ok(conn)
}

/// A connection that receives `n` messages from `destination` (a queue, or the durable
/// subscription `name` of a topic under client id `client_id`) in client-acknowledge mode,
/// after sending `send` messages there itself, and dies holding them: its runtime goes,
/// nothing is closed.
fn die_holding(destination: Destination, durable: Option<(String, String)>, send: usize, n: usize) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let conn = connect(&fast_url(), durable.as_ref().map(|d| d.0.as_str()))
                .await
                .expect("a connection");
            let session = conn
                .create_session(SessionMode::ClientAcknowledge)
                .await
                .expect("a session");
            let consumer = match &durable {
                Some((_, name)) => session
                    .create_durable_consumer(&destination, name, ConsumerOptions::default())
                    .await
                    .expect("a durable subscriber"),
                None => session
                    .create_consumer(&destination, ConsumerOptions::default())
                    .await
                    .expect("a consumer"),
            };
            let producer = session
                .create_producer(Some(&destination))
                .await
                .expect("a producer");
            for i in 0..send {
                producer
                    .send(&mut text_with(&format!("held{i}"), "b"))
                    .await
                    .expect("sent");
            }
            for _ in 0..n {
                let m = consumer
                    .receive_timeout(Duration::from_secs(5))
                    .await
                    .expect("received");
                assert!(m.is_some(), "the dying connection holds a message");
            }
            std::mem::forget((consumer, producer, session, conn));
        })
    })
    .join()
    .expect("the dying thread");
}

/// Deletes, retrying while a dead connection's lease has not lapsed yet (`IllegalState`).
async fn delete_once_lapsed(session: &dyn Session, destination: &Destination) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match session.delete_destination(destination).await {
            Err(Error::IllegalState(_)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// Before a deletion: keys under `root` with each of `within` in their part after the root,
/// and ending with each of `ending` (so the test sees the deletion remove every kind).
fn assert_has(keys: &[String], root: &str, within: &[&str], ending: &[&str]) {
    let parts: Vec<&str> = keys.iter().filter_map(|k| k.strip_prefix(root)).collect();
    for w in within {
        assert!(
            parts.iter().any(|p| p.contains(w)),
            "a key with {w}: {keys:?}"
        );
    }
    for e in ending {
        assert!(
            parts.iter().any(|p| p.ends_with(e)),
            "a key ending {e}: {keys:?}"
        );
    }
}

fn assert_illegal_state(r: Result<()>, what: &str) {
    assert!(matches!(r, Err(Error::IllegalState(_))), "{what}: {r:?}");
}

fn assert_invalid_destination(r: Result<()>, what: &str) {
    assert!(
        matches!(r, Err(Error::InvalidDestination { .. })),
        "{what}: {r:?}"
    );
}

#[tokio::test]
async fn a_deleted_queue_leaves_no_key() -> Result<()> {
    let queue = Destination::queue(unique("q"));
    let root = courier_redis::keys::root(&queue);
    let mut c = raw().await;
    // The deleting connection used the queue before: a selector consumer (equality index).
    let admin = connect(&fast_url(), None).await?;
    let session = admin.create_session(SessionMode::AutoAcknowledge).await?;
    let producer = session.create_producer(Some(&queue)).await?;
    for (body, k) in [("a1", "a"), ("b1", "b"), ("a2", "a"), ("b2", "b")] {
        producer.send(&mut text_with(body, k)).await?;
    }
    producer.set_delivery_delay(Duration::from_secs(3600))?;
    producer.send(&mut text_with("later", "a")).await?;
    producer.set_delivery_delay(Duration::ZERO)?;
    let selective = session
        .create_consumer(&queue, ConsumerOptions::selector("k = 'a'"))
        .await?;
    let m = selective.receive_timeout(Duration::from_secs(5)).await?;
    assert_eq!(m.as_ref().and_then(|m| m.body_text()), Some("a1"));
    selective.close().await?;
    // A connection that died holding two messages.
    die_holding(queue.clone(), None, 2, 2);

    // In use: a consumer on another connection; a live connection holding a message.
    let other = connect(&url(), None).await?;
    let busy = other.create_session(SessionMode::ClientAcknowledge).await?;
    let consumer = busy
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    assert_illegal_state(
        session.delete_destination(&queue).await,
        "a queue with a consumer on another connection",
    );
    assert!(consumer
        .receive_timeout(Duration::from_secs(5))
        .await?
        .is_some());
    consumer.close().await?;
    assert_illegal_state(
        session.delete_destination(&queue).await,
        "a queue with a message held unacknowledged",
    );
    other.close().await?;

    let before = keys_under(&mut c, &root).await;
    assert_has(
        &before,
        &root,
        &[":seq", ":m:", ":hs", ":h:", ":ix", ":x:k:", ":xk"],
        &[":r", ":d"],
    );
    delete_once_lapsed(session.as_ref(), &queue).await?;
    let left = keys_under(&mut c, &root).await;
    assert!(left.is_empty(), "keys of the deleted queue: {left:?}");
    // Nor does the deleting connection's heartbeat bring its lease back.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let left = keys_under(&mut c, &root).await;
    assert!(left.is_empty(), "keys of the deleted queue later: {left:?}");
    assert_invalid_destination(
        session.delete_destination(&queue).await,
        "the queue is gone",
    );

    // The same connection uses it afresh: a selector consumer indexes again, nothing old.
    producer.send(&mut text_with("new-b", "b")).await?;
    producer.send(&mut text_with("new-a", "a")).await?;
    let selective = session
        .create_consumer(&queue, ConsumerOptions::selector("k = 'a'"))
        .await?;
    let m = selective.receive_timeout(Duration::from_secs(5)).await?;
    assert_eq!(m.as_ref().and_then(|m| m.body_text()), Some("new-a"));
    assert!(selective
        .receive_timeout(Duration::from_millis(200))
        .await?
        .is_none());
    selective.close().await?;
    let all = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let m = all.receive_timeout(Duration::from_secs(5)).await?;
    assert_eq!(m.as_ref().and_then(|m| m.body_text()), Some("new-b"));
    assert!(all
        .receive_timeout(Duration::from_millis(200))
        .await?
        .is_none());
    all.close().await?;
    session.delete_destination(&queue).await?;
    admin.close().await?;
    let left = keys_under(&mut c, &root).await;
    assert!(left.is_empty(), "keys of the queue deleted again: {left:?}");
    Ok(())
}

#[tokio::test]
async fn a_deleted_topic_leaves_no_key_nor_durable_subscription() -> Result<()> {
    let topic = Destination::topic(unique("t"));
    let root = courier_redis::keys::root(&topic);
    let (cid, dead_cid) = (unique("cid"), unique("dead-cid"));
    let mut c = raw().await;
    let conn = connect(&fast_url(), Some(&cid)).await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    // A durable subscription with a selector (equality index), a shared durable one.
    let keep = session
        .create_durable_consumer(&topic, "keep", ConsumerOptions::selector("k = 'b'"))
        .await?;
    keep.close().await?;
    let shared = session
        .create_shared_durable_consumer(&topic, "shared", ConsumerOptions::default())
        .await?;
    shared.close().await?;
    // A durable subscriber that dies holding one of the three messages it sends.
    die_holding(topic.clone(), Some((dead_cid.clone(), "dead".into())), 3, 1);
    let producer = session.create_producer(Some(&topic)).await?;
    producer.set_delivery_delay(Duration::from_secs(3600))?;
    producer.send(&mut text_with("later", "b")).await?;
    let records = [
        courier_redis::keys::durable(&cid, "keep"),
        courier_redis::keys::durable(&cid, "shared"),
        courier_redis::keys::durable(&dead_cid, "dead"),
    ];
    for record in &records {
        assert!(exists(&mut c, record).await, "{record} before the deletion");
    }
    let before = keys_under(&mut c, &root).await;
    assert_has(
        &before,
        &root,
        &[":subs", ":m:", ":s:d:", ":s:sd:", ":h:", ":ix", ":x:k:"],
        &[":r", ":d"],
    );

    // In use while a subscription has a consumer.
    let keep = session
        .create_durable_consumer(&topic, "keep", ConsumerOptions::selector("k = 'b'"))
        .await?;
    assert_illegal_state(
        session.delete_destination(&topic).await,
        "a topic with a durable subscriber",
    );
    keep.close().await?;
    delete_once_lapsed(session.as_ref(), &topic).await?;
    let left = keys_under(&mut c, &root).await;
    assert!(left.is_empty(), "keys of the deleted topic: {left:?}");
    for record in &records {
        assert!(!exists(&mut c, record).await, "{record} after the deletion");
    }
    assert_invalid_destination(
        session.delete_destination(&topic).await,
        "the topic is gone",
    );
    assert_invalid_destination(
        session.unsubscribe("keep").await,
        "the subscription went with its topic",
    );

    // Made again under the name: empty, and it receives what is published from now on.
    let keep = session
        .create_durable_consumer(&topic, "keep", ConsumerOptions::default())
        .await?;
    assert!(keep
        .receive_timeout(Duration::from_millis(200))
        .await?
        .is_none());
    producer.set_delivery_delay(Duration::ZERO)?;
    producer.send(&mut text_with("fresh", "a")).await?;
    let m = keep.receive_timeout(Duration::from_secs(5)).await?;
    assert_eq!(m.as_ref().and_then(|m| m.body_text()), Some("fresh"));
    keep.close().await?;
    session.unsubscribe("keep").await?;
    session.delete_destination(&topic).await?;
    conn.close().await?;
    let left = keys_under(&mut c, &root).await;
    assert!(left.is_empty(), "keys of the topic deleted again: {left:?}");
    Ok(())
}

/// A deletion stopped after its script and before it removed the durable-subscription
/// records leaves a record naming a subscription that is gone: it reads as none.
#[tokio::test]
async fn a_record_that_outlived_its_topic_is_no_subscription() -> Result<()> {
    let topic = Destination::topic(unique("stale"));
    let cid = unique("cid");
    let record = courier_redis::keys::durable(&cid, "s");
    let mut c = raw().await;
    let conn = connect(&url(), Some(&cid)).await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let sub = session
        .create_durable_consumer(&topic, "s", ConsumerOptions::default())
        .await?;
    sub.close().await?;
    let producer = session.create_producer(Some(&topic)).await?;
    producer.send(&mut Message::text("old")).await?;
    let value: String = redis::cmd("GET")
        .arg(&record)
        .query_async(&mut c)
        .await
        .expect("the record");
    session.delete_destination(&topic).await?;
    let restore = |c: &mut MultiplexedConnection| {
        let mut c = c.clone();
        let (record, value) = (record.clone(), value.clone());
        async move {
            let _: () = redis::cmd("SET")
                .arg(&record)
                .arg(&value)
                .query_async(&mut c)
                .await
                .expect("SET");
        }
    };

    restore(&mut c).await;
    assert_invalid_destination(
        session.unsubscribe("s").await,
        "unsubscribing a record whose subscription is gone",
    );
    assert!(
        !exists(&mut c, &record).await,
        "the stale record is removed"
    );

    // Another sharing under the name is no conflict with a subscription that is gone.
    restore(&mut c).await;
    let shared = session
        .create_shared_durable_consumer(&topic, "s", ConsumerOptions::default())
        .await?;
    assert!(shared
        .receive_timeout(Duration::from_millis(200))
        .await?
        .is_none());
    shared.close().await?;
    session.unsubscribe("s").await?;

    // The same subscription made again is made afresh, empty.
    producer.send(&mut Message::text("unseen")).await?;
    restore(&mut c).await;
    let again = session
        .create_durable_consumer(&topic, "s", ConsumerOptions::default())
        .await?;
    assert!(again
        .receive_timeout(Duration::from_millis(200))
        .await?
        .is_none());
    again.close().await?;
    session.unsubscribe("s").await?;
    let _ = session.delete_destination(&topic).await;
    conn.close().await
}

/// Deletions racing the deleting connection's heartbeat (the shortest, 50 ms): a renewal
/// built before a deletion and sent after it must not bring the deleted lease back. Twenty
/// queues at a time, so that heartbeats land inside deletions often.
#[tokio::test]
async fn a_heartbeat_never_brings_a_deleted_lease_back() -> Result<()> {
    let prefix = unique("race");
    let mut c = raw().await;
    let conn = connect(&format!("{}?heartbeat=50ms", url()), None).await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queues: Vec<Destination> = (0..20)
        .map(|k| Destination::queue(format!("{prefix}-{k}")))
        .collect();
    // Every key of every queue: the common part of their roots, before the name's end.
    let all = courier_redis::keys::root(&Destination::queue(&prefix));
    let all = all.strip_suffix('}').expect("a root ends its hash tag");
    for round in 0..60 {
        for queue in &queues {
            // A consumer opening sets this connection's lease in the queue.
            let consumer = session
                .create_consumer(queue, ConsumerOptions::default())
                .await?;
            consumer.close().await?;
        }
        assert!(
            !keys_under(&mut c, all).await.is_empty(),
            "the queues exist"
        );
        let deletions = queues.iter().map(|q| session.delete_destination(q));
        for deleted in futures::future::join_all(deletions).await {
            deleted?;
        }
        let left = keys_under(&mut c, all).await;
        assert!(left.is_empty(), "round {round}: keys left: {left:?}");
    }
    conn.close().await
}

/// A deleted temporary queue keeps no lease of its connection: the heartbeat stops renewing
/// it (it used to bring the lease back every beat until the connection closed).
#[tokio::test]
async fn a_deleted_temporary_queue_keeps_no_lease() -> Result<()> {
    let mut c = raw().await;
    let conn = connect(&format!("{}?heartbeat=50ms", url()), None).await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let temporary = session.create_temporary_queue().await?;
    let root = courier_redis::keys::root(&temporary);
    let consumer = session
        .create_consumer(&temporary, ConsumerOptions::default())
        .await?;
    consumer.close().await?;
    assert!(
        !keys_under(&mut c, &root).await.is_empty(),
        "the queue exists"
    );
    session.delete_temporary(&temporary).await?;
    // Three heartbeats later.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let left = keys_under(&mut c, &root).await;
    assert!(
        left.is_empty(),
        "keys of the deleted temporary queue: {left:?}"
    );
    conn.close().await
}
