//! Pipelined sends (JMS 2.0 §7.3, asynchronous send with a `CompletionListener`) and consumer
//! credit (`ConsumerOptions::prefetch`): order, exactly-once, per-receipt errors, and
//! transactions and close waiting for outstanding sends.
use courier_api::*;
use futures::FutureExt;

use crate::expect::{is_illegal_state, is_invalid_destination, outcome};
use crate::Harness;

/// How many sends the bulk cases pipeline.
const BULK: usize = 10_000;

/// Receives exactly `bodies` in order from `consumer`, each within [`Harness::wait`], then
/// nothing more within [`Harness::quiet`].
async fn expect_in_order(
    h: &dyn Harness,
    consumer: &dyn Consumer,
    bodies: &[String],
    why: &str,
) -> Result<()> {
    for (i, body) in bodies.iter().enumerate() {
        let got = consumer
            .receive_timeout(h.wait())
            .await?
            .unwrap_or_else(|| panic!("{why}: message {i} ({body:?}) did not arrive"));
        assert_eq!(got.body_text(), Some(body.as_str()), "{why}: message {i}");
    }
    let extra = consumer.receive_timeout(h.quiet()).await?;
    assert!(
        extra.is_none(),
        "{why}: a message arrived twice or from nowhere: {extra:?}"
    );
    Ok(())
}

/// 10 000 pipelined sends whose receipts are dropped, then `flush`: every message arrives,
/// in send order, exactly once (§7.3.1 order of sends is kept by asynchronous sends).
pub async fn bulk_send_async_then_flush_arrives_in_order_once_7_3(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("pipelined"));
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let producer = session.create_producer(Some(&queue)).await?;
    producer.set_delivery_mode(DeliveryMode::NonPersistent)?;
    let bodies: Vec<String> = (0..BULK).map(|i| format!("m{i}")).collect();
    for body in &bodies {
        // The receipt is dropped: the send must happen anyway.
        drop(producer.send_async(Message::text(body.as_str())).await?);
    }
    producer.flush().await?;
    expect_in_order(h, consumer.as_ref(), &bodies, "pipelined sends").await?;
    conn.close().await
}

/// A producer's receipts complete in send order: once a later receipt has resolved, every
/// earlier one has too, each with its own stamped message (a distinct message id).
pub async fn receipts_resolve_in_send_order_7_3(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("receipts"));
    let producer = session.create_producer(Some(&queue)).await?;
    let mut receipts = Vec::new();
    for i in 0..500 {
        receipts.push(producer.send_async(Message::text(format!("r{i}"))).await?);
    }
    let last = receipts.pop().expect("receipts were made");
    let last = last.await?;
    assert_eq!(last.body_text(), Some("r499"));
    let mut ids = std::collections::HashSet::new();
    ids.insert(
        last.message_id()
            .expect("a sent message has an id")
            .to_owned(),
    );
    for (i, receipt) in receipts.into_iter().enumerate() {
        let sent = receipt
            .now_or_never()
            .unwrap_or_else(|| panic!("receipt {i} still pending after receipt 499 resolved"))?;
        assert_eq!(sent.body_text(), Some(format!("r{i}").as_str()));
        assert_eq!(
            sent.destination(),
            Some(&queue),
            "the receipt has the stamped message"
        );
        let id = sent
            .message_id()
            .expect("a sent message has an id")
            .to_owned();
        assert!(ids.insert(id), "receipt {i} repeats a message id");
    }
    producer.flush().await?;
    conn.close().await
}

/// A send that fails (to a deleted temporary queue) fails its receipt with the error; sends
/// before and after it on the same producer still work.
pub async fn failing_send_fails_only_its_receipt_7_3(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("after-failure"));
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let temp = session.create_temporary_queue().await?;
    session.delete_temporary(&temp).await?;
    let producer = session.create_producer(None).await?;

    let before = producer
        .send_async_to(&queue, Message::text("before"))
        .await?;
    // The error belongs to the receipt, though a backend may report it from the call.
    let failed = match producer.send_async_to(&temp, Message::text("lost")).await {
        Ok(receipt) => receipt.await,
        Err(e) => Err(e),
    };
    assert!(
        is_invalid_destination(&failed),
        "a pipelined send to a deleted temporary queue must fail with InvalidDestination, got {}",
        outcome(&failed)
    );
    let after = producer
        .send_async_to(&queue, Message::text("after"))
        .await?;
    producer.flush().await?;
    assert_eq!(before.await?.body_text(), Some("before"));
    assert_eq!(after.await?.body_text(), Some("after"));
    let bodies = ["before".to_owned(), "after".to_owned()];
    expect_in_order(h, consumer.as_ref(), &bodies, "around a failed send").await?;
    conn.close().await
}

/// A commit waits for the transacted session's outstanding pipelined sends: it covers every
/// send made before it, none is seen before it, and their receipts succeed (§7.3).
pub async fn commit_waits_for_outstanding_async_sends_7_3(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let tx = conn.create_session(SessionMode::Transacted).await?;
    let reader = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("tx-pipelined"));
    let consumer = reader
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let producer = tx.create_producer(Some(&queue)).await?;
    let bodies: Vec<String> = (0..1000).map(|i| format!("t{i}")).collect();
    let mut receipts = Vec::new();
    for body in &bodies {
        receipts.push(producer.send_async(Message::text(body.as_str())).await?);
    }
    let early = consumer.receive_timeout(h.quiet()).await?;
    assert!(
        early.is_none(),
        "a pipelined transacted send was seen before commit: {early:?}"
    );
    tx.commit().await?;
    for (i, receipt) in receipts.into_iter().enumerate() {
        let sent = receipt
            .now_or_never()
            .unwrap_or_else(|| panic!("receipt {i} still pending after the commit returned"))?;
        assert_eq!(sent.body_text(), Some(bodies[i].as_str()));
    }
    expect_in_order(h, consumer.as_ref(), &bodies, "committed pipelined sends").await?;
    conn.close().await
}

