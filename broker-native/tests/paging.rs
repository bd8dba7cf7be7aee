//! Paging of a durable broker: a persistent backlog past the paging threshold keeps only stubs
//! in memory and is delivered whole, in order, to plain and selector consumers and browsers,
//! after a restart and after compaction, with the memory account under its limit.

use courier_api::*;
use courier_broker::storage::{open_broker, JournalOptions, JournalStore};
use courier_broker::{Broker, BrokerConfig, DestinationPolicy, WhenFull};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Generous bound for something that must happen (never reached unless broken).
const PATIENCE: Duration = Duration::from_secs(10);
/// Messages in the backlog.
const COUNT: i64 = 600;
/// Body size: the backlog's bodies (2.4 MB) are four times the memory limit.
const BODY: usize = 4096;
/// The memory limit; sends fail when it is reached.
const MAX_MEMORY: usize = 600 * 1024;
/// The paging threshold.
const THRESHOLD: usize = 64 * 1024;

/// No paging at all.
const NEVER: usize = usize::MAX;

fn config(threshold: usize) -> BrokerConfig {
    BrokerConfig {
        max_memory: MAX_MEMORY,
        paging_threshold: Some(threshold),
        default_policy: DestinationPolicy {
            when_full: WhenFull::Fail,
            ..DestinationPolicy::default()
        },
        ..BrokerConfig::default()
    }
}

fn options() -> JournalOptions {
    JournalOptions {
        // Small segments: consuming part of the backlog leaves sparse ones to compact.
        segment_size: 256 * 1024,
        ..JournalOptions::default()
    }
}

fn open(dir: &Path, threshold: usize) -> (Broker, Arc<JournalStore>) {
    let (broker, store, _) = open_broker(dir, config(threshold), options()).expect("a broker");
    (broker, store)
}

fn body(n: i64) -> String {
    let mut text = format!("message {n} ");
    while text.len() < BODY {
        text.push_str(&n.to_string());
    }
    text
}

fn color(n: i64) -> &'static str {
    ["red", "green", "blue"][(n % 3) as usize]
}

async fn session(broker: &Broker, mode: SessionMode) -> (Box<dyn Connection>, Box<dyn Session>) {
    let connection = broker.factory().create_connection().await.unwrap();
    connection.start().await.unwrap();
    let session = connection.create_session(mode).await.unwrap();
    (connection, session)
}

/// Sends messages `range` to `queue`, persistent, each awaited.
async fn send(broker: &Broker, queue: &Destination, range: std::ops::Range<i64>) -> Result<()> {
    let (_c, session) = session(broker, SessionMode::AutoAcknowledge).await;
    let producer = session.create_producer(Some(queue)).await?;
    for n in range {
        let mut m = Message::text(body(n));
        m.set_property("n", n)?;
        m.set_property("color", color(n))?;
        m.set_property("tenth", n % 10 == 0)?;
        producer.send(&mut m).await?;
    }
    Ok(())
}

/// Checks a received message is `n`, whole.
fn check(m: &Message, n: i64) {
    assert_eq!(m.property::<i64>("n").unwrap(), Some(n));
    assert_eq!(
        m.property::<String>("color").unwrap().as_deref(),
        Some(color(n))
    );
    assert_eq!(m.body_text(), Some(body(n).as_str()), "body of {n}");
}

/// Receives the numbers `expected`, in that order, whole; then nothing more.
async fn receive(consumer: &dyn Consumer, expected: impl Iterator<Item = i64>) {
    for n in expected {
        let m = consumer
            .receive_timeout(PATIENCE)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("message {n} never came"));
        check(&m, n);
    }
}

async fn receive_all(broker: &Broker, queue: &Destination, expected: impl Iterator<Item = i64>) {
    let (_c, session) = session(broker, SessionMode::AutoAcknowledge).await;
    let consumer = session
        .create_consumer(queue, ConsumerOptions::default())
        .await
        .unwrap();
    receive(consumer.as_ref(), expected).await;
    assert!(consumer.receive_no_wait().await.unwrap().is_none());
}

