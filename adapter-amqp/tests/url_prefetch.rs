//! The URL's `prefetch` is the default of consumers that set none: such a queue consumer keeps
//! an AMQP consumer with that `basic.qos` from its creation, so RabbitMQ hands it messages
//! before any receive waits (without it, a consumer fetches one `basic.get` per receive).
//! Against the RabbitMQ on this machine (127.0.0.1:5672, guest/guest).

use courier_amqp::AmqpFactory;
use courier_api::{ConnectionFactory, ConsumerOptions, Destination, Message, Result, SessionMode};
use std::time::{Duration, Instant};

/// The number of ready messages in `queue` (a passive declare over a plain lapin connection).
async fn ready_messages(channel: &lapin::Channel, queue: &str) -> u32 {
    channel
        .queue_declare(
            queue.into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .expect("the queue exists")
        .message_count()
}

#[tokio::test]
async fn a_url_prefetch_reaches_consumers_without_their_own() -> Result<()> {
    let factory =
        AmqpFactory::new("amqp://guest:guest@127.0.0.1:5672/%2f?request_timeout=10s&prefetch=10")?;
    let name = format!("amqp-test.url-prefetch.{}", uuid::Uuid::new_v4().simple());
    let queue = Destination::queue(name.clone());
    let connection = factory.create_connection().await?;
    connection.start().await?;
    let session = connection
        .create_session(SessionMode::ClientAcknowledge)
        .await?;
    let producer = session.create_producer(Some(&queue)).await?;
    for i in 0..5 {
        producer.send(&mut Message::text(format!("m{i}"))).await?;
    }
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;

    let raw = lapin::Connection::connect(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        lapin::ConnectionProperties::default(),
    )
    .await
    .expect("RabbitMQ on 127.0.0.1:5672");
    let channel = raw.create_channel().await.expect("a channel");
    // No receive is waiting: only a standing consumer with a prefetch takes them.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ready = ready_messages(&channel, &name).await;
    while ready > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        ready = ready_messages(&channel, &name).await;
    }
    assert_eq!(ready, 0, "the URL's prefetch did not reach the consumer");

    for i in 0..5 {
        let got = consumer
            .receive_timeout(Duration::from_secs(5))
            .await?
            .expect("a prefetched message");
        assert_eq!(got.body_text(), Some(format!("m{i}").as_str()));
    }
    session.acknowledge().await?;
    connection.close().await?;
    let _ = channel
        .queue_delete(name.as_str().into(), Default::default())
        .await;
    let _ = raw.close(200, "OK".into()).await;
    Ok(())
}
