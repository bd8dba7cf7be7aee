//! Delivery delay through dead-letter delay queues and headers-exchange prefilters, against
//! the RabbitMQ on this machine (127.0.0.1:5672, guest/guest). Every name is unique to the
//! run; queues are deleted after (delay queues expire on their own a minute after their
//! delay).

use courier_amqp::delay::{delay_queue, DelayMechanism, EXPIRY_MARGIN};
use courier_amqp::{AmqpFactory, QueueType};
use courier_api::{
    ConnectionFactory, ConsumerOptions, Destination, DestinationKind, Message, Result, SendOptions,
    SessionMode,
};
use std::time::{Duration, Instant};

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f?request_timeout=10s";

fn unique(what: &str) -> String {
    format!("amqp-test.{what}.{}", uuid::Uuid::new_v4().simple())
}

fn delayed(delay: Duration) -> SendOptions {
    SendOptions {
        delivery_delay: delay,
        ..SendOptions::default()
    }
}

/// The number of ready messages in `queue` (a passive declare over a plain lapin connection).
async fn message_count(queue: &str) -> u32 {
    let connection = lapin::Connection::connect(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        lapin::ConnectionProperties::default(),
    )
    .await
    .expect("RabbitMQ on 127.0.0.1:5672");
    let channel = connection.create_channel().await.expect("a channel");
    let declared = channel
        .queue_declare(
            queue.into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .expect("the queue exists");
    let _ = connection.close(200, "OK".into()).await;
    declared.message_count()
}

async fn delete_queues(factory: &AmqpFactory) {
    let connection = lapin::Connection::connect(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        lapin::ConnectionProperties::default(),
    )
    .await
    .expect("RabbitMQ");
    for queue in factory.declared_queues() {
        let channel = connection.create_channel().await.expect("a channel");
        let _ = channel
            .queue_delete(queue.as_str().into(), Default::default())
            .await;
    }
    let _ = connection.close(200, "OK".into()).await;
}

/// A short delay is not held behind a long one sent before it (each delay has its own
/// queue), messages of one delay keep their order, and none arrives early.
#[tokio::test]
async fn delays_are_exact_and_ordered() -> Result<()> {
    let factory = AmqpFactory::new(URL)?;
    assert!(factory.capabilities().delivery_delay);
    assert_eq!(factory.delay_mechanism(), DelayMechanism::DeadLetterQueues);
    let connection = factory.create_connection().await?;
    connection.start().await?;
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let queue = Destination::queue(unique("delay-order"));
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let producer = session.create_producer(Some(&queue)).await?;
    let long = Duration::from_millis(2_500);
    let short = Duration::from_millis(300);
    let sent = Instant::now();
    producer
        .send_with(None, &mut Message::text("long"), &delayed(long))
        .await?;
    for i in 0..5 {
        producer
            .send_with(
                None,
                &mut Message::text(format!("short-{i}")),
                &delayed(short),
            )
            .await?;
    }
    for i in 0..5 {
        let got = consumer
            .receive_timeout(Duration::from_secs(2))
            .await?
            .expect("a short-delayed message before the long one");
        assert_eq!(got.body_text(), Some(format!("short-{i}").as_str()));
        assert!(
            sent.elapsed() >= short,
            "arrived early: {:?}",
            sent.elapsed()
        );
        assert!(courier_api::spi::now_millis() >= got.delivery_time());
    }
    let got = consumer
        .receive_timeout(Duration::from_secs(10))
        .await?
        .expect("the long-delayed message");
    assert_eq!(got.body_text(), Some("long"));
    assert!(
        sent.elapsed() >= long,
        "arrived early: {:?}",
        sent.elapsed()
    );
    connection.close().await?;
    delete_queues(&factory).await;
    Ok(())
}

/// A delayed message to a topic reaches its subscriptions after the delay, and the delay
/// queue exists with its fanout exchange.
#[tokio::test]
async fn delayed_topic_messages_reach_subscribers() -> Result<()> {
    let factory = AmqpFactory::new(URL)?;
    let connection = factory.create_connection().await?;
    connection.start().await?;
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let topic = Destination::topic(unique("delay-topic"));
    let a = session
        .create_consumer(&topic, ConsumerOptions::default())
        .await?;
    let b = session
        .create_consumer(&topic, ConsumerOptions::default())
        .await?;
    let producer = session.create_producer(Some(&topic)).await?;
    let delay = Duration::from_millis(400);
    producer
        .send_with(None, &mut Message::text("later"), &delayed(delay))
        .await?;
    assert!(a
        .receive_timeout(Duration::from_millis(200))
        .await?
        .is_none());
    for consumer in [&a, &b] {
        let got = consumer
            .receive_timeout(Duration::from_secs(5))
            .await?
            .expect("the delayed topic message");
        assert_eq!(got.body_text(), Some("later"));
    }
    let name = delay_queue(QueueType::Classic, DestinationKind::Topic, delay);
    assert_eq!(message_count(&name).await, 0);
    connection.close().await?;
    Ok(())
}

/// A delay past RabbitMQ's longest time to live is refused, and nothing is sent.
#[tokio::test]
async fn an_overlong_delay_is_invalid() -> Result<()> {
    let factory = AmqpFactory::new(URL)?;
    let connection = factory.create_connection().await?;
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let queue = Destination::queue(unique("delay-long"));
    let producer = session.create_producer(Some(&queue)).await?;
    let e = producer
        .send_with(
            None,
            &mut Message::text("never"),
            &delayed(Duration::from_secs(60 * 60 * 24 * 365)),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, courier_api::Error::InvalidArgument(_)), "{e}");
    assert!(EXPIRY_MARGIN >= Duration::from_secs(1));
    connection.close().await?;
    delete_queues(&factory).await;
    Ok(())
}

