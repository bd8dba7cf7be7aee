//! Connection loss (the contract in `courier_api::connection`): after a loss every pending and
//! later call fails with `ConnectionLost`, `closed()` and the exception listener report it,
//! and the broker treats the lost connection as closed — its unacknowledged messages are
//! redelivered, its transaction rolled back and its client id freed. Nothing reconnects.
//!
//! Each case loses connections through [`Harness::sever_connections`]; a harness that cannot
//! simulate a loss answers `Unsupported`, which the case asserts and then ends.
use courier_api::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::expect::outcome;
use crate::Harness;

/// Severs the harness's connections: `true` when they were lost, `false` when the harness
/// answered `Unsupported` (asserted here); any other error fails the case.
pub(crate) async fn sever(h: &dyn Harness) -> Result<bool> {
    match h.sever_connections().await {
        Ok(()) => Ok(true),
        Err(e) if e.is_unsupported() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Panics unless `result` is [`Error::ConnectionLost`].
fn assert_lost<T>(result: &Result<T>, what: &str) {
    assert!(
        matches!(result, Err(Error::ConnectionLost { .. })),
        "{what} after a connection loss: expected Error::ConnectionLost, got {}",
        outcome(result)
    );
}

/// A receive waiting when the connection is lost wakes and fails with `ConnectionLost`, not
/// `Ok(None)` (which means a normal close).
pub async fn pending_receive_fails_with_connection_lost(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("loss-pending"));
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let (received, severed) = tokio::join!(consumer.receive_timeout(h.wait() * 2), async {
        tokio::time::sleep(h.quiet()).await;
        sever(h).await
    });
    if !severed? {
        return Ok(());
    }
    assert_lost(&received, "a receive pending at the loss");
    Ok(())
}

/// After a loss every later call on the connection and on its sessions, producers,
/// consumers and browsers fails with `ConnectionLost`; `close` still succeeds.
pub async fn later_calls_fail_with_connection_lost(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::ClientAcknowledge).await?;
    let transacted = conn.create_session(SessionMode::Transacted).await?;
    let queue = Destination::queue(h.name("loss-later"));
    let producer = session.create_producer(Some(&queue)).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let caps = h.capabilities();
    let browser = if caps.browse {
        Some(session.create_browser(&queue, None).await?)
    } else {
        None
    };
    if !sever(h).await? {
        return Ok(());
    }
    assert_lost(&conn.start().await, "Connection::start");
    assert_lost(&conn.stop().await, "Connection::stop");
    assert_lost(
        &conn.create_session(SessionMode::AutoAcknowledge).await,
        "Connection::create_session",
    );
    assert_lost(
        &conn.set_client_id(&h.name("loss-id")).await,
        "Connection::set_client_id",
    );
    assert_lost(
        &session.create_producer(Some(&queue)).await,
        "Session::create_producer",
    );
    assert_lost(
        &session
            .create_consumer(&queue, ConsumerOptions::default())
            .await,
        "Session::create_consumer",
    );
    assert_lost(&session.acknowledge().await, "Session::acknowledge");
    assert_lost(&session.recover().await, "Session::recover");
    assert_lost(&transacted.commit().await, "Session::commit");
    assert_lost(&transacted.rollback().await, "Session::rollback");
    assert_lost(
        &producer.send(&mut Message::text("after")).await,
        "Producer::send",
    );
    assert_lost(&consumer.receive().await, "Consumer::receive");
    assert_lost(
        &consumer.receive_timeout(h.quiet()).await,
        "receive_timeout",
    );
    assert_lost(&consumer.receive_no_wait().await, "receive_no_wait");
    if let Some(browser) = &browser {
        assert_lost(&browser.next().await, "Browser::next");
    }
    // Closing what the loss already closed is fine.
    consumer.close().await?;
    producer.close().await?;
    session.close().await?;
    conn.close().await?;
    assert_lost(
        &consumer.receive_no_wait().await,
        "receive_no_wait after close",
    );
    Ok(())
}

/// `closed()` resolves when the connection is lost — also for a caller already waiting —
/// with `ConnectionLost`; after a normal close it resolves with `IllegalState`.
pub async fn closed_resolves_with_the_reason(h: &dyn Harness) -> Result<()> {
    let normal = h.connect().await?;
    normal.close().await?;
    let reason = tokio::time::timeout(h.wait(), normal.closed())
        .await
        .expect("closed() resolves on a closed connection");
    assert!(
        matches!(reason, Error::IllegalState(_)),
        "closed() after close(): expected IllegalState, got {reason:?}"
    );

    let conn = h.connect().await?;
    let (reason, severed) =
        tokio::join!(tokio::time::timeout(h.wait() * 2, conn.closed()), async {
            tokio::time::sleep(h.quiet()).await;
            sever(h).await
        });
    if !severed? {
        assert!(reason.is_err(), "closed() resolved on a live connection");
        return Ok(());
    }
    let reason = reason.expect("closed() resolves when the connection is lost");
    assert!(
        matches!(reason, Error::ConnectionLost { .. }),
        "closed() after a loss: expected ConnectionLost, got {reason:?}"
    );
    let again = tokio::time::timeout(h.wait(), conn.closed())
        .await
        .expect("closed() resolves at once on a lost connection");
    assert!(matches!(again, Error::ConnectionLost { .. }), "{again:?}");
    Ok(())
}

