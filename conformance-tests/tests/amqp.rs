//! The conformance suite against the RabbitMQ on this machine (127.0.0.1:5672, guest/guest),
//! with classic queues; `amqp_quorum.rs` runs it with quorum queues and
//! `amqp_persistence.rs` runs the persistence area, which restarts RabbitMQ.
//!
//! Tuple-space cases are left out but for `open_needs_queue_selectors`: RabbitMQ has no
//! selectors on queues, so `Space::open` answers `Unsupported`, which that case checks
//! (README backend matrix). That leaves out the space area and the space cases of the
//! concurrency and dead-letter areas.

mod amqp_harness;

use amqp_harness::AmqpHarness;
use courier_amqp::QueueType;

amqp_suite!(QueueType::Classic);
courier_conformance::in_doubt_cases!(AmqpHarness::new(QueueType::Classic).await);
courier_conformance::acknowledge_cases!(AmqpHarness::new(QueueType::Classic).await);
courier_conformance::messages_cases!(AmqpHarness::new(QueueType::Classic).await);
