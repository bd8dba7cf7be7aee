//! Queues (Jakarta Messaging 3.1 §4.2, point-to-point): each message to exactly one consumer,
//! and the receive calls (§8).
use courier_api::*;
use futures::StreamExt;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::expect::{outcome, send_texts};
use crate::Harness;

/// Competing consumers: 200 messages shared by 3 consumers on their own sessions reach
/// exactly one of them each — none lost, none twice (§4.2).
pub async fn competing_consumers_each_message_once_4_2(h: &dyn Harness) -> Result<()> {
    const TOTAL: usize = 200;
    let queue = Destination::queue(h.name("q-compete"));
    let conn = h.connect().await?;
    let received = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    let wait = h.wait();
    for _ in 0..3 {
        let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
        let consumer = session
            .create_consumer(&queue, ConsumerOptions::default())
            .await?;
        let received = received.clone();
        tasks.push(tokio::spawn(async move {
            let _session = session;
            let mut got = Vec::new();
            let mut idle_since = Instant::now();
            while received.load(Ordering::SeqCst) < TOTAL && idle_since.elapsed() < wait {
                if let Some(m) = consumer.receive_timeout(Duration::from_millis(50)).await? {
                    got.push(m.property::<i32>("n")?.expect("property n"));
                    received.fetch_add(1, Ordering::SeqCst);
                    idle_since = Instant::now();
                }
            }
            Ok::<_, Error>((consumer, got))
        }));
    }
    let send_session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let producer = send_session.create_producer(Some(&queue)).await?;
    for n in 0..TOTAL as i32 {
        let mut m = Message::text(format!("m{n}"));
        m.set_property("n", n)?;
        producer.send(&mut m).await?;
    }
    let mut all = Vec::new();
    let mut consumers = Vec::new();
    for task in tasks {
        let (consumer, got) = task.await.expect("consumer task panicked")?;
        // Each consumer sees an ordered subsequence of one producer's sends (§6.2.9).
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "a competing consumer saw messages out of send order: {got:?}"
        );
        all.extend(got);
        consumers.push(consumer);
    }
    let distinct: BTreeSet<i32> = all.iter().copied().collect();
    assert_eq!(
        all.len(),
        distinct.len(),
        "some message reached more than one consumer"
    );
    assert_eq!(
        distinct,
        (0..TOTAL as i32).collect::<BTreeSet<_>>(),
        "some messages were lost"
    );
    for c in &consumers {
        assert!(
            c.receive_timeout(h.quiet()).await?.is_none(),
            "a message was delivered twice"
        );
    }
    conn.close().await
}

/// `receive_no_wait` returns `None` on an empty queue and the message once one is ready
/// (§4.2).
pub async fn receive_no_wait_empty_then_ready_4_2(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("q-nowait"));
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let started = Instant::now();
    assert!(
        consumer.receive_no_wait().await?.is_none(),
        "receive_no_wait on an empty queue returns None"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "receive_no_wait must not wait (took {:?})",
        started.elapsed()
    );
    send_texts(conn.as_ref(), &queue, &["ready"]).await?;
    // The message may take a moment to travel to the consumer; poll without blocking.
    let deadline = Instant::now() + h.wait();
    let got = loop {
        if let Some(m) = consumer.receive_no_wait().await? {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "receive_no_wait never returned the sent message"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(got.body_text(), Some("ready"));
    assert!(
        consumer.receive_no_wait().await?.is_none(),
        "the queue is empty again after the only message was received"
    );
    conn.close().await
}

/// `receive_timeout` returns `None` once its timeout passes on an empty queue, no earlier
/// and not much later (§4.2).
pub async fn receive_timeout_returns_none_after_timeout_4_2(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("q-timeout"));
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let timeout = Duration::from_millis(400);
    let started = Instant::now();
    let got = consumer.receive_timeout(timeout).await?;
    let elapsed = started.elapsed();
    assert!(got.is_none(), "nothing was sent, got {got:?}");
    assert!(
        elapsed >= timeout - Duration::from_millis(10),
        "receive_timeout({timeout:?}) returned after only {elapsed:?}"
    );
    assert!(
        elapsed < timeout + h.wait(),
        "receive_timeout({timeout:?}) took {elapsed:?}"
    );
    conn.close().await
}

/// A `receive()` that is already waiting is woken by a message sent later (§4.2).
pub async fn pending_receive_woken_by_send_4_2(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("q-wake"));
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let sender = h.connect().await?;
    let (received, sent) = tokio::time::timeout(h.wait(), async {
        tokio::join!(consumer.receive(), async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            send_texts(sender.as_ref(), &queue, &["wake up"]).await
        })
    })
    .await
    .expect("a waiting receive() must be woken by a later send");
    sent?;
    let got = received?.expect("receive() on an open consumer returns a message");
    assert_eq!(got.body_text(), Some("wake up"));
    sender.close().await?;
    conn.close().await
}

