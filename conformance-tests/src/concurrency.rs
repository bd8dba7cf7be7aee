//! Concurrency (Jakarta Messaging 3.1 §6.2.9, §4.2): many producers and consumers on their own
//! sessions at once — every message exactly once, per-producer order kept.
use courier_api::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Harness;

/// How long a consumer task polls before checking whether everything has arrived.
const POLL: Duration = Duration::from_millis(100);

/// Spawns a producer task that sends `count` messages tagged `producer = id`, `seq = 0..count`
/// on its own session.
fn spawn_producer(
    session: Box<dyn Session>,
    destination: Destination,
    id: i32,
    count: i32,
) -> tokio::task::JoinHandle<Result<()>> {
    tokio::spawn(async move {
        let producer = session.create_producer(Some(&destination)).await?;
        for seq in 0..count {
            let mut m = Message::text(format!("p{id}-{seq}"));
            m.set_property("producer", id)?;
            m.set_property("seq", seq)?;
            producer.send(&mut m).await?;
        }
        session.close().await
    })
}

/// Spawns a consumer task on its own session that receives until `received` reaches `stop_at`
/// (or nothing arrives for `idle`, the harness's wait) and returns the `(producer, seq)` pairs in
/// arrival order.
fn spawn_consumer(
    session: Box<dyn Session>,
    consumer: Box<dyn Consumer>,
    received: Arc<AtomicUsize>,
    stop_at: usize,
    idle: Duration,
) -> tokio::task::JoinHandle<Result<Vec<(i32, i32)>>> {
    tokio::spawn(async move {
        let mut got = Vec::new();
        let mut idle_since = Instant::now();
        while received.load(Ordering::SeqCst) < stop_at && idle_since.elapsed() < idle {
            if let Some(m) = consumer.receive_timeout(POLL).await? {
                let p = m.property::<i32>("producer")?.expect("producer property");
                let s = m.property::<i32>("seq")?.expect("seq property");
                got.push((p, s));
                received.fetch_add(1, Ordering::SeqCst);
                idle_since = Instant::now();
            }
        }
        consumer.close().await?;
        session.close().await?;
        Ok(got)
    })
}

/// Asserts that each producer's messages appear in `got` in strictly increasing `seq`.
fn assert_per_producer_order(got: &[(i32, i32)], who: &str) {
    let mut last: BTreeMap<i32, i32> = BTreeMap::new();
    for &(p, s) in got {
        if let Some(&prev) = last.get(&p) {
            assert!(
                s > prev,
                "{who}: producer {p}'s message {s} arrived after its message {prev}"
            );
        }
        last.insert(p, s);
    }
}

/// 4 producers × 4 consumers on one queue, each on its own session over two connections per
/// side, 10 000 messages: every message is consumed exactly once, and each consumer sees
/// every producer's messages in send order (§4.2, §6.2.9).
pub async fn queue_4x4_exactly_once_in_order_6_2_9(h: &dyn Harness) -> Result<()> {
    const PRODUCERS: i32 = 4;
    const CONSUMERS: usize = 4;
    const PER_PRODUCER: i32 = 2_500;
    const TOTAL: usize = (PRODUCERS * PER_PRODUCER) as usize;
    let queue = Destination::queue(h.name("conc-queue"));
    let consumer_conns = [h.connect().await?, h.connect().await?];
    let producer_conns = [h.connect().await?, h.connect().await?];

    let received = Arc::new(AtomicUsize::new(0));
    let mut consumers = Vec::new();
    for i in 0..CONSUMERS {
        let session = consumer_conns[i % 2]
            .create_session(SessionMode::AutoAcknowledge)
            .await?;
        let consumer = session
            .create_consumer(&queue, ConsumerOptions::default())
            .await?;
        consumers.push(spawn_consumer(
            session,
            consumer,
            received.clone(),
            TOTAL,
            h.wait(),
        ));
    }
    let mut producers = Vec::new();
    for id in 0..PRODUCERS {
        let session = producer_conns[id as usize % 2]
            .create_session(SessionMode::AutoAcknowledge)
            .await?;
        producers.push(spawn_producer(session, queue.clone(), id, PER_PRODUCER));
    }
    for p in producers {
        p.await.expect("producer task panicked")?;
    }
    let mut all = BTreeSet::new();
    let mut count = 0;
    for (i, c) in consumers.into_iter().enumerate() {
        let got = c.await.expect("consumer task panicked")?;
        assert_per_producer_order(&got, &format!("consumer {i}"));
        count += got.len();
        for pair in got {
            assert!(all.insert(pair), "message {pair:?} was consumed twice");
        }
    }
    assert_eq!(
        count,
        TOTAL,
        "messages consumed (missing e.g. {:?})",
        (0..PRODUCERS)
            .flat_map(|p| (0..PER_PRODUCER).map(move |s| (p, s)))
            .find(|pair| !all.contains(pair))
    );
    assert_eq!(all.len(), TOTAL);

    let check = consumer_conns[0]
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let rest = check
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let extra = rest.receive_timeout(h.quiet()).await?;
    assert!(
        extra.is_none(),
        "a message was left or duplicated: {extra:?}"
    );
    for c in consumer_conns.iter().chain(producer_conns.iter()) {
        c.close().await?;
    }
    Ok(())
}

