//! Selectors on deep queues (Jakarta Messaging 3.1 §3.8.1, §6.2.9): a consumer with a
//! selector finds a matching message wherever it stands in the queue, several consumers with
//! overlapping selectors share without loss or duplicates, and priority and per-producer
//! order hold for every selector consumer. A backend may index selectors or scan; these cases
//! only check what a user observes.

use courier_api::*;
use std::collections::BTreeSet;

use crate::{gated, Harness};

/// Creates a consumer with `selector` on `queue`, or checks the backend says Unsupported.
async fn selector_consumer(
    h: &dyn Harness,
    session: &dyn Session,
    queue: &Destination,
    selector: &str,
) -> Result<Option<Box<dyn Consumer>>> {
    let made = session
        .create_consumer(queue, ConsumerOptions::selector(selector))
        .await;
    if h.capabilities().queue_selectors {
        made.map(Some)
    } else {
        let e = made
            .err()
            .expect("queue selectors are not supported, so creation must fail");
        assert!(e.is_unsupported(), "expected Unsupported, got {e:?}");
        Ok(None)
    }
}

/// Sends one message per `(key, n, priority)` to `queue`, with properties `key` and `n`.
async fn send_keyed(
    producer: &dyn Producer,
    messages: impl IntoIterator<Item = (String, i64, u8)>,
) -> Result<()> {
    let mut options = producer.options();
    options.delivery_mode = DeliveryMode::NonPersistent;
    for (key, n, priority) in messages {
        let mut m = Message::new();
        m.set_property("key", key.as_str())?;
        m.set_property("n", n)?;
        options.priority = priority;
        producer.send_with(None, &mut m, &options).await?;
    }
    Ok(())
}

/// A matching message behind 100 000 non-matching ones is delivered at once, and the
/// non-matching ones stay (§3.8.1).
pub async fn match_behind_100000_non_matching_3_8_1(h: &dyn Harness) -> Result<()> {
    const DEPTH: i64 = 100_000;
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("deep"));
    if !h.capabilities().queue_selectors {
        // Nothing to measure: the selector consumer is refused (checked here) on any queue.
        let refused = selector_consumer(h, &*session, &queue, "key = 'needle'").await?;
        assert!(refused.is_none());
        return conn.close().await;
    }
    let producer = session.create_producer(Some(&queue)).await?;
    send_keyed(
        &*producer,
        (0..DEPTH).map(|n| (format!("k{}", n % 1000), n, 4)),
    )
    .await?;
    send_keyed(&*producer, [("needle".to_string(), -1, 4)]).await?;
    let Some(consumer) = selector_consumer(h, &*session, &queue, "key = 'needle'").await? else {
        return conn.close().await;
    };
    let got = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("the matching message");
    assert_eq!(got.property::<i64>("n")?, Some(-1));
    assert!(
        consumer.receive_timeout(h.quiet()).await?.is_none(),
        "only one message matches"
    );
    consumer.close().await?;
    let plain = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let first = plain
        .receive_timeout(h.wait())
        .await?
        .expect("non-matching messages stay");
    assert_eq!(first.property::<i64>("n")?, Some(0), "queue order is kept");
    conn.close().await
}

/// Consumers with overlapping selectors (`key IN ('a','b')`, `key = 'b'`, `key = 'c'`)
/// together receive every message exactly once, each only messages it selects (§3.8.1).
pub async fn overlapping_selectors_share_exactly_once_3_8_1(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("overlap"));
    let selectors = ["key IN ('a', 'b')", "key = 'b'", "key = 'c'"];
    let mut consumers = Vec::new();
    for s in selectors {
        let Some(c) = selector_consumer(h, &*session, &queue, s).await? else {
            return conn.close().await;
        };
        consumers.push(c);
    }
    let producer = session.create_producer(Some(&queue)).await?;
    let keys = ["a", "b", "c"];
    send_keyed(
        &*producer,
        (0..300).map(|n| (keys[n as usize % 3].to_string(), n, 4)),
    )
    .await?;
    let mut seen = BTreeSet::new();
    for (selector, consumer) in selectors.iter().zip(&consumers) {
        while let Some(m) = consumer.receive_timeout(h.quiet()).await? {
            let key: String = m.property("key")?.expect("key");
            match *selector {
                "key IN ('a', 'b')" => assert!(key == "a" || key == "b", "{selector} got {key}"),
                "key = 'b'" => assert_eq!(key, "b"),
                _ => assert_eq!(key, "c"),
            }
            let n: i64 = m.property("n")?.expect("n");
            assert!(seen.insert(n), "message {n} delivered twice");
        }
    }
    assert_eq!(seen.len(), 300, "every message delivered once");
    conn.close().await
}