/// Closing a producer (then its session) right after pipelined sends loses none of them: close
/// waits for outstanding sends, and a closed producer refuses further pipelined sends with
/// `IllegalState`.
pub async fn close_after_send_async_loses_nothing_7_3(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let sending = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let reader = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("close-pipelined"));
    let consumer = reader
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let producer = sending.create_producer(Some(&queue)).await?;
    let bodies: Vec<String> = (0..1000).map(|i| format!("c{i}")).collect();
    for body in &bodies {
        drop(producer.send_async(Message::text(body.as_str())).await?);
    }
    producer.close().await?;
    let refused = producer.send_async(Message::text("too late")).await;
    assert!(
        is_illegal_state(&refused),
        "send_async on a closed producer must be IllegalState, got {}",
        outcome(&refused)
    );
    sending.close().await?;
    expect_in_order(h, consumer.as_ref(), &bodies, "sends before close").await?;
    conn.close().await
}

/// Sends 50 messages to a queue with two consumers: one with `idle_prefetch` that never
/// receives until the end, one with the default that receives everything it can. Returns
/// what each got; every message arrives exactly once across the two, and the idle one's
/// are handed to it when it finally receives.
async fn split_with_an_idle_consumer(
    h: &dyn Harness,
    idle_prefetch: Option<u32>,
) -> Result<(Vec<String>, Vec<String>)> {
    let conn = h.connect().await?;
    let idle_session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let busy_session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("credit"));
    let idle = idle_session
        .create_consumer(
            &queue,
            ConsumerOptions::default().with_prefetch(idle_prefetch),
        )
        .await?;
    let busy = busy_session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let producer = busy_session.create_producer(Some(&queue)).await?;
    let bodies: Vec<String> = (0..50).map(|i| format!("p{i}")).collect();
    for body in &bodies {
        producer.send(&mut Message::text(body.as_str())).await?;
    }
    let mut busy_got = Vec::new();
    while let Some(m) = busy.receive_timeout(h.quiet()).await? {
        busy_got.push(m.body_text().unwrap_or_default().to_owned());
        if busy_got.len() == bodies.len() {
            break;
        }
    }
    let mut idle_got = Vec::new();
    while let Some(m) = idle.receive_timeout(h.quiet()).await? {
        idle_got.push(m.body_text().unwrap_or_default().to_owned());
    }
    let mut all: Vec<String> = busy_got.iter().chain(&idle_got).cloned().collect();
    all.sort_by_key(|b| b[1..].parse::<usize>().unwrap_or(usize::MAX));
    assert_eq!(
        all, bodies,
        "every message exactly once across the two consumers"
    );
    conn.close().await?;
    Ok((busy_got, idle_got))
}

/// With no prefetch (the default) a consumer that is not receiving holds nothing: a second
/// consumer on the queue receives every message. A backend whose credit is approximate
/// ([`Capabilities::exact_prefetch`] `false`) must still deliver each message once.
pub async fn no_prefetch_strands_nothing_on_an_idle_consumer(h: &dyn Harness) -> Result<()> {
    assert_eq!(
        ConsumerOptions::default().prefetch,
        None,
        "the default prefetch buffers nothing ahead"
    );
    let (busy, idle) = split_with_an_idle_consumer(h, None).await?;
    if h.capabilities().exact_prefetch {
        assert!(idle.is_empty(), "the idle consumer held {idle:?}");
        assert_eq!(busy.len(), 50, "the receiving consumer gets everything");
    }
    Ok(())
}

/// With a prefetch of `n` an idle consumer holds at most `n` messages: the receiving one gets
/// all others (on a backend with [`Capabilities::exact_prefetch`]), and the held ones are
/// not lost.
pub async fn prefetch_bounds_what_an_idle_consumer_holds(h: &dyn Harness) -> Result<()> {
    const CREDIT: u32 = 5;
    let (busy, idle) = split_with_an_idle_consumer(h, Some(CREDIT)).await?;
    if h.capabilities().exact_prefetch {
        assert!(
            idle.len() <= CREDIT as usize,
            "a consumer with prefetch {CREDIT} held {} messages: {idle:?}",
            idle.len()
        );
        assert!(busy.len() >= 50 - CREDIT as usize, "{busy:?}");
    }
    Ok(())
}

/// The cases of this area, for [`crate::conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! pipelining_cases {
    ($make:expr) => {
        $crate::cases!(
            $make,
            pipelining,
            [
                bulk_send_async_then_flush_arrives_in_order_once_7_3,
                receipts_resolve_in_send_order_7_3,
                failing_send_fails_only_its_receipt_7_3,
                commit_waits_for_outstanding_async_sends_7_3,
                close_after_send_async_loses_nothing_7_3,
                no_prefetch_strands_nothing_on_an_idle_consumer,
                prefetch_bounds_what_an_idle_consumer_holds,
            ]
        );
    };
}
