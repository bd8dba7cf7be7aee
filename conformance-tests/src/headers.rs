//! Message headers (Jakarta Messaging 3.1 §3.4, Table 3-1): which fields the provider stamps on
//! send, which the client sets, and what a receiver sees.
use courier_api::spi;
use std::collections::HashSet;
use std::time::Duration;

use courier_api::spi::now_millis;
use courier_api::*;

use crate::{gated, Harness};

/// A started connection's session with a consumer and a producer on a fresh queue.
struct Queue {
    conn: Box<dyn Connection>,
    queue: Destination,
    consumer: Box<dyn Consumer>,
    producer: Box<dyn Producer>,
    /// The harness's [`Harness::wait`].
    wait: Duration,
}

async fn queue(h: &dyn Harness) -> Result<Queue> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("headers"));
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let producer = session.create_producer(Some(&queue)).await?;
    Ok(Queue {
        conn,
        queue,
        consumer,
        producer,
        wait: h.wait(),
    })
}

impl Queue {
    async fn receive(&self) -> Result<Message> {
        Ok(self
            .consumer
            .receive_timeout(self.wait)
            .await?
            .expect("the sent message within h.wait()"))
    }
}

/// Each send stamps a message id starting with `ID:` on the caller's message, and the receiver
/// sees the same id (§3.4.3).
pub async fn message_id_set_on_send_3_4_3(h: &dyn Harness) -> Result<()> {
    let q = queue(h).await?;
    let mut m = Message::text("x");
    assert_eq!(m.message_id(), None, "no id before send");
    q.producer.send(&mut m).await?;
    let id = m.message_id().expect("a message id after send").to_owned();
    assert!(
        id.starts_with("ID:"),
        "message id {id:?} must start with ID:"
    );
    assert!(
        id.len() > 3,
        "message id {id:?} must have something after ID:"
    );
    let got = q.receive().await?;
    assert_eq!(got.message_id(), Some(id.as_str()), "received id = sent id");
    q.conn.close().await
}

/// Message ids are unique across sends, also of the same message object and across
/// producers (§3.4.3).
pub async fn message_ids_unique_3_4_3(h: &dyn Harness) -> Result<()> {
    let q = queue(h).await?;
    let other_session = q.conn.create_session(SessionMode::AutoAcknowledge).await?;
    let other = other_session.create_producer(Some(&q.queue)).await?;
    let mut sent = HashSet::new();
    let mut reused = Message::text("reused");
    for i in 0..150 {
        let id = match i % 3 {
            0 => {
                let mut m = Message::text("fresh");
                q.producer.send(&mut m).await?;
                m.message_id().map(str::to_owned)
            }
            1 => {
                q.producer.send(&mut reused).await?;
                reused.message_id().map(str::to_owned)
            }
            _ => {
                let mut m = Message::text("other producer");
                other.send(&mut m).await?;
                m.message_id().map(str::to_owned)
            }
        };
        let id = id.expect("a message id after send");
        assert!(sent.insert(id.clone()), "message id {id:?} was reused");
    }
    let mut received = HashSet::new();
    for _ in 0..150 {
        let got = q.receive().await?;
        let id = got
            .message_id()
            .expect("received message has an id")
            .to_owned();
        assert!(sent.contains(&id), "received id {id:?} was never sent");
        assert!(received.insert(id.clone()), "id {id:?} received twice");
    }
    q.conn.close().await
}

/// With message ids disabled, the sent and the received message have no id (§3.4.3).
pub async fn disabled_message_id_is_none_3_4_3(h: &dyn Harness) -> Result<()> {
    let q = queue(h).await?;
    q.producer.set_disable_message_id(true)?;
    let mut m = Message::text("no id");
    q.producer.send(&mut m).await?;
    assert_eq!(m.message_id(), None, "disabled id on the sent message");
    let got = q.receive().await?;
    assert_eq!(
        got.message_id(),
        None,
        "disabled id on the received message"
    );
    q.producer.set_disable_message_id(false)?;
    let mut m = Message::text("id again");
    q.producer.send(&mut m).await?;
    assert!(m.message_id().is_some_and(|id| id.starts_with("ID:")));
    q.conn.close().await
}

/// The timestamp is the time the send was called: between the call and the return (§3.4.4).
pub async fn timestamp_between_send_call_and_return_3_4_4(h: &dyn Harness) -> Result<()> {
    let q = queue(h).await?;
    let mut m = Message::text("x");
    let before = now_millis();
    q.producer.send(&mut m).await?;
    let after = now_millis();
    let ts = m.timestamp();
    assert!(
        before <= ts && ts <= after,
        "timestamp {ts} not within the send call [{before}, {after}]"
    );
    let got = q.receive().await?;
    assert_eq!(got.timestamp(), ts, "received timestamp = sent timestamp");
    q.conn.close().await
}

