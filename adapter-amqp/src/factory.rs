//! The connection factory: a RabbitMQ URL and the options in its query.
//!
//! `amqp://user:password@host:port/vhost?queue_type=quorum&heartbeat=10s`: the api's shared
//! options (`connect_timeout`, `request_timeout`, `heartbeat`, `prefetch`, `client_id`) and
//! `queue_type` (`classic`, the default, or `quorum`), `priority` (`true`, the default for
//! classic queues, or `false`: see below) and `reconnect` (`false`, the default, or `true`:
//! connect again after a loss, see the `reconnect` module docs).
//!
//! **Priority.** Classic queues are declared with `x-max-priority` 9, so `JMSPriority`
//! orders delivery. RabbitMQ keeps such a queue as one queue per level, which cost it up to
//! a quarter of its persistent throughput on the 1 KiB bench workloads (README). `priority=false`
//! declares plain classic queues instead; the capabilities then say `priority: false`, and a
//! send with a priority other than the default answers `Unsupported` (as on quorum queues,
//! which have no priority levels: `queue_type=quorum&priority=true` is `InvalidArgument`).
//! RabbitMQ refuses to declare a queue again with other arguments, so a URL must keep the
//! choice its queues were made with.

use async_trait::async_trait;
use courier_api::options::{parse_flag, ConnectionOptions};
use courier_api::{Capabilities, Connection, ConnectionFactory, Durability, Error, Result};
use lapin::uri::AMQPUri;
use lapin::ConnectionProperties;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::connection::AmqpConnection;
use crate::delay::DelayMechanism;
use crate::failure::{self, BACKEND};
use crate::link::Link;
use crate::producer::MAX_BODY;
use crate::reconnect::Reconnect;
use crate::topology::{QueueType, Topology};

/// The URL query keys of this backend beside the api's.
pub const EXTRA_KEYS: &[&str] = &["queue_type", "priority", "reconnect"];

/// How long a request may take when the URL sets no `request_timeout`.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take when the URL sets no `connect_timeout`.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Makes connections to one RabbitMQ server.
#[derive(Debug, Clone)]
pub struct AmqpFactory {
    uri: AMQPUri,
    options: ConnectionOptions,
    topology: Arc<Topology>,
    reconnect: bool,
}

impl AmqpFactory {
    /// A factory for `url` (`amqp://` or `amqps://`); a malformed URL or option is
    /// [`Error::InvalidArgument`]. Nothing is connected yet.
    pub fn new(url: &str) -> Result<AmqpFactory> {
        let parsed = ConnectionOptions::from_url(url, EXTRA_KEYS)?;
        let mut queue_type = QueueType::Classic;
        let mut priority = None;
        let mut reconnect = false;
        for (key, value) in &parsed.extra {
            match key.as_str() {
                "queue_type" => queue_type = QueueType::parse(value)?,
                "priority" => priority = Some(parse_flag(key, value)?),
                "reconnect" => reconnect = parse_flag(key, value)?,
                _ => {}
            }
        }
        if queue_type == QueueType::Quorum && priority == Some(true) {
            return Err(Error::invalid_argument(
                "priority=true: quorum queues have no priority levels",
            ));
        }
        let priorities = queue_type == QueueType::Classic && priority != Some(false);
        let base = url.split_once('?').map_or(url, |(base, _)| base);
        let mut uri = AMQPUri::from_str(base)
            .map_err(|e| Error::invalid_argument(format!("malformed AMQP URL: {e}")))?;
        let options = parsed.options;
        if let Some(heartbeat) = options.heartbeat {
            uri.query.heartbeat =
                Some(u16::try_from(heartbeat.as_secs().max(1)).unwrap_or(u16::MAX));
        }
        Ok(AmqpFactory {
            uri,
            options,
            topology: Arc::new(Topology::with_priorities(queue_type, priorities)),
            reconnect,
        })
    }

    /// The same factory, with every connection holding `client_id` from creation.
    pub fn with_client_id(mut self, client_id: &str) -> AmqpFactory {
        self.options.client_id = Some(client_id.to_owned());
        self
    }

