//! Local transactions (Jakarta Messaging 3.1 §6.2.5–6.2.6): commit and rollback of sends and
//! receives as one unit.
use courier_api::*;

use crate::expect::{outcome, send_texts};
use crate::waits::expect_message;
use crate::{gated, Harness};

/// Receives exactly `n` messages from `queue` on a fresh auto-ack session of `conn` (each
/// within [`Harness::wait`]), checks that no more come within [`Harness::quiet`], and returns their bodies.
async fn take(
    h: &dyn Harness,
    conn: &dyn Connection,
    queue: &Destination,
    n: usize,
) -> Result<Vec<String>> {
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = session
        .create_consumer(queue, ConsumerOptions::default())
        .await?;
    let mut out = Vec::new();
    for i in 0..n {
        let m = consumer
            .receive_timeout(h.wait())
            .await?
            .unwrap_or_else(|| panic!("expected {n} messages on {queue}, got only {i}: {out:?}"));
        out.push(m.body_text().unwrap_or_default().to_string());
    }
    let extra = consumer.receive_timeout(h.quiet()).await?;
    assert!(
        extra.is_none(),
        "expected only {n} messages on {queue} ({out:?}), got also {extra:?}"
    );
    session.close().await?;
    Ok(out)
}

/// Messages sent in a transaction are invisible to consumers until `commit()`, then all
/// arrive in send order (§6.2.6).
pub async fn sends_invisible_until_commit_6_2_6(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let queue = Destination::queue(h.name("tx-invisible"));
    let observer = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = observer
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let made = conn.create_session(SessionMode::Transacted).await;
    let caps = h.capabilities();
    let Some(tx) = gated(caps.transactions, "transactions", made)? else {
        return Ok(());
    };
    assert_eq!(tx.mode(), SessionMode::Transacted);
    let producer = tx.create_producer(Some(&queue)).await?;
    for body in ["t1", "t2", "t3"] {
        producer.send(&mut Message::text(body)).await?;
    }
    let m = consumer.receive_timeout(h.quiet()).await?;
    assert!(m.is_none(), "an uncommitted send was delivered: {m:?}");
    tx.commit().await?;
    for body in ["t1", "t2", "t3"] {
        expect_message(h, consumer.as_ref(), body, false, 1).await?;
    }
    conn.close().await
}

/// A transacted session's own consumer does not see the session's uncommitted sends
/// (§6.2.6).
pub async fn own_uncommitted_sends_not_received_6_2_6(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let queue = Destination::queue(h.name("tx-own"));
    let made = conn.create_session(SessionMode::Transacted).await;
    let caps = h.capabilities();
    let Some(tx) = gated(caps.transactions, "transactions", made)? else {
        return Ok(());
    };
    let consumer = tx
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let producer = tx.create_producer(Some(&queue)).await?;
    producer.send(&mut Message::text("mine")).await?;
    let m = consumer.receive_timeout(h.quiet()).await?;
    assert!(
        m.is_none(),
        "a session received its own uncommitted send: {m:?}"
    );
    tx.commit().await?;
    expect_message(h, consumer.as_ref(), "mine", false, 1).await?;
    tx.commit().await?;
    conn.close().await
}

/// `rollback()` discards the messages sent in the transaction (§6.2.6).
pub async fn rollback_discards_sends_6_2_6(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let queue = Destination::queue(h.name("tx-discard"));
    let made = conn.create_session(SessionMode::Transacted).await;
    let caps = h.capabilities();
    let Some(tx) = gated(caps.transactions, "transactions", made)? else {
        return Ok(());
    };
    let producer = tx.create_producer(Some(&queue)).await?;
    producer.send(&mut Message::text("gone1")).await?;
    producer.send(&mut Message::text("gone2")).await?;
    tx.rollback().await?;
    producer.send(&mut Message::text("kept")).await?;
    tx.commit().await?;
    assert_eq!(
        take(h, conn.as_ref(), &queue, 1).await?,
        ["kept"],
        "only the committed send arrives"
    );
    conn.close().await
}

/// Messages received in a transaction are acknowledged by `commit()`: they are not
/// redelivered, not even after the session closes (§6.2.6).
pub async fn commit_acknowledges_receives_6_2_6(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let queue = Destination::queue(h.name("tx-ack"));
    send_texts(conn.as_ref(), &queue, &["r1", "r2"]).await?;
    let made = conn.create_session(SessionMode::Transacted).await;
    let caps = h.capabilities();
    let Some(tx) = gated(caps.transactions, "transactions", made)? else {
        return Ok(());
    };
    let consumer = tx
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    expect_message(h, consumer.as_ref(), "r1", false, 1).await?;
    expect_message(h, consumer.as_ref(), "r2", false, 1).await?;
    tx.commit().await?;
    tx.rollback().await?;
    let m = consumer.receive_timeout(h.quiet()).await?;
    assert!(
        m.is_none(),
        "a rollback after commit redelivered a committed receive: {m:?}"
    );
    tx.close().await?;
    assert!(
        take(h, conn.as_ref(), &queue, 0).await?.is_empty(),
        "committed receives must not come back"
    );
    conn.close().await
}

