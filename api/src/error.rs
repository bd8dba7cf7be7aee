//! The one error type of the Courier api.
//!
//! Every backend maps its failures onto [`Error`], so a caller can act on the kind of failure
//! (retry on [`Error::ConnectionLost`], fix its input on [`Error::InvalidSelector`], …) without
//! knowing which backend it talks to. [`Error::is_retryable`] sorts the kinds for a caller that
//! only wants to know whether trying again can help.
//!
//! `Error` is `Clone`: causes are held in an [`Arc`], so a backend whose connection fails can
//! hand the same error to every operation pending on it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The cause of an error, shared by every clone of it.
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// Result type used throughout Courier.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when using Courier.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// A destination name is malformed, unknown, deleted, or not usable here.
    InvalidDestination {
        /// The destination as the caller named it.
        destination: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A message selector does not parse; `position` is the byte offset of the problem.
    InvalidSelector {
        /// The selector text.
        selector: String,
        /// Byte offset in `selector` where the problem was found.
        position: usize,
        /// What is wrong there.
        reason: String,
    },
    /// An argument is out of range or malformed (priority 10, empty client id, …).
    InvalidArgument(String),
    /// The operation is not allowed in the current state (closed object, wrong session mode, …).
    IllegalState(String),
    /// A client id is already used by another live connection.
    InvalidClientId(String),
    /// A commit could not complete and the transaction was rolled back instead.
    TransactionRolledBack(String),
    /// A property or body value cannot be read as the requested type (JMS conversion rules).
    MessageFormat(String),
    /// A received message's properties or body are read-only until cleared.
    MessageNotWriteable(String),
    /// Reading past the end of a stream body.
    EndOfStream,
    /// The backend cannot offer this feature; the README's backend matrix lists such gaps.
    Unsupported {
        /// Backend name (`embedded`, `amqp`, …).
        backend: &'static str,
        /// The feature that is missing.
        feature: String,
    },
    /// Credentials were refused: the backend does not know who the caller is.
    Authentication(String),
    /// The caller is known but not allowed to do this (use a destination, create a durable
    /// subscription, …): other credentials or a change of the backend's permissions are needed.
    NotAuthorized(String),
    /// A configured limit that the request exceeds by itself (message size, entry size, …):
    /// the same request fails again.
    ResourceLimit(String),
    /// The backend takes no more for now (a full queue, memory pressure, the broker's flow
    /// control): the same request may succeed after a pause.
    FlowControl(String),
    /// An operation did not finish in time.
    Timeout(Duration),
    /// The connection to the backend is gone; objects made from it must be re-created.
    ///
    /// Every pending and later call on the connection and on the sessions, producers and
    /// consumers made from it fails with (a clone of) this error.
    ConnectionLost {
        /// What ended the connection, as the backend saw it.
        reason: String,
        /// The underlying failure (an I/O error, a broker's close frame, …), when there is one.
        source: Option<Cause>,
    },
    /// A send, commit or acknowledge was cut off in flight (the connection failed before the
    /// backend answered): it may or may not have taken effect.
    ///
    /// Unlike a clean failure this is not safe to repeat blindly: a repeated send may deliver
    /// the message twice, a repeated acknowledge may acknowledge nothing. The caller decides,
    /// e.g. by making its messages idempotent or by checking the outcome first.
    InDoubt {
        /// The operation whose outcome is unknown.
        operation: InDoubtOperation,
        /// Why no outcome arrived.
        reason: String,
    },
    /// The backend broke or did not understand the wire protocol (an unexpected frame, a
    /// malformed reply, an unsupported protocol version).
    Protocol(String),
    /// A stored or received message could not be decoded.
    Decode(String),
    /// Any other failure of the backend, with its cause.
    Backend {
        /// Backend name.
        backend: &'static str,
        /// The underlying error.
        source: Cause,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidDestination {
                destination,
                reason,
            } => write!(f, "invalid destination {destination:?}: {reason}"),
            Error::InvalidSelector {
                selector,
                position,
                reason,
            } => write!(
                f,
                "invalid selector {selector:?} at position {position}: {reason}"
            ),
            Error::InvalidArgument(reason) => write!(f, "invalid argument: {reason}"),
            Error::IllegalState(reason) => write!(f, "illegal state: {reason}"),
            Error::InvalidClientId(id) => write!(f, "client id {id:?} is already in use"),
            Error::TransactionRolledBack(reason) => write!(f, "transaction rolled back: {reason}"),
            Error::MessageFormat(reason) => write!(f, "message format: {reason}"),
            Error::MessageNotWriteable(reason) => write!(f, "message is not writeable: {reason}"),
            Error::EndOfStream => f.write_str("end of message stream"),
            Error::Unsupported { backend, feature } => {
                write!(f, "unsupported by the {backend} backend: {feature}")
            }
            Error::Authentication(reason) => write!(f, "authentication failed: {reason}"),
            Error::NotAuthorized(reason) => write!(f, "not authorized: {reason}"),
            Error::ResourceLimit(reason) => write!(f, "resource limit: {reason}"),
            Error::FlowControl(reason) => write!(f, "flow control: {reason}"),
            Error::Timeout(after) => write!(f, "timed out after {after:?}"),
            Error::ConnectionLost { reason, .. } => write!(f, "connection lost: {reason}"),
            Error::InDoubt { operation, reason } => {
                write!(f, "outcome of {operation} unknown: {reason}")
            }
            Error::Protocol(reason) => write!(f, "protocol error: {reason}"),
            Error::Decode(reason) => write!(f, "cannot decode message: {reason}"),
            Error::Backend { backend, source } => write!(f, "{backend} backend error: {source}"),
        }
    }
}

