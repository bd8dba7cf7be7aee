//! The in-process way into the broker: a [`ConnectionFactory`] whose connections call the
//! broker core directly — no sockets, no serialisation; messages are shared, not copied.

mod browser;
mod connection;
mod consumer;
mod producer;
mod session;

use async_trait::async_trait;
use courier_api::{Capabilities, Connection, ConnectionFactory, Durability, Result};

use crate::{Broker, BrokerConfig};
pub use connection::EmbeddedConnection;

/// Connects to a broker running in this process.
///
/// ```
/// use courier_api::*;
/// use courier_broker::EmbeddedFactory;
///
/// # tokio_test_block(async {
/// let factory = EmbeddedFactory::default();
/// let connection = factory.create_connection().await?;
/// connection.start().await?;
/// let session = connection.create_session(SessionMode::AutoAcknowledge).await?;
/// let queue = Destination::queue("greetings");
/// let consumer = session.create_consumer(&queue, ConsumerOptions::default()).await?;
/// session.create_producer(Some(&queue)).await?.send(&mut Message::text("hi")).await?;
/// assert_eq!(consumer.receive().await?.unwrap().body_text(), Some("hi"));
/// # Ok::<(), Error>(()) });
/// # fn tokio_test_block<F: std::future::Future<Output = Result<()>>>(f: F) {
/// #     tokio::runtime::Runtime::new().unwrap().block_on(f).unwrap()
/// # }
/// ```
#[derive(Clone, Default)]
pub struct EmbeddedFactory {
    broker: Broker,
}

impl EmbeddedFactory {
    /// A factory for a new in-memory broker with these settings.
    pub fn new(config: BrokerConfig) -> Self {
        Self::from_broker(Broker::new(config))
    }

    /// A factory for an existing broker, so several factories share it.
    pub fn from_broker(broker: Broker) -> Self {
        EmbeddedFactory { broker }
    }

    /// The broker this factory connects to.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }
}

#[async_trait]
impl ConnectionFactory for EmbeddedFactory {
    async fn create_connection(&self) -> Result<Box<dyn Connection>> {
        Ok(Box::new(EmbeddedConnection::new(self.broker.core.clone())))
    }

    /// The embedded broker has no user database: every in-process caller is trusted, so the
    /// credentials are accepted as given.
    async fn create_connection_with(
        &self,
        _username: &str,
        _password: &str,
    ) -> Result<Box<dyn Connection>> {
        self.create_connection().await
    }

    fn capabilities(&self) -> Capabilities {
        let config = self.broker.config();
        let mut caps = Capabilities::full("embedded");
        caps.max_delivery_attempts = config.max_delivery_attempts;
        caps.dead_letter_queue = Some(config.dead_letter_queue.clone());
        // In memory only: nothing outlives the process.
        caps.durable_storage = false;
        caps.persistent_durability = Durability::None;
        caps.max_message_size = Some(config.max_message_size);
        caps
    }
}
