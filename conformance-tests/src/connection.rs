//! Connections (Jakarta Messaging 3.1 §6.1): start/stop, client ids, and what closing does.
use courier_api::*;
use std::time::{Duration, Instant};

use crate::expect::{is_illegal_state, outcome};
use crate::waits::assert_delivery_count;
use crate::{gated, Harness};

/// A new connection is stopped: it can send, but its consumer receives nothing until
/// `start()` (§6.1.4).
pub async fn new_connection_starts_stopped_6_1_4(h: &dyn Harness) -> Result<()> {
    let conn = h.factory().create_connection().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("conn-stopped"));
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let producer = session.create_producer(Some(&queue)).await?;
    producer.send(&mut Message::text("before start")).await?;
    assert!(
        consumer.receive_timeout(h.quiet()).await?.is_none(),
        "a consumer of a connection that was never started received a message"
    );
    assert!(
        consumer.receive_no_wait().await?.is_none(),
        "receive_no_wait delivered on a stopped connection"
    );
    conn.start().await?;
    let got = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("the message sent while stopped arrives after start()");
    assert_eq!(got.body_text(), Some("before start"));
    conn.close().await
}

/// `stop()` pauses delivery and `start()` resumes it; messages sent meanwhile are kept
/// (§6.1.4).
pub async fn stop_pauses_and_start_resumes_6_1_4(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("conn-stop"));
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let sender = h.connect().await?;
    let send_session = sender.create_session(SessionMode::AutoAcknowledge).await?;
    let producer = send_session.create_producer(Some(&queue)).await?;

    producer.send(&mut Message::text("one")).await?;
    let first = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("delivery works on a started connection");
    assert_eq!(first.body_text(), Some("one"));

    conn.stop().await?;
    producer.send(&mut Message::text("two")).await?;
    producer.send(&mut Message::text("three")).await?;
    assert!(
        consumer.receive_timeout(h.quiet()).await?.is_none(),
        "a stopped connection delivered a message"
    );

    conn.start().await?;
    for expected in ["two", "three"] {
        let got = consumer
            .receive_timeout(h.wait())
            .await?
            .unwrap_or_else(|| panic!("{expected:?} arrives after start() resumes delivery"));
        assert_eq!(got.body_text(), Some(expected));
        assert!(
            !got.redelivered(),
            "pausing delivery is not a redelivery: {expected:?} was flagged redelivered"
        );
    }
    sender.close().await?;
    conn.close().await
}

/// A `receive_timeout` on a stopped connection returns `None` after its timeout even though
/// a message is waiting; it neither delivers nor hangs (§6.1.4).
pub async fn receive_timeout_times_out_while_stopped_6_1_4(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("conn-stopped-timeout"));
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    conn.stop().await?;
    let producer = session.create_producer(Some(&queue)).await?;
    producer.send(&mut Message::text("waiting")).await?;

    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let got = tokio::time::timeout(h.wait(), consumer.receive_timeout(timeout))
        .await
        .expect("receive_timeout on a stopped connection must return after its timeout")?;
    let elapsed = started.elapsed();
    assert!(got.is_none(), "a stopped connection delivered a message");
    assert!(
        elapsed >= timeout - Duration::from_millis(10),
        "receive_timeout({timeout:?}) returned after only {elapsed:?}"
    );

    conn.start().await?;
    let got = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("the waiting message arrives once the connection is started again");
    assert_eq!(got.body_text(), Some("waiting"));
    conn.close().await
}

/// Starting a started connection and stopping a stopped one are no-ops (§6.1.4).
pub async fn start_and_stop_are_idempotent_6_1_4(h: &dyn Harness) -> Result<()> {
    let conn = h.factory().create_connection().await?;
    conn.stop().await?;
    conn.start().await?;
    conn.start().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("conn-idem"));
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let producer = session.create_producer(Some(&queue)).await?;
    producer.send(&mut Message::text("a")).await?;
    assert_eq!(
        consumer
            .receive_timeout(h.wait())
            .await?
            .expect("a started connection delivers")
            .body_text(),
        Some("a")
    );
    conn.stop().await?;
    conn.stop().await?;
    producer.send(&mut Message::text("b")).await?;
    assert!(
        consumer.receive_timeout(h.quiet()).await?.is_none(),
        "stopping twice must leave the connection stopped"
    );
    conn.start().await?;
    assert_eq!(
        consumer
            .receive_timeout(h.wait())
            .await?
            .expect("delivery resumes after start")
            .body_text(),
        Some("b")
    );
    conn.close().await
}