/// Concurrent publishers on one topic, 3 subscribers on their own connections: each
/// subscriber gets every message exactly once, each publisher's in send order (§4.2,
/// §6.2.9).
pub async fn topic_concurrent_publishers_all_subscribers_get_all_6_2_9(
    h: &dyn Harness,
) -> Result<()> {
    const PUBLISHERS: i32 = 4;
    const SUBSCRIBERS: usize = 3;
    const PER_PUBLISHER: i32 = 500;
    const TOTAL: usize = (PUBLISHERS * PER_PUBLISHER) as usize;
    let topic = Destination::topic(h.name("conc-topic"));

    let mut sub_conns = Vec::new();
    let mut subscribers = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let conn = h.connect().await?;
        let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
        let consumer = session
            .create_consumer(&topic, ConsumerOptions::default())
            .await?;
        // Each subscriber counts on its own: it must see all TOTAL messages.
        subscribers.push(spawn_consumer(
            session,
            consumer,
            Arc::new(AtomicUsize::new(0)),
            TOTAL,
            h.wait(),
        ));
        sub_conns.push(conn);
    }
    let pub_conn = h.connect().await?;
    let mut publishers = Vec::new();
    for id in 0..PUBLISHERS {
        let session = pub_conn
            .create_session(SessionMode::AutoAcknowledge)
            .await?;
        publishers.push(spawn_producer(session, topic.clone(), id, PER_PUBLISHER));
    }
    for p in publishers {
        p.await.expect("publisher task panicked")?;
    }
    let expected: BTreeSet<(i32, i32)> = (0..PUBLISHERS)
        .flat_map(|p| (0..PER_PUBLISHER).map(move |s| (p, s)))
        .collect();
    for (i, s) in subscribers.into_iter().enumerate() {
        let got = s.await.expect("subscriber task panicked")?;
        assert_per_producer_order(&got, &format!("subscriber {i}"));
        let distinct: BTreeSet<(i32, i32)> = got.iter().copied().collect();
        assert_eq!(
            got.len(),
            distinct.len(),
            "subscriber {i} got a message twice"
        );
        assert_eq!(
            distinct.len(),
            TOTAL,
            "subscriber {i} missed messages, e.g. {:?}",
            expected.difference(&distinct).next()
        );
    }
    pub_conn.close().await?;
    for c in sub_conns {
        c.close().await?;
    }
    Ok(())
}

