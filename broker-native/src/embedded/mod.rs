//! The in-process way into the broker: a [`ConnectionFactory`] whose connections call the
//! broker core directly — no sockets, no serialisation; messages are shared, not copied.

mod browser;
mod connection;
mod consumer;
mod pipeline;
mod producer;
mod session;
mod stats;

use async_trait::async_trait;
use courier_api::{
    Capabilities, Connection, ConnectionFactory, ConnectionOptions, Durability, Error, Result,
};
use parking_lot::Mutex;
use std::sync::{Arc, Weak};

use crate::{Broker, BrokerConfig};
use connection::ConnectionShared;
pub use connection::EmbeddedConnection;
pub(crate) use stats::StatsAccess;

impl Broker {
    /// A connection factory that talks to this broker in-process.
    pub fn factory(&self) -> EmbeddedFactory {
        EmbeddedFactory::from_broker(self.clone())
    }
}

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
    /// The user name and password of [`ConnectionFactory::create_connection`]; `None`
    /// connects anonymously.
    credentials: Option<Arc<(String, String)>>,
    /// The connections this factory (and its clones) made, for [`EmbeddedFactory::sever_connections`].
    made: Arc<Mutex<MadeConnections>>,
    /// The options its connections get, from a URL or [`EmbeddedFactory::with_client_id`].
    options: ConnectionOptions,
}

/// Weak handles to the connections a factory made; entries of ended ones are pruned.
#[derive(Default)]
struct MadeConnections {
    connections: Vec<Weak<ConnectionShared>>,
    /// Length at which the next prune happens: twice what survived the last one, so keeping
    /// the list stays amortised O(1) per connection however many are made.
    prune_at: usize,
}

impl MadeConnections {
    fn add(&mut self, connection: &Arc<ConnectionShared>) {
        if self.connections.len() >= self.prune_at {
            self.connections.retain(|w| w.strong_count() > 0);
            self.prune_at = (2 * self.connections.len()).max(16);
            self.connections.shrink_to(2 * self.prune_at);
        }
        self.connections.push(Arc::downgrade(connection));
    }
}

impl EmbeddedFactory {
    /// A factory for a new in-memory broker with these settings.
    pub fn new(config: BrokerConfig) -> Self {
        Self::from_broker(Broker::new(config))
    }

    /// A factory for an existing broker, so several factories share it.
    pub fn from_broker(broker: Broker) -> Self {
        EmbeddedFactory {
            broker,
            credentials: None,
            made: Arc::default(),
            options: ConnectionOptions::default(),
        }
    }

    /// This factory configured with `client_id` (JMS's administratively configured client
    /// id): each connection it makes has the id from creation, so only one of them can be
    /// open at a time (another is refused with [`Error::InvalidClientId`] while it is), and
    /// `set_client_id` on one is [`Error::IllegalState`]. An empty or blank id is
    /// [`Error::InvalidArgument`].
    pub fn with_client_id(self, client_id: &str) -> Result<Self> {
        if client_id.trim().is_empty() {
            return Err(Error::invalid_argument("a client id must not be empty"));
        }
        let mut options = self.options.clone();
        options.client_id = Some(client_id.to_owned());
        self.with_options(options)
    }

    /// This factory with the shared connection options of a URL. In process, the client id
    /// applies (see [`EmbeddedFactory::with_client_id`]); a prefetch is honoured trivially,
    /// since embedded consumers hold no message ahead of a `receive`; connect and request
    /// timeouts and the heartbeat have no effect (no network), and a username (with its
    /// password, or an empty one) becomes the factory's default credentials, as
    /// [`EmbeddedFactory::with_credentials`] sets them.
    pub fn with_options(mut self, options: ConnectionOptions) -> Result<Self> {
        if let Some(id) = &options.client_id {
            if id.trim().is_empty() {
                return Err(Error::invalid_argument("a client id must not be empty"));
            }
        }
        if let Some(user) = &options.username {
            let password = options.password.as_deref().unwrap_or("");
            self.credentials = Some(Arc::new((user.clone(), password.to_owned())));
        }
        self.options = options;
        Ok(self)
    }