#[tokio::test]
async fn a_backlog_past_the_memory_limit_fits_paged_and_is_delivered_whole_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, _store) = open(dir.path(), THRESHOLD);
    let queue = Destination::queue("paged.order");
    send(&broker, &queue, 0..COUNT).await.unwrap();
    let stats = broker.stats();
    assert_eq!(stats.stored_messages, COUNT as usize);
    assert!(
        stats.stored_bytes <= MAX_MEMORY,
        "{} bytes charged over {MAX_MEMORY}",
        stats.stored_bytes
    );
    // Only the messages before the threshold are whole: the rest are charged as stubs.
    assert!(stats.stored_bytes < THRESHOLD + 2 * BODY + COUNT as usize * 1024);
    receive_all(&broker, &queue, 0..COUNT).await;
    assert_eq!(broker.stats().stored_bytes, 0);
}

#[tokio::test]
async fn without_paging_the_same_backlog_meets_the_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, _store) = open(dir.path(), NEVER);
    let queue = Destination::queue("unpaged");
    let err = send(&broker, &queue, 0..COUNT).await.unwrap_err();
    assert!(matches!(err, Error::FlowControl(_)), "{err:?}");
}

#[tokio::test]
async fn selectors_find_paged_messages_through_the_index_and_by_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, _store) = open(dir.path(), THRESHOLD);
    let queue = Destination::queue("paged.select");
    send(&broker, &queue, 0..COUNT).await.unwrap();
    let (_c, session) = session(&broker, SessionMode::AutoAcknowledge).await;
    // An equality the queue indexes (from the second take on).
    let blue = session
        .create_consumer(&queue, ConsumerOptions::selector("color = 'blue'"))
        .await
        .unwrap();
    receive(blue.as_ref(), (0..COUNT).filter(|n| color(*n) == "blue")).await;
    assert!(blue.receive_no_wait().await.unwrap().is_none());
    // A range: evaluated on the stubs.
    let late = session
        .create_consumer(&queue, ConsumerOptions::selector("n >= 550"))
        .await
        .unwrap();
    receive(late.as_ref(), (550..COUNT).filter(|n| color(*n) != "blue")).await;
    assert!(late.receive_no_wait().await.unwrap().is_none());
    // A browser with a selector sees whole messages too.
    let browser = session
        .create_browser(&queue, Some("color = 'red' AND n < 100"))
        .await
        .unwrap();
    let seen = browser.collect_all().await.unwrap();
    let expected: Vec<i64> = (0..100).filter(|n| color(*n) == "red").collect();
    assert_eq!(seen.len(), expected.len());
    for (m, n) in seen.iter().zip(expected) {
        check(m, n);
    }
    receive_all(&broker, &queue, (0..550).filter(|n| color(*n) != "blue")).await;
}

#[tokio::test]
async fn a_paged_message_redelivered_reads_back_again() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, _store) = open(dir.path(), THRESHOLD);
    let queue = Destination::queue("paged.recover");
    send(&broker, &queue, 0..COUNT).await.unwrap();
    let (_c, session) = session(&broker, SessionMode::ClientAcknowledge).await;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::selector("n >= 590"))
        .await
        .unwrap();
    receive(consumer.as_ref(), 590..595).await;
    session.recover().await.unwrap();
    let again = consumer.receive_timeout(PATIENCE).await.unwrap().unwrap();
    check(&again, 590);
    assert!(again.redelivered());
    session.acknowledge().await.unwrap();
}

#[tokio::test]
async fn a_paged_backlog_survives_restart_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Destination::queue("paged.restart");
    {
        let (broker, store) = open(dir.path(), THRESHOLD);
        send(&broker, &queue, 0..COUNT).await.unwrap();
        drop(broker);
        store.journal().close();
    }
    let (broker, store) = open(dir.path(), THRESHOLD);
    let stats = broker.stats();
    assert_eq!(stats.stored_messages, COUNT as usize);
    assert!(
        stats.stored_bytes <= MAX_MEMORY,
        "replay restored {} bytes over {MAX_MEMORY}",
        stats.stored_bytes
    );
    // Consume most of each segment's messages (all but every tenth).
    {
        let (_c, session) = session(&broker, SessionMode::AutoAcknowledge).await;
        let consumer = session
            .create_consumer(&queue, ConsumerOptions::selector("tenth = FALSE"))
            .await
            .unwrap();
        receive(consumer.as_ref(), (0..COUNT).filter(|n| n % 10 != 0)).await;
    }
    // The acknowledgements are written: compaction then moves the live tenth.
    let before = store.journal().stats().segments;
    let compactions = wait_for_compaction(&store).await;
    assert!(compactions > 0, "nothing compacted ({before} segments)");
    let rest: Vec<i64> = (0..COUNT).filter(|n| n % 10 == 0).collect();
    // Half of the rest now, read back from the compacted segment.
    receive_all_some(&broker, &queue, &rest[..30]).await;
    drop(broker);
    store.journal().close();
    // And after a restart, from the compacted journal.
    let (broker, _store) = open(dir.path(), THRESHOLD);
    receive_all(&broker, &queue, rest[30..].iter().copied()).await;
}