/// Competing transacted consumers that sometimes roll back: every message is committed
/// exactly once in the end, and nothing committed comes back (§6.2.6, §6.2.9).
pub async fn transacted_competing_consumers_commit_once_6_2_9(h: &dyn Harness) -> Result<()> {
    const TOTAL: i32 = 1_000;
    const CONSUMERS: usize = 4;
    const BATCH: usize = 10;
    let queue = Destination::queue(h.name("conc-tx"));
    let conn = h.connect().await?;
    let committed = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for worker in 0..CONSUMERS {
        let session = conn.create_session(SessionMode::Transacted).await?;
        let consumer = session
            .create_consumer(&queue, ConsumerOptions::default())
            .await?;
        let committed = committed.clone();
        let idle = h.wait();
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            let mut pending: Vec<(i32, u32)> = Vec::new();
            let mut batches = 0usize;
            let mut idle_since = Instant::now();
            while committed.load(Ordering::SeqCst) < TOTAL as usize && idle_since.elapsed() < idle {
                let next = consumer.receive_timeout(POLL).await?;
                if let Some(m) = &next {
                    pending.push((m.property::<i32>("seq")?.expect("seq"), m.delivery_count()));
                    idle_since = Instant::now();
                }
                if pending.len() == BATCH || (next.is_none() && !pending.is_empty()) {
                    batches += 1;
                    // Roll back every third batch of first deliveries (never a message twice,
                    // so no dead-lettering interferes).
                    let fresh = pending.iter().all(|&(_, count)| count == 1);
                    let turn = (batches + worker) % 3;
                    if fresh && turn == 0 {
                        session.rollback().await?;
                    } else {
                        session.commit().await?;
                        committed.fetch_add(pending.len(), Ordering::SeqCst);
                        done.extend(pending.iter().map(|&(seq, _)| seq));
                    }
                    pending.clear();
                }
            }
            // Anything still pending arrived after every message was committed: a duplicate.
            let leftover: Vec<i32> = pending.iter().map(|&(seq, _)| seq).collect();
            session.rollback().await?;
            session.close().await?;
            Ok::<_, Error>((done, leftover))
        }));
    }
    let sender = conn.create_session(SessionMode::Transacted).await?;
    let producer = sender.create_producer(Some(&queue)).await?;
    for seq in 0..TOTAL {
        let mut m = Message::text(format!("job {seq}"));
        m.set_property("seq", seq)?;
        producer.send(&mut m).await?;
        if seq % 50 == 49 {
            sender.commit().await?;
        }
    }
    sender.commit().await?;

    let mut all = BTreeSet::new();
    for (worker, t) in tasks.into_iter().enumerate() {
        let (done, leftover) = t.await.expect("worker task panicked")?;
        assert!(
            leftover.is_empty(),
            "worker {worker} received already committed messages {leftover:?}"
        );
        for seq in done {
            assert!(all.insert(seq), "message {seq} was committed twice");
        }
    }
    assert_eq!(
        all,
        (0..TOTAL).collect::<BTreeSet<_>>(),
        "every message is committed once"
    );
    let check = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let rest = check
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let extra = rest.receive_timeout(h.quiet()).await?;
    assert!(extra.is_none(), "a committed message came back: {extra:?}");
    conn.close().await
}

/// A receive cancelled by a timeout around it gives its wakeup on: consumer A's
/// `receive` dropped by `tokio::time::timeout` must not swallow the wakeup of the next send,
/// so consumer B, blocked in `receive`, gets the message (API contract: receive is
/// cancel-safe for wakeups as well as messages).
pub async fn cancelled_receive_passes_wakeup_on_timeout(h: &dyn Harness) -> Result<()> {
    cancelled_receive_passes_wakeup_on(h, CancelBy::Timeout).await
}

/// The same as [`cancelled_receive_passes_wakeup_on_timeout`] with the receive dropped by a
/// `tokio::select!` whose other branch wins.
pub async fn cancelled_receive_passes_wakeup_on_select(h: &dyn Harness) -> Result<()> {
    cancelled_receive_passes_wakeup_on(h, CancelBy::Select).await
}

/// How a case cancels a pending receive.
#[derive(Clone, Copy)]
enum CancelBy {
    Timeout,
    Select,
}