/// A selector mixing an equality with other conditions (`key = 'k1' AND n > 50`, and an `OR`
/// that no equality covers) selects exactly the right messages, in order (§3.8.1.1).
pub async fn mixed_indexed_and_scanned_conditions_3_8_1_1(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("mixed"));
    let producer = session.create_producer(Some(&queue)).await?;
    send_keyed(&*producer, (0..200).map(|n| (format!("k{}", n % 4), n, 4))).await?;
    let Some(and) = selector_consumer(h, &*session, &queue, "key = 'k1' AND n > 50").await? else {
        return conn.close().await;
    };
    let mut got = Vec::new();
    while let Some(m) = and.receive_timeout(h.quiet()).await? {
        got.push(m.property::<i64>("n")?.expect("n"));
    }
    let want: Vec<i64> = (0..200).filter(|n| n % 4 == 1 && *n > 50).collect();
    assert_eq!(got, want);
    and.close().await?;

    let or = selector_consumer(h, &*session, &queue, "key = 'k2' OR n < 3")
        .await?
        .expect("supported above");
    let mut got = Vec::new();
    while let Some(m) = or.receive_timeout(h.quiet()).await? {
        got.push(m.property::<i64>("n")?.expect("n"));
    }
    let want: Vec<i64> = (0..200).filter(|n| n % 4 == 2 || *n < 3).collect();
    assert_eq!(got, want);
    conn.close().await
}

/// Priority then per-producer order hold for a selector consumer on a mixed queue
/// (§3.4.10, §6.2.9).
pub async fn priority_and_order_under_selector_6_2_9(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("prio-sel"));
    let producer = session.create_producer(Some(&queue)).await?;
    // Interleave keys and priorities: (key, n, priority). The first send (priority 1) is the
    // capability gate.
    let keyed = |n: i64| (format!("k{}", n % 2), n, [1u8, 7, 4][n as usize % 3]);
    let sent = send_keyed(&*producer, [keyed(0)]).await;
    let caps = h.capabilities();
    if gated(caps.priority, "priority", sent)?.is_none() {
        return Ok(());
    }
    send_keyed(&*producer, (1..120).map(keyed)).await?;
    let Some(consumer) = selector_consumer(h, &*session, &queue, "key = 'k0'").await? else {
        return conn.close().await;
    };
    let mut got = Vec::new();
    while let Some(m) = consumer.receive_timeout(h.quiet()).await? {
        got.push((m.priority(), m.property::<i64>("n")?.expect("n")));
    }
    let mut want: Vec<(u8, i64)> = (0..120)
        .filter(|n| n % 2 == 0)
        .map(|n| ([1u8, 7, 4][n as usize % 3], n))
        .collect();
    want.sort_by_key(|(p, n)| (std::cmp::Reverse(*p), *n));
    assert_eq!(got, want, "highest priority first, then send order");
    conn.close().await
}

/// Numeric equality selects exact and approximate values alike (`n = 5` matches the long 5
/// and the double 5.0, not the string '5') (§3.8.1.1).
pub async fn numeric_equality_across_types_3_8_1_1(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("numeq"));
    let Some(consumer) = selector_consumer(h, &*session, &queue, "v = 5").await? else {
        return conn.close().await;
    };
    let producer = session.create_producer(Some(&queue)).await?;
    let values = [
        Value::from(5_i64),
        Value::from(5.0_f64),
        Value::from("5"),
        Value::from(5_i8),
        Value::from(6_i32),
    ];
    for (i, v) in values.iter().enumerate() {
        let mut m = Message::new();
        m.set_property("v", v.clone())?;
        m.set_property("i", i as i32)?;
        producer.send(&mut m).await?;
    }
    let mut got = Vec::new();
    while let Some(m) = consumer.receive_timeout(h.quiet()).await? {
        got.push(m.property::<i32>("i")?.expect("i"));
    }
    assert_eq!(got, vec![0, 1, 3]);
    conn.close().await
}

/// A selector consumer that arrives after the messages, leaves, and comes back still finds
/// each of its messages once; one that waits is woken by a matching send only (§3.8.1).
pub async fn late_consumer_and_waiting_consumer_3_8_1(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("late"));
    let producer = session.create_producer(Some(&queue)).await?;
    send_keyed(&*producer, (0..10).map(|n| (format!("k{}", n % 2), n, 4))).await?;
    let Some(first) = selector_consumer(h, &*session, &queue, "key = 'k1'").await? else {
        return conn.close().await;
    };
    let m = first.receive_timeout(h.wait()).await?.expect("k1 message");
    assert_eq!(m.property::<i64>("n")?, Some(1));
    first.close().await?;
    let again = selector_consumer(h, &*session, &queue, "key = 'k1'")
        .await?
        .expect("supported above");
    let mut got = Vec::new();
    while let Some(m) = again.receive_timeout(h.quiet()).await? {
        got.push(m.property::<i64>("n")?.expect("n"));
    }
    assert_eq!(got, vec![3, 5, 7, 9]);

    let wait = h.wait();
    let waiter = tokio::spawn(async move { again.receive_timeout(wait).await });
    tokio::time::sleep(h.quiet()).await;
    send_keyed(
        &*producer,
        [("k0".to_string(), 100, 4), ("k1".to_string(), 101, 4)],
    )
    .await?;
    let woken = waiter.await.expect("task")?.expect("woken by the k1 send");
    assert_eq!(woken.property::<i64>("n")?, Some(101));
    conn.close().await
}

#[doc(hidden)]
#[macro_export]
macro_rules! selector_index_cases {
    ($make:expr) => {
        $crate::cases!(
            $make,
            selector_index,
            [
                match_behind_100000_non_matching_3_8_1,
                overlapping_selectors_share_exactly_once_3_8_1,
                mixed_indexed_and_scanned_conditions_3_8_1_1,
                priority_and_order_under_selector_6_2_9,
                numeric_equality_across_types_3_8_1_1,
                late_consumer_and_waiting_consumer_3_8_1,
            ]
        );
    };
}
