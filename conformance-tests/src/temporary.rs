//! Temporary destinations (Jakarta Messaging 3.1 §4.4, §6.2.3): request/reply, ownership by
//! the creating connection, and deletion.
use courier_api::*;

use crate::expect::{is_invalid_destination, outcome};
use crate::{gated, Harness};

/// Request/reply over a temporary queue: the requester names it in `JMSReplyTo`, a replier
/// on another connection answers there with the request's message id as correlation id
/// (§4.4).
pub async fn temporary_queue_request_reply_4_4(h: &dyn Harness) -> Result<()> {
    let requester = h.connect().await?;
    let replier = h.connect().await?;
    let service = Destination::queue(h.name("service"));

    let rs = replier.create_session(SessionMode::AutoAcknowledge).await?;
    let requests = rs
        .create_consumer(&service, ConsumerOptions::default())
        .await?;
    let replies_out = rs.create_producer(None).await?;

    let qs = requester
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let made = qs.create_temporary_queue().await;
    let caps = h.capabilities();
    let Some(reply_queue) = gated(caps.temporary_destinations, "temporary destinations", made)?
    else {
        return Ok(());
    };
    assert_eq!(reply_queue.kind(), DestinationKind::TemporaryQueue);
    assert!(reply_queue.is_temporary() && reply_queue.is_queue());
    let replies = qs
        .create_consumer(&reply_queue, ConsumerOptions::default())
        .await?;
    let mut request = Message::text("what time is it?");
    request.set_reply_to(Some(reply_queue.clone()));
    qs.create_producer(Some(&service))
        .await?
        .send(&mut request)
        .await?;
    let request_id = request
        .message_id()
        .expect("a sent message has a message id")
        .to_string();

    let got = requests
        .receive_timeout(h.wait())
        .await?
        .expect("the replier gets the request");
    assert_eq!(got.body_text(), Some("what time is it?"));
    let reply_to = got
        .reply_to()
        .expect("JMSReplyTo travels with the request")
        .clone();
    assert_eq!(reply_to, reply_queue);
    let mut reply = Message::text("teatime");
    reply.set_correlation_id_from(&got);
    replies_out.send_to(&reply_to, &mut reply).await?;

    let answer = replies
        .receive_timeout(h.wait())
        .await?
        .expect("the reply arrives on the temporary queue");
    assert_eq!(answer.body_text(), Some("teatime"));
    assert_eq!(answer.correlation_id(), Some(request_id.as_str()));
    assert_eq!(answer.destination(), Some(&reply_queue));
    replier.close().await?;
    requester.close().await
}

/// Only the connection that created a temporary queue may consume from it; another
/// connection's consumer is refused with `InvalidDestination`, though it may send (§4.4).
pub async fn other_connection_cannot_consume_4_4(h: &dyn Harness) -> Result<()> {
    let owner = h.connect().await?;
    let other = h.connect().await?;
    let os = owner.create_session(SessionMode::AutoAcknowledge).await?;
    let made = os.create_temporary_queue().await;
    let caps = h.capabilities();
    let Some(temp) = gated(caps.temporary_destinations, "temporary destinations", made)? else {
        return Ok(());
    };
    let xs = other.create_session(SessionMode::AutoAcknowledge).await?;
    let r = xs.create_consumer(&temp, ConsumerOptions::default()).await;
    assert!(
        is_invalid_destination(&r),
        "a consumer on another connection's temporary queue must be InvalidDestination, got {}",
        outcome(&r)
    );
    xs.create_producer(Some(&temp))
        .await?
        .send(&mut Message::text("from outside"))
        .await?;
    let consumer = os
        .create_consumer(&temp, ConsumerOptions::default())
        .await?;
    let got = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("the owner receives what another connection sent");
    assert_eq!(got.body_text(), Some("from outside"));
    other.close().await?;
    owner.close().await
}

/// A temporary queue is deleted when its connection closes: sending to it afterwards is
/// `InvalidDestination` (§4.4).
pub async fn deleted_when_connection_closes_4_4(h: &dyn Harness) -> Result<()> {
    let owner = h.connect().await?;
    let os = owner.create_session(SessionMode::AutoAcknowledge).await?;
    let made = os.create_temporary_queue().await;
    let caps = h.capabilities();
    let Some(temp_queue) = gated(caps.temporary_destinations, "temporary destinations", made)?
    else {
        return Ok(());
    };
    let temp_topic = os.create_temporary_topic().await?;
    let _consumer = os
        .create_consumer(&temp_queue, ConsumerOptions::default())
        .await?;
    let other = h.connect().await?;
    let xs = other.create_session(SessionMode::AutoAcknowledge).await?;
    let producer = xs.create_producer(None).await?;
    producer
        .send_to(&temp_queue, &mut Message::text("while alive"))
        .await?;
    owner.close().await?;

    let r = producer
        .send_to(&temp_queue, &mut Message::text("too late"))
        .await;
    assert!(
        is_invalid_destination(&r),
        "sending to a temporary queue of a closed connection must be InvalidDestination, got {}",
        outcome(&r)
    );
    let r = producer
        .send_to(&temp_topic, &mut Message::text("too late"))
        .await;
    assert!(
        is_invalid_destination(&r),
        "sending to a temporary topic of a closed connection must be InvalidDestination, got {}",
        outcome(&r)
    );
    other.close().await
}

