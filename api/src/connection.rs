//! Connection factories and connections (Jakarta Messaging 3.1 §6.1).
//!
//! # The contract every backend keeps
//!
//! **Send.** `Ok` from a producer's `send` means the broker has the message, so it is
//! delivered even if the sender crashes right after: for a
//! [`DeliveryMode::Persistent`](crate::DeliveryMode::Persistent) message the broker has it
//! *durably* — on its disk, or replicated where the backend replicates (an in-memory backend,
//! [`Capabilities::durable_storage`] `false`, keeps it only in memory); for a
//! [`DeliveryMode::NonPersistent`](crate::DeliveryMode::NonPersistent) message the broker has
//! it in memory. In a transacted session the same holds for every send of the transaction
//! when `commit` returns `Ok`; before that, nothing of it is visible. A send that fails with
//! anything but [`Error::InDoubt`](crate::Error::InDoubt) left nothing at the broker.
//!
//! **Consumers.** When `create_consumer` (or a durable/shared variant) returns, the
//! subscription exists at the broker: a message sent after it returns is delivered to it
//! (subject to its selector and no-local). `receive_no_wait` looks at everything the consumer
//! already holds and everything the broker has ready for it now, and waits for nothing else.
//!
//! **Handles.** Dropping a connection, session, producer, consumer or browser closes it, as
//! `close` does (a connection or session stays open while something made from it lives).
//! `close` of a consumer or session, a connection's `stop`, and a session's `recover` give
//! back every message the consumer holds but has not handed to the application: such a
//! message is never lost and goes to the next consumer.
//!
//! **Connection loss.** When a connection is lost (the network failed, the broker went away),
//! nothing reconnects behind the application's back:
//! - [`Connection::closed`] resolves with [`Error::ConnectionLost`](crate::Error::ConnectionLost)
//!   and the exception listener, if one is set, is called once with it;
//! - every pending call on the connection and its sessions, producers, consumers and browsers
//!   returns (a clone of) that error — a pending `receive` returns it, not `Ok(None)`, which
//!   means a normal close; a send waiting for room under flow control fails with it;
//! - every later call on them returns it too, except `close`, which succeeds (the objects are
//!   already closed) so cleanup code needs no special case;
//! - at the broker, the lost connection is closed: its open transactions roll back, its
//!   unacknowledged messages are redelivered to other consumers flagged `redelivered`, its
//!   temporary destinations are deleted, and its client id becomes free.
//!
//! A send, commit or acknowledge cut off in flight returns
//! [`Error::InDoubt`](crate::Error::InDoubt) instead where the backend cannot know whether the
//! broker acted on it.

use async_trait::async_trait;
use std::sync::Arc;

use crate::{Result, Session, SessionMode};

