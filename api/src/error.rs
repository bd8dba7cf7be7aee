//! The one error type of the Courier api.
//!
//! Every backend maps its failures onto [`Error`], so a caller can act on the kind of failure
//! (retry on [`Error::ConnectionLost`], fix its input on [`Error::InvalidSelector`], …) without
//! knowing which backend it talks to.

use std::time::Duration;

/// Result type used throughout Courier.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when using Courier.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A destination name is malformed, unknown, deleted, or not usable here.
    #[error("invalid destination {destination:?}: {reason}")]
    InvalidDestination {
        /// The destination as the caller named it.
        destination: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A message selector does not parse; `position` is the byte offset of the problem.
    #[error("invalid selector {selector:?} at position {position}: {reason}")]
    InvalidSelector {
        /// The selector text.
        selector: String,
        /// Byte offset in `selector` where the problem was found.
        position: usize,
        /// What is wrong there.
        reason: String,
    },
    /// An argument is out of range or malformed (priority 10, empty client id, …).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The operation is not allowed in the current state (closed object, wrong session mode, …).
    #[error("illegal state: {0}")]
    IllegalState(String),
    /// A client id is already used by another live connection.
    #[error("client id {0:?} is already in use")]
    InvalidClientId(String),
    /// A commit could not complete and the transaction was rolled back instead.
    #[error("transaction rolled back: {0}")]
    TransactionRolledBack(String),
    /// A property or body value cannot be read as the requested type (JMS conversion rules).
    #[error("message format: {0}")]
    MessageFormat(String),
    /// A received message's properties or body are read-only until cleared.
    #[error("message is not writeable: {0}")]
    MessageNotWriteable(String),
    /// Reading past the end of a stream body.
    #[error("end of message stream")]
    EndOfStream,
    /// The backend cannot offer this feature; the README's backend matrix lists such gaps.
    #[error("unsupported by the {backend} backend: {feature}")]
    Unsupported {
        /// Backend name (`embedded`, `amqp`, …).
        backend: &'static str,
        /// The feature that is missing.
        feature: String,
    },
    /// Credentials were refused.
    #[error("authentication failed: {0}")]
    Authentication(String),
    /// A configured limit was hit (message size, queue depth, …).
    #[error("resource limit: {0}")]
    ResourceLimit(String),
    /// An operation did not finish in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The connection to the backend is gone; objects made from it must be re-created.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// A stored or received message could not be decoded.
    #[error("cannot decode message: {0}")]
    Decode(String),
    /// Any other failure of the backend, with its cause.
    #[error("{backend} backend error: {source}")]
    Backend {
        /// Backend name.
        backend: &'static str,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
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

    /// True for [`Error::Unsupported`].
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Error::Unsupported { .. })
    }
}