/// The client id is unset on a new connection, and reads back as set (§6.1.2).
pub async fn client_id_set_and_read_back_6_1_2(h: &dyn Harness) -> Result<()> {
    let conn = h.factory().create_connection().await?;
    assert_eq!(conn.client_id(), None, "a new connection has no client id");
    let id = h.name("client");
    let set = conn.set_client_id(&id).await;
    let exclusive = h.capabilities().client_id_exclusive;
    let Some(()) = gated(exclusive, "client-id exclusivity", set)? else {
        return Ok(());
    };
    assert_eq!(conn.client_id().as_deref(), Some(id.as_str()));
    conn.start().await?;
    assert_eq!(
        conn.client_id().as_deref(),
        Some(id.as_str()),
        "the client id is kept once the connection is used"
    );
    conn.close().await
}

/// Two live connections cannot hold the same client id: the second gets
/// `InvalidClientId` (§6.1.2).
pub async fn duplicate_client_id_is_refused_6_1_2(h: &dyn Harness) -> Result<()> {
    let id = h.name("client-dup");
    let first = h.factory().create_connection().await?;
    let set = first.set_client_id(&id).await;
    let exclusive = h.capabilities().client_id_exclusive;
    let Some(()) = gated(exclusive, "client-id exclusivity", set)? else {
        return Ok(());
    };
    let second = h.factory().create_connection().await?;
    let r = second.set_client_id(&id).await;
    assert!(
        matches!(r, Err(Error::InvalidClientId(_))),
        "a client id held by a live connection must be refused with InvalidClientId, got {}",
        outcome(&r)
    );
    assert_eq!(
        second.client_id(),
        None,
        "a refused client id must not be recorded"
    );
    second.close().await?;
    first.close().await
}

/// Once the connection holding a client id is closed, another connection may take it
/// (§6.1.2).
pub async fn client_id_reusable_after_close_6_1_2(h: &dyn Harness) -> Result<()> {
    let id = h.name("client-reuse");
    let first = h.factory().create_connection().await?;
    let set = first.set_client_id(&id).await;
    let exclusive = h.capabilities().client_id_exclusive;
    let Some(()) = gated(exclusive, "client-id exclusivity", set)? else {
        return Ok(());
    };
    first.close().await?;
    let second = h.factory().create_connection().await?;
    second.set_client_id(&id).await?;
    assert_eq!(second.client_id().as_deref(), Some(id.as_str()));
    second.close().await
}

/// The client id may be set only right after creation: setting it again, or after the
/// connection was used, is `IllegalState` (§6.1.2).
pub async fn client_id_only_settable_before_use_6_1_2(h: &dyn Harness) -> Result<()> {
    let conn = h.factory().create_connection().await?;
    let id = h.name("client-once");
    let set = conn.set_client_id(&id).await;
    let exclusive = h.capabilities().client_id_exclusive;
    let Some(()) = gated(exclusive, "client-id exclusivity", set)? else {
        return Ok(());
    };
    let again = conn.set_client_id(&h.name("client-twice")).await;
    assert!(
        is_illegal_state(&again),
        "setting the client id a second time must be IllegalState, got {}",
        outcome(&again)
    );
    assert_eq!(conn.client_id().as_deref(), Some(id.as_str()));
    conn.close().await?;

    let used = h.factory().create_connection().await?;
    let _session = used.create_session(SessionMode::AutoAcknowledge).await?;
    let late = used.set_client_id(&h.name("client-late")).await;
    assert!(
        is_illegal_state(&late),
        "setting the client id after creating a session must be IllegalState, got {}",
        outcome(&late)
    );
    assert_eq!(used.client_id(), None);
    used.close().await
}

/// A factory configured with a client id, or `None` when the harness cannot make one or the
/// backend's client ids are not exclusive (the configured-client-id cases then end early).
async fn configured_factory(
    h: &dyn Harness,
    client_id: &str,
) -> Result<Option<std::sync::Arc<dyn ConnectionFactory>>> {
    if !h.capabilities().client_id_exclusive {
        return Ok(None);
    }
    match h.factory_with_client_id(client_id).await {
        Err(e) if e.is_unsupported() => Ok(None),
        other => other.map(Some),
    }
}

