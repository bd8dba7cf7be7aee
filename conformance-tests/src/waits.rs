//! The checks of [`crate::expect`] that wait, timed by the harness's [`Harness::wait`] and
//! [`Harness::quiet`] instead of the fixed defaults, so a slower backend neither fails them
//! nor makes "nothing arrives" pass vacuously.

use courier_api::*;

use crate::Harness;

/// Receives the next message within [`Harness::wait`] and checks its text, redelivered flag
/// and delivery count.
pub async fn expect_message(
    h: &dyn Harness,
    consumer: &dyn Consumer,
    body: &str,
    redelivered: bool,
    delivery_count: u32,
) -> Result<Message> {
    let m = consumer
        .receive_timeout(h.wait())
        .await?
        .unwrap_or_else(|| panic!("expected {body:?} within the harness's wait"));
    assert_eq!(m.body_text(), Some(body), "message order");
    assert_eq!(
        m.redelivered(),
        redelivered,
        "JMSRedelivered of {body:?} (delivery count {})",
        m.delivery_count()
    );
    assert_delivery_count(h, &m, delivery_count, body);
    Ok(m)
}

/// Checks `JMSXDeliveryCount`: exactly `expected` on a backend with
/// [`Capabilities::exact_delivery_count`], else at least 1 (and more than 1 when `expected`
/// is, since a redelivery is then known).
pub fn assert_delivery_count(h: &dyn Harness, m: &Message, expected: u32, what: &str) {
    if h.capabilities().exact_delivery_count {
        assert_eq!(
            m.delivery_count(),
            expected,
            "JMSXDeliveryCount of {what:?}"
        );
    } else {
        assert!(
            m.delivery_count() >= expected.min(2),
            "JMSXDeliveryCount of {what:?}: {} where {expected} was expected",
            m.delivery_count()
        );
    }
}

/// Panics if `consumer` receives a message within [`Harness::quiet`].
pub async fn assert_quiet(h: &dyn Harness, consumer: &dyn Consumer, why: &str) -> Result<()> {
    let m = consumer.receive_timeout(h.quiet()).await?;
    assert!(m.is_none(), "{why}: got {:?}", m.map(|m| m.body().clone()));
    Ok(())
}

/// Panics if a fresh consumer on `queue` receives a message within [`Harness::quiet`].
pub async fn assert_queue_empty(
    h: &dyn Harness,
    conn: &dyn Connection,
    queue: &Destination,
    why: &str,
) -> Result<()> {
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = session
        .create_consumer(queue, ConsumerOptions::default())
        .await?;
    assert_quiet(h, &*consumer, why).await?;
    session.close().await
}
