//! Persistence (Jakarta Messaging 3.1 §6.2.6 delivery mode, §6.2.10 redelivery, §6.2.14 durable
//! subscriptions, §4.4 temporary destinations): what survives a graceful restart and a crash
//! (kill -9) of the backend, and what must not.
//!
//! Every case runs twice, once per [`Harness::restart`] and [`Harness::crash`]. A harness that
//! cannot restart answers `Unsupported`; the case then asserts the backend also claims no
//! durable storage, so a durable backend that forgot its restart hook still fails. A backend
//! that restarts without durable storage is only held to "no error" for what it may lose.
//!
//! These cases take the suite's server lock alone (`cases!(exclusive ..)`), so a restart never
//! overlaps another case of the same test binary.
use courier_api::*;

use crate::expect::{is_invalid_destination, outcome};
use crate::{gated, Harness};

/// How a case takes the backend down and up again.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// [`Harness::restart`]: graceful.
    Restart,
    /// [`Harness::crash`]: kill -9.
    Crash,
}

/// Restarts or crashes the backend. `Ok(false)` when the harness cannot, after asserting that
/// the backend then claims no durable storage.
async fn bounce(h: &dyn Harness, how: Stop) -> Result<bool> {
    let claimed = h.capabilities();
    assert_eq!(
        claimed.durable_storage,
        claimed.persistent_durability != Durability::None,
        "durable_storage and persistent_durability disagree"
    );
    let result = match how {
        Stop::Restart => h.restart().await,
        Stop::Crash => h.crash().await,
    };
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.is_unsupported() => {
            let caps = h.capabilities();
            assert!(
                !caps.durable_storage,
                "a backend with durable storage must support {how:?} so persistence is tested"
            );
            assert_eq!(
                caps.persistent_durability,
                Durability::None,
                "a backend that cannot {how:?} claims persistent sends are durable"
            );
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Sends `bodies` to `queue` in `mode` from a fresh auto-ack session.
async fn send_mode(
    conn: &dyn Connection,
    queue: &Destination,
    mode: DeliveryMode,
    bodies: &[&str],
) -> Result<()> {
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let producer = session.create_producer(Some(queue)).await?;
    producer.set_delivery_mode(mode)?;
    for body in bodies {
        producer.send(&mut Message::text(*body)).await?;
    }
    session.close().await
}

/// Receives `bodies` in order from `consumer`.
async fn expect_texts(h: &dyn Harness, consumer: &dyn Consumer, bodies: &[&str]) -> Result<()> {
    for body in bodies {
        let m = consumer
            .receive_timeout(h.wait())
            .await?
            .unwrap_or_else(|| panic!("{body:?} survives the restart"));
        assert_eq!(m.body_text(), Some(*body), "order after the restart");
    }
    Ok(())
}

/// Panics if `consumer` receives anything within [`Harness::quiet`].
async fn expect_nothing(h: &dyn Harness, consumer: &dyn Consumer, why: &str) -> Result<()> {
    let m = consumer.receive_timeout(h.quiet()).await?;
    assert!(m.is_none(), "{why}: got {:?}", m.map(|m| m.body().clone()));
    Ok(())
}

/// A persistent message sent before the restart is delivered after it, in order (§6.2.6).
async fn persistent_message_survives(h: &dyn Harness, how: Stop) -> Result<()> {
    let queue = Destination::queue(h.name("persist"));
    let conn = h.connect().await?;
    send_mode(
        conn.as_ref(),
        &queue,
        DeliveryMode::Persistent,
        &["p1", "p2"],
    )
    .await?;
    conn.close().await?;
    if !bounce(h, how).await? || !h.capabilities().durable_storage {
        return Ok(());
    }
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    expect_texts(h, consumer.as_ref(), &["p1", "p2"]).await?;
    expect_nothing(h, consumer.as_ref(), "each persistent message once").await?;
    conn.close().await
}

/// A non-persistent message may be lost in a restart: receiving afterwards is no error, and if
/// it did survive it is intact (§6.2.6).
async fn non_persistent_message_may_be_lost(h: &dyn Harness, how: Stop) -> Result<()> {
    let queue = Destination::queue(h.name("non-persist"));
    let conn = h.connect().await?;
    send_mode(conn.as_ref(), &queue, DeliveryMode::NonPersistent, &["np"]).await?;
    conn.close().await?;
    if !bounce(h, how).await? {
        return Ok(());
    }
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    if let Some(m) = consumer.receive_timeout(h.quiet()).await? {
        assert_eq!(m.body_text(), Some("np"), "a surviving message is intact");
    }
    conn.close().await
}

/// A client-ack message received but not acknowledged when the backend went down comes back
/// with `redelivered` set (§6.2.10).
async fn unacknowledged_message_redelivered(h: &dyn Harness, how: Stop) -> Result<()> {
    let queue = Destination::queue(h.name("unacked"));
    let old = h.connect().await?;
    send_mode(old.as_ref(), &queue, DeliveryMode::Persistent, &["u1"]).await?;
    let session = old.create_session(SessionMode::ClientAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let first = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("the message arrives before the restart");
    assert_eq!(first.body_text(), Some("u1"));
    if !bounce(h, how).await? {
        return old.close().await;
    }
    // The old connection is gone with the backend; dropping it must not matter.
    drop((consumer, session, old));
    let caps = h.capabilities();
    if !caps.durable_storage {
        return Ok(());
    }
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::ClientAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let again = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("the unacknowledged message returns after the restart");
    assert_eq!(again.body_text(), Some("u1"));
    assert!(again.redelivered(), "JMSRedelivered after the restart");
    if caps.exact_delivery_count {
        assert_eq!(
            again.delivery_count(),
            2,
            "JMSXDeliveryCount after the restart"
        );
    } else {
        assert!(
            again.delivery_count() >= 2,
            "JMSXDeliveryCount after the restart"
        );
    }
    session.acknowledge().await?;
    conn.close().await
}

/// A committed transaction is whole after the restart; one open when the backend went down is
/// absent (§6.2.8).
async fn committed_transaction_whole_uncommitted_absent(h: &dyn Harness, how: Stop) -> Result<()> {
    let queue = Destination::queue(h.name("tx"));
    let old = h.connect().await?;
    let made = old.create_session(SessionMode::Transacted).await;
    let Some(tx) = gated(h.capabilities().transactions, "transactions", made)? else {
        return old.close().await;
    };
    let producer = tx.create_producer(Some(&queue)).await?;
    for body in ["c1", "c2", "c3"] {
        producer.send(&mut Message::text(body)).await?;
    }
    tx.commit().await?;
    for body in ["open1", "open2"] {
        producer.send(&mut Message::text(body)).await?;
    }
    if !bounce(h, how).await? {
        return old.close().await;
    }
    drop((producer, tx, old));
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    if h.capabilities().durable_storage {
        expect_texts(h, consumer.as_ref(), &["c1", "c2", "c3"]).await?;
    }
    // Whatever survived, nothing of the open transaction may appear.
    while let Some(m) = consumer.receive_timeout(h.quiet()).await? {
        let body = m.body_text().unwrap_or_default().to_string();
        assert!(
            !body.starts_with("open"),
            "an uncommitted send appeared after the restart: {body:?}"
        );
    }
    conn.close().await
}

/// A durable subscription and the messages it kept while no consumer was open survive the
/// restart (§6.2.14).
async fn durable_subscription_backlog_survives(h: &dyn Harness, how: Stop) -> Result<()> {
    let caps = h.capabilities();
    let topic = Destination::topic(h.name("durable-topic"));
    let subscription = h.name("durable-sub");
    let client = h.name("durable-client");
    let subscriber = h.factory().create_connection().await?;
    let Some(()) = gated(
        caps.client_id_exclusive,
        "client-id exclusivity",
        subscriber.set_client_id(&client).await,
    )?
    else {
        return subscriber.close().await;
    };
    subscriber.start().await?;
    let session = subscriber
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let made = session
        .create_durable_consumer(&topic, &subscription, ConsumerOptions::default())
        .await;
    let Some(consumer) = gated(caps.durable_subscriptions, "durable subscriptions", made)? else {
        return subscriber.close().await;
    };
    consumer.close().await?;
    let publisher = h.connect().await?;
    send_mode(
        publisher.as_ref(),
        &topic,
        DeliveryMode::Persistent,
        &["d1", "d2"],
    )
    .await?;
    publisher.close().await?;
    subscriber.close().await?;
    if !bounce(h, how).await? || !h.capabilities().durable_storage {
        return Ok(());
    }
    let conn = h.factory().create_connection().await?;
    conn.set_client_id(&client).await?;
    conn.start().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = session
        .create_durable_consumer(&topic, &subscription, ConsumerOptions::default())
        .await?;
    expect_texts(h, consumer.as_ref(), &["d1", "d2"]).await?;
    consumer.close().await?;
    session.unsubscribe(&subscription).await?;
    conn.close().await
}

/// A message on the dead-letter queue is still there after the restart (§6.2.10).
async fn dead_letter_queue_survives(h: &dyn Harness, how: Stop) -> Result<()> {
    let caps = h.capabilities();
    let (Some(max), Some(dlq)) = (caps.max_delivery_attempts, caps.dead_letter_queue.clone())
    else {
        // No dead-lettering: nothing to survive. The restart itself must still work.
        bounce(h, how).await?;
        return Ok(());
    };
    let queue = Destination::queue(h.name("dl-persist"));
    let tag = h.name("dl-tag");
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::ClientAcknowledge).await?;
    let producer = session.create_producer(Some(&queue)).await?;
    producer.set_delivery_mode(DeliveryMode::Persistent)?;
    let mut poison = Message::text("poison");
    poison.set_property("tag", tag.as_str())?;
    producer.send(&mut poison).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    for attempt in 1..=max {
        consumer
            .receive_timeout(h.wait())
            .await?
            .unwrap_or_else(|| panic!("delivery attempt {attempt} of {max} happens"));
        session.recover().await?;
    }
    expect_nothing(h, consumer.as_ref(), "the message left its queue").await?;
    conn.close().await?;
    if !bounce(h, how).await? || !h.capabilities().durable_storage {
        return Ok(());
    }
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::ClientAcknowledge).await?;
    let selector = format!("tag = '{tag}'");
    let selecting = h.capabilities().queue_selectors;
    let consumer = if selecting {
        session
            .create_consumer(
                &Destination::queue(dlq),
                ConsumerOptions::selector(selector),
            )
            .await?
    } else {
        session
            .create_consumer(&Destination::queue(dlq), ConsumerOptions::default())
            .await?
    };
    let mut found = None;
    while let Some(m) = consumer.receive_timeout(h.wait()).await? {
        if m.property::<String>("tag")?.as_deref() == Some(tag.as_str()) {
            found = Some(m);
            break;
        }
    }
    let dead = found.expect("the dead letter survives the restart");
    assert_eq!(
        dead.body_text(),
        Some("poison"),
        "the dead letter is intact"
    );
    // With a selector only this case's dead letter was consumed: acknowledge it away. Without,
    // other dead letters were passed on the way; closing unacknowledged gives them back.
    if selecting {
        session.acknowledge().await?;
    }
    conn.close().await
}

/// A temporary queue lives only as long as its connection, which the restart ends (§4.4).
async fn temporary_queue_gone(h: &dyn Harness, how: Stop) -> Result<()> {
    let old = h.connect().await?;
    let session = old.create_session(SessionMode::AutoAcknowledge).await?;
    let made = session.create_temporary_queue().await;
    let caps = h.capabilities();
    let Some(temporary) = gated(caps.temporary_destinations, "temporary destinations", made)?
    else {
        return old.close().await;
    };
    send_mode(old.as_ref(), &temporary, DeliveryMode::Persistent, &["t"]).await?;
    if !bounce(h, how).await? {
        return old.close().await;
    }
    drop((session, old));
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let producer = session.create_producer(None).await?;
    let r = producer
        .send_to(&temporary, &mut Message::text("late"))
        .await;
    assert!(
        is_invalid_destination(&r),
        "a temporary queue must not survive the restart; sending to it must be \
         InvalidDestination, got {}",
        outcome(&r)
    );
    conn.close().await
}

/// A client id is held by a live connection only; the restart ends it, so a new connection
/// may take the id even while the old handle still exists (§6.1.2).
async fn client_id_released(h: &dyn Harness, how: Stop) -> Result<()> {
    let id = h.name("client");
    let old = h.factory().create_connection().await?;
    let caps = h.capabilities();
    let Some(()) = gated(
        caps.client_id_exclusive,
        "client-id exclusivity",
        old.set_client_id(&id).await,
    )?
    else {
        return old.close().await;
    };
    if !bounce(h, how).await? {
        return old.close().await;
    }
    let conn = h.factory().create_connection().await?;
    let r = conn.set_client_id(&id).await;
    assert!(
        r.is_ok(),
        "a client id must not survive the restart, got {}",
        outcome(&r)
    );
    drop(old);
    conn.close().await
}

/// Defines the public restart and crash forms of each case, documented like the case.
/// A deleted queue stays deleted: its persistent messages do not come back after the
/// restart (the deletion is as durable as the messages were).
async fn deleted_queue_stays_deleted(h: &dyn Harness, how: Stop) -> Result<()> {
    let queue = Destination::queue(h.name("persist-deleted"));
    let kept = Destination::queue(h.name("persist-kept"));
    let conn = h.connect().await?;
    send_mode(conn.as_ref(), &queue, DeliveryMode::Persistent, &["gone"]).await?;
    send_mode(conn.as_ref(), &kept, DeliveryMode::Persistent, &["kept"]).await?;
    if crate::deletion::delete(h, conn.as_ref(), &queue)
        .await?
        .is_none()
    {
        return conn.close().await;
    }
    conn.close().await?;
    if !bounce(h, how).await? || !h.capabilities().durable_storage {
        return Ok(());
    }
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = session
        .create_consumer(&kept, ConsumerOptions::default())
        .await?;
    expect_texts(h, consumer.as_ref(), &["kept"]).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    expect_nothing(
        h,
        consumer.as_ref(),
        "a deleted queue's messages stay deleted",
    )
    .await?;
    conn.close().await
}

macro_rules! both_ways {
    ($($(#[doc = $doc:literal])* $case:ident => $restart:ident, $crash:ident;)*) => {
        $(
            $(#[doc = $doc])*
            ///
            /// Across a graceful [`Harness::restart`].
            pub async fn $restart(h: &dyn Harness) -> Result<()> {
                $case(h, Stop::Restart).await
            }

            $(#[doc = $doc])*
            ///
            /// Across a [`Harness::crash`] (kill -9).
            pub async fn $crash(h: &dyn Harness) -> Result<()> {
                $case(h, Stop::Crash).await
            }
        )*
    };
}

both_ways! {
    /// A persistent message sent before the restart is delivered after it, in order (§6.2.6).
    persistent_message_survives => persistent_message_survives_restart_6_2_6,
        persistent_message_survives_crash_6_2_6;
    /// A non-persistent message may be lost in a restart: receiving afterwards is no error, and if
    /// it did survive it is intact (§6.2.6).
    non_persistent_message_may_be_lost => non_persistent_message_may_be_lost_restart_6_2_6,
        non_persistent_message_may_be_lost_crash_6_2_6;
    /// A client-ack message received but not acknowledged when the backend went down comes back
    /// with `redelivered` set (§6.2.10).
    unacknowledged_message_redelivered => unacknowledged_message_redelivered_restart_6_2_10,
        unacknowledged_message_redelivered_crash_6_2_10;
    /// A committed transaction is whole after the restart; one open when the backend went down is
    /// absent (§6.2.8).
    committed_transaction_whole_uncommitted_absent =>
        committed_transaction_whole_uncommitted_absent_restart_6_2_8,
        committed_transaction_whole_uncommitted_absent_crash_6_2_8;
    /// A durable subscription and the messages it kept while no consumer was open survive the
    /// restart (§6.2.14).
    durable_subscription_backlog_survives => durable_subscription_backlog_survives_restart_6_2_14,
        durable_subscription_backlog_survives_crash_6_2_14;
    /// A message on the dead-letter queue is still there after the restart (§6.2.10).
    dead_letter_queue_survives => dead_letter_queue_survives_restart_6_2_10,
        dead_letter_queue_survives_crash_6_2_10;
    /// A temporary queue lives only as long as its connection, which the restart ends (§4.4).
    temporary_queue_gone => temporary_queue_gone_restart_4_4,
        temporary_queue_gone_crash_4_4;
    /// A client id is held by a live connection only; the restart ends it, so a new connection
    /// may take the id even while the old handle still exists (§6.1.2).
    client_id_released => client_id_released_restart_6_1_2,
        client_id_released_crash_6_1_2;
    /// A deleted queue stays deleted: its persistent messages do not come back after the
    /// restart.
    deleted_queue_stays_deleted => deleted_queue_stays_deleted_restart,
        deleted_queue_stays_deleted_crash;
}

/// Expands the persistence cases; they take the suite's server lock alone.
#[doc(hidden)]
#[macro_export]
macro_rules! persistence_cases {
    ($make:expr) => {
        $crate::cases!(
            exclusive $make,
            persistence,
            [
                persistent_message_survives_restart_6_2_6,
                persistent_message_survives_crash_6_2_6,
                non_persistent_message_may_be_lost_restart_6_2_6,
                non_persistent_message_may_be_lost_crash_6_2_6,
                unacknowledged_message_redelivered_restart_6_2_10,
                unacknowledged_message_redelivered_crash_6_2_10,
                committed_transaction_whole_uncommitted_absent_restart_6_2_8,
                committed_transaction_whole_uncommitted_absent_crash_6_2_8,
                durable_subscription_backlog_survives_restart_6_2_14,
                durable_subscription_backlog_survives_crash_6_2_14,
                dead_letter_queue_survives_restart_6_2_10,
                dead_letter_queue_survives_crash_6_2_10,
                temporary_queue_gone_restart_4_4,
                temporary_queue_gone_crash_4_4,
                client_id_released_restart_6_1_2,
                client_id_released_crash_6_1_2,
                deleted_queue_stays_deleted_restart,
                deleted_queue_stays_deleted_crash,
            ]
        );
    };
}
