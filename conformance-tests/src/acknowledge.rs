//! Acknowledgement (Jakarta Messaging 3.1 §6.2.10, §6.2.11, §8.6–8.8): auto, client and
//! dups-ok modes, `acknowledge()` and `recover()`.
use courier_api::*;

use crate::expect::{outcome, send_texts};
use crate::waits::{assert_queue_empty, expect_message};
use crate::{gated, Harness};

/// AUTO_ACKNOWLEDGE: a message returned by `receive` is acknowledged; closing the session
/// does not bring it back (§6.2.10).
pub async fn auto_ack_not_redelivered_after_close_6_2_10(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let queue = Destination::queue(h.name("ack-auto"));
    send_texts(conn.as_ref(), &queue, &["a1", "a2"]).await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    expect_message(h, consumer.as_ref(), "a1", false, 1).await?;
    session.close().await?;

    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    // a2 was never handed to the application; only its arrival is checked.
    let a2 = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("a2 within h.wait()");
    assert_eq!(a2.body_text(), Some("a2"));
    let m = consumer.receive_timeout(h.quiet()).await?;
    assert!(m.is_none(), "an auto-acknowledged message came back: {m:?}");
    conn.close().await
}

/// CLIENT_ACKNOWLEDGE: `acknowledge()` acknowledges every message the session consumed so far,
/// so none comes back after the session closes (§6.2.10).
pub async fn client_ack_acknowledges_all_consumed_6_2_10(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let queue = Destination::queue(h.name("ack-client-all"));
    send_texts(conn.as_ref(), &queue, &["c1", "c2", "c3"]).await?;
    let session = conn.create_session(SessionMode::ClientAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    for body in ["c1", "c2", "c3"] {
        expect_message(h, consumer.as_ref(), body, false, 1).await?;
    }
    session.acknowledge().await?;
    session.close().await?;
    assert_queue_empty(
        h,
        conn.as_ref(),
        &queue,
        "acknowledge() must acknowledge every consumed message, not just the last",
    )
    .await?;
    conn.close().await
}

/// CLIENT_ACKNOWLEDGE without `acknowledge()`: closing the session makes the consumed
/// messages available again, in order, flagged redelivered with delivery count 2 (§6.2.10).
pub async fn client_ack_unacknowledged_redelivered_after_close_6_2_10(
    h: &dyn Harness,
) -> Result<()> {
    let conn = h.connect().await?;
    let queue = Destination::queue(h.name("ack-client-none"));
    send_texts(conn.as_ref(), &queue, &["u1", "u2", "u3"]).await?;
    let session = conn.create_session(SessionMode::ClientAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    for body in ["u1", "u2", "u3"] {
        expect_message(h, consumer.as_ref(), body, false, 1).await?;
    }
    session.close().await?;

    let session = conn.create_session(SessionMode::ClientAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    for body in ["u1", "u2", "u3"] {
        expect_message(h, consumer.as_ref(), body, true, 2).await?;
    }
    session.acknowledge().await?;
    session.close().await?;
    assert_queue_empty(h, conn.as_ref(), &queue, "acknowledged after redelivery").await?;
    conn.close().await
}

/// `recover()` redelivers every unacknowledged message from the oldest, flagged redelivered
/// with the delivery count raised by one each time (§6.2.10).
pub async fn recover_redelivers_unacked_oldest_first_6_2_10(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let queue = Destination::queue(h.name("ack-recover"));
    send_texts(conn.as_ref(), &queue, &["r1", "r2", "r3"]).await?;
    let session = conn.create_session(SessionMode::ClientAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    for body in ["r1", "r2", "r3"] {
        expect_message(h, consumer.as_ref(), body, false, 1).await?;
    }
    session.recover().await?;
    for body in ["r1", "r2", "r3"] {
        expect_message(h, consumer.as_ref(), body, true, 2).await?;
    }
    session.recover().await?;
    for body in ["r1", "r2", "r3"] {
        expect_message(h, consumer.as_ref(), body, true, 3).await?;
    }
    session.acknowledge().await?;
    let m = consumer.receive_timeout(h.quiet()).await?;
    assert!(m.is_none(), "recover must not invent duplicates: {m:?}");
    session.close().await?;
    assert_queue_empty(h, conn.as_ref(), &queue, "all acknowledged").await?;
    conn.close().await
}

/// `recover()` after a partial acknowledgement redelivers only the unacknowledged messages,
/// then delivery continues with the ones not yet delivered (§6.2.10, §6.2.11).
pub async fn recover_after_partial_ack_6_2_10(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let queue = Destination::queue(h.name("ack-partial"));
    send_texts(conn.as_ref(), &queue, &["p1", "p2", "p3", "p4", "p5"]).await?;
    let session = conn.create_session(SessionMode::ClientAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    expect_message(h, consumer.as_ref(), "p1", false, 1).await?;
    expect_message(h, consumer.as_ref(), "p2", false, 1).await?;
    session.acknowledge().await?;
    expect_message(h, consumer.as_ref(), "p3", false, 1).await?;
    expect_message(h, consumer.as_ref(), "p4", false, 1).await?;
    session.recover().await?;
    expect_message(h, consumer.as_ref(), "p3", true, 2).await?;
    expect_message(h, consumer.as_ref(), "p4", true, 2).await?;
    // p5 was never handed to the application before the recover; only its arrival after
    // the redelivered ones is checked.
    let p5 = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("p5 within h.wait()");
    assert_eq!(
        p5.body_text(),
        Some("p5"),
        "recover redelivers from the oldest"
    );
    session.acknowledge().await?;
    let m = consumer.receive_timeout(h.quiet()).await?;
    assert!(m.is_none(), "acknowledged messages came back: {m:?}");
    conn.close().await
}

/// Messages consumed after `acknowledge()` are not covered by it: closing the session
/// redelivers only those (§6.2.10).
pub async fn acknowledge_does_not_cover_later_messages_6_2_10(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let queue = Destination::queue(h.name("ack-later"));
    send_texts(conn.as_ref(), &queue, &["l1", "l2"]).await?;
    let session = conn.create_session(SessionMode::ClientAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    expect_message(h, consumer.as_ref(), "l1", false, 1).await?;
    session.acknowledge().await?;
    expect_message(h, consumer.as_ref(), "l2", false, 1).await?;
    session.close().await?;

    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    expect_message(h, consumer.as_ref(), "l2", true, 2).await?;
    let m = consumer.receive_timeout(h.quiet()).await?;
    assert!(m.is_none(), "the acknowledged l1 came back: {m:?}");
    conn.close().await
}

/// `acknowledge()` covers the messages of every consumer of the session, not only one
/// (§6.2.10).
pub async fn client_ack_covers_every_consumer_of_session_6_2_10(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let q1 = Destination::queue(h.name("ack-multi-1"));
    let q2 = Destination::queue(h.name("ack-multi-2"));
    send_texts(conn.as_ref(), &q1, &["first queue"]).await?;
    send_texts(conn.as_ref(), &q2, &["second queue"]).await?;
    let session = conn.create_session(SessionMode::ClientAcknowledge).await?;
    let c1 = session
        .create_consumer(&q1, ConsumerOptions::default())
        .await?;
    let c2 = session
        .create_consumer(&q2, ConsumerOptions::default())
        .await?;
    expect_message(h, c1.as_ref(), "first queue", false, 1).await?;
    expect_message(h, c2.as_ref(), "second queue", false, 1).await?;
    session.acknowledge().await?;
    session.close().await?;
    assert_queue_empty(h, conn.as_ref(), &q1, "acknowledged via the session").await?;
    assert_queue_empty(h, conn.as_ref(), &q2, "acknowledged via the session").await?;
    conn.close().await
}

/// An acknowledged message is never redelivered, not even by `recover()` (§6.2.11).
pub async fn acknowledged_message_not_recovered_6_2_11(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let queue = Destination::queue(h.name("ack-final"));
    send_texts(conn.as_ref(), &queue, &["done"]).await?;
    let session = conn.create_session(SessionMode::ClientAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    expect_message(h, consumer.as_ref(), "done", false, 1).await?;
    session.acknowledge().await?;
    session.recover().await?;
    let m = consumer.receive_timeout(h.quiet()).await?;
    assert!(
        m.is_none(),
        "recover redelivered an acknowledged message: {m:?}"
    );
    conn.close().await
}

/// `acknowledge()` is ignored, without error, in auto and dups-ok modes (§6.2.10).
pub async fn acknowledge_ignored_in_auto_mode_6_2_10(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    for mode in [SessionMode::AutoAcknowledge, SessionMode::DupsOkAcknowledge] {
        let queue = Destination::queue(h.name("ack-ignored"));
        send_texts(conn.as_ref(), &queue, &["x"]).await?;
        let session = conn.create_session(mode).await?;
        assert_eq!(session.mode(), mode);
        let r = session.acknowledge().await;
        assert!(
            r.is_ok(),
            "acknowledge() before any receive in {mode:?} must be ignored, got {r:?}"
        );
        let consumer = session
            .create_consumer(&queue, ConsumerOptions::default())
            .await?;
        expect_message(h, consumer.as_ref(), "x", false, 1).await?;
        let r = session.acknowledge().await;
        assert!(
            r.is_ok(),
            "acknowledge() in {mode:?} must be ignored, got {r:?}"
        );
        session.close().await?;
        assert_queue_empty(h, conn.as_ref(), &queue, "consumed in auto/dups-ok mode").await?;
    }
    conn.close().await
}

/// In a transacted session `acknowledge()` is ignored: it does not commit, so a rollback still
/// redelivers (§6.2.10).
pub async fn acknowledge_ignored_in_transacted_mode_6_2_10(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let queue = Destination::queue(h.name("ack-tx"));
    send_texts(conn.as_ref(), &queue, &["t"]).await?;
    let made = conn.create_session(SessionMode::Transacted).await;
    let caps = h.capabilities();
    let Some(session) = gated(caps.transactions, "transactions", made)? else {
        return Ok(());
    };
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    expect_message(h, consumer.as_ref(), "t", false, 1).await?;
    let r = session.acknowledge().await;
    assert!(
        r.is_ok(),
        "acknowledge() in a transacted session must be ignored, got {r:?}"
    );
    session.rollback().await?;
    expect_message(h, consumer.as_ref(), "t", true, 2).await?;
    session.commit().await?;
    conn.close().await
}

/// DUPS_OK_ACKNOWLEDGE delivers every message, in order and — without a failure — exactly
/// once (§6.2.10, §6.2.12).
pub async fn dups_ok_delivers_everything_6_2_10(h: &dyn Harness) -> Result<()> {
    const N: usize = 100;
    let conn = h.connect().await?;
    let queue = Destination::queue(h.name("ack-dups"));
    let bodies: Vec<String> = (0..N).map(|i| format!("d{i}")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    send_texts(conn.as_ref(), &queue, &refs).await?;
    let session = conn.create_session(SessionMode::DupsOkAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    for body in &bodies {
        expect_message(h, consumer.as_ref(), body, false, 1).await?;
    }
    let m = consumer.receive_timeout(h.quiet()).await?;
    assert!(m.is_none(), "no failure, so no duplicates: {m:?}");
    session.close().await?;
    conn.close().await
}

/// `recover()` on a transacted session is `IllegalState` (§6.2.10).
pub async fn recover_on_transacted_is_illegal_state_6_2_10(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let made = conn.create_session(SessionMode::Transacted).await;
    let caps = h.capabilities();
    let Some(session) = gated(caps.transactions, "transactions", made)? else {
        return Ok(());
    };
    let r = session.recover().await;
    assert!(
        matches!(r, Err(Error::IllegalState(_))),
        "recover() on a transacted session must be IllegalState, got {}",
        outcome(&r)
    );
    conn.close().await
}

/// The cases of this area, for [`crate::conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! acknowledge_cases {
    ($make:expr) => {
        $crate::cases!(
            $make,
            acknowledge,
            [
                auto_ack_not_redelivered_after_close_6_2_10,
                client_ack_acknowledges_all_consumed_6_2_10,
                client_ack_unacknowledged_redelivered_after_close_6_2_10,
                recover_redelivers_unacked_oldest_first_6_2_10,
                recover_after_partial_ack_6_2_10,
                acknowledge_does_not_cover_later_messages_6_2_10,
                client_ack_covers_every_consumer_of_session_6_2_10,
                acknowledged_message_not_recovered_6_2_11,
                acknowledge_ignored_in_auto_mode_6_2_10,
                acknowledge_ignored_in_transacted_mode_6_2_10,
                dups_ok_delivers_everything_6_2_10,
                recover_on_transacted_is_illegal_state_6_2_10,
            ]
        );
    };
}