/// `rollback()` recovers the received messages: they come again in their original order,
/// flagged redelivered with delivery count 2 (§6.2.6).
pub async fn rollback_redelivers_receives_in_order_6_2_6(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let queue = Destination::queue(h.name("tx-redeliver"));
    send_texts(conn.as_ref(), &queue, &["o1", "o2", "o3"]).await?;
    let made = conn.create_session(SessionMode::Transacted).await;
    let caps = h.capabilities();
    let Some(tx) = gated(caps.transactions, "transactions", made)? else {
        return Ok(());
    };
    let consumer = tx
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    for body in ["o1", "o2", "o3"] {
        expect_message(h, consumer.as_ref(), body, false, 1).await?;
    }
    tx.rollback().await?;
    for body in ["o1", "o2", "o3"] {
        expect_message(h, consumer.as_ref(), body, true, 2).await?;
    }
    tx.commit().await?;
    let m = consumer.receive_timeout(h.quiet()).await?;
    assert!(m.is_none(), "no duplicates after commit: {m:?}");
    conn.close().await
}

/// One transaction spanning two queues commits both sends together (§6.2.6).
pub async fn transaction_spans_two_queues_commit_6_2_6(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let qa = Destination::queue(h.name("tx-span-a"));
    let qb = Destination::queue(h.name("tx-span-b"));
    let made = conn.create_session(SessionMode::Transacted).await;
    let caps = h.capabilities();
    let Some(tx) = gated(caps.transactions, "transactions", made)? else {
        return Ok(());
    };
    let producer = tx.create_producer(None).await?;
    producer.send_to(&qa, &mut Message::text("to a")).await?;
    producer.send_to(&qb, &mut Message::text("to b")).await?;
    assert!(
        take(h, conn.as_ref(), &qa, 0).await?.is_empty(),
        "a before commit"
    );
    assert!(
        take(h, conn.as_ref(), &qb, 0).await?.is_empty(),
        "b before commit"
    );
    tx.commit().await?;
    assert_eq!(take(h, conn.as_ref(), &qa, 1).await?, ["to a"]);
    assert_eq!(take(h, conn.as_ref(), &qb, 1).await?, ["to b"]);
    conn.close().await
}

/// One transaction spanning two queues rolls back receives from both together (§6.2.6).
pub async fn transaction_spans_two_queues_rollback_6_2_6(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let qa = Destination::queue(h.name("tx-span-ra"));
    let qb = Destination::queue(h.name("tx-span-rb"));
    send_texts(conn.as_ref(), &qa, &["from a"]).await?;
    send_texts(conn.as_ref(), &qb, &["from b"]).await?;
    let made = conn.create_session(SessionMode::Transacted).await;
    let caps = h.capabilities();
    let Some(tx) = gated(caps.transactions, "transactions", made)? else {
        return Ok(());
    };
    let ca = tx.create_consumer(&qa, ConsumerOptions::default()).await?;
    let cb = tx.create_consumer(&qb, ConsumerOptions::default()).await?;
    expect_message(h, ca.as_ref(), "from a", false, 1).await?;
    expect_message(h, cb.as_ref(), "from b", false, 1).await?;
    tx.rollback().await?;
    expect_message(h, ca.as_ref(), "from a", true, 2).await?;
    expect_message(h, cb.as_ref(), "from b", true, 2).await?;
    tx.commit().await?;
    tx.close().await?;
    assert!(take(h, conn.as_ref(), &qa, 0).await?.is_empty());
    assert!(take(h, conn.as_ref(), &qb, 0).await?.is_empty());
    conn.close().await
}

/// A forwarding stage — receive from A, send to B — is atomic: a rollback leaves the message
/// on A and nothing on B; a commit moves it (§6.2.6).
pub async fn forwarding_stage_is_atomic_6_2_6(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let qa = Destination::queue(h.name("tx-fwd-a"));
    let qb = Destination::queue(h.name("tx-fwd-b"));
    send_texts(conn.as_ref(), &qa, &["job"]).await?;
    let observer = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let watch_b = observer
        .create_consumer(&qb, ConsumerOptions::default())
        .await?;

    let made = conn.create_session(SessionMode::Transacted).await;
    let caps = h.capabilities();
    let Some(tx) = gated(caps.transactions, "transactions", made)? else {
        return Ok(());
    };
    let input = tx.create_consumer(&qa, ConsumerOptions::default()).await?;
    let output = tx.create_producer(Some(&qb)).await?;

    let m = expect_message(h, input.as_ref(), "job", false, 1).await?;
    output
        .send(&mut Message::text(format!(
            "forwarded {}",
            m.body_text().unwrap()
        )))
        .await?;
    tx.rollback().await?;
    let early = watch_b.receive_timeout(h.quiet()).await?;
    assert!(
        early.is_none(),
        "a rolled-back forward reached B: {early:?}"
    );

    let m = expect_message(h, input.as_ref(), "job", true, 2).await?;
    output
        .send(&mut Message::text(format!(
            "forwarded {}",
            m.body_text().unwrap()
        )))
        .await?;
    tx.commit().await?;
    let got = watch_b
        .receive_timeout(h.wait())
        .await?
        .expect("the committed forward reaches B");
    assert_eq!(got.body_text(), Some("forwarded job"));
    tx.close().await?;
    assert!(
        take(h, conn.as_ref(), &qa, 0).await?.is_empty(),
        "the committed receive left A"
    );
    conn.close().await
}

