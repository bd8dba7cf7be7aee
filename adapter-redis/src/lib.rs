//! # courier-redis
//!
//! The Courier model over Redis (7.0 or later): queues, topics with durable, shared and
//! no-local subscriptions, priority, expiry, delivery delay, browsing, temporary destinations,
//! transactions, dead-lettering and redelivery of what a dead connection held.
//!
//! ## Data model
//!
//! Not Redis Streams: a JMS queue needs priority, consumers with selectors that take the first
//! *matching* message while the rest keep their order, browsing without taking, and exact
//! delivery counts, which a stream and its consumer groups do not give. Instead each
//! destination has an ordered index (a sorted set scored by priority, then arrival) and one
//! hash per message (the encoded message, its expiration and delivery count), as the embedded
//! broker keeps them. Every state change runs inside Redis as one call of the script in
//! `courier.lua`: take-and-mark-in-flight, acknowledge, a transaction's sends and acks,
//! moving due delayed messages, expiring, dead-lettering and giving back what a dead
//! connection held. A topic's publish copies the message into one such index per live
//! subscription. The key layout is in [`keys`]: all keys of a destination share one hash
//! tag, so a destination lives in one Redis Cluster slot.
//!
//! ## Deleting destinations
//!
//! `Session::delete_destination` deletes a plain queue or topic in one script call: it
//! refuses while a consumer is open on it (queue consumers register in the queue, as
//! subscription consumers in their subscription, so any connection's count) or a live
//! connection holds its messages unacknowledged, and otherwise deletes every key under the
//! destination's root. The topic's durable-subscription records go next; one that outlives
//! its subscription (the client stopped in between) reads as no subscription.
//!
//! ## Durability
//!
//! At connect the backend reads `appendonly`/`appendfsync`: with AOF `always` a persistent
//! send that returned `Ok` survives a crash ([`courier_api::Durability::Disk`]); with
//! `everysec` up to a second of sends can be lost and without AOF everything can, so both
//! report no durable storage. The URL option `durability=everysec|always` refuses to connect
//! to a weaker server.

#![forbid(unsafe_code)]

mod args;
mod auto_ack;
mod connection;
mod consumer;
mod factory;
mod fields;
#[cfg(test)]
mod index_tests;
pub mod keys;
mod producer;
#[cfg(test)]
mod selector_tests;
mod session;
mod sweep;

use std::sync::Arc;

use courier_api::{ConnectionFactory, Error, Result};

pub use connection::RedisConnection;
pub use consumer::{RedisBrowser, RedisConsumer};
pub use factory::{RedisFactory, EXTRA_KEYS};
pub use producer::RedisProducer;
pub use session::RedisSession;

/// The URL schemes of this backend: `redis://` and, over TLS, `rediss://` (refused as
/// [`Error::Unsupported`]: this build has no TLS for Redis).
pub const SCHEMES: &[&str] = &["redis", "rediss"];

/// The largest encoded message a send accepts (Redis strings go to 512 MiB; a queue of such
/// messages would not fit anyone's memory).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Opens a connection factory for a URL of one of [`SCHEMES`]: `redis://host:port/db?options`
/// (see [`RedisFactory::from_url`]). A URL of another scheme is [`Error::InvalidArgument`].
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> courier_api::Result<()> {
/// let factory = courier_redis::connect("redis://127.0.0.1:6379/0").await?;
/// let connection = factory.create_connection().await?;
/// # Ok(()) }
/// ```
pub async fn connect(url: &str) -> Result<Arc<dyn ConnectionFactory>> {
    Ok(Arc::new(factory_for(url)?))
}

/// The factory for a URL, as its concrete type (for tests that sever its connections).
pub fn factory_for(url: &str) -> Result<RedisFactory> {
    let scheme = url.split_once(':').map(|(scheme, _)| scheme);
    match scheme {
        Some(s) if s.eq_ignore_ascii_case("rediss") => Err(Error::unsupported(
            "redis",
            "TLS (rediss://): this build has no TLS for Redis connections",
        )),
        Some(s) if s.eq_ignore_ascii_case("redis") => RedisFactory::from_url(url),
        _ => Err(Error::invalid_argument(format!(
            "not a redis:// or rediss:// URL ({} bytes, scheme {:?})",
            url.len(),
            scheme.map(|s| s.chars().take(32).collect::<String>())
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn other_urls_are_invalid() {
        let huge = "x".repeat(1 << 20);
        for url in ["", "embedded:", "redis", huge.as_str()] {
            let e = connect(url).await.err().expect("not a url of this backend");
            assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
            assert!(e.to_string().len() < 200);
        }
    }

    #[tokio::test]
    async fn tls_is_refused_as_unsupported() {
        let e = connect("rediss://127.0.0.1").await.err().expect("no TLS");
        assert!(e.is_unsupported(), "{e}");
    }

    #[tokio::test]
    async fn hostile_options_are_refused() {
        for url in [
            "redis://127.0.0.1/?durability=maybe",
            "redis://127.0.0.1/?max_delivery_attempts=-1",
            "redis://127.0.0.1/?max_delivery_attempts=99999999999",
            "redis://127.0.0.1/?dead_letter_queue=a%20b",
            "redis://127.0.0.1/?nope=1",
            "redis://127.0.0.1/?heartbeat=99999h",
        ] {
            let e = connect(url).await.err().expect("refused");
            assert!(
                matches!(
                    e,
                    Error::InvalidArgument(_) | Error::InvalidDestination { .. }
                ),
                "{url}: {e}"
            );
        }
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_connection_loss_not_a_hang() {
        let factory = connect("redis://127.0.0.1:1/?connect_timeout=1s")
            .await
            .unwrap();
        let e = factory
            .create_connection()
            .await
            .err()
            .expect("nobody listens");
        assert!(matches!(e, Error::ConnectionLost { .. }), "{e}");
    }
}
