//! Small checks shared by the cases: what a result must be, and short message exchanges.
//! Public so a backend's own extra cases can use them too.

use courier_api::*;
use std::fmt::Debug;

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