/// `commit()` and `rollback()` on a non-transacted session are `IllegalState` (§6.2.6).
pub async fn commit_rollback_need_transacted_session_6_2_6(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    for mode in [
        SessionMode::AutoAcknowledge,
        SessionMode::ClientAcknowledge,
        SessionMode::DupsOkAcknowledge,
    ] {
        let session = conn.create_session(mode).await?;
        let r = session.commit().await;
        assert!(
            matches!(r, Err(Error::IllegalState(_))),
            "commit() in {mode:?} must be IllegalState, got {}",
            outcome(&r)
        );
        let r = session.rollback().await;
        assert!(
            matches!(r, Err(Error::IllegalState(_))),
            "rollback() in {mode:?} must be IllegalState, got {}",
            outcome(&r)
        );
        session.close().await?;
    }
    conn.close().await
}

/// A new transaction starts right after `commit()`: a later rollback does not touch the
/// committed batch (§6.2.6).
pub async fn new_transaction_starts_after_commit_6_2_6(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let out = Destination::queue(h.name("tx-chain-out"));
    let input = Destination::queue(h.name("tx-chain-in"));
    send_texts(conn.as_ref(), &input, &["in1", "in2"]).await?;
    let made = conn.create_session(SessionMode::Transacted).await;
    let caps = h.capabilities();
    let Some(tx) = gated(caps.transactions, "transactions", made)? else {
        return Ok(());
    };
    let producer = tx.create_producer(Some(&out)).await?;
    let consumer = tx
        .create_consumer(&input, ConsumerOptions::default())
        .await?;

    expect_message(h, consumer.as_ref(), "in1", false, 1).await?;
    producer.send(&mut Message::text("batch1")).await?;
    tx.commit().await?;

    expect_message(h, consumer.as_ref(), "in2", false, 1).await?;
    producer.send(&mut Message::text("batch2")).await?;
    tx.rollback().await?;

    // Only the second batch was undone.
    expect_message(h, consumer.as_ref(), "in2", true, 2).await?;
    let m = consumer.receive_timeout(h.quiet()).await?;
    assert!(m.is_none(), "the committed in1 came back: {m:?}");
    tx.commit().await?;
    assert_eq!(take(h, conn.as_ref(), &out, 1).await?, ["batch1"]);
    conn.close().await
}

/// Closing a transacted session rolls its transaction back: sends are discarded and receives
/// are redelivered (§6.2.6).
pub async fn session_close_rolls_back_6_2_6(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let input = Destination::queue(h.name("tx-close-in"));
    let out = Destination::queue(h.name("tx-close-out"));
    send_texts(conn.as_ref(), &input, &["pending"]).await?;
    let made = conn.create_session(SessionMode::Transacted).await;
    let caps = h.capabilities();
    let Some(tx) = gated(caps.transactions, "transactions", made)? else {
        return Ok(());
    };
    let consumer = tx
        .create_consumer(&input, ConsumerOptions::default())
        .await?;
    expect_message(h, consumer.as_ref(), "pending", false, 1).await?;
    tx.create_producer(Some(&out))
        .await?
        .send(&mut Message::text("never"))
        .await?;
    tx.close().await?;

    assert!(
        take(h, conn.as_ref(), &out, 0).await?.is_empty(),
        "a send of a closed, uncommitted transaction was delivered"
    );
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let again = session
        .create_consumer(&input, ConsumerOptions::default())
        .await?;
    expect_message(h, again.as_ref(), "pending", true, 2).await?;
    conn.close().await
}

/// The cases of this area, for [`crate::conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! transactions_cases {
    ($make:expr) => {
        $crate::cases!(
            $make,
            transactions,
            [
                sends_invisible_until_commit_6_2_6,
                own_uncommitted_sends_not_received_6_2_6,
                rollback_discards_sends_6_2_6,
                commit_acknowledges_receives_6_2_6,
                rollback_redelivers_receives_in_order_6_2_6,
                transaction_spans_two_queues_commit_6_2_6,
                transaction_spans_two_queues_rollback_6_2_6,
                forwarding_stage_is_atomic_6_2_6,
                commit_rollback_need_transacted_session_6_2_6,
                new_transaction_starts_after_commit_6_2_6,
                session_close_rolls_back_6_2_6,
            ]
        );
    };
}