/// With timestamps disabled, `JMSTimestamp` is 0 on the sent and the received message (§3.4.4).
pub async fn disabled_timestamp_is_zero_3_4_4(h: &dyn Harness) -> Result<()> {
    let q = queue(h).await?;
    q.producer.set_disable_timestamp(true)?;
    let mut m = Message::text("x");
    spi::header_mut(&mut m).timestamp = 12_345;
    q.producer.send(&mut m).await?;
    assert_eq!(m.timestamp(), 0, "disabled timestamp on the sent message");
    let got = q.receive().await?;
    assert_eq!(
        got.timestamp(),
        0,
        "disabled timestamp on the received message"
    );
    q.conn.close().await
}

/// An application correlation id arrives unchanged (§3.4.5).
pub async fn correlation_id_round_trip_3_4_5(h: &dyn Harness) -> Result<()> {
    let q = queue(h).await?;
    let mut m = Message::text("x");
    m.set_correlation_id("order-17/ünïcode")?;
    q.producer.send(&mut m).await?;
    let mut plain = Message::text("y");
    q.producer.send(&mut plain).await?;
    let got = q.receive().await?;
    assert_eq!(got.correlation_id(), Some("order-17/ünïcode"));
    let got = q.receive().await?;
    assert_eq!(got.correlation_id(), None, "no correlation id unless set");
    q.conn.close().await
}

/// An application correlation id starting with `ID:` is refused and leaves the previous one in
/// place (§3.4.5).
pub async fn correlation_id_with_id_prefix_rejected_3_4_5(h: &dyn Harness) -> Result<()> {
    let q = queue(h).await?;
    let mut m = Message::text("x");
    m.set_correlation_id("app-1")?;
    match m.set_correlation_id("ID:looks-like-a-message-id") {
        Err(Error::InvalidArgument(_)) => {}
        other => panic!("an ID: correlation id must be InvalidArgument, got {other:?}"),
    }
    assert_eq!(
        m.correlation_id(),
        Some("app-1"),
        "a refused value changes nothing"
    );
    q.producer.send(&mut m).await?;
    let got = q.receive().await?;
    assert_eq!(got.correlation_id(), Some("app-1"));
    q.conn.close().await
}

/// Request/reply: the reply's correlation id copied from the request's message id arrives at
/// the requester, via the request's reply-to (§3.4.5, §3.4.6).
pub async fn correlation_id_from_request_3_4_5(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let requests = Destination::queue(h.name("headers-requests"));
    let replies = Destination::queue(h.name("headers-replies"));
    let server = session
        .create_consumer(&requests, ConsumerOptions::default())
        .await?;
    let client = session
        .create_consumer(&replies, ConsumerOptions::default())
        .await?;
    let producer = session.create_producer(None).await?;

    let mut request = Message::text("ping");
    request.set_reply_to(Some(replies.clone()));
    producer.send_to(&requests, &mut request).await?;
    let request_id = request.message_id().expect("request id").to_owned();

    let got = server
        .receive_timeout(h.wait())
        .await?
        .expect("the request");
    let reply_to = got
        .reply_to()
        .expect("the request carries reply-to")
        .clone();
    let mut reply = Message::text("pong");
    reply.set_correlation_id_from(&got);
    producer.send_to(&reply_to, &mut reply).await?;

    let answer = client.receive_timeout(h.wait()).await?.expect("the reply");
    assert_eq!(answer.body_text(), Some("pong"));
    assert_eq!(
        answer.correlation_id(),
        Some(request_id.as_str()),
        "reply correlates to the request id"
    );
    conn.close().await
}

/// Reply-to (queue or topic) arrives unchanged; absent unless set (§3.4.6).
pub async fn reply_to_round_trip_3_4_6(h: &dyn Harness) -> Result<()> {
    let q = queue(h).await?;
    let reply_queue = Destination::queue(h.name("reply-q"));
    let reply_topic = Destination::topic(h.name("reply-t"));
    for reply_to in [Some(reply_queue.clone()), Some(reply_topic.clone()), None] {
        let mut m = Message::text("x");
        m.set_reply_to(reply_to.clone());
        q.producer.send(&mut m).await?;
        let got = q.receive().await?;
        assert_eq!(got.reply_to(), reply_to.as_ref());
    }
    q.conn.close().await
}