/// What a backend can do, so generic code (and the conformance suite) can tell a missing
/// feature from a bug. Every `bool` marked `false` means the operations it names answer
/// [`crate::Error::Unsupported`] instead of acting; they never silently do something weaker.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Backend name, as in [`crate::Error::Unsupported`].
    pub backend: &'static str,
    /// Selectors on queue consumers and browsers are evaluated by the backend. When `false`,
    /// a queue consumer or browser with a selector answers `Unsupported`.
    pub queue_selectors: bool,
    /// Delivery delay (`JMSDeliveryTime`) is honoured. When `false`, a send with a non-zero
    /// delivery delay answers `Unsupported`.
    pub delivery_delay: bool,
    /// Queue browsers are available. When `false`, `create_browser` answers `Unsupported`.
    pub browse: bool,
    /// Persistent messages survive a restart of the backend (see [`Self::persistent_durability`]
    /// for how far). When `false`, a persistent send is accepted but kept only in memory.
    pub durable_storage: bool,
    /// What `Ok` from a persistent send guarantees about where the message is.
    pub persistent_durability: Durability,
    /// Messages that fail this many delivery attempts go to the dead-letter queue.
    pub max_delivery_attempts: Option<u32>,
    /// The queue that takes dead letters.
    pub dead_letter_queue: Option<String>,
    /// Higher `JMSPriority` messages overtake lower ones waiting on the same destination.
    /// When `false`, a send with a priority other than the default answers `Unsupported`.
    pub priority: bool,
    /// Messages expire at `JMSExpiration` and are never delivered after it. When `false`, a
    /// send with a time to live answers `Unsupported`.
    pub expiry: bool,
    /// Topic consumers with `no_local` skip messages published on their own connection. When
    /// `false`, creating such a consumer answers `Unsupported`.
    pub no_local: bool,
    /// Transacted sessions (`commit`/`rollback`). When `false`, creating a transacted
    /// session answers `Unsupported`.
    pub transactions: bool,
    /// Temporary queues and topics. When `false`, `create_temporary_queue`/`_topic` answer
    /// `Unsupported`.
    pub temporary_destinations: bool,
    /// Durable topic subscriptions that keep messages while no consumer is open. When
    /// `false`, `create_durable_consumer` and `create_shared_durable_consumer` answer
    /// `Unsupported`.
    pub durable_subscriptions: bool,
    /// Shared topic subscriptions whose consumers compete for its messages. When `false`,
    /// `create_shared_consumer` and `create_shared_durable_consumer` answer `Unsupported`.
    pub shared_subscriptions: bool,
    /// `JMSXDeliveryCount` counts every delivery exactly (1 for the first, +1 for each
    /// redelivery). When `false`, the count is at least 1 and `redelivered` is exact, but a
    /// redelivery may not raise it by exactly one (e.g. a broker that only keeps a flag).
    pub exact_delivery_count: bool,
    /// [`ConsumerOptions::prefetch`](crate::ConsumerOptions::prefetch) is honoured exactly:
    /// a consumer holds at most `n` messages ahead of its receives, and none with the default
    /// `None`, so an idle consumer never strands more. When `false` the credit is
    /// approximate (e.g. counted per channel rather than per consumer): an idle consumer may
    /// hold more, though every message is still delivered once and given back on close.
    pub exact_prefetch: bool,
    /// A client id can be held by one open connection at a time across the backend. When
    /// `false`, `set_client_id` answers `Unsupported`.
    pub client_id_exclusive: bool,
    /// The backend authenticates users and enforces their permissions per destination
    /// ([`crate::Error::Authentication`], [`crate::Error::NotAuthorized`]). When `false`,
    /// `create_connection_with` answers `Unsupported` rather than ignoring the credentials.
    pub access_control: bool,
    /// [`Session::delete_destination`](crate::Session::delete_destination) deletes plain
    /// destinations. When `false` it answers `Unsupported`. Off in [`Capabilities::full`]:
    /// a backend opts in when it implements the operation.
    pub delete_destinations: bool,
    /// With [`Self::delete_destinations`], topics too: deleting a topic removes its durable
    /// subscriptions and their messages. When `false`, `delete_destination` on a topic answers
    /// `Unsupported` (RabbitMQ: AMQP 0-9-1 cannot list the subscriptions bound to a topic).
    /// Off in [`Capabilities::full`], like `delete_destinations`.
    pub delete_topics: bool,
    /// The largest encoded message the backend accepts; `None` = no limit beyond memory.
    /// Larger sends fail with an error rather than being truncated.
    pub max_message_size: Option<usize>,
}

/// How durable a persistent message is once its send returned `Ok`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// In memory only: lost when the broker stops, even gracefully.
    None,
    /// Written to the broker's disk: survives a restart and a crash (kill -9) of the broker.
    Disk,
    /// Held by more than one broker node: survives the loss of one node.
    Replicated,
}

