//! Memory limits, full-destination policies and auto-delete of the embedded broker.

use courier_api::*;
use courier_broker::{
    Broker, BrokerConfig, DeadLetter, DestinationPolicy, PolicyRule, SubscriptionLimits, WhenFull,
};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Generous bound for something that must happen (never reached unless broken).
const PATIENCE: Duration = Duration::from_secs(10);

fn policy(depth: Option<usize>, when_full: WhenFull) -> DestinationPolicy {
    DestinationPolicy {
        max_depth: depth,
        when_full,
        ..DestinationPolicy::default()
    }
}

fn broker_with(rules: Vec<PolicyRule>) -> Broker {
    let mut config = BrokerConfig::default();
    config.destination_policies.extend(rules);
    Broker::new(config)
}

async fn session(broker: &Broker, mode: SessionMode) -> (Box<dyn Connection>, Box<dyn Session>) {
    let connection = broker.factory().create_connection().await.unwrap();
    connection.start().await.unwrap();
    let session = connection.create_session(mode).await.unwrap();
    (connection, session)
}

fn numbered(n: i64) -> Message {
    let mut m = Message::text(format!("message {n}"));
    m.set_property("n", n).unwrap();
    m
}

async fn receive_numbers(consumer: &dyn Consumer, count: usize) -> Vec<i64> {
    let mut seen = Vec::with_capacity(count);
    for _ in 0..count {
        let m = consumer
            .receive_timeout(PATIENCE)
            .await
            .unwrap()
            .expect("a message");
        seen.push(m.property::<i64>("n").unwrap().unwrap());
    }
    seen
}

