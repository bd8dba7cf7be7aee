//! Errors (Jakarta Messaging 3.1 §6.1.5, §6.2, §3.8, §4.2, §7): each misuse fails with the
//! error kind a caller can act on.
use courier_api::*;
use std::time::Duration;

use crate::expect::{is_illegal_state, is_invalid_destination, outcome};
use crate::waits::assert_queue_empty;
use crate::Harness;

const MAX_NAME: usize = courier_api::destination::MAX_DESTINATION_NAME;

/// A closed session refuses to make producers, consumers and temporary destinations:
/// `IllegalState` (§6.2.1).
pub async fn closed_session_is_illegal_state_6_2_1(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    session.close().await?;
    let queue = Destination::queue(h.name("err-closed-session"));
    let r = session.create_producer(Some(&queue)).await;
    assert!(
        is_illegal_state(&r),
        "create_producer on a closed session: {}",
        outcome(&r)
    );
    let r = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await;
    assert!(
        is_illegal_state(&r),
        "create_consumer on a closed session: {}",
        outcome(&r)
    );
    let r = session.create_temporary_queue().await;
    assert!(
        is_illegal_state(&r),
        "create_temporary_queue on a closed session: {}",
        outcome(&r)
    );
    // The connection itself is unaffected.
    let other = conn.create_session(SessionMode::AutoAcknowledge).await?;
    other.create_producer(Some(&queue)).await?;
    conn.close().await
}

/// Sending on a closed producer is `IllegalState`, and nothing is sent (§7, closed objects).
pub async fn send_on_closed_producer_is_illegal_state_7(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("err-closed-producer"));
    let producer = session.create_producer(Some(&queue)).await?;
    producer.close().await?;
    let r = producer.send(&mut Message::text("after close")).await;
    assert!(
        is_illegal_state(&r),
        "send on a closed producer: {}",
        outcome(&r)
    );
    let anonymous = session.create_producer(None).await?;
    anonymous.close().await?;
    let r = anonymous
        .send_to(&queue, &mut Message::text("after close"))
        .await;
    assert!(
        is_illegal_state(&r),
        "send_to on a closed producer: {}",
        outcome(&r)
    );
    assert_queue_empty(h, conn.as_ref(), &queue, "a refused send was delivered").await?;
    conn.close().await
}

/// Every setter of a closed producer is `IllegalState`, whether the producer itself or its
/// session was closed; the settings stay as they were (§7, closed objects).
pub async fn setters_on_closed_producer_are_illegal_state_7(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("err-closed-setters"));
    let closed_producer = session.create_producer(Some(&queue)).await?;
    closed_producer.close().await?;
    let other = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let of_closed_session = other.create_producer(None).await?;
    other.close().await?;
    for (what, producer) in [
        ("closed producer", &closed_producer),
        ("producer of a closed session", &of_closed_session),
    ] {
        let before = producer.options();
        let attempts: [(&str, Result<()>); 7] = [
            ("set_options", producer.set_options(SendOptions::default())),
            ("set_priority", producer.set_priority(7)),
            (
                "set_time_to_live",
                producer.set_time_to_live(Duration::from_secs(5)),
            ),
            (
                "set_delivery_delay",
                producer.set_delivery_delay(Duration::from_millis(10)),
            ),
            (
                "set_delivery_mode",
                producer.set_delivery_mode(DeliveryMode::NonPersistent),
            ),
            (
                "set_disable_message_id",
                producer.set_disable_message_id(true),
            ),
            (
                "set_disable_timestamp",
                producer.set_disable_timestamp(true),
            ),
        ];
        for (setter, r) in attempts {
            assert!(
                is_illegal_state(&r),
                "{setter} on a {what}: {}",
                outcome(&r)
            );
        }
        assert_eq!(
            producer.options(),
            before,
            "a refused setter changed the {what}"
        );
    }
    conn.close().await
}

/// Receiving on a closed consumer is `IllegalState`, whichever receive is used (§8, closed
/// objects).
pub async fn receive_on_closed_consumer_is_illegal_state_8(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("err-closed-consumer"));
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    consumer.close().await?;
    let r = consumer.receive().await;
    assert!(
        is_illegal_state(&r),
        "receive on a closed consumer: {}",
        outcome(&r)
    );
    let r = consumer.receive_timeout(Duration::from_millis(50)).await;
    assert!(
        is_illegal_state(&r),
        "receive_timeout on a closed consumer: {}",
        outcome(&r)
    );
    let r = consumer.receive_no_wait().await;
    assert!(
        is_illegal_state(&r),
        "receive_no_wait on a closed consumer: {}",
        outcome(&r)
    );
    conn.close().await
}

