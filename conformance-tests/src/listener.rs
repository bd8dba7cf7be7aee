//! The listener form (Jakarta Messaging 3.1 §8.7, `MessageListener`): in an auto-acknowledge
//! session a message is acknowledged only after its handler returns, so a failing or crashing
//! handler gets the message again with `JMSRedelivered` set.
use courier_api::*;
use std::sync::Arc;
use tokio::sync::mpsc;

use crate::expect::send_texts;
use crate::waits::{assert_queue_empty, expect_message};
use crate::Harness;

/// What a handler saw: the body, `JMSRedelivered` and the delivery count.
type Seen = (String, bool, u32);

fn seen(m: &Message) -> Seen {
    (
        m.body_text().unwrap_or_default().to_owned(),
        m.redelivered(),
        m.delivery_count(),
    )
}

/// The next thing a handler reported, within [`Harness::wait`].
async fn next_seen(h: &dyn Harness, events: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(h.wait(), events.recv())
        .await
        .expect("the listener handled a message within the harness's wait")
        .expect("the listener is still running")
}

/// A handler returning `Err` gets its message again, marked redelivered with a raised
/// delivery count; once it returns `Ok` the message is acknowledged and gone (§8.7).
pub async fn handler_error_redelivers_the_message_8_7(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let queue = Destination::queue(h.name("listen-fail"));
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    send_texts(conn.as_ref(), &queue, &["flaky"]).await?;
    let (tx, mut events) = mpsc::unbounded_channel();
    let listening = consumer.listen(handler(move |m: Message| {
        let first = !m.redelivered();
        let _ = tx.send(seen(&m));
        async move {
            if first {
                Err(Error::illegal_state("the handler failed"))
            } else {
                Ok(())
            }
        }
    }));
    let driving = async {
        let first = next_seen(h, &mut events).await;
        let second = next_seen(h, &mut events).await;
        consumer.close().await?;
        Ok::<_, Error>((first, second))
    };
    let (listened, driven) = tokio::join!(listening, driving);
    listened?;
    let (first, second) = driven?;
    assert_eq!(first, ("flaky".to_owned(), false, 1), "first delivery");
    assert_eq!(
        second,
        ("flaky".to_owned(), true, 2),
        "redelivery after the handler's error"
    );
    assert_queue_empty(
        h,
        conn.as_ref(),
        &queue,
        "handled messages are acknowledged",
    )
    .await?;
    conn.close().await
}

/// A message whose handler returned `Ok` is acknowledged: neither a recover of the session
/// after the listener stopped nor closing the session brings it back (§8.7, §6.2.10).
pub async fn handled_message_is_acknowledged_8_7(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let queue = Destination::queue(h.name("listen-ok"));
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    send_texts(conn.as_ref(), &queue, &["one", "two"]).await?;
    let (tx, mut events) = mpsc::unbounded_channel();
    let listening = consumer.listen(handler(move |m: Message| {
        let _ = tx.send(seen(&m));
        async { Ok(()) }
    }));
    let driving = async {
        let one = next_seen(h, &mut events).await;
        let two = next_seen(h, &mut events).await;
        // `listen` returns only after settling what it handled.
        consumer.close().await?;
        Ok::<_, Error>((one, two))
    };
    let (listened, driven) = tokio::join!(listening, driving);
    listened?;
    let (one, two) = driven?;
    assert_eq!(one, ("one".to_owned(), false, 1));
    assert_eq!(two, ("two".to_owned(), false, 1));
    // Anything the session still held unacknowledged would come back now.
    session.recover().await?;
    session.close().await?;
    assert_queue_empty(
        h,
        conn.as_ref(),
        &queue,
        "messages handled with Ok stay acknowledged",
    )
    .await?;
    conn.close().await
}

/// A handler that panics loses nothing: its message is given back and the next consumer
/// gets it marked redelivered.
pub async fn handler_panic_redelivers_the_message_8_7(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let queue = Destination::queue(h.name("listen-panic"));
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer: Arc<dyn Consumer> = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?
        .into();
    send_texts(conn.as_ref(), &queue, &["crash"]).await?;
    let listening = consumer.clone();
    let task = tokio::spawn(async move {
        listening
            .listen(handler(|_m: Message| async {
                panic!("the handler crashed (expected by this case)")
            }))
            .await
    });
    let crashed = tokio::time::timeout(h.wait(), task)
        .await
        .expect("the panicking listener ended within the harness's wait");
    assert!(crashed.is_err(), "the listener's task panicked");
    consumer.close().await?;
    let other = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let again = other
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    expect_message(h, again.as_ref(), "crash", true, 2).await?;
    conn.close().await
}

/// In a client-acknowledge session a handler's `Err` recovers the session, so the message
/// comes again marked redelivered; a handler's `Ok` leaves acknowledging to the application:
/// the message stays unacknowledged until `acknowledge` (§8.7, §6.2.10).
pub async fn client_ack_listener_recovers_on_error_and_leaves_ack_to_the_app_8_7(
    h: &dyn Harness,
) -> Result<()> {
    let conn = h.connect().await?;
    let queue = Destination::queue(h.name("listen-client"));
    let session = conn.create_session(SessionMode::ClientAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    send_texts(conn.as_ref(), &queue, &["c"]).await?;
    let (tx, mut events) = mpsc::unbounded_channel();
    let listening = consumer.listen(handler(move |m: Message| {
        let first = !m.redelivered();
        let _ = tx.send(seen(&m));
        async move {
            if first {
                Err(Error::illegal_state("the handler failed"))
            } else {
                Ok(())
            }
        }
    }));
    let driving = async {
        let first = next_seen(h, &mut events).await;
        let second = next_seen(h, &mut events).await;
        consumer.close().await?;
        Ok::<_, Error>((first, second))
    };
    let (listened, driven) = tokio::join!(listening, driving);
    listened?;
    let (first, second) = driven?;
    assert_eq!(first, ("c".to_owned(), false, 1), "first delivery");
    assert_eq!(
        second,
        ("c".to_owned(), true, 2),
        "redelivery after the recover"
    );
    // Handled with Ok but not acknowledged by the application: a recover brings it back.
    let again = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    session.recover().await?;
    expect_message(h, again.as_ref(), "c", true, 3).await?;
    session.acknowledge().await?;
    session.close().await?;
    assert_queue_empty(h, conn.as_ref(), &queue, "acknowledged by the application").await?;
    conn.close().await
}

/// `listen` returns `Ok` when its consumer is closed while it waits for a message.
pub async fn listener_stops_when_the_consumer_closes_8_7(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let queue = Destination::queue(h.name("listen-close"));
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let listening = consumer.listen(handler(|m: Message| async move {
        panic!("no message was sent, got {m:?}")
    }));
    let closing = async {
        tokio::time::sleep(h.quiet()).await;
        consumer.close().await
    };
    let (listened, closed) =
        tokio::time::timeout(h.wait(), async { tokio::join!(listening, closing) })
            .await
            .expect("listen returned within the harness's wait of the consumer closing");
    closed?;
    listened?;
    conn.close().await
}

/// The cases of this area, for [`crate::conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! listener_cases {
    ($make:expr) => {
        $crate::cases!(
            $make,
            listener,
            [
                handler_error_redelivers_the_message_8_7,
                handled_message_is_acknowledged_8_7,
                handler_panic_redelivers_the_message_8_7,
                client_ack_listener_recovers_on_error_and_leaves_ack_to_the_app_8_7,
                listener_stops_when_the_consumer_closes_8_7,
            ]
        );
    };
}
