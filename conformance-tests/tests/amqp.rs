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

courier_conformance::acknowledge_cases!(AmqpHarness::new(QueueType::Classic).await);
courier_conformance::browsing_cases!(AmqpHarness::new(QueueType::Classic).await);
courier_conformance::cases!(
    AmqpHarness::new(QueueType::Classic).await,
    concurrency,
    [
        queue_4x4_exactly_once_in_order_6_2_9,
        topic_concurrent_publishers_all_subscribers_get_all_6_2_9,
        transacted_competing_consumers_commit_once_6_2_9,
        cancelled_receive_passes_wakeup_on_timeout,
        cancelled_receive_passes_wakeup_on_select,
        worker_pool_with_timeouts_gets_every_message_promptly,
    ]
);
courier_conformance::connection_cases!(AmqpHarness::new(QueueType::Classic).await);
courier_conformance::connection_loss_cases!(AmqpHarness::new(QueueType::Classic).await);
courier_conformance::cases!(
    AmqpHarness::new(QueueType::Classic).await,
    dead_letter,
    [
        rolled_back_message_dead_lettered_6_2_10,
        acknowledged_before_limit_never_dead_lettered_6_2_10,
        poison_message_does_not_block_queue_6_2_10,
        unacknowledged_close_counts_as_failed_attempt_6_2_10,
    ]
);
courier_conformance::delivery_cases!(AmqpHarness::new(QueueType::Classic).await);
courier_conformance::errors_cases!(AmqpHarness::new(QueueType::Classic).await);
courier_conformance::headers_cases!(AmqpHarness::new(QueueType::Classic).await);
courier_conformance::in_doubt_cases!(AmqpHarness::new(QueueType::Classic).await);
courier_conformance::listener_cases!(AmqpHarness::new(QueueType::Classic).await);
courier_conformance::messages_cases!(AmqpHarness::new(QueueType::Classic).await);
courier_conformance::ordering_cases!(AmqpHarness::new(QueueType::Classic).await);
courier_conformance::pipelining_cases!(AmqpHarness::new(QueueType::Classic).await);
courier_conformance::properties_cases!(AmqpHarness::new(QueueType::Classic).await);
courier_conformance::queues_cases!(AmqpHarness::new(QueueType::Classic).await);
courier_conformance::security_cases!(AmqpHarness::new(QueueType::Classic).await);
courier_conformance::selector_index_cases!(AmqpHarness::new(QueueType::Classic).await);
courier_conformance::selectors_cases!(AmqpHarness::new(QueueType::Classic).await);
courier_conformance::temporary_cases!(AmqpHarness::new(QueueType::Classic).await);
courier_conformance::topics_cases!(AmqpHarness::new(QueueType::Classic).await);
courier_conformance::transactions_cases!(AmqpHarness::new(QueueType::Classic).await);
courier_conformance::cases!(
    AmqpHarness::new(QueueType::Classic).await,
    space,
    [open_needs_queue_selectors]
);
