//! # courier-redis
//!
//! The Courier model over Redis Streams. Not built yet: this crate offers no backend, and
//! `courier::connect("redis://…")` answers `Error::Unsupported`. See the README's backend
//! matrix.
