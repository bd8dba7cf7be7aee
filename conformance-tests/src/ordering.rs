//! Message order (Jakarta Messaging 3.1 §6.2.9, §7.1, §3.4.10): what one session sends to one
//! destination arrives in send order, per delivery mode and priority; higher priority first.
use courier_api::*;

use crate::{gated, Harness};

/// A text message carrying its producer and sequence number as properties.
fn numbered(producer: &str, seq: i32) -> Result<Message> {
    let mut m = Message::text(format!("{producer}-{seq}"));
    m.set_property("producer", producer)?;
    m.set_property("seq", seq)?;
    Ok(m)
}

/// Receives `n` messages, each within [`Harness::wait`], and returns their (producer, seq).
async fn receive_numbered(
    h: &dyn Harness,
    consumer: &dyn Consumer,
    n: usize,
) -> Result<Vec<(String, i32)>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let Some(m) = consumer.receive_timeout(h.wait()).await? else {
            panic!(
                "expected {n} messages within h.wait() each, got only {}",
                out.len()
            );
        };
        out.push((
            m.property::<String>("producer")?
                .expect("producer property"),
            m.property::<i32>("seq")?.expect("seq property"),
        ));
    }
    Ok(out)
}

/// Sends `n` numbered messages from `producer`.
async fn send_numbered(producer: &dyn Producer, name: &str, n: i32) -> Result<()> {
    for seq in 0..n {
        producer.send(&mut numbered(name, seq)?).await?;
    }
    Ok(())
}

/// The sequence numbers of `producer`'s messages, in arrival order.
fn stream_of(got: &[(String, i32)], producer: &str) -> Vec<i32> {
    got.iter()
        .filter(|(p, _)| p == producer)
        .map(|(_, s)| *s)
        .collect()
}

/// 1 000 messages one producer sends to a queue arrive in send order, none missing or
/// duplicated (§6.2.9).
pub async fn fifo_per_producer_1000_messages_6_2_9(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("ordering-fifo"));
    let producer = session.create_producer(Some(&queue)).await?;
    for seq in 0..1000 {
        producer.send(&mut numbered("p", seq)?).await?;
    }
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let got = receive_numbered(h, consumer.as_ref(), 1000).await?;
    assert_eq!(stream_of(&got, "p"), (0..1000).collect::<Vec<_>>());
    assert!(
        consumer.receive_timeout(h.quiet()).await?.is_none(),
        "no extra message"
    );
    conn.close().await
}

/// Messages sent while no consumer is active are received highest priority first, and in send
/// order within one priority (§3.4.10, §6.2.9).
pub async fn priority_order_3_4_10(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("ordering-priority"));
    let producer = session.create_producer(Some(&queue)).await?;
    let mut sent = Vec::new();
    for seq in 0..40 {
        let priority = ((seq * 7) % 10) as u8;
        let options = SendOptions {
            priority,
            ..SendOptions::default()
        };
        let result = producer
            .send_with(None, &mut numbered("p", seq)?, &options)
            .await;
        if seq == 0 {
            let caps = h.capabilities();
            if gated(caps.priority, "priority", result)?.is_none() {
                return Ok(());
            }
        } else {
            result?;
        }
        sent.push((priority, seq));
    }
    let mut expected = sent.clone();
    expected.sort_by_key(|&(priority, _)| std::cmp::Reverse(priority)); // stable: FIFO kept
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let mut got = Vec::new();
    for _ in 0..sent.len() {
        let m = consumer
            .receive_timeout(h.wait())
            .await?
            .expect("every message within h.wait()");
        got.push((m.priority(), m.property::<i32>("seq")?.expect("seq")));
    }
    assert_eq!(
        got, expected,
        "(priority, seq) must come highest priority first, FIFO within a priority"
    );
    conn.close().await
}

/// Two producers (in two sessions) sending to one queue at the same time while a third session
/// receives: each producer's messages arrive in its send order (§6.2.9).
pub async fn two_producers_each_stay_in_order_6_2_9(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session_a = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let session_b = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("ordering-two"));
    let receiving = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = receiving
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let a = session_a.create_producer(Some(&queue)).await?;
    let b = session_b.create_producer(Some(&queue)).await?;
    const N: i32 = 300;
    let (ra, rb, got) = tokio::join!(
        send_numbered(a.as_ref(), "a", N),
        send_numbered(b.as_ref(), "b", N),
        receive_numbered(h, consumer.as_ref(), 2 * N as usize)
    );
    ra?;
    rb?;
    let got = got?;
    assert_eq!(
        stream_of(&got, "a"),
        (0..N).collect::<Vec<_>>(),
        "producer a"
    );
    assert_eq!(
        stream_of(&got, "b"),
        (0..N).collect::<Vec<_>>(),
        "producer b"
    );
    conn.close().await
}