/// The plugin probe answers (whatever the server has) without harming the factory.
#[tokio::test]
async fn the_delayed_message_plugin_is_detected() -> Result<()> {
    let factory = AmqpFactory::new(URL)?;
    let present = factory.delayed_message_plugin().await?;
    let listed = std::process::Command::new("rabbitmq-plugins")
        .args(["list", "-e", "-m"])
        .output();
    if let Ok(out) = listed {
        if out.status.success() {
            let enabled = String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == "rabbitmq_delayed_message_exchange");
            assert_eq!(present, enabled, "probe vs rabbitmq-plugins");
        }
    }
    let connection = factory.create_connection().await?;
    connection.close().await
}

/// A subscription whose selector requires property values is bound through a headers
/// exchange: messages without them never reach its queue; the client still filters exactly.
#[tokio::test]
async fn prefiltered_subscriptions_transfer_only_candidates() -> Result<()> {
    let factory = AmqpFactory::new(URL)?;
    let connection = factory.create_connection().await?;
    let client_id = unique("client");
    connection.set_client_id(&client_id).await?;
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let topic = Destination::topic(unique("prefilter"));
    let name = "sub";
    let queue = format!("{name}.courier-durable.{client_id}");
    let options = ConsumerOptions {
        selector: Some("color = 'red' AND n = 3 AND size > 10".into()),
        ..ConsumerOptions::default()
    };
    let consumer = session
        .create_durable_consumer(&topic, name, options.clone())
        .await?;
    consumer.close().await?;
    let producer = session.create_producer(Some(&topic)).await?;
    let send = |color: &'static str, n: Option<courier_api::Value>, size: i32| {
        let mut m = Message::text(format!("{color}-{n:?}-{size}"));
        m.set_property("color", color).unwrap();
        if let Some(n) = n {
            m.set_property("n", n).unwrap();
        }
        m.set_property("size", size).unwrap();
        m
    };
    use courier_api::Value;
    for mut m in [
        send("blue", Some(Value::I32(3)), 20),
        send("red", Some(Value::I32(4)), 20),
        send("red", None, 20),
        send("red", Some(Value::String("3".into())), 20),
    ] {
        producer.send(&mut m).await?;
    }
    assert_eq!(
        message_count(&queue).await,
        0,
        "non-matching messages reached the queue"
    );
    // Candidates of each numeric type arrive; one failing only `size > 10` arrives too and is
    // dropped by the client.
    for mut m in [
        send("red", Some(Value::I8(3)), 20),
        send("red", Some(Value::I64(3)), 20),
        send("red", Some(Value::F64(3.0)), 20),
        send("red", Some(Value::I32(3)), 5),
    ] {
        producer.send(&mut m).await?;
    }
    assert_eq!(message_count(&queue).await, 4);
    connection.start().await?;
    let consumer = session
        .create_durable_consumer(&topic, name, options)
        .await?;
    let mut got = Vec::new();
    while let Some(m) = consumer.receive_timeout(Duration::from_millis(500)).await? {
        got.push(m.body_text().unwrap_or_default().to_owned());
    }
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.iter().all(|t| t.ends_with("-20")), "{got:?}");
    consumer.close().await?;
    session.unsubscribe(name).await?;
    connection.close().await?;
    delete_queues(&factory).await;
    Ok(())
}
