//! Delivery modes, time to live and delivery delay (Jakarta Messaging 3.1 §7.7–7.9, §3.4.9,
//! §3.4.13): expired messages are never delivered, delayed ones never before their time.
use std::time::Duration;

use courier_api::spi::now_millis;
use courier_api::*;

use crate::{gated, Harness};

/// Time to live of the messages that must expire.
const SHORT_TTL: Duration = Duration::from_millis(100);
/// How long to wait for a SHORT_TTL message to be expired for sure.
const PAST_SHORT_TTL: Duration = Duration::from_millis(250);
/// Delivery delay of the delayed messages.
const DELAY: Duration = Duration::from_millis(600);

fn options(ttl: Duration, delay: Duration) -> SendOptions {
    SendOptions {
        time_to_live: ttl,
        delivery_delay: delay,
        ..SendOptions::default()
    }
}

/// Sends `message` with a delivery delay. When the backend has no delivery delay, asserts that
/// the send is `Unsupported` and returns `false`.
async fn send_delayed(
    h: &dyn Harness,
    producer: &dyn Producer,
    message: &mut Message,
    delay: Duration,
) -> Result<bool> {
    let result = producer
        .send_with(None, message, &options(Duration::ZERO, delay))
        .await;
    if h.capabilities().delivery_delay {
        result?;
        return Ok(true);
    }
    match result {
        Err(e) => assert!(
            e.is_unsupported(),
            "no delivery delay: a delayed send must be Unsupported, got {e:?}"
        ),
        Ok(()) => panic!("the backend says it has no delivery delay but accepted a delayed send"),
    }
    Ok(false)
}

fn text(message: &Message) -> &str {
    message.body_text().expect("a text message")
}

/// A message whose time to live passed before anyone received it is not delivered; a message
/// sent with it, still alive, is (§7.8).
pub async fn expired_message_not_delivered_7_8(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("delivery-expire"));
    let producer = session.create_producer(Some(&queue)).await?;
    let short = options(SHORT_TTL, Duration::ZERO);
    let long = options(Duration::from_secs(60), Duration::ZERO);
    let sent = producer
        .send_with(None, &mut Message::text("expires"), &short)
        .await;
    let caps = h.capabilities();
    if gated(caps.expiry, "expiry", sent)?.is_none() {
        return Ok(());
    }

    producer
        .send_with(None, &mut Message::text("lives"), &long)
        .await?;
    producer
        .send_with(None, &mut Message::text("also expires"), &short)
        .await?;
    tokio::time::sleep(PAST_SHORT_TTL).await;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let got = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("the unexpired message within h.wait()");
    assert_eq!(
        text(&got),
        "lives",
        "only the unexpired message is delivered"
    );
    assert!(got.expiration() > 0);
    if let Some(extra) = consumer.receive_timeout(h.quiet()).await? {
        panic!("an expired message was delivered: {:?}", text(&extra));
    }
    conn.close().await
}

/// A message that expires while it waits in a topic subscription (its connection stopped) is
/// not delivered once the connection starts (§7.8).
pub async fn expired_message_not_delivered_from_subscription_7_8(h: &dyn Harness) -> Result<()> {
    let conn = h.factory().create_connection().await?; // stopped
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let topic = Destination::topic(h.name("delivery-expire-topic"));
    let consumer = session
        .create_consumer(&topic, ConsumerOptions::default())
        .await?;
    let producer = session.create_producer(Some(&topic)).await?;
    let sent = producer
        .send_with(
            None,
            &mut Message::text("expires"),
            &options(SHORT_TTL, Duration::ZERO),
        )
        .await;
    let caps = h.capabilities();
    if gated(caps.expiry, "expiry", sent)?.is_none() {
        return Ok(());
    }

    producer
        .send_with(
            None,
            &mut Message::text("lives"),
            &options(Duration::from_secs(60), Duration::ZERO),
        )
        .await?;
    tokio::time::sleep(PAST_SHORT_TTL).await;
    conn.start().await?;
    let got = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("the unexpired message within h.wait()");
    assert_eq!(
        text(&got),
        "lives",
        "the expired message must not be delivered"
    );
    if let Some(extra) = consumer.receive_timeout(h.quiet()).await? {
        panic!("an expired message was delivered: {:?}", text(&extra));
    }
    conn.close().await
}

