//! Courier's wire protocol, shared by the server ([`crate::server`]) and the `courier://`
//! client ([`crate::client`]). `PROTOCOL.md` at the repository root is its specification.
//!
//! - [`frame`]: the length-prefixed frame and its tokio-util codec, with a maximum frame
//!   size checked before anything is buffered, so no peer makes the other allocate more.
//! - [`ops`]: what travels inside frames — the handshake (`Hello`, `Welcome`), requests and
//!   replies of the api's operations, errors — encoded with postcard.
//! - [`transport`]: the byte stream under the frames, plain TCP or TLS.
//! - [`batch`]: the write side, gathering frames into one vectored write per batch.
//!
//! One connection multiplexes many sessions: every request names the session, producer,
//! consumer or browser it acts on by a handle the server gave out, and carries a
//! correlation id its reply repeats, so requests are pipelined (a producer's `send_async`
//! has many sends in flight) and replies are matched without waiting.

pub mod batch;
pub mod frame;
pub mod ops;
pub mod transport;

/// The protocol versions this build speaks, oldest first. The handshake settles on the
/// highest both sides speak.
pub const VERSIONS: &[u16] = &[1, 2];

/// The first version with [`ops::Request::Consumed`]: a client sends it only to a server
/// that settled on this version or a later one.
pub const CONSUMED_VERSION: u16 = 2;

/// The default TCP port of a Courier broker.
pub const DEFAULT_PORT: u16 = 7672;