/// The exception listener is called exactly once, with `ConnectionLost`; a normal close
/// afterwards does not call it again.
pub async fn exception_listener_is_called_once(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let calls = Arc::new(AtomicUsize::new(0));
    let seen: Arc<Mutex<Option<Error>>> = Arc::default();
    let (c, s) = (calls.clone(), seen.clone());
    conn.set_exception_listener(Some(Arc::new(move |e: &Error| {
        c.fetch_add(1, Ordering::SeqCst);
        *s.lock().unwrap() = Some(e.clone());
    })));
    if !sever(h).await? {
        return Ok(());
    }
    let _ = tokio::time::timeout(h.wait(), conn.closed()).await;
    let deadline = tokio::time::Instant::now() + h.wait();
    while calls.load(Ordering::SeqCst) == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(h.quiet() / 10).await;
    }
    conn.close().await?;
    tokio::time::sleep(h.quiet()).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the exception listener is called once per loss"
    );
    let error = seen.lock().unwrap().clone();
    assert!(
        matches!(error, Some(Error::ConnectionLost { .. })),
        "the listener gets ConnectionLost, got {error:?}"
    );
    Ok(())
}

/// Client-ack messages the lost connection received but did not acknowledge go to another
/// connection, in order and flagged redelivered.
pub async fn unacknowledged_messages_are_redelivered(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let queue = Destination::queue(h.name("loss-unacked"));
    crate::expect::send_texts(conn.as_ref(), &queue, &["one", "two"]).await?;
    let session = conn.create_session(SessionMode::ClientAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    for expected in ["one", "two"] {
        let got = consumer
            .receive_timeout(h.wait())
            .await?
            .expect("sent above");
        assert_eq!(got.body_text(), Some(expected));
    }
    if !sever(h).await? {
        return Ok(());
    }
    let other = h.connect().await?;
    let other_session = other.create_session(SessionMode::AutoAcknowledge).await?;
    let again = other_session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    for expected in ["one", "two"] {
        let got = again
            .receive_timeout(h.wait())
            .await?
            .unwrap_or_else(|| panic!("{expected:?}, unacknowledged at the loss, is redelivered"));
        assert_eq!(got.body_text(), Some(expected));
        assert!(got.redelivered(), "{expected:?} is flagged redelivered");
    }
    other.close().await
}

/// An open transaction of the lost connection rolls back: its sends never arrive and its
/// receives are redelivered.
pub async fn open_transaction_rolls_back(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let inbox = Destination::queue(h.name("loss-tx-in"));
    let outbox = Destination::queue(h.name("loss-tx-out"));
    crate::expect::send_texts(conn.as_ref(), &inbox, &["request"]).await?;
    let session = conn.create_session(SessionMode::Transacted).await?;
    let consumer = session
        .create_consumer(&inbox, ConsumerOptions::default())
        .await?;
    let got = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("sent above");
    assert_eq!(got.body_text(), Some("request"));
    let producer = session.create_producer(Some(&outbox)).await?;
    producer.send(&mut Message::text("reply")).await?;
    if !sever(h).await? {
        return Ok(());
    }
    assert_lost(&session.commit().await, "commit of the lost transaction");

    let other = h.connect().await?;
    let other_session = other.create_session(SessionMode::AutoAcknowledge).await?;
    let replies = other_session
        .create_consumer(&outbox, ConsumerOptions::default())
        .await?;
    let reply = replies.receive_timeout(h.quiet()).await?;
    assert!(
        reply.is_none(),
        "a send of the lost, uncommitted transaction arrived: {reply:?}"
    );
    let requests = other_session
        .create_consumer(&inbox, ConsumerOptions::default())
        .await?;
    let again = requests
        .receive_timeout(h.wait())
        .await?
        .expect("the lost transaction's receive is redelivered");
    assert_eq!(again.body_text(), Some("request"));
    assert!(again.redelivered(), "the redelivery is flagged redelivered");
    other.close().await
}

/// The client id of a lost connection is free for a new connection.
pub async fn client_id_of_a_lost_connection_is_free(h: &dyn Harness) -> Result<()> {
    let id = h.name("loss-client");
    let conn = h.factory().create_connection().await?;
    conn.set_client_id(&id).await?;
    if !sever(h).await? {
        return Ok(());
    }
    let other = h.factory().create_connection().await?;
    let claimed = other.set_client_id(&id).await;
    assert!(
        claimed.is_ok(),
        "the lost connection's client id stays taken: {}",
        outcome(&claimed)
    );
    other.close().await
}

/// The cases of this area, for [`crate::conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! connection_loss_cases {
    ($make:expr) => {
        $crate::cases!(
            $make,
            connection_loss,
            [
                pending_receive_fails_with_connection_lost,
                later_calls_fail_with_connection_lost,
                closed_resolves_with_the_reason,
                exception_listener_is_called_once,
                unacknowledged_messages_are_redelivered,
                open_transaction_rolls_back,
                client_id_of_a_lost_connection_is_free,
            ]
        );
    };
}