/// The received expiration is the send time plus the time to live, on a queue and a topic
/// (§7.8, §3.4.9).
pub async fn expiration_header_is_send_time_plus_ttl_7_8(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("delivery-exp-header"));
    let topic = Destination::topic(h.name("delivery-exp-header"));
    let from_queue = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let from_topic = session
        .create_consumer(&topic, ConsumerOptions::default())
        .await?;
    let producer = session.create_producer(None).await?;
    producer.set_time_to_live(Duration::from_secs(30))?;
    for (destination, consumer) in [(&queue, &from_queue), (&topic, &from_topic)] {
        let mut m = Message::text("x");
        let before = now_millis();
        let sent = producer.send_to(destination, &mut m).await;
        let caps = h.capabilities();
        if gated(caps.expiry, "expiry", sent)?.is_none() {
            return Ok(());
        }
        let after = now_millis();
        let exp = m.expiration();
        assert!(
            before + 30_000 <= exp && exp <= after + 30_000,
            "{destination}: expiration {exp} is not send time + 30 s ([{before}, {after}] + 30 s)"
        );
        let got = consumer
            .receive_timeout(h.wait())
            .await?
            .expect("the message within h.wait()");
        assert_eq!(got.expiration(), exp, "{destination}: received expiration");
    }
    conn.close().await
}

/// A delayed message is not received before its delivery time, and is received after it
/// (§7.9).
pub async fn delivery_delay_not_before_delivery_time_7_9(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("delivery-delay"));
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let producer = session.create_producer(Some(&queue)).await?;
    let mut m = Message::text("delayed");
    if !send_delayed(h, producer.as_ref(), &mut m, DELAY).await? {
        return conn.close().await;
    }
    let delivery_time = m.delivery_time();
    let early = consumer.receive_timeout(DELAY / 2).await?;
    assert!(
        early.is_none(),
        "a message delayed {DELAY:?} arrived before its delivery time"
    );
    let got = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("the delayed message after its delay");
    let now = now_millis();
    assert_eq!(text(&got), "delayed");
    assert!(
        now >= delivery_time,
        "received at {now}, before the delivery time {delivery_time}"
    );
    assert_eq!(got.delivery_time(), delivery_time);
    conn.close().await
}

/// The delivery time header is the send time plus the delay, and the send time itself without
/// a delay (§3.4.13, §7.9).
pub async fn delivery_time_header_is_send_time_plus_delay_3_4_13(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("delivery-time"));
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let producer = session.create_producer(Some(&queue)).await?;

    let mut plain = Message::text("now");
    let before = now_millis();
    producer.send(&mut plain).await?;
    let after = now_millis();
    let dt = plain.delivery_time();
    assert!(
        before <= dt && dt <= after,
        "without delay the delivery time {dt} is the send time [{before}, {after}]"
    );
    let got = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("the message");
    assert_eq!(got.delivery_time(), dt);

    let delay = Duration::from_millis(300);
    let mut delayed = Message::text("later");
    let before = now_millis();
    if !send_delayed(h, producer.as_ref(), &mut delayed, delay).await? {
        return conn.close().await;
    }
    let after = now_millis();
    let dt = delayed.delivery_time();
    assert!(
        before + 300 <= dt && dt <= after + 300,
        "delivery time {dt} is not send time + 300 ms ([{before}, {after}] + 300)"
    );
    let got = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("the delayed message");
    assert_eq!(got.delivery_time(), dt);
    conn.close().await
}