/// Malformed destination names (empty, whitespace, control characters) are
/// `InvalidDestination` wherever a destination is used (§4.2).
pub async fn malformed_destination_is_invalid_destination_4_2(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let anonymous = session.create_producer(None).await?;
    for name in ["", " ", "a b", "tab\there", "line\nbreak"] {
        for dest in [Destination::queue(name), Destination::topic(name)] {
            let r = session
                .create_consumer(&dest, ConsumerOptions::default())
                .await;
            assert!(
                is_invalid_destination(&r),
                "create_consumer({dest:?}): {}",
                outcome(&r)
            );
            let r = session.create_producer(Some(&dest)).await;
            assert!(
                is_invalid_destination(&r),
                "create_producer({dest:?}): {}",
                outcome(&r)
            );
            let r = anonymous.send_to(&dest, &mut Message::text("x")).await;
            assert!(
                is_invalid_destination(&r),
                "send_to({dest:?}): {}",
                outcome(&r)
            );
        }
    }
    let too_long = Destination::queue("q".repeat(MAX_NAME + 1));
    let r = anonymous.send_to(&too_long, &mut Message::text("x")).await;
    assert!(
        is_invalid_destination(&r),
        "send_to a {}-byte name: {}",
        MAX_NAME + 1,
        outcome(&r)
    );
    conn.close().await
}

/// A selector that does not parse is `InvalidSelector` at consumer creation, with a position
/// inside the selector text (§3.8).
pub async fn bad_selector_is_invalid_selector_3_8(h: &dyn Harness) -> Result<()> {
    let caps = h.capabilities();
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let topic = Destination::topic(h.name("err-selector-t"));
    let queue = Destination::queue(h.name("err-selector-q"));
    for bad in [
        "color =",
        "color = 'red",
        "AND x = 1",
        "x IN (1, 2)",
        "x LIKE",
        "(a = 1",
    ] {
        let r = session
            .create_consumer(&topic, ConsumerOptions::selector(bad))
            .await;
        match &r {
            Err(Error::InvalidSelector {
                selector, position, ..
            }) => {
                assert_eq!(selector, bad, "the error names the selector");
                assert!(
                    *position <= bad.len(),
                    "position {position} is outside {bad:?}"
                );
            }
            _ => panic!(
                "topic consumer with selector {bad:?} must be InvalidSelector, got {}",
                outcome(&r)
            ),
        }
        let r = session
            .create_consumer(&queue, ConsumerOptions::selector(bad))
            .await;
        if caps.queue_selectors {
            assert!(
                matches!(r, Err(Error::InvalidSelector { .. })),
                "queue consumer with selector {bad:?} must be InvalidSelector, got {}",
                outcome(&r)
            );
        } else {
            assert!(
                matches!(&r, Err(e) if e.is_unsupported())
                    || matches!(r, Err(Error::InvalidSelector { .. })),
                "queue selectors unsupported: expected Unsupported (or InvalidSelector), got {}",
                outcome(&r)
            );
        }
    }
    conn.close().await
}

/// `commit()` outside a transaction — on a non-transacted session, or on a closed transacted
/// one — is `IllegalState` (§6.2.6).
pub async fn commit_outside_transaction_is_illegal_state_6_2_6(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let auto = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let r = auto.commit().await;
    assert!(
        is_illegal_state(&r),
        "commit on an auto-ack session: {}",
        outcome(&r)
    );
    let tx = conn.create_session(SessionMode::Transacted).await?;
    tx.close().await?;
    let r = tx.commit().await;
    assert!(
        is_illegal_state(&r),
        "commit on a closed transacted session: {}",
        outcome(&r)
    );
    let r = tx.rollback().await;
    assert!(
        is_illegal_state(&r),
        "rollback on a closed transacted session: {}",
        outcome(&r)
    );
    conn.close().await
}

