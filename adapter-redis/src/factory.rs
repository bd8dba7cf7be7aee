//! [`RedisFactory`]: the URL, its options, and what a server offers.

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use courier_api::{
    Capabilities, Connection, ConnectionFactory, ConnectionOptions, Durability, Error, Result,
};
use parking_lot::Mutex;

use crate::connection::{RedisConnection, Shared};

/// The options of this backend beyond the shared ones.
pub const EXTRA_KEYS: &[&str] = &["durability", "dead_letter_queue", "max_delivery_attempts"];

/// What a connection needs to know, read once from the URL.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub redis_url: String,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub heartbeat: Duration,
    pub client_id: Option<String>,
    /// The weakest server persistence accepted: 0 none, 1 AOF everysec, 2 AOF always.
    pub required: u8,
    pub dead_letter_queue: Option<String>,
    pub max_attempts: u32,
    /// The URL's `prefetch`: the prefetch of consumers that set none.
    pub prefetch: Option<u32>,
}

impl Config {
    /// How long a connection's lease lasts without renewal: three heartbeats.
    pub fn lease(&self) -> Duration {
        self.heartbeat * 3
    }
}

/// Makes connections to one Redis server.
pub struct RedisFactory {
    pub(crate) config: Config,
    pub(crate) live: Mutex<Vec<Weak<Shared>>>,
    /// What the server offered the latest connection (its persistence decides durability).
    learnt: Mutex<Option<Capabilities>>,
}

impl std::fmt::Debug for RedisFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisFactory")
            .field("heartbeat", &self.config.heartbeat)
            .finish_non_exhaustive()
    }
}

impl RedisFactory {
    /// Reads `url` (`redis://[user:pass@]host[:port][/db]?options`): the shared options and
    /// `durability=none|everysec|always` (refuse a weaker server), `dead_letter_queue=NAME` and
    /// `max_delivery_attempts=N` (dead-letter after N deliveries; default 5, 0 = never).
    pub fn from_url(url: &str) -> Result<RedisFactory> {
        let parsed = ConnectionOptions::from_url(url, EXTRA_KEYS)?;
        let o = parsed.options;
        let mut required = 0;
        let mut dead_letter_queue = Some("courier.DLQ".to_string());
        let mut max_attempts = 5;
        for (key, value) in parsed.extra {
            match key.as_str() {
                "durability" => {
                    required = match value.as_str() {
                        "none" => 0,
                        "everysec" => 1,
                        "always" => 2,
                        other => {
                            return Err(Error::invalid_argument(format!(
                                "option \"durability\" = {:?}: expected none, everysec or always",
                                other.chars().take(32).collect::<String>()
                            )))
                        }
                    };
                }
                "dead_letter_queue" => {
                    courier_api::Destination::queue(&value).validate()?;
                    dead_letter_queue = Some(value);
                }
                "max_delivery_attempts" => {
                    max_attempts = value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| *n <= 1000)
                        .ok_or_else(|| {
                            Error::invalid_argument(
                                "option \"max_delivery_attempts\": expected 0 to 1000",
                            )
                        })?;
                }
                _ => {}
            }
        }
        if max_attempts == 0 {
            dead_letter_queue = None;
        }
        // The redis crate reads the address part; Courier's options are removed from it.
        let redis_url = url
            .split_once('?')
            .map_or(url, |(base, _)| base)
            .to_string();
        redis::Client::open(redis_url.as_str())
            .map_err(|e| Error::invalid_argument(format!("not a Redis URL: {e}")))?;
        Ok(RedisFactory {
            config: Config {
                redis_url,
                request_timeout: o.request_timeout.unwrap_or(Duration::from_secs(10)),
                connect_timeout: o.connect_timeout.unwrap_or(Duration::from_secs(5)),
                heartbeat: o
                    .heartbeat
                    .unwrap_or(Duration::from_secs(1))
                    .max(Duration::from_millis(50)),
                client_id: o.client_id,
                required,
                dead_letter_queue,
                max_attempts,
                prefetch: o.prefetch,
            },
            live: Mutex::new(Vec::new()),
            learnt: Mutex::new(None),
        })
    }

    /// The same server, with connections that take `client_id`.
    pub fn with_client_id(&self, client_id: &str) -> Result<RedisFactory> {
        let mut config = self.config.clone();
        config.client_id = Some(client_id.to_string());
        Ok(RedisFactory {
            config,
            live: Mutex::new(Vec::new()),
            learnt: Mutex::new(None),
        })
    }

    /// Cuts every live connection of this factory at the server (`CLIENT KILL`), as a failed
    /// network would: each reports `ConnectionLost`, and what it held goes back to others when
    /// its lease runs out. For tests of connection loss.
    pub async fn sever_connections(&self) -> Result<()> {
        let live: Vec<Arc<Shared>> = self.live.lock().iter().filter_map(Weak::upgrade).collect();
        for shared in live {
            shared.sever().await?;
        }
        Ok(())
    }

    /// The capabilities before connecting: durable storage only when the URL requires AOF
    /// `always` (a weaker server is then refused), since the server decides it.
    fn upper_bound(&self) -> Capabilities {
        let durability = if self.config.required == 2 {
            Durability::Disk
        } else {
            Durability::None
        };
        capabilities(&self.config, durability)
    }
}

/// The capabilities for a server whose persistence gives `durability`.
pub(crate) fn capabilities(config: &Config, durability: Durability) -> Capabilities {
    let mut caps = Capabilities::full("redis");
    caps.durable_storage = durability != Durability::None;
    caps.persistent_durability = durability;
    caps.access_control = false;
    caps.max_delivery_attempts = config
        .dead_letter_queue
        .as_ref()
        .map(|_| config.max_attempts);
    caps.dead_letter_queue = config.dead_letter_queue.clone();
    caps.max_message_size = Some(crate::MAX_MESSAGE_BYTES);
    caps.delete_destinations = true;
    caps.delete_topics = true;
    caps
}

#[async_trait]
impl ConnectionFactory for RedisFactory {
    async fn create_connection(&self) -> Result<Box<dyn Connection>> {
        let connection = RedisConnection::open(&self.config).await?;
        *self.learnt.lock() = Some(connection.shared.caps.clone());
        let mut live = self.live.lock();
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(&connection.shared));
        Ok(Box::new(connection))
    }

    /// Redis ACL users are not mapped to Courier permissions: refused rather than ignored.
    async fn create_connection_with(
        &self,
        _username: &str,
        _password: &str,
    ) -> Result<Box<dyn Connection>> {
        Err(Error::unsupported(
            "redis",
            "per-destination access control (credentials per connection)",
        ))
    }

    /// Before any connection, what the backend can offer at most; after one, what that
    /// connection learnt from the server (a server without AOF `always` offers no durability).
    fn capabilities(&self) -> Capabilities {
        self.learnt
            .lock()
            .clone()
            .unwrap_or_else(|| self.upper_bound())
    }
}
