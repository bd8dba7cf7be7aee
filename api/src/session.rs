//! Sessions: the single-threaded context for producing and consuming (§6.2).
//!
//! What `Ok` from a send or commit promises, when a new consumer starts receiving, and what
//! every call returns after the connection is lost is written down once, in the
//! [connection module's contract](crate::connection#the-contract-every-backend-keeps).

use async_trait::async_trait;

use crate::{Browser, Consumer, ConsumerOptions, Destination, Error, Producer, Result};

/// How a session acknowledges what it consumes (§6.2.7, §6.2.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionMode {
    /// A message is acknowledged when `receive` returns it.
    AutoAcknowledge,
    /// [`Session::acknowledge`] acknowledges every message the session consumed so far.
    ClientAcknowledge,
    /// Lazy acknowledgement; duplicates are allowed after a failure.
    DupsOkAcknowledge,
    /// Sends and receives form a local transaction ended by commit or rollback.
    Transacted,
}

/// A session: makes producers, consumers and browsers, and owns acknowledgement and the
/// local transaction.
///
/// ```no_run
/// # use courier_api::*;
/// # async fn demo(connection: &dyn Connection) -> Result<()> {
/// let session = connection.create_session(SessionMode::Transacted).await?;
/// let queue = Destination::queue("orders");
/// let producer = session.create_producer(Some(&queue)).await?;
/// producer.send(&mut Message::text("one")).await?;
/// producer.send(&mut Message::text("two")).await?;
/// session.commit().await?; // both become visible at once
/// # Ok(()) }
/// ```
#[async_trait]
pub trait Session: Send + Sync {
    /// The session's acknowledgement mode.
    fn mode(&self) -> SessionMode;

    /// A producer with a default destination, or none (then every send names one).
    async fn create_producer(&self, destination: Option<&Destination>)
        -> Result<Box<dyn Producer>>;

    /// A consumer on a queue, or on a new non-durable subscription to a topic. When it
    /// returns the subscription exists at the broker: a message sent after that is delivered
    /// to it.
    async fn create_consumer(
        &self,
        destination: &Destination,
        options: ConsumerOptions,
    ) -> Result<Box<dyn Consumer>>;

    /// A consumer on the unshared durable subscription `name` of this connection's client id.
    /// Created on first use; kept while no consumer is active.
    async fn create_durable_consumer(
        &self,
        topic: &Destination,
        name: &str,
        options: ConsumerOptions,
    ) -> Result<Box<dyn Consumer>>;

    /// A consumer on the shared non-durable subscription `name`; the subscription lives while
    /// it has a consumer.
    async fn create_shared_consumer(
        &self,
        topic: &Destination,
        name: &str,
        options: ConsumerOptions,
    ) -> Result<Box<dyn Consumer>>;

    /// A consumer on the shared durable subscription `name`.
    async fn create_shared_durable_consumer(
        &self,
        topic: &Destination,
        name: &str,
        options: ConsumerOptions,
    ) -> Result<Box<dyn Consumer>>;

    /// Deletes the durable subscription `name`. An error while it has an active consumer or
    /// unacknowledged messages.
    async fn unsubscribe(&self, name: &str) -> Result<()>;

    /// A browser over a queue's messages, optionally filtered by a selector.
    async fn create_browser(
        &self,
        queue: &Destination,
        selector: Option<&str>,
    ) -> Result<Box<dyn Browser>>;

    /// A queue that lives as long as this session's connection; only it may consume from it.
    async fn create_temporary_queue(&self) -> Result<Destination>;

    /// A topic that lives as long as this session's connection.
    async fn create_temporary_topic(&self) -> Result<Destination>;

    /// Deletes a temporary destination this connection made; an error while it has consumers.
    async fn delete_temporary(&self, destination: &Destination) -> Result<()>;

    /// Deletes the plain queue or topic `destination` with every message it stores, an
    /// administrative operation (the broker's admin permission on it; `NotAuthorized`
    /// without). A topic's durable subscriptions, and their messages, go with it. A later
    /// send or consumer makes the destination afresh, empty. On a durable backend the
    /// deletion is durable too: the deleted messages do not come back after a restart.
    ///
    /// - [`Error::InvalidDestination`] when the destination does not exist, or is temporary
    ///   (use [`Session::delete_temporary`]).
    /// - [`Error::IllegalState`] while it is in use, as Artemis refuses an unforced delete:
    ///   a queue with an open consumer or with messages delivered but not acknowledged, a
    ///   topic with a subscription that has a consumer. Close them first (RabbitMQ's
    ///   `queue.delete` would close them instead; Courier never pulls a destination from
    ///   under its consumers).
    ///
    /// The default answers [`Error::Unsupported`]; a backend offering it says so in
    /// [`crate::Capabilities::delete_destinations`], and one that deletes topics too in
    /// [`crate::Capabilities::delete_topics`] (without it, a topic answers `Unsupported`).
    async fn delete_destination(&self, destination: &Destination) -> Result<()> {
        Err(Error::unsupported(
            "given",
            format!("deleting destinations ({destination})"),
        ))
    }

    /// Commits the transaction: sends the produced and acknowledges the consumed messages as
    /// one unit. `Ok` means the broker has every sent message as `send`'s `Ok` would (durably
    /// for persistent ones). [`crate::Error::IllegalState`] on a non-transacted session;
    /// [`crate::Error::ConnectionLost`] once the connection is lost, and then the transaction
    /// was rolled back at the broker.
    async fn commit(&self) -> Result<()>;

    /// Rolls the transaction back: discards the produced and recovers the consumed messages.
    async fn rollback(&self) -> Result<()>;

    /// Redelivers every delivered but unacknowledged message, oldest first, flagged
    /// redelivered. Non-transacted sessions only.
    async fn recover(&self) -> Result<()>;

    /// In client-acknowledge mode, acknowledges every message this session has consumed so
    /// far; ignored in the other modes.
    async fn acknowledge(&self) -> Result<()>;

    /// Closes the session: rolls back the transaction and makes unacknowledged messages
    /// available again. Closing twice, or after the connection is lost, is fine.
    async fn close(&self) -> Result<()>;
}