/// A connection of a factory configured with a client id has that id from creation, before
/// any use, and setting another is `IllegalState` (§6.1.2: an administratively configured
/// client id).
pub async fn configured_client_id_is_held_from_creation_6_1_2(h: &dyn Harness) -> Result<()> {
    let id = h.name("client-admin");
    let Some(factory) = configured_factory(h, &id).await? else {
        return Ok(());
    };
    let conn = factory.create_connection().await?;
    assert_eq!(
        conn.client_id().as_deref(),
        Some(id.as_str()),
        "a configured client id is the connection's from creation"
    );
    let set = conn.set_client_id(&h.name("client-other")).await;
    assert!(
        is_illegal_state(&set),
        "setting the client id of a connection whose factory configured one must be \
         IllegalState, got {}",
        outcome(&set)
    );
    let same = conn.set_client_id(&id).await;
    assert!(
        is_illegal_state(&same),
        "setting the configured client id again must be IllegalState, got {}",
        outcome(&same)
    );
    assert_eq!(conn.client_id().as_deref(), Some(id.as_str()));
    conn.close().await
}

/// A factory configured with a client id makes one open connection at a time: a second
/// while the first is open is refused with `InvalidClientId`; once the first is closed the
/// next is made (§6.1.2).
pub async fn configured_client_id_allows_one_open_connection_6_1_2(h: &dyn Harness) -> Result<()> {
    let id = h.name("client-admin-one");
    let Some(factory) = configured_factory(h, &id).await? else {
        return Ok(());
    };
    let first = factory.create_connection().await?;
    let second = factory.create_connection().await;
    assert!(
        matches!(second, Err(Error::InvalidClientId(_))),
        "a second open connection of a factory configured with a client id must be refused \
         with InvalidClientId, got {}",
        outcome(&second)
    );
    let plain = h.factory().create_connection().await?;
    let taken = plain.set_client_id(&id).await;
    assert!(
        matches!(taken, Err(Error::InvalidClientId(_))),
        "the configured client id is held while its connection is open, got {}",
        outcome(&taken)
    );
    plain.close().await?;
    first.close().await?;
    let next = factory.create_connection().await?;
    assert_eq!(next.client_id().as_deref(), Some(id.as_str()));
    next.close().await
}

/// After `close()`, every use of the connection and of its sessions, producers and consumers
/// is `IllegalState` (§6.1.5).
pub async fn closed_connection_objects_are_illegal_state_6_1_5(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("conn-closed"));
    let producer = session.create_producer(Some(&queue)).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    conn.close().await?;

    let r = conn.create_session(SessionMode::AutoAcknowledge).await;
    assert!(
        is_illegal_state(&r),
        "create_session on a closed connection: {}",
        outcome(&r)
    );
    let r = conn.start().await;
    assert!(
        is_illegal_state(&r),
        "start on a closed connection: {}",
        outcome(&r)
    );
    let r = session.create_producer(Some(&queue)).await;
    assert!(
        is_illegal_state(&r),
        "create_producer on a session of a closed connection: {}",
        outcome(&r)
    );
    let r = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await;
    assert!(
        is_illegal_state(&r),
        "create_consumer on a session of a closed connection: {}",
        outcome(&r)
    );
    let r = producer.send(&mut Message::text("late")).await;
    assert!(
        is_illegal_state(&r),
        "send on a producer of a closed connection: {}",
        outcome(&r)
    );
    let r = consumer.receive_no_wait().await;
    assert!(
        is_illegal_state(&r),
        "receive_no_wait on a consumer of a closed connection: {}",
        outcome(&r)
    );

    // Nothing was sent by the rejected send.
    let check = h.connect().await?;
    let s = check.create_session(SessionMode::AutoAcknowledge).await?;
    let c = s
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    assert!(
        c.receive_timeout(h.quiet()).await?.is_none(),
        "a send rejected as IllegalState must not reach the queue"
    );
    check.close().await
}

/// Closing a connection twice, and closing its objects after it, is fine (§6.1.5).
pub async fn closing_twice_is_fine_6_1_5(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::ClientAcknowledge).await?;
    let queue = Destination::queue(h.name("conn-close-twice"));
    let producer = session.create_producer(Some(&queue)).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    conn.close().await?;
    conn.close().await?;
    session.close().await?;
    producer.close().await?;
    consumer.close().await?;
    conn.close().await
}

