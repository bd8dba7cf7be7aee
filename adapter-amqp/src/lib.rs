//! # courier-amqp
//!
//! The Courier model over RabbitMQ (AMQP 0-9-1). Not built yet: this crate offers no backend,
//! and `courier::connect("amqp://…")` answers `Error::Unsupported`. See the README's backend
//! matrix.