    /// The options this factory's connections get.
    pub fn options(&self) -> &ConnectionOptions {
        &self.options
    }

    /// This factory with default credentials: [`ConnectionFactory::create_connection`]
    /// authenticates as `username` instead of connecting anonymously.
    pub fn with_credentials(mut self, username: &str, password: &str) -> Self {
        self.credentials = Some(Arc::new((username.to_owned(), password.to_owned())));
        self
    }

    /// A connection authenticated with `credentials` (`None`: anonymous). Password
    /// verification is deliberately slow (argon2id), so it runs on a blocking thread, a
    /// bounded number at a time.
    async fn connect(&self, credentials: Option<(&str, &str)>) -> Result<Box<dyn Connection>> {
        Ok(Box::new(self.connect_embedded(credentials).await?))
    }

    /// [`EmbeddedFactory::connect`] keeping the concrete connection (the server reads the
    /// statistics its grants allow through it).
    pub(crate) async fn connect_embedded(
        &self,
        credentials: Option<(&str, &str)>,
    ) -> Result<EmbeddedConnection> {
        let core = self.broker.core.clone();
        let grants = core.access.login(credentials).await?;
        let connection = EmbeddedConnection::new(core, grants, self.capabilities());
        if let Some(id) = &self.options.client_id {
            // Claimed before the caller sees the connection; a refusal drops (closes) it.
            connection.set_client_id(id).await?;
        }
        self.made.lock().add(connection.shared());
        Ok(connection)
    }

    /// A test hook that simulates a network failure: every live connection this factory (or a
    /// clone of it) made is lost with [`Error::ConnectionLost`] carrying `reason`, as
    /// [`EmbeddedConnection::simulate_loss`] describes. Returns how many were lost.
    /// Connections of other factories on the same broker are untouched.
    ///
    /// An operation cut by it is never [`Error::InDoubt`]: in-process, a send, commit or
    /// acknowledge either took effect before the loss (and answers `Ok`) or is undone by it
    /// before it returns (a send or commit waiting for room gives its room back and answers
    /// `ConnectionLost`; a commit stores its sends all at once, after every wait), so its
    /// outcome is always known.
    pub fn sever_connections(&self, reason: &str) -> usize {
        let live: Vec<_> = std::mem::take(&mut self.made.lock().connections)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        let error = Error::connection_lost(reason);
        live.iter()
            .filter(|connection| connection.lose(error.clone()))
            .count()
    }

    /// The broker this factory connects to.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }
}

#[async_trait]
impl ConnectionFactory for EmbeddedFactory {
    /// Authenticates with the factory's credentials ([`EmbeddedFactory::with_credentials`]),
    /// or connects anonymously when it has none.
    async fn create_connection(&self) -> Result<Box<dyn Connection>> {
        let credentials = self.credentials.clone();
        self.connect(
            credentials
                .as_deref()
                .map(|(u, p)| (u.as_str(), p.as_str())),
        )
        .await
    }

    /// Authenticates against the broker's users ([`BrokerConfig::users`]): an unknown user
    /// and a wrong password both fail with the same [`Error::Authentication`].
    async fn create_connection_with(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Box<dyn Connection>> {
        self.connect(Some((username, password))).await
    }

    fn capabilities(&self) -> Capabilities {
        let config = self.broker.config();
        let mut caps = Capabilities::full("embedded");
        caps.max_delivery_attempts = config.max_delivery_attempts;
        caps.dead_letter_queue = Some(config.dead_letter_queue.clone());
        // In memory only nothing outlives the process; with a journal (`embedded:/dir`)
        // a confirmed persistent send is on disk.
        caps.durable_storage = self.broker.is_durable();
        caps.persistent_durability = if caps.durable_storage {
            Durability::Disk
        } else {
            Durability::None
        };
        caps.max_message_size = Some(config.max_message_size);
        caps.delete_destinations = true;
        caps.delete_topics = true;
        caps
    }
}
