//! # courier-broker
//!
//! Courier's own message broker. This crate holds the broker core — queues delivering by
//! priority then arrival, topics with durable, shared and no-local subscriptions,
//! acknowledgement, local transactions, expiry, delivery delay, temporary destinations,
//! browsing, dead letters and selectors evaluated in the broker — and the embedded
//! [`EmbeddedFactory`], which runs it in-process behind the `courier-api` traits.
//!
//! Memory is bounded: a broker-wide limit ([`BrokerConfig::max_memory`]) and per-destination
//! limits chosen by name pattern ([`PolicyRule`]) with a policy for full destinations
//! ([`WhenFull`]: block the producer, fail the send, or drop the oldest message);
//! destinations made on demand are deleted once unused ([`BrokerConfig::auto_delete_delay`]).
//!
//! The core keeps messages in memory; storage is confined to one module (the queue store) so a durable
//! journal can be placed under it.

#![forbid(unsafe_code)]

mod broker;
mod config;
mod embedded;
mod expiry;
mod housekeeping;
mod limits;
mod policy;
mod queue;
mod ready;
mod registry;
pub mod storage;
mod subscription;
mod waiters;

pub use broker::{Broker, BrokerStats};
pub use config::{
    default_max_memory, BrokerConfig, DeadLetter, DestinationPolicy, PolicyRule,
    SubscriptionLimits, WhenFull, FALLBACK_MAX_MEMORY,
};
pub use embedded::{EmbeddedConnection, EmbeddedFactory};
pub use registry::{connect, SCHEMES};