impl Capabilities {
    /// Capabilities of a backend that offers everything but durable storage, dead letters and
    /// destination deletion: every other flag `true`, durability [`Durability::None`], no
    /// size limit.
    pub fn full(backend: &'static str) -> Self {
        Capabilities {
            backend,
            queue_selectors: true,
            delivery_delay: true,
            browse: true,
            durable_storage: false,
            persistent_durability: Durability::None,
            max_delivery_attempts: None,
            dead_letter_queue: None,
            priority: true,
            expiry: true,
            no_local: true,
            transactions: true,
            temporary_destinations: true,
            durable_subscriptions: true,
            shared_subscriptions: true,
            exact_delivery_count: true,
            exact_prefetch: true,
            access_control: true,
            client_id_exclusive: true,
            delete_destinations: false,
            delete_topics: false,
            max_message_size: None,
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

    /// What this backend offers at most: an upper bound known before connecting. A
    /// connection's own [`Connection::capabilities`], learnt in its handshake, may offer less
    /// (a server's configuration decides some features).
    fn capabilities(&self) -> Capabilities;
}

/// Facts about the provider behind a connection, as JMS `ConnectionMetaData` has them.
///
/// ```
/// let m = courier_api::ConnectionMetadata::new("Example", "1.0", vec!["JMSXDeliveryCount"]);
/// assert_eq!(m.jms_version, "3.1");
/// assert_eq!(m.api_version, env!("CARGO_PKG_VERSION"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionMetadata {
    /// The provider (backend) name, e.g. `Courier embedded`.
    pub provider_name: String,
    /// The provider's version, as the provider reports it.
    pub provider_version: String,
    /// The version of this api crate (`courier-api`).
    pub api_version: &'static str,
    /// The Jakarta Messaging version whose programming model the api follows.
    pub jms_version: &'static str,
    /// The `JMSX` properties the provider sets or honours (`JMSXDeliveryCount`, …).
    pub jmsx_properties: Vec<&'static str>,
}

impl ConnectionMetadata {
    /// The Jakarta Messaging version the api follows.
    pub const JMS_VERSION: &'static str = "3.1";

    /// Metadata of a provider; the api and JMS versions are filled in.
    pub fn new(
        provider_name: impl Into<String>,
        provider_version: impl Into<String>,
        jmsx_properties: Vec<&'static str>,
    ) -> Self {
        ConnectionMetadata {
            provider_name: provider_name.into(),
            provider_version: provider_version.into(),
            api_version: env!("CARGO_PKG_VERSION"),
            jms_version: Self::JMS_VERSION,
            jmsx_properties,
        }
    }
}

/// A callback for errors that have no other way to reach the application: it is called once
/// with [`crate::Error::ConnectionLost`] when the connection is lost (never on `close`). It
/// runs on whatever task or thread noticed the loss, so it must return quickly and not block.
pub type ExceptionListener = Arc<dyn Fn(&crate::Error) + Send + Sync>;

/// An open connection to a backend: the factory of sessions, and the unit of start/stop.
///
/// A connection starts *stopped*: it can send, but its consumers receive nothing until
/// [`Connection::start`]. Closing it closes everything made from it. What a lost connection
/// does is the [module](self)'s contract.
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

    /// Registers the listener for errors with no other path to the application; it is
    /// called once, with [`crate::Error::ConnectionLost`], if the connection is lost.
    fn set_exception_listener(&self, listener: Option<ExceptionListener>);

    /// What this connection offers, as learnt when it connected: at most the factory's
    /// [`ConnectionFactory::capabilities`], less where the server's configuration says so.
    fn capabilities(&self) -> Capabilities;

    /// The provider's name and versions, and the `JMSX` properties it supports.
    fn metadata(&self) -> ConnectionMetadata;

    /// Resolves when the connection ends, with the reason: [`crate::Error::ConnectionLost`]
    /// (a clone of what every call on the connection now returns) after a loss, or
    /// [`crate::Error::IllegalState`] `"closed"` after [`Connection::close`]. Resolves at once
    /// on an ended connection; any number of callers may wait.
    async fn closed(&self) -> crate::Error;

    /// Closes the connection and all its sessions: open transactions roll back, client-ack
    /// messages not acknowledged are redelivered, pending receives return `None`, and
    /// temporary destinations are deleted. Closing twice, or after a loss, is fine.
    async fn close(&self) -> Result<()>;
}