/// Written by hand rather than derived so that `source()` answers the cause itself, not the
/// [`Arc`] around it: `downcast_ref::<std::io::Error>()` on it works.
impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::ConnectionLost {
                source: Some(source),
                ..
            }
            | Error::Backend { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// An operation whose outcome an [`Error::InDoubt`] leaves unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InDoubtOperation {
    /// A producer's send: the message may or may not be at the broker.
    Send,
    /// A transacted session's commit: the transaction may be committed or rolled back.
    Commit,
    /// An acknowledgement: the messages may or may not be redelivered.
    Acknowledge,
}

impl fmt::Display for InDoubtOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InDoubtOperation::Send => "send",
            InDoubtOperation::Commit => "commit",
            InDoubtOperation::Acknowledge => "acknowledge",
        })
    }
}

impl Error {
    /// Shorthand for [`Error::IllegalState`].
    pub fn illegal_state(reason: impl Into<String>) -> Self {
        Error::IllegalState(reason.into())
    }

    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid_argument(reason: impl Into<String>) -> Self {
        Error::InvalidArgument(reason.into())
    }

    /// Shorthand for [`Error::InvalidDestination`].
    pub fn invalid_destination(destination: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidDestination {
            destination: destination.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Unsupported`].
    pub fn unsupported(backend: &'static str, feature: impl Into<String>) -> Self {
        Error::Unsupported {
            backend,
            feature: feature.into(),
        }
    }

    /// Shorthand for [`Error::MessageFormat`].
    pub fn format(reason: impl Into<String>) -> Self {
        Error::MessageFormat(reason.into())
    }

    /// Shorthand for [`Error::Authentication`].
    pub fn authentication(reason: impl Into<String>) -> Self {
        Error::Authentication(reason.into())
    }

    /// Shorthand for [`Error::NotAuthorized`].
    pub fn not_authorized(reason: impl Into<String>) -> Self {
        Error::NotAuthorized(reason.into())
    }

    /// Shorthand for [`Error::FlowControl`].
    pub fn flow_control(reason: impl Into<String>) -> Self {
        Error::FlowControl(reason.into())
    }

    /// An [`Error::ConnectionLost`] without an underlying error.
    pub fn connection_lost(reason: impl Into<String>) -> Self {
        Error::ConnectionLost {
            reason: reason.into(),
            source: None,
        }
    }

    /// An [`Error::ConnectionLost`] caused by `source` (an I/O error, a close frame, …).
    pub fn connection_lost_from(
        reason: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::ConnectionLost {
            reason: reason.into(),
            source: Some(Arc::from(source.into())),
        }
    }

    /// Shorthand for [`Error::InDoubt`].
    pub fn in_doubt(operation: InDoubtOperation, reason: impl Into<String>) -> Self {
        Error::InDoubt {
            operation,
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Protocol`].
    pub fn protocol(reason: impl Into<String>) -> Self {
        Error::Protocol(reason.into())
    }

    /// An [`Error::Backend`] wrapping `source`.
    pub fn backend(
        backend: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Backend {
            backend,
            source: Arc::from(source.into()),
        }
    }

    /// True for [`Error::Unsupported`].
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Error::Unsupported { .. })
    }

    /// True when repeating the failed operation may succeed and cannot do anything twice.
    ///
    /// - [`ConnectionLost`](Error::ConnectionLost): yes — on a new connection, with the
    ///   sessions, producers and consumers made again; nothing was done by the failed call.
    /// - [`Timeout`](Error::Timeout): yes — the backend was slow, not wrong.
    /// - [`FlowControl`](Error::FlowControl): yes — after a pause, once the backend has room.
    /// - [`InDoubt`](Error::InDoubt): **no** — the operation may have taken effect; repeating
    ///   a send may deliver the message twice. Decide with knowledge of the application (e.g.
    ///   idempotent messages), not by this flag.
    /// - [`TransactionRolledBack`](Error::TransactionRolledBack): no — the same commit has
    ///   nothing left to commit; redo the transaction's work instead.
    /// - Every other kind: no — it is a programming or configuration error (bad argument,
    ///   state, selector, destination, credentials or permissions, a limit the request exceeds
    ///   by itself, a protocol or decoding fault, an unsupported feature) or an unknown backend
    ///   failure, and the same call fails the same way again.
    ///
    /// ```
    /// use courier_api::{Error, InDoubtOperation};
    /// assert!(Error::connection_lost("reset by peer").is_retryable());
    /// assert!(!Error::in_doubt(InDoubtOperation::Send, "no reply").is_retryable());
    /// assert!(!Error::invalid_argument("priority 10").is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::ConnectionLost { .. } | Error::Timeout(_) | Error::FlowControl(_) => true,
            Error::InvalidDestination { .. }
            | Error::InvalidSelector { .. }
            | Error::InvalidArgument(_)
            | Error::IllegalState(_)
            | Error::InvalidClientId(_)
            | Error::TransactionRolledBack(_)
            | Error::MessageFormat(_)
            | Error::MessageNotWriteable(_)
            | Error::EndOfStream
            | Error::Unsupported { .. }
            | Error::Authentication(_)
            | Error::NotAuthorized(_)
            | Error::ResourceLimit(_)
            | Error::InDoubt { .. }
            | Error::Protocol(_)
            | Error::Decode(_)
            | Error::Backend { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// One error of every kind.
    fn every_kind() -> Vec<Error> {
        vec![
            Error::invalid_destination("q", "bad"),
            Error::InvalidSelector {
                selector: "a =".into(),
                position: 3,
                reason: "end".into(),
            },
            Error::invalid_argument("priority 10"),
            Error::illegal_state("closed"),
            Error::InvalidClientId("c".into()),
            Error::TransactionRolledBack("conflict".into()),
            Error::format("not a number"),
            Error::MessageNotWriteable("received".into()),
            Error::EndOfStream,
            Error::unsupported("embedded", "durable storage"),
            Error::authentication("bad password"),
            Error::not_authorized("no write on q"),
            Error::ResourceLimit("message over 1 MiB".into()),
            Error::flow_control("queue full"),
            Error::Timeout(Duration::from_secs(1)),
            Error::connection_lost("reset"),
            Error::in_doubt(InDoubtOperation::Commit, "connection reset"),
            Error::protocol("unexpected frame"),
            Error::Decode("truncated".into()),
            Error::backend("amqp", "channel error"),
        ]
    }

    #[test]
    fn retryable_kinds_are_the_transient_ones() {
        let retryable: Vec<String> = every_kind()
            .into_iter()
            .filter(Error::is_retryable)
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            retryable,
            [
                "flow control: queue full",
                "timed out after 1s",
                "connection lost: reset",
            ]
        );
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(Error::connection_lost_from("read failed", io).is_retryable());
        for operation in [
            InDoubtOperation::Send,
            InDoubtOperation::Commit,
            InDoubtOperation::Acknowledge,
        ] {
            assert!(!Error::in_doubt(operation, "cut off").is_retryable());
        }
    }

    #[test]
    fn new_kinds_say_what_happened() {
        assert_eq!(
            Error::in_doubt(InDoubtOperation::Acknowledge, "connection reset").to_string(),
            "outcome of acknowledge unknown: connection reset"
        );
        assert_eq!(
            Error::not_authorized("no write on q").to_string(),
            "not authorized: no write on q"
        );
        assert_ne!(
            std::mem::discriminant(&Error::not_authorized("x")),
            std::mem::discriminant(&Error::authentication("x"))
        );
        assert_eq!(
            Error::protocol("frame 9").to_string(),
            "protocol error: frame 9"
        );
    }

    #[test]
    fn connection_lost_keeps_its_cause_through_clones() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "peer reset");
        let error = Error::connection_lost_from("reading a frame", io);
        assert_eq!(error.to_string(), "connection lost: reading a frame");
        let clones: Vec<Error> = (0..3).map(|_| error.clone()).collect();
        for clone in &clones {
            let source = clone.source().expect("the cause is kept");
            assert_eq!(source.to_string(), "peer reset");
            let io = source
                .downcast_ref::<std::io::Error>()
                .expect("the cause keeps its type");
            assert_eq!(io.kind(), std::io::ErrorKind::ConnectionReset);
        }
        let (
            Error::ConnectionLost {
                source: Some(a), ..
            },
            Error::ConnectionLost {
                source: Some(b), ..
            },
        ) = (&error, &clones[0])
        else {
            panic!("clones keep the variant");
        };
        assert!(Arc::ptr_eq(a, b), "clones share one cause");
        assert!(Error::connection_lost("closed by peer").source().is_none());
    }

    #[test]
    fn source_chains_reach_the_root_cause() {
        #[derive(Debug, thiserror::Error)]
        #[error("channel closed")]
        struct Channel(#[source] std::io::Error);

        let root = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "broken pipe");
        let error = Error::backend("amqp", Channel(root)).clone();
        assert_eq!(error.to_string(), "amqp backend error: channel closed");
        let mut chain = Vec::new();
        let mut next = error.source();
        while let Some(cause) = next {
            chain.push(cause.to_string());
            next = cause.source();
        }
        assert_eq!(chain, ["channel closed", "broken pipe"]);
    }

    #[test]
    fn every_kind_clones_to_an_equal_text() {
        for error in every_kind() {
            assert_eq!(error.clone().to_string(), error.to_string());
            assert_eq!(format!("{:?}", error.clone()), format!("{error:?}"));
        }
    }
}
