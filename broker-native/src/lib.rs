//! # courier-broker
//!
//! Courier's own message broker. This crate holds the broker core — queues delivering by
//! priority then arrival, topics with durable, shared and no-local subscriptions,
//! acknowledgement, local transactions, expiry, delivery delay, temporary destinations,
//! browsing, dead letters and selectors evaluated in the broker — and the embedded
//! [`EmbeddedFactory`], which runs it in-process behind the `courier-api` traits.
//!
//! The core keeps messages in memory; storage is confined to one module (the queue store) so a durable
//! journal can be placed under it.

mod broker;
mod config;
mod embedded;
mod expiry;
mod queue;
mod ready;
mod subscription;
mod waiters;

pub use broker::Broker;
pub use config::BrokerConfig;
pub use embedded::{EmbeddedConnection, EmbeddedFactory};