/// Polls `check` until true; panics after [`PATIENCE`].
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn blocked_producer_resumes_when_drained_exactly_once() {
    let broker = broker_with(vec![PolicyRule::new(
        "flow",
        policy(Some(10), WhenFull::Block),
    )]);
    let queue = Destination::queue("flow");
    let sent = Arc::new(AtomicU32::new(0));
    let producer_task = {
        let broker = broker.clone();
        let queue = queue.clone();
        let sent = sent.clone();
        tokio::spawn(async move {
            let (_c, session) = session(&broker, SessionMode::AutoAcknowledge).await;
            let producer = session.create_producer(Some(&queue)).await.unwrap();
            for n in 0..100 {
                producer.send(&mut numbered(n)).await.unwrap();
                sent.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    eventually("the queue fills to its limit", || {
        broker.queue_depth("flow") == Some(10)
    })
    .await;
    // Full: the producer waits instead of growing the queue.
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(sent.load(Ordering::SeqCst), 10, "the producer must block");
    assert_eq!(broker.queue_depth("flow"), Some(10));
    assert!(!producer_task.is_finished());

    let (_c, consumer_session) = session(&broker, SessionMode::AutoAcknowledge).await;
    let consumer = consumer_session
        .create_consumer(&queue, ConsumerOptions::default())
        .await
        .unwrap();
    let seen = receive_numbers(consumer.as_ref(), 100).await;
    assert_eq!(seen, (0..100).collect::<Vec<_>>(), "all, in order, once");
    producer_task.await.unwrap();
    assert_eq!(consumer.receive_no_wait().await.unwrap(), None);
    assert_eq!(broker.stats().stored_messages, 0);
}

#[tokio::test]
async fn fail_policy_refuses_and_loses_nothing_accepted() {
    let broker = broker_with(vec![PolicyRule::new(
        "strict.*",
        policy(Some(5), WhenFull::Fail),
    )]);
    let queue = Destination::queue("strict.orders");
    let (_c, s) = session(&broker, SessionMode::AutoAcknowledge).await;
    let producer = s.create_producer(Some(&queue)).await.unwrap();
    for n in 0..5 {
        producer.send(&mut numbered(n)).await.unwrap();
    }
    for n in 5..8 {
        match producer.send(&mut numbered(n)).await {
            Err(e @ Error::FlowControl(_)) => assert!(e.is_retryable()),
            other => panic!("a send to a full queue fails with FlowControl, got {other:?}"),
        }
    }
    let consumer = s
        .create_consumer(&queue, ConsumerOptions::default())
        .await
        .unwrap();
    assert_eq!(
        receive_numbers(consumer.as_ref(), 5).await,
        vec![0, 1, 2, 3, 4]
    );
    assert_eq!(consumer.receive_no_wait().await.unwrap(), None);
    producer.send(&mut numbered(9)).await.unwrap();
    assert_eq!(receive_numbers(consumer.as_ref(), 1).await, vec![9]);
}

#[tokio::test]
async fn drop_oldest_keeps_the_newest() {
    let broker = broker_with(vec![PolicyRule::new(
        "latest",
        policy(Some(3), WhenFull::DropOldest),
    )]);
    let queue = Destination::queue("latest");
    let (_c, s) = session(&broker, SessionMode::AutoAcknowledge).await;
    let producer = s.create_producer(Some(&queue)).await.unwrap();
    for n in 0..10 {
        producer.send(&mut numbered(n)).await.unwrap();
    }
    assert_eq!(broker.queue_depth("latest"), Some(3));
    assert_eq!(broker.stats().dropped_messages, 7);
    let consumer = s
        .create_consumer(&queue, ConsumerOptions::default())
        .await
        .unwrap();
    assert_eq!(receive_numbers(consumer.as_ref(), 3).await, vec![7, 8, 9]);
    assert_eq!(consumer.receive_no_wait().await.unwrap(), None);
}

#[tokio::test]
async fn broker_memory_limit_spans_queues_and_counts_exactly() {
    let config = BrokerConfig {
        max_memory: 200 * 1024,
        default_policy: policy(None, WhenFull::Fail),
        ..BrokerConfig::default()
    };
    let broker = Broker::new(config);
    let (_c, s) = session(&broker, SessionMode::AutoAcknowledge).await;
    let producer = s.create_producer(None).await.unwrap();
    let body = "x".repeat(1000);
    let mut accepted = 0usize;
    let refused = loop {
        let queue = Destination::queue(format!("many.{}", accepted % 50));
        match producer
            .send_to(&queue, &mut Message::text(body.clone()))
            .await
        {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 10_000, "the memory limit never applied");
    };
    assert!(matches!(refused, Error::FlowControl(_)), "{refused:?}");
    let stats = broker.stats();
    assert!(stats.stored_bytes <= stats.max_memory, "{stats:?}");
    assert_eq!(stats.stored_messages, accepted);
    assert!(accepted >= 100, "room for at least 100 of them: {accepted}");

    // Draining one queue makes room again; draining all gives every byte back.
    let mut received = 0;
    for q in 0..50 {
        let consumer = s
            .create_consumer(
                &Destination::queue(format!("many.{q}")),
                ConsumerOptions::default(),
            )
            .await
            .unwrap();
        while consumer.receive_no_wait().await.unwrap().is_some() {
            received += 1;
        }
        consumer.close().await.unwrap();
        if q == 0 {
            producer
                .send_to(
                    &Destination::queue("many.0"),
                    &mut Message::text(body.clone()),
                )
                .await
                .unwrap();
            accepted += 1;
        }
    }
    let leftover = s
        .create_consumer(&Destination::queue("many.0"), ConsumerOptions::default())
        .await
        .unwrap();
    while leftover.receive_no_wait().await.unwrap().is_some() {
        received += 1;
    }
    assert_eq!(received, accepted, "every accepted message was delivered");
    let stats = broker.stats();
    assert_eq!(
        (stats.stored_messages, stats.stored_bytes),
        (0, 0),
        "{stats:?}"
    );
}

#[tokio::test]
async fn idle_non_durable_subscriber_is_bounded_and_does_not_block_publishers() {
    let broker = broker_with(vec![PolicyRule::new(
        "news",
        DestinationPolicy {
            non_durable_subscriptions: SubscriptionLimits {
                max_depth: Some(100),
                ..SubscriptionLimits::default()
            },
            ..DestinationPolicy::default()
        },
    )]);
    let topic = Destination::topic("news");
    let (_c, s) = session(&broker, SessionMode::AutoAcknowledge).await;
    let idle = s
        .create_consumer(&topic, ConsumerOptions::default())
        .await
        .unwrap();
    let producer = s.create_producer(Some(&topic)).await.unwrap();
    for n in 0..5_000 {
        producer.send(&mut numbered(n)).await.unwrap();
    }
    let stats = broker.stats();
    assert_eq!(stats.stored_messages, 100, "{stats:?}");
    assert_eq!(stats.dropped_messages, 4_900);
    let newest = receive_numbers(idle.as_ref(), 100).await;
    assert_eq!(newest, (4_900..5_000).collect::<Vec<_>>());
}

#[tokio::test]
async fn default_non_durable_subscription_limit_applies() {
    let broker = Broker::default();
    let topic = Destination::topic("firehose");
    let (_c, s) = session(&broker, SessionMode::AutoAcknowledge).await;
    let _idle = s
        .create_consumer(&topic, ConsumerOptions::default())
        .await
        .unwrap();
    let producer = s.create_producer(Some(&topic)).await.unwrap();
    let limit = SubscriptionLimits::default().max_depth.unwrap();
    for n in 0..(limit + 500) as i64 {
        producer.send(&mut numbered(n)).await.unwrap();
    }
    assert_eq!(broker.stats().stored_messages, limit);
}

#[tokio::test]
async fn durable_subscription_follows_the_topic_policy() {
    let broker = broker_with(vec![PolicyRule::new(
        "audit",
        policy(Some(2), WhenFull::Fail),
    )]);
    let topic = Destination::topic("audit");
    let connection = broker.factory().create_connection().await.unwrap();
    connection.set_client_id("auditor").await.unwrap();
    let s = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    s.create_durable_consumer(&topic, "log", ConsumerOptions::default())
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    let producer = s.create_producer(Some(&topic)).await.unwrap();
    producer.send(&mut numbered(0)).await.unwrap();
    producer.send(&mut numbered(1)).await.unwrap();
    assert!(matches!(
        producer.send(&mut numbered(2)).await,
        Err(Error::FlowControl(_))
    ));
}

#[tokio::test]
async fn transacted_sends_are_charged_at_commit() {
    let broker = broker_with(vec![
        PolicyRule::new("tx.fail", policy(Some(3), WhenFull::Fail)),
        PolicyRule::new("tx.block", policy(Some(3), WhenFull::Block)),
    ]);
    let (_c, tx) = session(&broker, SessionMode::Transacted).await;
    let (_c2, plain) = session(&broker, SessionMode::AutoAcknowledge).await;

    // Fail: a commit that does not fit rolls back, and none of its sends is stored.
    let fail = Destination::queue("tx.fail");
    let producer = tx.create_producer(Some(&fail)).await.unwrap();
    for n in 0..5 {
        producer.send(&mut numbered(n)).await.unwrap();
    }
    assert_eq!(
        broker.stats().stored_messages,
        0,
        "not charged before commit"
    );
    match tx.commit().await {
        Err(Error::TransactionRolledBack(_)) => {}
        other => panic!("commit over a Fail limit rolls back, got {other:?}"),
    }
    assert_eq!(broker.queue_depth("tx.fail"), Some(0));
    assert_eq!(broker.stats().stored_messages, 0);

    // Block: the commit waits until a consumer makes room.
    let block = Destination::queue("tx.block");
    let filler = plain.create_producer(Some(&block)).await.unwrap();
    for n in 0..3 {
        filler.send(&mut numbered(n)).await.unwrap();
    }
    let producer = tx.create_producer(Some(&block)).await.unwrap();
    producer.send(&mut numbered(3)).await.unwrap();
    let commit = tx.commit();
    tokio::pin!(commit);
    assert!(
        tokio::time::timeout(Duration::from_millis(50), &mut commit)
            .await
            .is_err(),
        "the commit waits for room"
    );
    let consumer = plain
        .create_consumer(&block, ConsumerOptions::default())
        .await
        .unwrap();
    assert_eq!(receive_numbers(consumer.as_ref(), 1).await, vec![0]);
    commit.await.unwrap();
    assert_eq!(receive_numbers(consumer.as_ref(), 3).await, vec![1, 2, 3]);
}

#[tokio::test]
async fn block_timeout_fails_the_send_and_duration_max_waits_without_panic() {
    let broker = broker_with(vec![
        PolicyRule::new(
            "short",
            DestinationPolicy {
                block_timeout: Duration::from_millis(20),
                ..policy(Some(1), WhenFull::Block)
            },
        ),
        PolicyRule::new(
            "forever",
            DestinationPolicy {
                block_timeout: Duration::MAX,
                ..policy(Some(1), WhenFull::Block)
            },
        ),
    ]);
    let (_c, s) = session(&broker, SessionMode::AutoAcknowledge).await;
    let short = s
        .create_producer(Some(&Destination::queue("short")))
        .await
        .unwrap();
    short.send(&mut numbered(0)).await.unwrap();
    assert!(matches!(
        short.send(&mut numbered(1)).await,
        Err(Error::FlowControl(_))
    ));

    let forever = Destination::queue("forever");
    let producer = s.create_producer(Some(&forever)).await.unwrap();
    producer.send(&mut numbered(0)).await.unwrap();
    let mut second = numbered(1);
    let send = producer.send(&mut second);
    tokio::pin!(send);
    assert!(tokio::time::timeout(Duration::from_millis(50), &mut send)
        .await
        .is_err());
    let consumer = s
        .create_consumer(&forever, ConsumerOptions::default())
        .await
        .unwrap();
    assert_eq!(receive_numbers(consumer.as_ref(), 1).await, vec![0]);
    send.await.unwrap();
    assert_eq!(receive_numbers(consumer.as_ref(), 1).await, vec![1]);
}

#[tokio::test]
async fn closing_the_session_ends_a_blocked_send() {
    let broker = broker_with(vec![PolicyRule::new(
        "stuck",
        policy(Some(1), WhenFull::Block),
    )]);
    let (_c, s) = session(&broker, SessionMode::AutoAcknowledge).await;
    let producer = s
        .create_producer(Some(&Destination::queue("stuck")))
        .await
        .unwrap();
    producer.send(&mut numbered(0)).await.unwrap();
    let mut m = numbered(1);
    let send = producer.send(&mut m);
    tokio::pin!(send);
    assert!(tokio::time::timeout(Duration::from_millis(20), &mut send)
        .await
        .is_err());
    s.close().await.unwrap();
    assert!(matches!(send.await, Err(Error::IllegalState(_))));
    assert_eq!(broker.queue_depth("stuck"), Some(1));
}

#[tokio::test]
async fn per_destination_dead_letter_policy() {
    let config = BrokerConfig {
        max_delivery_attempts: Some(2),
        destination_policies: vec![
            BrokerConfig::space_rule(),
            PolicyRule::new(
                "patient",
                DestinationPolicy {
                    dead_letter: DeadLetter::After(4),
                    ..DestinationPolicy::default()
                },
            ),
        ],
        ..BrokerConfig::default()
    };
    let broker = Broker::new(config);
    let (_c, tx) = session(&broker, SessionMode::Transacted).await;
    let queue = Destination::queue("patient");
    tx.create_producer(Some(&queue))
        .await
        .unwrap()
        .send(&mut numbered(1))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let consumer = tx
        .create_consumer(&queue, ConsumerOptions::default())
        .await
        .unwrap();
    for attempt in 1..=4 {
        let m = consumer.receive_timeout(PATIENCE).await.unwrap().unwrap();
        assert_eq!(m.delivery_count(), attempt);
        tx.rollback().await.unwrap();
    }
    assert_eq!(consumer.receive_no_wait().await.unwrap(), None);
    assert_eq!(broker.queue_depth("DLQ"), Some(1));
    // The dead letter's charge moved with it: still one message held.
    assert_eq!(broker.stats().stored_messages, 1);
}

fn auto_delete_broker(delay: Duration) -> Broker {
    Broker::new(BrokerConfig {
        auto_delete_delay: Some(delay),
        ..BrokerConfig::default()
    })
}

#[tokio::test]
async fn unused_one_off_queues_are_deleted() {
    let broker = auto_delete_broker(Duration::from_millis(100));
    let (_c, s) = session(&broker, SessionMode::AutoAcknowledge).await;
    let producer = s.create_producer(None).await.unwrap();
    for n in 0..10_000 {
        let queue = Destination::queue(format!("reply.{n}"));
        producer.send_to(&queue, &mut numbered(n)).await.unwrap();
        let consumer = s
            .create_consumer(&queue, ConsumerOptions::default())
            .await
            .unwrap();
        assert!(consumer.receive_no_wait().await.unwrap().is_some());
        consumer.close().await.unwrap();
    }
    let kept = Destination::queue("kept");
    producer.send_to(&kept, &mut numbered(1)).await.unwrap();
    let _listening = s
        .create_consumer(&Destination::queue("listened"), ConsumerOptions::default())
        .await
        .unwrap();
    eventually("the one-off queues are deleted", || {
        broker.stats().queues == 2
    })
    .await;
    assert_eq!(
        broker.queue_depth("kept"),
        Some(1),
        "a queue with a message stays"
    );
    assert_eq!(
        broker.queue_depth("listened"),
        Some(0),
        "a queue with a consumer stays"
    );
    assert_eq!(broker.stats().stored_messages, 1);
}

#[tokio::test]
async fn temporary_queues_and_the_dlq_are_not_auto_deleted() {
    let broker = auto_delete_broker(Duration::ZERO);
    let (_c, s) = session(&broker, SessionMode::AutoAcknowledge).await;
    let temporary = s.create_temporary_queue().await.unwrap();
    s.create_consumer(&Destination::queue("DLQ"), ConsumerOptions::default())
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    s.create_consumer(&Destination::queue("gone"), ConsumerOptions::default())
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    eventually("the plain queue is deleted", || {
        broker.queue_depth("gone").is_none()
    })
    .await;
    assert_eq!(broker.queue_depth("DLQ"), Some(0));
    let producer = s.create_producer(Some(&temporary)).await.unwrap();
    producer.send(&mut numbered(1)).await.unwrap();
}

#[tokio::test]
async fn producer_route_to_a_deleted_queue_makes_it_afresh() {
    let broker = auto_delete_broker(Duration::ZERO);
    let (_c, s) = session(&broker, SessionMode::AutoAcknowledge).await;
    let (_c2, tx) = session(&broker, SessionMode::Transacted).await;
    let queue = Destination::queue("comes-and-goes");
    let topic = Destination::topic("comes-and-goes");
    let producer = s.create_producer(Some(&queue)).await.unwrap();
    let topic_producer = s.create_producer(Some(&topic)).await.unwrap();
    let tx_producer = tx.create_producer(Some(&queue)).await.unwrap();
    tx_producer.send(&mut numbered(3)).await.unwrap();
    eventually("the unused queue and topic are deleted", || {
        let stats = broker.stats();
        stats.queues == 0 && stats.topics == 0
    })
    .await;
    producer.send(&mut numbered(1)).await.unwrap();
    topic_producer.send(&mut numbered(2)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(broker.queue_depth("comes-and-goes"), Some(2));
    let consumer = s
        .create_consumer(&queue, ConsumerOptions::default())
        .await
        .unwrap();
    assert_eq!(receive_numbers(consumer.as_ref(), 2).await, vec![1, 3]);
}

#[tokio::test]
async fn auto_deleted_topics_are_made_afresh_for_subscribers() {
    let broker = auto_delete_broker(Duration::ZERO);
    let (_c, s) = session(&broker, SessionMode::AutoAcknowledge).await;
    let topic = Destination::topic("t");
    let producer = s.create_producer(Some(&topic)).await.unwrap();
    eventually("the topic is deleted", || broker.stats().topics == 0).await;
    let subscriber = s
        .create_consumer(&topic, ConsumerOptions::default())
        .await
        .unwrap();
    producer.send(&mut numbered(5)).await.unwrap();
    assert_eq!(receive_numbers(subscriber.as_ref(), 1).await, vec![5]);
}

#[tokio::test]
async fn a_commit_dropped_while_waiting_for_room_rolls_back() {
    let broker = broker_with(vec![PolicyRule::new(
        "narrow",
        policy(Some(1), WhenFull::Block),
    )]);
    let (_c, tx) = session(&broker, SessionMode::Transacted).await;
    let (_c2, plain) = session(&broker, SessionMode::AutoAcknowledge).await;
    let input = Destination::queue("input");
    let narrow = Destination::queue("narrow");
    plain
        .create_producer(Some(&input))
        .await
        .unwrap()
        .send(&mut numbered(1))
        .await
        .unwrap();
    plain
        .create_producer(Some(&narrow))
        .await
        .unwrap()
        .send(&mut numbered(0))
        .await
        .unwrap();
    let consumer = tx
        .create_consumer(&input, ConsumerOptions::default())
        .await
        .unwrap();
    assert_eq!(receive_numbers(consumer.as_ref(), 1).await, vec![1]);
    tx.create_producer(Some(&narrow))
        .await
        .unwrap()
        .send(&mut numbered(2))
        .await
        .unwrap();
    // The commit waits for room in `narrow`; giving up on it rolls the transaction back.
    assert!(tokio::time::timeout(Duration::from_millis(30), tx.commit())
        .await
        .is_err());
    let m = consumer.receive_timeout(PATIENCE).await.unwrap().unwrap();
    assert_eq!(m.property::<i64>("n").unwrap(), Some(1));
    assert!(m.redelivered(), "the received message came back");
    assert_eq!(broker.queue_depth("narrow"), Some(1));
}

#[tokio::test]
async fn a_reading_subscriber_gets_flow_control_not_drops() {
    // The default non-durable policy with a small limit: a fast publisher and a subscriber
    // that keeps reading lose nothing.
    let broker = broker_with(vec![PolicyRule::new(
        "busy",
        DestinationPolicy {
            non_durable_subscriptions: SubscriptionLimits {
                max_depth: Some(10),
                ..SubscriptionLimits::default()
            },
            ..DestinationPolicy::default()
        },
    )]);
    let topic = Destination::topic("busy");
    let (_c, s) = session(&broker, SessionMode::AutoAcknowledge).await;
    let subscriber = s
        .create_consumer(&topic, ConsumerOptions::default())
        .await
        .unwrap();
    let reader = tokio::spawn(async move { receive_numbers(subscriber.as_ref(), 20_000).await });
    let producer = s.create_producer(Some(&topic)).await.unwrap();
    for n in 0..20_000 {
        producer.send(&mut numbered(n)).await.unwrap();
    }
    assert_eq!(reader.await.unwrap(), (0..20_000).collect::<Vec<_>>());
    assert_eq!(broker.stats().dropped_messages, 0);
}

#[tokio::test]
async fn drop_oldest_drops_by_arrival_across_priorities() {
    let broker = broker_with(vec![PolicyRule::new(
        "mixed",
        policy(Some(2), WhenFull::DropOldest),
    )]);
    let queue = Destination::queue("mixed");
    let (_c, s) = session(&broker, SessionMode::AutoAcknowledge).await;
    let producer = s.create_producer(Some(&queue)).await.unwrap();
    for (n, priority) in [(0, 1), (1, 9), (2, 4)] {
        producer.set_priority(priority).unwrap();
        producer.send(&mut numbered(n)).await.unwrap();
    }
    let consumer = s
        .create_consumer(&queue, ConsumerOptions::default())
        .await
        .unwrap();
    // The first sent (lowest priority, oldest) made room; the rest in priority order.
    assert_eq!(receive_numbers(consumer.as_ref(), 2).await, vec![1, 2]);
}