/// Non-persistent messages arrive in send order while another session receives them during
/// the sends (§6.2.9, §7.7).
pub async fn non_persistent_in_order_6_2_9(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("ordering-np"));
    let receiving = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = receiving
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let producer = session.create_producer(Some(&queue)).await?;
    producer.set_delivery_mode(DeliveryMode::NonPersistent)?;
    const N: i32 = 500;
    let (sent, got) = tokio::join!(
        send_numbered(producer.as_ref(), "np", N),
        receive_numbered(h, consumer.as_ref(), N as usize)
    );
    sent?;
    assert_eq!(stream_of(&got?, "np"), (0..N).collect::<Vec<_>>());
    conn.close().await
}

/// Persistent and non-persistent messages interleaved by one producer: each delivery mode's
/// messages arrive in send order (§6.2.9).
pub async fn each_delivery_mode_in_order_6_2_9(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("ordering-modes"));
    let producer = session.create_producer(Some(&queue)).await?;
    const N: i32 = 200;
    for seq in 0..N {
        let (name, mode) = if seq % 3 == 0 {
            ("np", DeliveryMode::NonPersistent)
        } else {
            ("p", DeliveryMode::Persistent)
        };
        let options = SendOptions {
            delivery_mode: mode,
            ..SendOptions::default()
        };
        producer
            .send_with(None, &mut numbered(name, seq)?, &options)
            .await?;
    }
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let got = receive_numbered(h, consumer.as_ref(), N as usize).await?;
    let np: Vec<i32> = (0..N).filter(|s| s % 3 == 0).collect();
    let p: Vec<i32> = (0..N).filter(|s| s % 3 != 0).collect();
    assert_eq!(stream_of(&got, "np"), np, "non-persistent stream");
    assert_eq!(stream_of(&got, "p"), p, "persistent stream");
    conn.close().await
}

/// Every subscriber of a topic receives one publisher's messages in publish order (§6.2.9).
pub async fn topic_subscribers_in_publish_order_6_2_9(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let other = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let topic = Destination::topic(h.name("ordering-topic"));
    let first = session
        .create_consumer(&topic, ConsumerOptions::default())
        .await?;
    let second = other
        .create_consumer(&topic, ConsumerOptions::default())
        .await?;
    let producer = session.create_producer(Some(&topic)).await?;
    const N: i32 = 300;
    for seq in 0..N {
        producer.send(&mut numbered("t", seq)?).await?;
    }
    let (a, b) = tokio::join!(
        receive_numbered(h, first.as_ref(), N as usize),
        receive_numbered(h, second.as_ref(), N as usize)
    );
    assert_eq!(
        stream_of(&a?, "t"),
        (0..N).collect::<Vec<_>>(),
        "first subscriber"
    );
    assert_eq!(
        stream_of(&b?, "t"),
        (0..N).collect::<Vec<_>>(),
        "second subscriber"
    );
    conn.close().await
}

/// A consumer with a selector sees an ordered subsequence; the others stay in order for a
/// consumer without selector (§6.2.9, §3.8.1).
pub async fn selector_consumer_sees_ordered_subsequence_6_2_9(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("ordering-selector"));
    let producer = session.create_producer(Some(&queue)).await?;
    const N: i32 = 200;
    for seq in 0..N {
        let mut m = numbered("s", seq)?;
        m.set_property("even", seq % 2 == 0)?;
        producer.send(&mut m).await?;
    }
    let result = session
        .create_consumer(&queue, ConsumerOptions::selector("even = TRUE"))
        .await;
    if !h.capabilities().queue_selectors {
        match result {
            Err(e) => assert!(e.is_unsupported(), "expected Unsupported, got {e:?}"),
            Ok(_) => panic!("the backend says it has no queue selectors but accepted one"),
        }
        return conn.close().await;
    }
    let evens = result?;
    let got = receive_numbered(h, evens.as_ref(), N as usize / 2).await?;
    assert_eq!(
        stream_of(&got, "s"),
        (0..N).filter(|s| s % 2 == 0).collect::<Vec<_>>()
    );
    assert!(evens.receive_timeout(h.quiet()).await?.is_none());
    evens.close().await?;
    let rest = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let got = receive_numbered(h, rest.as_ref(), N as usize / 2).await?;
    assert_eq!(
        stream_of(&got, "s"),
        (0..N).filter(|s| s % 2 == 1).collect::<Vec<_>>()
    );
    conn.close().await
}

/// The cases of this area, for [`crate::conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! ordering_cases {
    ($make:expr) => {
        $crate::cases!(
            $make,
            ordering,
            [
                fifo_per_producer_1000_messages_6_2_9,
                priority_order_3_4_10,
                two_producers_each_stay_in_order_6_2_9,
                non_persistent_in_order_6_2_9,
                each_delivery_mode_in_order_6_2_9,
                topic_subscribers_in_publish_order_6_2_9,
                selector_consumer_sees_ordered_subsequence_6_2_9,
            ]
        );
    };
}
