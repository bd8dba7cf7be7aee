//! The persistence area against the RabbitMQ on this machine: each case restarts RabbitMQ
//! (`rabbitmqctl stop_app` / `start_app`) or kills it with SIGKILL and starts it again, so it
//! runs in a binary of its own, never beside the other RabbitMQ suites' cases.

mod amqp_harness;

use amqp_harness::AmqpHarness;
use courier_amqp::QueueType;

courier_conformance::persistence_suite!(AmqpHarness::new(QueueType::Classic).await);