/// Closing the connection makes a receive that is waiting return `None` (§6.1.5).
pub async fn close_returns_none_to_pending_receive_6_1_5(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("conn-close-pending"));
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let (received, closed) = tokio::time::timeout(h.wait(), async {
        tokio::join!(consumer.receive(), async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            conn.close().await
        })
    })
    .await
    .expect("a pending receive must return when its connection is closed");
    closed?;
    let received = received?;
    assert!(
        received.is_none(),
        "a pending receive must return None on close, got {received:?}"
    );
    Ok(())
}

/// Closing a connection rolls back the open transaction of its transacted session: the
/// consumed message comes back, flagged redelivered, and the uncommitted send is discarded
/// (§6.1.5).
pub async fn close_rolls_back_transacted_session_6_1_5(h: &dyn Harness) -> Result<()> {
    let input = Destination::queue(h.name("conn-tx-in"));
    let output = Destination::queue(h.name("conn-tx-out"));
    let setup = h.connect().await?;
    let s = setup.create_session(SessionMode::AutoAcknowledge).await?;
    s.create_producer(Some(&input))
        .await?
        .send(&mut Message::text("work"))
        .await?;

    let conn = h.connect().await?;
    let made = conn.create_session(SessionMode::Transacted).await;
    let caps = h.capabilities();
    let Some(tx) = gated(caps.transactions, "transactions", made)? else {
        return Ok(());
    };
    let consumer = tx
        .create_consumer(&input, ConsumerOptions::default())
        .await?;
    let got = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("the message is delivered in the transaction");
    assert_eq!(got.delivery_count(), 1);
    tx.create_producer(Some(&output))
        .await?
        .send(&mut Message::text("uncommitted"))
        .await?;
    conn.close().await?;

    let again = s
        .create_consumer(&input, ConsumerOptions::default())
        .await?;
    let back = again
        .receive_timeout(h.wait())
        .await?
        .expect("the consumed message comes back after the connection closed");
    assert_eq!(back.body_text(), Some("work"));
    assert!(
        back.redelivered(),
        "the message must be flagged redelivered"
    );
    assert_delivery_count(h, &back, 2, "work");
    let out = s
        .create_consumer(&output, ConsumerOptions::default())
        .await?;
    assert!(
        out.receive_timeout(h.quiet()).await?.is_none(),
        "an uncommitted send must be discarded when the connection closes"
    );
    setup.close().await
}

/// Closing a connection does not acknowledge client-ack messages: they are redelivered
/// (§6.1.5).
pub async fn close_does_not_acknowledge_client_ack_6_1_5(h: &dyn Harness) -> Result<()> {
    let queue = Destination::queue(h.name("conn-client-ack"));
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::ClientAcknowledge).await?;
    let producer = session.create_producer(Some(&queue)).await?;
    for body in ["a", "b"] {
        producer.send(&mut Message::text(body)).await?;
    }
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    for body in ["a", "b"] {
        let got = consumer
            .receive_timeout(h.wait())
            .await?
            .expect("message delivered");
        assert_eq!(got.body_text(), Some(body));
    }
    conn.close().await?;

    let other = h.connect().await?;
    let s = other.create_session(SessionMode::AutoAcknowledge).await?;
    let c = s
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    for body in ["a", "b"] {
        let got = c
            .receive_timeout(h.wait())
            .await?
            .unwrap_or_else(|| panic!("unacknowledged {body:?} comes back after close"));
        assert_eq!(got.body_text(), Some(body));
        assert!(got.redelivered());
        assert_delivery_count(h, &got, 2, body);
    }
    other.close().await
}

/// The cases of this area, for [`crate::conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! connection_cases {
    ($make:expr) => {
        $crate::cases!(
            $make,
            connection,
            [
                new_connection_starts_stopped_6_1_4,
                stop_pauses_and_start_resumes_6_1_4,
                receive_timeout_times_out_while_stopped_6_1_4,
                start_and_stop_are_idempotent_6_1_4,
                client_id_set_and_read_back_6_1_2,
                duplicate_client_id_is_refused_6_1_2,
                client_id_reusable_after_close_6_1_2,
                client_id_only_settable_before_use_6_1_2,
                configured_client_id_is_held_from_creation_6_1_2,
                configured_client_id_allows_one_open_connection_6_1_2,
                closed_connection_objects_are_illegal_state_6_1_5,
                closing_twice_is_fine_6_1_5,
                close_returns_none_to_pending_receive_6_1_5,
                close_rolls_back_transacted_session_6_1_5,
                close_does_not_acknowledge_client_ack_6_1_5,
            ]
        );
    };
}