/// Waits until the acknowledgements are on disk and something was compacted (running
/// maintenance now too); returns the compactions done.
async fn wait_for_compaction(store: &JournalStore) -> u64 {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        // In the background, or now.
        let n = store.journal().maintain().unwrap() + store.journal().stats().compactions;
        if n > 0 || tokio::time::Instant::now() >= deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Receives exactly the numbers `expected` (a prefix of what is there), acknowledging them.
async fn receive_all_some(broker: &Broker, queue: &Destination, expected: &[i64]) {
    let (_c, session) = session(broker, SessionMode::AutoAcknowledge).await;
    let consumer = session
        .create_consumer(queue, ConsumerOptions::default())
        .await
        .unwrap();
    receive(consumer.as_ref(), expected.iter().copied()).await;
    consumer.close().await.unwrap();
}

#[tokio::test]
async fn paged_copies_of_a_topic_message_reach_every_durable_subscription() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, _store) = open(dir.path(), THRESHOLD);
    let topic = Destination::topic("paged.topic");
    let connection = broker
        .factory()
        .with_client_id("pager")
        .unwrap()
        .create_connection()
        .await
        .unwrap();
    connection.start().await.unwrap();
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    let a = session
        .create_durable_consumer(&topic, "a", ConsumerOptions::default())
        .await
        .unwrap();
    let b = session
        .create_durable_consumer(&topic, "b", ConsumerOptions::selector("color = 'green'"))
        .await
        .unwrap();
    send(&broker, &topic, 0..200).await.unwrap();
    assert!(broker.stats().stored_bytes <= MAX_MEMORY);
    receive(a.as_ref(), 0..200).await;
    receive(b.as_ref(), (0..200).filter(|n| color(*n) == "green")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_messages_taken_before_their_record_is_written_read_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, _store) = open(dir.path(), 0);
    let queue = Destination::queue("paged.race");
    let (_c, session) = session(&broker, SessionMode::AutoAcknowledge).await;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await
        .unwrap();
    // Every message paged (threshold 0). Eight producers at once: their sends share fsyncs, and the consumer, already waiting,
    // takes each message as it arrives — usually before its batch is on disk.
    let producers: Vec<_> = (0..8i64)
        .map(|p| {
            let broker = broker.clone();
            let queue = queue.clone();
            tokio::spawn(async move { send(&broker, &queue, p * 50..p * 50 + 50).await })
        })
        .collect();
    let mut next = [0i64; 8];
    for _ in 0..400 {
        let m = consumer
            .receive_timeout(PATIENCE)
            .await
            .unwrap()
            .expect("a message");
        let n = m.property::<i64>("n").unwrap().unwrap();
        let p = (n / 50) as usize;
        assert_eq!(n, p as i64 * 50 + next[p], "producer {p}'s order");
        next[p] += 1;
        check(&m, n);
    }
    for p in producers {
        p.await.unwrap().unwrap();
    }
    assert_eq!(broker.stats().stored_messages, 0);
}

#[tokio::test]
async fn paged_messages_sent_in_transactions_read_back_whole_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Destination::queue("paged.tx");
    {
        let (broker, store) = open(dir.path(), 0);
        let (_c, session) = session(&broker, SessionMode::Transacted).await;
        let producer = session.create_producer(Some(&queue)).await.unwrap();
        for n in 0..120 {
            let mut m = Message::text(body(n));
            m.set_property("n", n).unwrap();
            m.set_property("color", color(n)).unwrap();
            producer.send(&mut m).await.unwrap();
            if n % 40 == 39 {
                session.commit().await.unwrap();
            }
        }
        drop(broker);
        store.journal().close();
    }
    // Every message paged at start-up, read back from three commit records.
    let (broker, _store) = open(dir.path(), 0);
    receive_all(&broker, &queue, 0..120).await;
}