/// The destination header is stamped on send, overwriting a client value, with the default
/// destination or the one named per send (§3.4.1, §3.4.11).
pub async fn destination_stamped_on_send_3_4_1(h: &dyn Harness) -> Result<()> {
    let q = queue(h).await?;
    let mut m = Message::text("x");
    spi::header_mut(&mut m).destination = Some(Destination::topic("not-where-it-goes"));
    q.producer.send(&mut m).await?;
    assert_eq!(
        m.destination(),
        Some(&q.queue),
        "sent message's destination"
    );
    let got = q.receive().await?;
    assert_eq!(got.destination(), Some(&q.queue), "received destination");

    let session = q.conn.create_session(SessionMode::AutoAcknowledge).await?;
    let anonymous = session.create_producer(None).await?;
    let mut m = Message::text("y");
    anonymous.send_to(&q.queue, &mut m).await?;
    assert_eq!(m.destination(), Some(&q.queue));
    let got = q.receive().await?;
    assert_eq!(got.destination(), Some(&q.queue));
    q.conn.close().await
}

/// Delivery mode is stamped on send (persistent by default, non-persistent when asked),
/// overwriting the client's value (§3.4.2, §3.4.11).
pub async fn delivery_mode_stamped_on_send_3_4_2(h: &dyn Harness) -> Result<()> {
    let q = queue(h).await?;
    let mut m = Message::text("default");
    spi::header_mut(&mut m).delivery_mode = DeliveryMode::NonPersistent;
    q.producer.send(&mut m).await?;
    assert_eq!(
        m.delivery_mode(),
        DeliveryMode::Persistent,
        "default is persistent"
    );
    let got = q.receive().await?;
    assert_eq!(got.delivery_mode(), DeliveryMode::Persistent);

    let options = SendOptions {
        delivery_mode: DeliveryMode::NonPersistent,
        ..SendOptions::default()
    };
    let mut m = Message::text("non-persistent");
    q.producer.send_with(None, &mut m, &options).await?;
    assert_eq!(m.delivery_mode(), DeliveryMode::NonPersistent);
    let got = q.receive().await?;
    assert_eq!(got.delivery_mode(), DeliveryMode::NonPersistent);

    q.producer.set_delivery_mode(DeliveryMode::NonPersistent)?;
    let mut m = Message::text("producer default");
    spi::header_mut(&mut m).delivery_mode = DeliveryMode::Persistent;
    q.producer.send(&mut m).await?;
    let got = q.receive().await?;
    assert_eq!(got.delivery_mode(), DeliveryMode::NonPersistent);
    q.conn.close().await
}

/// Priority is 4 by default, the producer's or the send's value otherwise, overwriting the
/// client's header value; 10 is refused (§3.4.10).
pub async fn priority_default_and_per_send_3_4_10(h: &dyn Harness) -> Result<()> {
    let q = queue(h).await?;
    let mut m = Message::text("default");
    spi::header_mut(&mut m).priority = 9;
    q.producer.send(&mut m).await?;
    assert_eq!(m.priority(), 4, "default priority");
    assert_eq!(q.receive().await?.priority(), 4);

    q.producer.set_priority(7)?;
    let sent = q.producer.send(&mut Message::text("seven")).await;
    let caps = h.capabilities();
    if gated(caps.priority, "priority", sent)?.is_none() {
        return Ok(());
    }
    assert_eq!(q.receive().await?.priority(), 7, "producer priority");

    let options = SendOptions {
        priority: 0,
        ..SendOptions::default()
    };
    let mut m = Message::text("zero");
    q.producer.send_with(None, &mut m, &options).await?;
    assert_eq!(m.priority(), 0);
    assert_eq!(q.receive().await?.priority(), 0, "per-send priority");

    assert!(
        matches!(q.producer.set_priority(10), Err(Error::InvalidArgument(_))),
        "priority 10 must be refused"
    );
    let bad = SendOptions {
        priority: 10,
        ..SendOptions::default()
    };
    assert!(
        q.producer
            .send_with(None, &mut Message::text("bad"), &bad)
            .await
            .is_err(),
        "a send with priority 10 must fail"
    );
    assert!(
        q.consumer.receive_timeout(h.quiet()).await?.is_none(),
        "the refused send must not arrive"
    );
    q.conn.close().await
}

/// Expiration is 0 (never) without a time to live, overwriting a client value (§3.4.9).
pub async fn expiration_zero_by_default_3_4_9(h: &dyn Harness) -> Result<()> {
    let q = queue(h).await?;
    let mut m = Message::text("x");
    spi::header_mut(&mut m).expiration = 1;
    q.producer.send(&mut m).await?;
    assert_eq!(m.expiration(), 0, "no time to live: expiration 0");
    assert_eq!(q.receive().await?.expiration(), 0);
    q.conn.close().await
}

