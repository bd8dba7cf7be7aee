//! # courier-api
//!
//! The Java Message Service programming model — connections, sessions, producers, consumers,
//! queues, topics, durable subscriptions, acknowledgement modes, local transactions and message
//! selectors — as object-safe async traits, so one piece of code runs on every Courier backend.
//!
//! ```no_run
//! use courier_api::*;
//!
//! async fn hello(factory: &dyn ConnectionFactory) -> Result<()> {
//!     let connection = factory.create_connection().await?;
//!     connection.start().await?;
//!     let session = connection.create_session(SessionMode::AutoAcknowledge).await?;
//!     let queue = Destination::queue("greetings");
//!     let producer = session.create_producer(Some(&queue)).await?;
//!     producer.send(&mut Message::text("hello")).await?;
//!     let consumer = session.create_consumer(&queue, ConsumerOptions::default()).await?;
//!     let received = consumer.receive().await?.expect("open consumer");
//!     assert_eq!(received.body_text(), Some("hello"));
//!     connection.close().await
//! }
//! ```
//!
//! Connection options given in a URL are read by [`options`]; what only backend authors use
//! (writable headers, stamping a send in its client and broker parts) is in [`spi`].

#![forbid(unsafe_code)]

pub mod body;
pub mod connection;
pub mod consumer;
pub mod destination;
pub mod error;
pub mod listener;
pub mod message;
pub mod options;
pub mod producer;
pub mod properties;
pub mod receipt;
pub mod selector;
pub mod session;
pub mod spi;
pub mod value;

pub use body::{Body, BodyKind, ObjectBody, StreamReader};
pub use connection::{
    Capabilities, Connection, ConnectionFactory, ConnectionMetadata, Durability, ExceptionListener,
};
pub use consumer::{Browser, Consumer, ConsumerOptions, MessageStream};
pub use destination::{Destination, DestinationKind};
pub use error::{Error, InDoubtOperation, Result};
pub use listener::{handler, Delivery, MessageHandler};
pub use message::{DeliveryMode, Header, Message, MessageParts};
pub use options::{ConnectionOptions, ParsedOptions};
pub use producer::{Producer, SendOptions};
pub use properties::Properties;
pub use receipt::{SendCompletion, SendReceipt};
pub use selector::Selector;
pub use session::{Session, SessionMode};
pub use value::{FromValue, Value};