/// Closing the consumer makes a receive that is waiting on it return `None` (§4.2).
pub async fn consumer_close_ends_pending_receive_4_2(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("q-close-pending"));
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let (received, closed) = tokio::time::timeout(h.wait(), async {
        tokio::join!(consumer.receive(), async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            consumer.close().await
        })
    })
    .await
    .expect("a pending receive must return when its consumer is closed");
    closed?;
    let received = received?;
    assert!(
        received.is_none(),
        "a pending receive returns None when its consumer closes, got {received:?}"
    );
    // The session is still usable and a message sent now is not lost to the closed consumer.
    send_texts(conn.as_ref(), &queue, &["after close"]).await?;
    let next = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let got = next
        .receive_timeout(h.wait())
        .await?
        .expect("a closed consumer must not take messages");
    assert_eq!(got.body_text(), Some("after close"));
    conn.close().await
}

/// A consumer's `stream()` yields the queue's messages in order, and ends when the consumer
/// is closed (the Rust form of a message listener, §8.7).
pub async fn consumer_stream_yields_messages_4_2(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("q-stream"));
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    send_texts(conn.as_ref(), &queue, &["s1", "s2", "s3"]).await?;
    let mut stream = consumer.stream();
    for expected in ["s1", "s2", "s3"] {
        let m = tokio::time::timeout(h.wait(), stream.next())
            .await
            .unwrap_or_else(|_| panic!("the stream yields {expected:?} within h.wait()"))
            .expect("the stream of an open consumer does not end")?;
        assert_eq!(m.body_text(), Some(expected));
    }
    let (next, closed) = tokio::time::timeout(h.wait(), async {
        tokio::join!(stream.next(), async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            consumer.close().await
        })
    })
    .await
    .expect("the stream ends when its consumer is closed");
    closed?;
    assert!(
        next.is_none(),
        "the stream ends (yields None) once the consumer is closed, got {next:?}"
    );
    conn.close().await
}

/// Messages sent before any consumer exists are kept by the queue and delivered in order to
/// the first consumer, even one on another connection (§4.2).
pub async fn messages_kept_until_a_consumer_exists_4_2(h: &dyn Harness) -> Result<()> {
    let queue = Destination::queue(h.name("q-early"));
    let sender = h.connect().await?;
    send_texts(sender.as_ref(), &queue, &["e1", "e2", "e3"]).await?;
    sender.close().await?;

    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    for expected in ["e1", "e2", "e3"] {
        let got = consumer
            .receive_timeout(h.wait())
            .await?
            .unwrap_or_else(|| panic!("{expected:?}, sent before the consumer existed, is kept"));
        assert_eq!(got.body_text(), Some(expected));
        assert!(!got.redelivered());
        assert_eq!(got.delivery_count(), 1);
    }
    assert!(consumer.receive_timeout(h.quiet()).await?.is_none());
    conn.close().await
}

/// A producer without a default destination names one per send with `send_to` (stamping
/// `JMSDestination`), and a plain `send` is refused with `InvalidDestination` (§4.2).
pub async fn producer_without_default_uses_send_to_4_2(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let a = Destination::queue(h.name("q-send-to-a"));
    let b = Destination::queue(h.name("q-send-to-b"));
    let producer = session.create_producer(None).await?;
    assert_eq!(producer.destination(), None);
    let mut to_a = Message::text("for a");
    producer.send_to(&a, &mut to_a).await?;
    assert_eq!(
        to_a.destination(),
        Some(&a),
        "send_to stamps JMSDestination"
    );
    producer.send_to(&b, &mut Message::text("for b")).await?;
    let r = producer.send(&mut Message::text("nowhere")).await;
    assert!(
        matches!(r, Err(Error::InvalidDestination { .. })),
        "send without a destination on a producer without a default must be \
         InvalidDestination, got {}",
        outcome(&r)
    );

    let ca = session
        .create_consumer(&a, ConsumerOptions::default())
        .await?;
    let cb = session
        .create_consumer(&b, ConsumerOptions::default())
        .await?;
    let got = ca.receive_timeout(h.wait()).await?.expect("message for a");
    assert_eq!(got.body_text(), Some("for a"));
    assert_eq!(got.destination(), Some(&a));
    let got = cb.receive_timeout(h.wait()).await?.expect("message for b");
    assert_eq!(got.body_text(), Some("for b"));
    assert_eq!(got.destination(), Some(&b));
    assert!(ca.receive_timeout(h.quiet()).await?.is_none());
    assert!(cb.receive_no_wait().await?.is_none());
    conn.close().await
}

