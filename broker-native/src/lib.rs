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
//! Access is controlled by users with argon2id password hashes and per-destination-pattern
//! permissions ([`BrokerConfig::users`], [`BrokerConfig::anonymous`], [`access`]); the default
//! broker has no users and lets every in-process caller do everything.
//!
//! The core keeps messages in memory and tells a pluggable [`store::Store`] of every durable
//! event (persistent sends, acknowledgements, expiry, dead letters, delivery counts, commits,
//! queue and durable-subscription lifecycle) in one place; [`Broker::with_store`] rebuilds a
//! broker from what the store replays. The in-memory broker's [`store::NoStore`] keeps
//! nothing and costs nothing.

#![forbid(unsafe_code)]

pub mod access;
pub mod client;
mod config;
mod core;
mod embedded;
pub mod protocol;
mod registry;
pub mod server;
pub mod storage;

pub use crate::core::broker::{Broker, BrokerStats};
pub use crate::core::stats::{DestinationStats, DestinationType, StatsSnapshot, StoreStats};
pub use crate::core::store;
pub use access::{AccessRule, Operation, Permissions, User};
pub use config::{
    default_max_memory, BrokerConfig, DeadLetter, DestinationPolicy, PolicyRule,
    SubscriptionLimits, WhenFull, FALLBACK_MAX_MEMORY,
};
pub use embedded::{EmbeddedConnection, EmbeddedFactory};
pub use registry::{connect, embedded_factory, EMBEDDED_SCHEMES, SCHEMES, TCP_SCHEMES};
