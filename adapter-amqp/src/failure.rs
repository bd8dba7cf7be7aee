//! lapin's errors as Courier's.
//!
//! A reply code from the broker says what went wrong with the request (404 no such queue,
//! 403 refused, 405 held exclusively by another connection, 406 a precondition); an error of
//! the socket or the protocol means the connection is gone.

use courier_api::Error;
use lapin::ErrorKind;

/// The backend name in errors and capabilities.
pub(crate) const BACKEND: &str = "amqp";

/// `error`, from the request `what`, as a Courier error.
pub(crate) fn map(what: &str, error: lapin::Error) -> Error {
    match error.kind() {
        ErrorKind::ProtocolError(amqp) => {
            let text = format!("{what}: {amqp}");
            match amqp.get_id() {
                403 => Error::not_authorized(text),
                404 => Error::invalid_destination(what.to_owned(), text),
                405 | 406 => Error::illegal_state(text),
                320 | 501 | 504 | 505 | 506 => Error::connection_lost_from(text, error),
                _ => Error::backend(BACKEND, error),
            }
        }
        ErrorKind::IOError(_)
        | ErrorKind::RuntimeShutdownError(_)
        | ErrorKind::ParsingError(_)
        | ErrorKind::SerialisationError(_)
        | ErrorKind::InvalidConnectionState(_)
        | ErrorKind::MissingHeartbeatError => {
            Error::connection_lost_from(format!("{what}: the connection to RabbitMQ failed"), error)
        }
        ErrorKind::AuthProviderError(reason) => Error::authentication(reason.clone()),
        _ => Error::backend(BACKEND, error),
    }
}