/// Expiration is the send time plus the time to live (§3.4.9).
pub async fn expiration_is_send_time_plus_ttl_3_4_9(h: &dyn Harness) -> Result<()> {
    let q = queue(h).await?;
    let ttl = Duration::from_secs(60);
    q.producer.set_time_to_live(ttl)?;
    let mut m = Message::text("x");
    let before = now_millis();
    let sent = q.producer.send(&mut m).await;
    let caps = h.capabilities();
    if gated(caps.expiry, "expiry", sent)?.is_none() {
        return Ok(());
    }
    let after = now_millis();
    let exp = m.expiration();
    let ttl_ms = ttl.as_millis() as u64;
    assert!(
        before + ttl_ms <= exp && exp <= after + ttl_ms,
        "expiration {exp} not within [{}, {}]",
        before + ttl_ms,
        after + ttl_ms
    );
    assert_eq!(q.receive().await?.expiration(), exp);
    q.conn.close().await
}

/// A first delivery has delivery count 1 and is not flagged redelivered, whatever the client
/// put in those fields (§3.4.7, §3.5.9).
pub async fn first_delivery_count_and_not_redelivered_3_4_7(h: &dyn Harness) -> Result<()> {
    let q = queue(h).await?;
    let mut m = Message::text("x");
    spi::header_mut(&mut m).redelivered = true;
    spi::header_mut(&mut m).delivery_count = 5;
    q.producer.send(&mut m).await?;
    let got = q.receive().await?;
    assert_eq!(got.delivery_count(), 1, "first delivery count");
    assert!(!got.redelivered(), "first delivery is not redelivered");
    q.conn.close().await
}

/// The message type arrives unchanged; absent unless set (§3.4.8).
pub async fn message_type_round_trip_3_4_8(h: &dyn Harness) -> Result<()> {
    let q = queue(h).await?;
    let mut m = Message::text("x");
    m.set_message_type(Some("com.example.OrderCreated"));
    q.producer.send(&mut m).await?;
    q.producer.send(&mut Message::text("untyped")).await?;
    assert_eq!(
        q.receive().await?.message_type(),
        Some("com.example.OrderCreated")
    );
    assert_eq!(q.receive().await?.message_type(), None);
    q.conn.close().await
}

/// Headers published to a topic are stamped the same way and every subscriber sees the same
/// values (§3.4.11).
pub async fn topic_subscribers_see_same_headers_3_4_11(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let topic = Destination::topic(h.name("headers-topic"));
    let a = session
        .create_consumer(&topic, ConsumerOptions::default())
        .await?;
    let b = session
        .create_consumer(&topic, ConsumerOptions::default())
        .await?;
    let producer = session.create_producer(Some(&topic)).await?;
    // Priority is a header like the others where the backend has it.
    let priority = if h.capabilities().priority { 6 } else { 4 };
    producer.set_priority(priority)?;
    let mut m = Message::text("x");
    m.set_correlation_id("c-1")?;
    m.set_message_type(Some("t"));
    producer.send(&mut m).await?;
    for consumer in [&a, &b] {
        let got = consumer
            .receive_timeout(h.wait())
            .await?
            .expect("published message");
        assert_eq!(got.message_id(), m.message_id());
        assert!(got.message_id().is_some_and(|id| id.starts_with("ID:")));
        assert_eq!(got.timestamp(), m.timestamp());
        assert_eq!(got.destination(), Some(&topic));
        assert_eq!(got.priority(), priority);
        assert_eq!(got.correlation_id(), Some("c-1"));
        assert_eq!(got.message_type(), Some("t"));
        assert_eq!(got.delivery_count(), 1);
        assert!(!got.redelivered());
    }
    conn.close().await
}

/// The cases of this area, for [`crate::conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! headers_cases {
    ($make:expr) => {
        $crate::cases!(
            $make,
            headers,
            [
                message_id_set_on_send_3_4_3,
                message_ids_unique_3_4_3,
                disabled_message_id_is_none_3_4_3,
                timestamp_between_send_call_and_return_3_4_4,
                disabled_timestamp_is_zero_3_4_4,
                correlation_id_round_trip_3_4_5,
                correlation_id_with_id_prefix_rejected_3_4_5,
                correlation_id_from_request_3_4_5,
                reply_to_round_trip_3_4_6,
                destination_stamped_on_send_3_4_1,
                delivery_mode_stamped_on_send_3_4_2,
                priority_default_and_per_send_3_4_10,
                expiration_zero_by_default_3_4_9,
                expiration_is_send_time_plus_ttl_3_4_9,
                first_delivery_count_and_not_redelivered_3_4_7,
                message_type_round_trip_3_4_8,
                topic_subscribers_see_same_headers_3_4_11,
            ]
        );
    };
}