/// A producer with a default destination refuses `send_to` another one with `IllegalState`,
/// and nothing is sent to either (§4.2).
pub async fn producer_with_default_rejects_send_to_4_2(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let default = Destination::queue(h.name("q-default"));
    let other = Destination::queue(h.name("q-other"));
    let producer = session.create_producer(Some(&default)).await?;
    assert_eq!(producer.destination(), Some(&default));
    let r = producer
        .send_to(&other, &mut Message::text("misdirected"))
        .await;
    assert!(
        matches!(r, Err(Error::IllegalState(_))),
        "send_to on a producer with a default destination must be IllegalState, got {}",
        outcome(&r)
    );
    let cd = session
        .create_consumer(&default, ConsumerOptions::default())
        .await?;
    let co = session
        .create_consumer(&other, ConsumerOptions::default())
        .await?;
    assert!(
        cd.receive_timeout(h.quiet()).await?.is_none(),
        "a refused send reached the default destination"
    );
    assert!(
        co.receive_no_wait().await?.is_none(),
        "a refused send reached the named destination"
    );
    producer.send(&mut Message::text("fine")).await?;
    let got = cd
        .receive_timeout(h.wait())
        .await?
        .expect("the producer still works");
    assert_eq!(got.body_text(), Some("fine"));
    conn.close().await
}

/// Messages a consumer had not received when it was closed stay on the queue for the next
/// consumer, in order (§4.2).
pub async fn closed_consumer_leaves_messages_on_queue_4_2(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("q-leave"));
    let first = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let bodies: Vec<String> = (0..10).map(|i| format!("x{i}")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    send_texts(conn.as_ref(), &queue, &refs).await?;
    let got = first
        .receive_timeout(h.wait())
        .await?
        .expect("the first consumer gets the first message");
    assert_eq!(got.body_text(), Some("x0"));
    first.close().await?;

    let second = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    for expected in &bodies[1..] {
        let got = second
            .receive_timeout(h.wait())
            .await?
            .unwrap_or_else(|| panic!("{expected:?} was lost when the first consumer closed"));
        assert_eq!(got.body_text(), Some(expected.as_str()));
    }
    assert!(
        second.receive_timeout(h.quiet()).await?.is_none(),
        "the received x0 must not come back"
    );
    conn.close().await
}

/// Two producers on different connections feed one queue; the consumer gets every message,
/// each producer's in its send order (§4.2, §6.2.9).
pub async fn two_producers_one_queue_4_2(h: &dyn Harness) -> Result<()> {
    let queue = Destination::queue(h.name("q-two-prod"));
    let p1 = h.connect().await?;
    let p2 = h.connect().await?;
    let s1 = p1.create_session(SessionMode::AutoAcknowledge).await?;
    let s2 = p2.create_session(SessionMode::AutoAcknowledge).await?;
    let prod1 = s1.create_producer(Some(&queue)).await?;
    let prod2 = s2.create_producer(Some(&queue)).await?;
    for i in 0..20 {
        prod1.send(&mut Message::text(format!("a{i}"))).await?;
        prod2.send(&mut Message::text(format!("b{i}"))).await?;
    }
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..40 {
        let m = consumer
            .receive_timeout(h.wait())
            .await?
            .expect("all 40 messages arrive");
        let text = m.body_text().expect("text body").to_string();
        let (list, n) = match text.split_at(1) {
            ("a", n) => (&mut a, n.parse::<u32>().expect("number")),
            ("b", n) => (&mut b, n.parse::<u32>().expect("number")),
            _ => panic!("unexpected body {text:?}"),
        };
        list.push(n);
    }
    assert_eq!(a, (0..20).collect::<Vec<_>>(), "producer a's order");
    assert_eq!(b, (0..20).collect::<Vec<_>>(), "producer b's order");
    assert!(consumer.receive_timeout(h.quiet()).await?.is_none());
    p1.close().await?;
    p2.close().await?;
    conn.close().await
}

/// The cases of this area, for [`crate::conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! queues_cases {
    ($make:expr) => {
        $crate::cases!(
            $make,
            queues,
            [
                competing_consumers_each_message_once_4_2,
                receive_no_wait_empty_then_ready_4_2,
                receive_timeout_returns_none_after_timeout_4_2,
                pending_receive_woken_by_send_4_2,
                consumer_close_ends_pending_receive_4_2,
                consumer_stream_yields_messages_4_2,
                messages_kept_until_a_consumer_exists_4_2,
                producer_without_default_uses_send_to_4_2,
                producer_with_default_rejects_send_to_4_2,
                closed_consumer_leaves_messages_on_queue_4_2,
                two_producers_one_queue_4_2,
            ]
        );
    };
}