/// `delete_temporary` while the destination has a consumer is `IllegalState`; once the
/// consumer is closed it succeeds and the destination is gone (§4.4).
pub async fn delete_with_active_consumer_is_error_4_4(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let made = session.create_temporary_queue().await;
    let caps = h.capabilities();
    let Some(temp) = gated(caps.temporary_destinations, "temporary destinations", made)? else {
        return Ok(());
    };
    let consumer = session
        .create_consumer(&temp, ConsumerOptions::default())
        .await?;
    let r = session.delete_temporary(&temp).await;
    assert!(
        matches!(r, Err(Error::IllegalState(_))),
        "deleting a temporary queue with an active consumer must be IllegalState, got {r:?}"
    );
    // Still usable.
    let producer = session.create_producer(None).await?;
    producer
        .send_to(&temp, &mut Message::text("still here"))
        .await?;
    let got = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("the temporary queue still works after the refused delete");
    assert_eq!(got.body_text(), Some("still here"));

    consumer.close().await?;
    session.delete_temporary(&temp).await?;
    let r = producer.send_to(&temp, &mut Message::text("gone")).await;
    assert!(
        is_invalid_destination(&r),
        "sending to a deleted temporary queue must be InvalidDestination, got {}",
        outcome(&r)
    );
    let r = session
        .create_consumer(&temp, ConsumerOptions::default())
        .await;
    assert!(
        is_invalid_destination(&r),
        "consuming from a deleted temporary queue must be InvalidDestination, got {}",
        outcome(&r)
    );
    conn.close().await
}

/// A temporary topic fans out to every subscriber of its connection (§4.4).
pub async fn temporary_topic_fan_out_4_4(h: &dyn Harness) -> Result<()> {
    let owner = h.connect().await?;
    let s1 = owner.create_session(SessionMode::AutoAcknowledge).await?;
    let s2 = owner.create_session(SessionMode::AutoAcknowledge).await?;
    let made = s1.create_temporary_topic().await;
    let caps = h.capabilities();
    let Some(topic) = gated(caps.temporary_destinations, "temporary destinations", made)? else {
        return Ok(());
    };
    assert_eq!(topic.kind(), DestinationKind::TemporaryTopic);
    assert!(topic.is_temporary() && topic.is_topic());
    let a = s1
        .create_consumer(&topic, ConsumerOptions::default())
        .await?;
    let b = s2
        .create_consumer(&topic, ConsumerOptions::default())
        .await?;
    let publisher = h.connect().await?;
    let ps = publisher
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let producer = ps.create_producer(Some(&topic)).await?;
    for body in ["t1", "t2"] {
        producer.send(&mut Message::text(body)).await?;
    }
    for (name, sub) in [("a", &a), ("b", &b)] {
        for body in ["t1", "t2"] {
            let got = sub
                .receive_timeout(h.wait())
                .await?
                .unwrap_or_else(|| panic!("subscriber {name} gets {body:?}"));
            assert_eq!(got.body_text(), Some(body));
        }
        let extra = sub.receive_timeout(h.quiet()).await?;
        assert!(extra.is_none(), "subscriber {name} got a duplicate");
    }
    publisher.close().await?;
    owner.close().await
}

/// Each temporary queue is a distinct destination: messages sent to one never reach another,
/// and a temporary queue keeps messages sent before its consumer exists (§4.4).
pub async fn temporary_queues_are_distinct_4_4(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let made = session.create_temporary_queue().await;
    let caps = h.capabilities();
    let Some(q1) = gated(caps.temporary_destinations, "temporary destinations", made)? else {
        return Ok(());
    };
    let q2 = session.create_temporary_queue().await?;
    assert_ne!(q1, q2, "two temporary queues must differ");
    assert_ne!(q1.name(), q2.name());
    let producer = session.create_producer(None).await?;
    producer.send_to(&q1, &mut Message::text("for q1")).await?;
    producer.send_to(&q2, &mut Message::text("for q2")).await?;
    for (queue, body) in [(&q1, "for q1"), (&q2, "for q2")] {
        let consumer = session
            .create_consumer(queue, ConsumerOptions::default())
            .await?;
        let got = consumer
            .receive_timeout(h.wait())
            .await?
            .unwrap_or_else(|| panic!("{body:?} kept until its consumer exists"));
        assert_eq!(got.body_text(), Some(body));
        let extra = consumer.receive_timeout(h.quiet()).await?;
        assert!(
            extra.is_none(),
            "messages crossed temporary queues: {extra:?}"
        );
    }
    conn.close().await
}

/// The cases of this area, for [`crate::conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! temporary_cases {
    ($make:expr) => {
        $crate::cases!(
            $make,
            temporary,
            [
                temporary_queue_request_reply_4_4,
                other_connection_cannot_consume_4_4,
                deleted_when_connection_closes_4_4,
                delete_with_active_consumer_is_error_4_4,
                temporary_topic_fan_out_4_4,
                temporary_queues_are_distinct_4_4,
            ]
        );
    };
}