    /// Whether connections connect again after a loss (URL option `reconnect=true`).
    pub fn reconnects(&self) -> bool {
        self.reconnect
    }

    /// The queue type of this factory's queues.
    pub fn queue_type(&self) -> QueueType {
        self.topology.queue_type()
    }

    /// The `x-max-priority` this factory declares its queues with: `Some(9)` for classic
    /// queues (JMS priorities), `None` for quorum queues and with `priority=false`.
    pub fn max_priority(&self) -> Option<u8> {
        self.topology.max_priority()
    }

    /// Every durable queue this factory's connections declared (JMS queues and durable
    /// subscriptions), for cleanup by a test harness or an administrator.
    pub fn declared_queues(&self) -> Vec<String> {
        self.topology.declared()
    }

    /// How this factory's connections delay delivery: always
    /// [`DelayMechanism::DeadLetterQueues`] (see [`crate::delay`]).
    pub fn delay_mechanism(&self) -> DelayMechanism {
        DelayMechanism::DeadLetterQueues
    }

    /// Whether the server has the delayed-message plugin (`x-delayed-message` exchanges),
    /// asked on a connection of its own. Reported for operators; delivery delay does not use
    /// it (see [`crate::delay`]).
    pub async fn delayed_message_plugin(&self) -> Result<bool> {
        crate::delay::probe_plugin(self.uri.clone(), self.request_timeout()).await
    }

    fn request_timeout(&self) -> Duration {
        self.options
            .request_timeout
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT)
    }

    async fn open(&self) -> Result<Box<dyn Connection>> {
        let timeout = self
            .options
            .connect_timeout
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let properties =
            ConnectionProperties::default().with_connection_name("courier-amqp".into());
        let connecting = lapin::Connection::connect_uri(self.uri.clone(), properties);
        let connection = match tokio::time::timeout(timeout, connecting).await {
            Err(_) => return Err(Error::Timeout(timeout)),
            Ok(Err(e)) => {
                return Err(match e.kind() {
                    lapin::ErrorKind::ProtocolError(p) if p.get_id() == 403 => {
                        Error::authentication(format!("RabbitMQ refused the login: {p}"))
                    }
                    _ => failure::map("connection.open", e),
                })
            }
            Ok(Ok(c)) => c,
        };
        let reconnect = self.reconnect.then(|| Reconnect {
            uri: self.uri.clone(),
            connect_timeout: timeout,
        });
        let link = Link::new(
            connection,
            self.request_timeout(),
            self.topology.clone(),
            reconnect,
            self.options.prefetch,
        );
        let connection = AmqpConnection::new(link, self.capabilities());
        if let Some(client_id) = &self.options.client_id {
            connection.claim_client_id(client_id).await?;
        }
        Ok(Box::new(connection))
    }
}

#[async_trait]
impl ConnectionFactory for AmqpFactory {
    async fn create_connection(&self) -> Result<Box<dyn Connection>> {
        self.open().await
    }

    /// Credentials are given in the URL; users and per-destination permissions are
    /// RabbitMQ's administration, so this answers `Unsupported` (see
    /// [`Capabilities::access_control`]).
    async fn create_connection_with(
        &self,
        _username: &str,
        _password: &str,
    ) -> Result<Box<dyn Connection>> {
        Err(Error::unsupported(
            BACKEND,
            "credentials per connection (give them in the amqp:// URL)",
        ))
    }

    fn capabilities(&self) -> Capabilities {
        let classic = self.topology.queue_type() == QueueType::Classic;
        let prioritised = self.topology.max_priority().is_some();
        let mut caps = Capabilities::full(BACKEND);
        caps.queue_selectors = false;
        caps.delivery_delay = true;
        caps.browse = false;
        caps.durable_storage = true;
        caps.persistent_durability = Durability::Disk;
        caps.priority = prioritised;
        caps.exact_delivery_count = !classic;
        caps.exact_prefetch = false;
        caps.access_control = false;
        caps.delete_destinations = true;
        caps.max_message_size = Some(MAX_BODY);
        caps
    }
}
