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

pub use courier_api::*;

mod url;

pub use url::connect;

/// Courier's own broker (feature `native`, on by default).
#[cfg(feature = "native")]
pub use courier_broker as broker;

/// Tuple spaces (JavaSpaces / Linda) over any backend.
pub use courier_space as space;
