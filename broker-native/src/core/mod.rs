//! The broker core: destinations, routing, subscriptions and the message stores under them.
//! It knows nothing of the ways in (the embedded adapter, a server): they are thin layers
//! over it, and imports only point down from them into here.

pub(crate) mod broker;
pub(crate) mod deletion;
pub(crate) mod envelope;
pub(crate) mod expiry;
pub(crate) mod housekeeping;
pub(crate) mod limits;
pub(crate) mod paging;
pub(crate) mod policy;
pub(crate) mod queue;
pub(crate) mod ready;
pub(crate) mod session;
pub(crate) mod stats;
pub mod store;
pub(crate) mod subscription;
pub(crate) mod waiters;