/// A delayed message sent to a topic goes only to the subscriptions that existed at send time,
/// not to one created during the delay (§7.9).
pub async fn delayed_topic_message_only_to_existing_subscriptions_7_9(
    h: &dyn Harness,
) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let topic = Destination::topic(h.name("delivery-delay-topic"));
    let existing = session
        .create_consumer(&topic, ConsumerOptions::default())
        .await?;
    let producer = session.create_producer(Some(&topic)).await?;
    let mut m = Message::text("delayed");
    if !send_delayed(h, producer.as_ref(), &mut m, DELAY).await? {
        return conn.close().await;
    }
    let late = session
        .create_consumer(&topic, ConsumerOptions::default())
        .await?;
    let got = existing
        .receive_timeout(h.wait())
        .await?
        .expect("the existing subscription gets the delayed message");
    assert_eq!(text(&got), "delayed");
    assert!(
        now_millis() >= m.delivery_time(),
        "delivered before its delivery time"
    );
    if let Some(extra) = late.receive_timeout(h.quiet()).await? {
        panic!(
            "a subscription created after the send got the delayed message {:?}",
            text(&extra)
        );
    }
    conn.close().await
}

/// A delayed message is overtaken by a later message without delay (§7.9, §6.2.9).
pub async fn delayed_message_overtaken_by_later_one_7_9(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("delivery-overtake"));
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let producer = session.create_producer(Some(&queue)).await?;
    if !send_delayed(
        h,
        producer.as_ref(),
        &mut Message::text("first, delayed"),
        DELAY,
    )
    .await?
    {
        return conn.close().await;
    }
    producer.send(&mut Message::text("second, at once")).await?;
    let a = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("a message");
    let b = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("another message");
    assert_eq!(
        [text(&a), text(&b)],
        ["second, at once", "first, delayed"],
        "the undelayed message comes first"
    );
    conn.close().await
}

/// Persistent and non-persistent messages are both delivered, to queues and topics, with
/// their delivery mode (§7.7).
pub async fn both_delivery_modes_delivered_7_7(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("delivery-modes"));
    let topic = Destination::topic(h.name("delivery-modes"));
    let from_queue = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let from_topic = session
        .create_consumer(&topic, ConsumerOptions::default())
        .await?;
    let producer = session.create_producer(None).await?;
    let modes = [DeliveryMode::NonPersistent, DeliveryMode::Persistent];
    for destination in [&queue, &topic] {
        for i in 0..20 {
            let mode = modes[i % 2];
            producer.set_delivery_mode(mode)?;
            let mut m = Message::text(format!("{i}"));
            producer.send_to(destination, &mut m).await?;
        }
    }
    for (destination, consumer) in [(&queue, &from_queue), (&topic, &from_topic)] {
        let mut got = Vec::new();
        for _ in 0..20 {
            let m = consumer
                .receive_timeout(h.wait())
                .await?
                .unwrap_or_else(|| panic!("{destination}: only {} of 20 arrived", got.len()));
            let i: usize = text(&m).parse().expect("numbered message");
            assert_eq!(
                m.delivery_mode(),
                modes[i % 2],
                "{destination}: message {i}"
            );
            got.push(i);
        }
        got.sort_unstable();
        assert_eq!(
            got,
            (0..20).collect::<Vec<_>>(),
            "{destination}: all delivered once"
        );
    }
    conn.close().await
}

/// The cases of this area, for [`crate::conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! delivery_cases {
    ($make:expr) => {
        $crate::cases!(
            $make,
            delivery,
            [
                expired_message_not_delivered_7_8,
                expired_message_not_delivered_from_subscription_7_8,
                expiration_header_is_send_time_plus_ttl_7_8,
                delivery_delay_not_before_delivery_time_7_9,
                delivery_time_header_is_send_time_plus_delay_3_4_13,
                delayed_topic_message_only_to_existing_subscriptions_7_9,
                delayed_message_overtaken_by_later_one_7_9,
                both_delivery_modes_delivered_7_7,
            ]
        );
    };
}
