//! Connection factories and connections (Jakarta Messaging 3.1 §6.1).

use async_trait::async_trait;
use std::sync::Arc;

use crate::{Result, Session, SessionMode};

/// What a backend can do, so generic code (and the conformance suite) can tell a missing
/// feature from a bug. Anything marked `false` answers [`crate::Error::Unsupported`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Backend name, as in [`crate::Error::Unsupported`].
    pub backend: &'static str,
    /// Selectors on queue consumers and browsers are evaluated by the backend.
    pub queue_selectors: bool,
    /// Delivery delay (`JMSDeliveryTime`) is honoured.
    pub delivery_delay: bool,
    /// Queue browsers are available.
    pub browse: bool,
    /// Persistent messages survive a restart of the backend.
    pub durable_storage: bool,
    /// Messages that fail this many delivery attempts go to the dead-letter queue.
    pub max_delivery_attempts: Option<u32>,
    /// The queue that takes dead letters.
    pub dead_letter_queue: Option<String>,
}

impl Capabilities {
    /// Capabilities of a backend that offers everything but durable storage and dead letters.
    pub fn full(backend: &'static str) -> Self {
        Capabilities {
            backend,
            queue_selectors: true,
            delivery_delay: true,
            browse: true,
            durable_storage: false,
            max_delivery_attempts: None,
            dead_letter_queue: None,
        }
    }
}

/// Makes connections to one backend. Hold it as `Arc<dyn ConnectionFactory>` to choose the
/// backend at run time.
///
/// ```no_run
/// # async fn demo(factory: &dyn courier_api::ConnectionFactory) -> courier_api::Result<()> {
/// let connection = factory.create_connection().await?;
/// connection.start().await?;
/// # Ok(()) }
/// ```
#[async_trait]
pub trait ConnectionFactory: Send + Sync {
    /// Opens a connection with the factory's default credentials. It starts stopped.
    async fn create_connection(&self) -> Result<Box<dyn Connection>>;

    /// Opens a connection with explicit credentials.
    async fn create_connection_with(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Box<dyn Connection>>;

    /// What this backend offers.
    fn capabilities(&self) -> Capabilities;
}

/// A callback for errors that have no other way to reach the application (connection lost).
pub type ExceptionListener = Arc<dyn Fn(&crate::Error) + Send + Sync>;

/// An open connection to a backend: the factory of sessions, and the unit of start/stop.
///
/// A connection starts *stopped*: it can send, but its consumers receive nothing until
/// [`Connection::start`]. Closing it closes everything made from it.
#[async_trait]
pub trait Connection: Send + Sync {
    /// Sets the client id. Allowed only before the connection is used; a client id held by
    /// another live connection is [`crate::Error::InvalidClientId`].
    async fn set_client_id(&self, client_id: &str) -> Result<()>;

    /// The client id, if set.
    fn client_id(&self) -> Option<String>;

    /// Starts (or resumes) delivery to this connection's consumers.
    async fn start(&self) -> Result<()>;

    /// Pauses delivery; returns once deliveries in progress have returned.
    async fn stop(&self) -> Result<()>;

    /// Opens a session in the given mode.
    async fn create_session(&self, mode: SessionMode) -> Result<Box<dyn Session>>;

    /// Registers the listener for errors with no other path to the application.
    fn set_exception_listener(&self, listener: Option<ExceptionListener>);

    /// Closes the connection and all its sessions: open transactions roll back, client-ack
    /// messages not acknowledged are redelivered, pending receives return `None`, and
    /// temporary destinations are deleted. Closing twice is fine.
    async fn close(&self) -> Result<()>;
}