/// Unsubscribing a name that has no durable subscription is `InvalidDestination` (§6.11).
pub async fn unsubscribe_unknown_name_is_invalid_destination_6_11(h: &dyn Harness) -> Result<()> {
    let conn = h.factory().create_connection().await?;
    conn.set_client_id(&h.name("cid")).await?;
    conn.start().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let r = session.unsubscribe(&h.name("no-such-sub")).await;
    assert!(
        is_invalid_destination(&r),
        "unsubscribe of an unknown subscription must be InvalidDestination, got {r:?}"
    );
    conn.close().await
}

/// Unsubscribing a shared durable subscription that has an active consumer is
/// `IllegalState` (§6.11).
pub async fn unsubscribe_active_subscription_is_illegal_state_6_11(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let topic = Destination::topic(h.name("err-unsub"));
    let name = h.name("sub");
    let consumer = session
        .create_shared_durable_consumer(&topic, &name, ConsumerOptions::default())
        .await?;
    let r = session.unsubscribe(&name).await;
    assert!(
        is_illegal_state(&r),
        "unsubscribe with an active consumer must be IllegalState, got {r:?}"
    );
    consumer.close().await?;
    session.unsubscribe(&name).await?;
    conn.close().await
}

/// Priority 10 is `InvalidArgument`, as a producer setting and per send; nothing is sent
/// (§3.4.10).
pub async fn priority_out_of_range_is_invalid_argument_3_4_10(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("err-priority"));
    let producer = session.create_producer(Some(&queue)).await?;
    let r = producer.set_priority(10);
    assert!(
        matches!(r, Err(Error::InvalidArgument(_))),
        "set_priority(10): {r:?}"
    );
    assert_eq!(
        producer.options().priority,
        4,
        "a refused setting must not change the producer"
    );
    let options = SendOptions {
        priority: 10,
        ..SendOptions::default()
    };
    let r = producer
        .send_with(None, &mut Message::text("too urgent"), &options)
        .await;
    assert!(
        matches!(r, Err(Error::InvalidArgument(_))),
        "send_with priority 10: {}",
        outcome(&r)
    );
    assert_queue_empty(
        h,
        conn.as_ref(),
        &queue,
        "a send with priority 10 was delivered",
    )
    .await?;
    conn.close().await
}

/// An empty client id is `InvalidArgument` (§6.1.2).
pub async fn empty_client_id_is_invalid_argument_6_1_2(h: &dyn Harness) -> Result<()> {
    let conn = h.factory().create_connection().await?;
    let r = conn.set_client_id("").await;
    assert!(
        matches!(r, Err(Error::InvalidArgument(_))),
        "set_client_id(\"\"): {r:?}"
    );
    assert_eq!(conn.client_id(), None);
    conn.close().await
}

/// A durable subscription can only be made on a topic: on a queue it is
/// `InvalidDestination` (§6.11).
pub async fn durable_subscription_on_queue_is_invalid_destination_6_11(
    h: &dyn Harness,
) -> Result<()> {
    let conn = h.factory().create_connection().await?;
    conn.set_client_id(&h.name("cid")).await?;
    conn.start().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("err-durable-queue"));
    let r = session
        .create_durable_consumer(&queue, &h.name("sub"), ConsumerOptions::default())
        .await;
    assert!(
        is_invalid_destination(&r),
        "a durable subscription on a queue: {}",
        outcome(&r)
    );
    let r = session
        .create_shared_consumer(&queue, &h.name("sub"), ConsumerOptions::default())
        .await;
    assert!(
        is_invalid_destination(&r),
        "a shared subscription on a queue: {}",
        outcome(&r)
    );
    conn.close().await
}

/// The cases of this area, for [`crate::conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! errors_cases {
    ($make:expr) => {
        $crate::cases!(
            $make,
            errors,
            [
                closed_session_is_illegal_state_6_2_1,
                send_on_closed_producer_is_illegal_state_7,
                setters_on_closed_producer_are_illegal_state_7,
                receive_on_closed_consumer_is_illegal_state_8,
                malformed_destination_is_invalid_destination_4_2,
                bad_selector_is_invalid_selector_3_8,
                commit_outside_transaction_is_illegal_state_6_2_6,
                unsubscribe_unknown_name_is_invalid_destination_6_11,
                unsubscribe_active_subscription_is_illegal_state_6_11,
                priority_out_of_range_is_invalid_argument_3_4_10,
                empty_client_id_is_invalid_argument_6_1_2,
                durable_subscription_on_queue_is_invalid_destination_6_11,
            ]
        );
    };
}
