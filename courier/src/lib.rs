//! # courier
//!
//! The crate users depend on: the Courier programming model (re-exported from
//! `courier-api`) plus the backends, chosen by cargo feature and by URL.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> courier::Result<()> {
//! use courier::*;
//! let factory = courier::connect("embedded:").await?;
//! let connection = factory.create_connection().await?;
//! connection.start().await?;
//! let session = connection.create_session(SessionMode::AutoAcknowledge).await?;
//! let queue = Destination::queue("hello");
//! let consumer = session.create_consumer(&queue, ConsumerOptions::default()).await?;
//! session.create_producer(Some(&queue)).await?.send(&mut Message::text("hi")).await?;
//! assert_eq!(consumer.receive().await?.unwrap().body_text(), Some("hi"));
//! # Ok(()) }
//! ```
//!
//! ## Backends and cargo features
//!
//! [`connect`] picks the backend by URL scheme from those this build has; [`schemes`] lists
//! them. A scheme whose backend is left out is refused with an error naming the feature.
//!
//! | feature | URLs | backend |
//! |---|---|---|
//! | `native` (default) | `embedded:` | Courier's own broker in this process ([`broker`]) |
//! | `tcp` (default) | `courier://` | Courier's own broker over TCP (a `courier serve` server) |
//! | `amqp` | `amqp://`, `amqps://` | RabbitMQ (`courier-amqp`) |
//! | `redis` | `redis://`, `rediss://` | Redis 7 (module `redis`: every state change a Lua script in Redis) |
//!
//! The workload runner that measures backends is the separate crate `courier-bench`.

#![forbid(unsafe_code)]

pub use courier_api::*;

mod registry;
mod url;

pub use registry::{connect, schemes};

/// Courier's own broker (features `native` and `tcp`, on by default).
#[cfg(any(feature = "native", feature = "tcp"))]
pub use courier_broker as broker;

/// Tuple spaces (JavaSpaces / Linda) over any backend.
pub use courier_space as space;

/// The RabbitMQ backend (feature `amqp`).
#[cfg(feature = "amqp")]
pub use courier_amqp as amqp;

/// The Redis backend (feature `redis`).
#[cfg(feature = "redis")]
pub use courier_redis as redis;
