//! # courier-amqp
//!
//! The Courier model over RabbitMQ (AMQP 0-9-1), with lapin. [`connect`] takes an
//! `amqp://` or `amqps://` URL (`courier::connect` does, with its feature `amqp`):
//!
//! ```no_run
//! # async fn demo() -> courier_api::Result<()> {
//! let factory = courier_amqp::connect("amqp://guest:guest@127.0.0.1:5672/%2f").await?;
//! let connection = factory.create_connection().await?;
//! # Ok(()) }
//! ```
//!
//! How the model maps onto exchanges and queues is in [`topology`]; what a send, an
//! acknowledgement and a transaction become is in the docs of the private modules
//! `session`, `producer` and `consumer`, summarised here:
//!
//! - sends outside transactions wait for publisher confirms (pipelined by `send_async`); a
//!   nack or an unroutable message is an error, a confirm cut off by a loss is `InDoubt`;
//! - transacted sessions are `tx.select` channels; a rollback requeues what was received;
//! - acknowledgement is manual, with `basic.qos` bounding what a consumer holds;
//! - expiry is RabbitMQ's per-message `expiration`, checked again on receipt; topic
//!   selectors and no-local are evaluated by the client on the subscription's own queue.
//!
//! - delivery delay goes through dead-letter delay queues, one per delay value ([`delay`]).
//!
//! Not offered (`Unsupported`, false in the capabilities): selectors on queues, browsing,
//! per-connection credentials, dead-lettering after N attempts; priority on
//! quorum queues, and on classic queues made plain with the URL option `priority=false`
//! (priority queues cost RabbitMQ throughput; see the factory docs).

#![forbid(unsafe_code)]

mod codec;
mod connection;
mod consumer;
pub mod delay;
mod factory;
mod failure;
mod link;
mod prefilter;
mod producer;
pub mod reconnect;
mod session;
pub mod topology;

use std::sync::Arc;

use courier_api::{ConnectionFactory, Error, Result};

pub use connection::AmqpConnection;
pub use factory::{AmqpFactory, EXTRA_KEYS};
pub use topology::QueueType;

/// The URL schemes of this backend: `amqp://` and, over TLS, `amqps://`.
pub const SCHEMES: &[&str] = &["amqp", "amqps"];

/// Opens a connection factory for a URL of one of [`SCHEMES`]. A URL of another scheme is
/// [`Error::InvalidArgument`], as is a malformed one. Nothing is connected until the factory
/// makes a connection.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let refused = courier_amqp::connect("http://127.0.0.1").await.err().unwrap();
/// assert!(matches!(refused, courier_api::Error::InvalidArgument(_)));
/// assert!(courier_amqp::connect("amqp://127.0.0.1/?queue_type=stream").await.is_err());
/// # }
/// ```
pub async fn connect(url: &str) -> Result<Arc<dyn ConnectionFactory>> {
    let scheme = url.split_once(':').map(|(scheme, _)| scheme);
    match scheme {
        Some(s) if SCHEMES.iter().any(|known| s.eq_ignore_ascii_case(known)) => {
            Ok(Arc::new(AmqpFactory::new(url)?))
        }
        _ => Err(Error::invalid_argument(format!(
            "not an amqp:// or amqps:// URL: {url:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hostile_urls_are_invalid_without_connecting() {
        let huge = format!("amqp://h/?x={}", "x".repeat(1 << 20));
        for url in [
            "",
            "embedded:",
            "amqp",
            "amqp:",
            huge.as_str(),
            "amqp://127.0.0.1/?queue_type=stream",
            "amqp://127.0.0.1/?queue_type=",
            "amqp://127.0.0.1/?nosuch=1",
            "amqp://127.0.0.1/?heartbeat=forever",
            "amqp://127.0.0.1/?prefetch=-1",
            "amqp://127.0.0.1/?reconnect=yes",
            "amqp://127.0.0.1/?priority=0",
            "amqp://127.0.0.1/?queue_type=quorum&priority=true",
        ] {
            let e = connect(url).await.err().expect("refused");
            assert!(matches!(e, Error::InvalidArgument(_)), "{url:.60}: {e}");
            assert!(e.to_string().len() < 300, "{e}");
        }
    }

    #[tokio::test]
    async fn queue_type_is_a_url_option() {
        let classic = AmqpFactory::new("amqp://127.0.0.1/%2f").unwrap();
        assert_eq!(classic.queue_type(), QueueType::Classic);
        assert!(classic.capabilities().priority);
        let quorum = AmqpFactory::new("AMQP://u:p@127.0.0.1:5672/%2f?queue_type=quorum").unwrap();
        assert_eq!(quorum.queue_type(), QueueType::Quorum);
        assert!(!quorum.capabilities().priority);
        assert!(quorum.capabilities().exact_delivery_count);
        assert_eq!(classic.max_priority(), Some(9));
        assert_eq!(quorum.max_priority(), None);
    }

    #[tokio::test]
    async fn priority_false_makes_plain_classic_queues_and_says_so() {
        let plain = AmqpFactory::new("amqp://127.0.0.1/%2f?priority=false").unwrap();
        assert_eq!(plain.queue_type(), QueueType::Classic);
        assert_eq!(plain.max_priority(), None);
        assert!(!plain.capabilities().priority);
        let explicit = AmqpFactory::new("amqp://127.0.0.1/%2f?priority=true").unwrap();
        assert_eq!(explicit.max_priority(), Some(9));
        assert!(explicit.capabilities().priority);
        let quorum = AmqpFactory::new("amqp://127.0.0.1/%2f?queue_type=quorum&priority=false");
        assert!(!quorum.unwrap().capabilities().priority);
    }

    #[tokio::test]
    async fn an_unreachable_server_is_an_error_not_a_hang() {
        let factory = connect("amqp://127.0.0.1:1/%2f?connect_timeout=2s")
            .await
            .unwrap();
        let e = factory
            .create_connection()
            .await
            .err()
            .expect("nothing listens on port 1");
        assert!(!e.is_unsupported(), "{e}");
    }
}