async fn cancelled_receive_passes_wakeup_on(h: &dyn Harness, how: CancelBy) -> Result<()> {
    let queue = Destination::queue(h.name("conc-cancel"));
    let conn = h.connect().await?;
    let session_a = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let a = session_a
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let session_b = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let b = session_b
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    // A starts waiting first, so a wakeup would be aimed at it.
    match how {
        CancelBy::Timeout => {
            let r = tokio::time::timeout(Duration::from_millis(20), a.receive()).await;
            assert!(r.is_err(), "nothing was sent, so A's receive must time out");
        }
        CancelBy::Select => {
            tokio::select! {
                got = a.receive() => panic!("nothing was sent, yet A received {got:?}"),
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    }
    // B waits without a timeout of its own: only a wakeup ends its receive.
    let wait = h.wait();
    let waiter = tokio::spawn(async move {
        let got = tokio::time::timeout(wait, b.receive()).await;
        (got, b)
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let sender = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let producer = sender.create_producer(Some(&queue)).await?;
    producer.send(&mut Message::text("for B")).await?;
    let (got, _b) = waiter.await.expect("B's task panicked");
    let got = got.map_err(|_| {
        Error::illegal_state("B was never woken: A's cancelled receive kept the wakeup")
    })?;
    assert_eq!(
        got?.and_then(|m| m.body_text().map(str::to_owned))
            .as_deref(),
        Some("for B"),
        "B must get the message although A's cancelled receive was waiting first"
    );
    drop(a);
    conn.close().await
}

/// A worker pool where half the workers receive with short random timeouts and then go
/// off to other work for a while, and the other half wait in `receive`: every one of 100
/// messages, sent one by one, reaches a waiting worker promptly. A wakeup aimed at a worker
/// whose receive was cancelled must go to another waiting worker, not wait for that worker
/// to come back.
pub async fn worker_pool_with_timeouts_gets_every_message_promptly(h: &dyn Harness) -> Result<()> {
    const WORKERS: usize = 8;
    const TOTAL: i32 = 100;
    /// How long an impatient worker is busy elsewhere after its receive timed out.
    const AWAY: Duration = Duration::from_secs(3);
    /// How soon a message must be received (well below AWAY).
    const PROMPT: Duration = Duration::from_secs(1);
    let queue = Destination::queue(h.name("conc-pool"));
    let conn = h.connect().await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<i32>();
    let mut tasks = Vec::new();
    for worker in 0..WORKERS {
        let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
        let consumer = session
            .create_consumer(&queue, ConsumerOptions::default())
            .await?;
        let tx = tx.clone();
        let impatient = worker % 2 == 0;
        tasks.push(tokio::spawn(async move {
            // A cheap per-worker pseudo-random sequence of timeouts from 1 to 30 ms.
            let mut x = 0x9E37_79B9_u32.wrapping_mul(worker as u32 + 1);
            loop {
                let got = if impatient {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    let timeout = Duration::from_millis(1 + u64::from(x % 30));
                    // The timeout is around the receive, so the receive is dropped.
                    match tokio::time::timeout(timeout, consumer.receive()).await {
                        Ok(got) => got,
                        Err(_) => {
                            tokio::time::sleep(AWAY).await;
                            continue;
                        }
                    }
                } else {
                    consumer.receive().await
                };
                match got {
                    Ok(Some(m)) => {
                        let _ = tx.send(m.property::<i32>("seq")?.expect("seq"));
                    }
                    _ => return Ok::<_, Error>(session),
                }
            }
        }));
    }
    drop(tx);
    // Let every impatient worker time out once, so each has a cancelled receive behind it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sender = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let producer = sender.create_producer(Some(&queue)).await?;
    let mut late = Vec::new();
    for seq in 0..TOTAL {
        let mut m = Message::text(format!("job {seq}"));
        m.set_property("seq", seq)?;
        producer.send(&mut m).await?;
        // Each message must be received before the next is sent: a swallowed wakeup would
        // leave it queued until an impatient worker comes back.
        match tokio::time::timeout(PROMPT, rx.recv()).await {
            Ok(Some(got)) => assert_eq!(got, seq, "messages arrive in order, one at a time"),
            _ => {
                late.push(seq);
                // Wait for it anyway, so the next message is checked on its own.
                let _ = tokio::time::timeout(h.wait(), rx.recv()).await;
            }
        }
    }
    for t in &tasks {
        t.abort();
    }
    assert!(
        late.is_empty(),
        "messages not received within {PROMPT:?} while workers waited: {late:?}"
    );
    conn.close().await
}

/// A tuple-space taker waiting `FOREVER` gets an entry written after another task's take
/// was cancelled by a timeout around it: the cancelled take, which started waiting first,
/// must not keep the wakeup of the write.
pub async fn space_taker_gets_entry_after_another_take_timed_out(h: &dyn Harness) -> Result<()> {
    use courier_space::{Space, Template, FOREVER};
    let connection: Arc<dyn Connection> = h.connect().await?.into();
    let space = Space::open(&connection, &h.name("conc-space")).await?;
    let any = || Template::<(String, i64)>::any().expect("a tuple is an entry type");
    // The first taker starts waiting first and is cancelled by a timeout around its take.
    let cancelled = {
        let space = space.clone();
        let template = any();
        tokio::spawn(async move {
            tokio::time::timeout(Duration::from_millis(300), space.take(&template, FOREVER)).await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let patient = {
        let space = space.clone();
        let template = any();
        tokio::spawn(async move { space.take(&template, FOREVER).await })
    };
    assert!(
        cancelled.await.expect("task panicked").is_err(),
        "nothing was written, so the first take must be cancelled by its timeout"
    );
    space.write(&("job".to_owned(), 7_i64), FOREVER).await?;
    let got = tokio::time::timeout(h.wait(), patient)
        .await
        .map_err(|_| Error::illegal_state("the FOREVER taker was not woken by the write"))?
        .expect("task panicked")?;
    assert_eq!(got, Some(("job".to_owned(), 7)));
    connection.close().await
}

/// The cases of this area, for [`crate::conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! concurrency_cases {
    ($make:expr) => {
        $crate::cases!(
            $make,
            concurrency,
            [
                queue_4x4_exactly_once_in_order_6_2_9,
                topic_concurrent_publishers_all_subscribers_get_all_6_2_9,
                transacted_competing_consumers_commit_once_6_2_9,
                cancelled_receive_passes_wakeup_on_timeout,
                cancelled_receive_passes_wakeup_on_select,
                worker_pool_with_timeouts_gets_every_message_promptly,
                space_taker_gets_entry_after_another_take_timed_out,
            ]
        );
    };
}
