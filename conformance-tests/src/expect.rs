//! Small checks shared by the cases: what a result must be, and short message exchanges.
//! Public so a backend's own extra cases can use them too.

use courier_api::*;
use std::fmt::Debug;

use crate::{QUIET, WAIT};

/// `Ok(..)` or `Err(<the error>)`, for assertion messages.
pub fn outcome<T>(r: &Result<T>) -> String {
    match r {
        Ok(_) => "Ok(..)".to_string(),
        Err(e) => format!("Err({e:?})"),
    }
}

/// True when `r` is [`Error::IllegalState`].
pub fn is_illegal_state<T>(r: &Result<T>) -> bool {
    matches!(r, Err(Error::IllegalState(_)))
}

/// True when `r` is [`Error::InvalidDestination`].
pub fn is_invalid_destination<T>(r: &Result<T>) -> bool {
    matches!(r, Err(Error::InvalidDestination { .. }))
}

/// Panics unless `result` is [`Error::MessageFormat`].
pub fn assert_format_error<T: Debug>(result: Result<T>, what: &str) {
    match result {
        Err(Error::MessageFormat(_)) => {}
        other => panic!("{what}: expected Error::MessageFormat, got {other:?}"),
    }
}

/// Sends `bodies` as text messages to `queue` from a fresh auto-ack session of `conn`.
pub async fn send_texts(conn: &dyn Connection, queue: &Destination, bodies: &[&str]) -> Result<()> {
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let producer = session.create_producer(Some(queue)).await?;
    for body in bodies {
        producer.send(&mut Message::text(*body)).await?;
    }
    session.close().await
}

/// Receives the next message within [`WAIT`] and checks its text, redelivered flag and
/// delivery count.
pub async fn expect_message(
    consumer: &dyn Consumer,
    body: &str,
    redelivered: bool,
    delivery_count: u32,
) -> Result<Message> {
    let m = consumer
        .receive_timeout(WAIT)
        .await?
        .unwrap_or_else(|| panic!("expected {body:?} within WAIT"));
    assert_eq!(m.body_text(), Some(body), "message order");
    assert_eq!(
        m.redelivered(),
        redelivered,
        "JMSRedelivered of {body:?} (delivery count {})",
        m.delivery_count()
    );
    assert_eq!(
        m.delivery_count(),
        delivery_count,
        "JMSXDeliveryCount of {body:?}"
    );
    Ok(m)
}

/// Panics if `consumer` receives a message within [`QUIET`].
pub async fn assert_quiet(consumer: &dyn Consumer, why: &str) -> Result<()> {
    let m = consumer.receive_timeout(QUIET).await?;
    assert!(m.is_none(), "{why}: got {:?}", m.map(|m| m.body().clone()));
    Ok(())
}

/// Panics if a fresh consumer on `queue` receives a message within [`QUIET`].
pub async fn assert_queue_empty(
    conn: &dyn Connection,
    queue: &Destination,
    why: &str,
) -> Result<()> {
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = session
        .create_consumer(queue, ConsumerOptions::default())
        .await?;
    assert_quiet(&*consumer, why).await?;
    session.close().await
}
