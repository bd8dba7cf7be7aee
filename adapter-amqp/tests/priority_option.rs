//! The URL option `priority=false`: classic queues are declared plain (no `x-max-priority`),
//! and a send with a non-default priority answers `Unsupported`, as the capabilities say.
//! Against the RabbitMQ on this machine (127.0.0.1:5672, guest/guest).

use courier_amqp::AmqpFactory;
use courier_api::{ConnectionFactory, Destination, Message, Result, SendOptions, SessionMode};
use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Whether `queue` is a plain durable queue: declaring it so again is refused (406) when it
/// was made with other arguments.
async fn is_plain(queue: &str) -> bool {
    let raw = lapin::Connection::connect(URL, lapin::ConnectionProperties::default())
        .await
        .expect("RabbitMQ on 127.0.0.1:5672");
    let channel = raw.create_channel().await.expect("a channel");
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    let plain = channel
        .queue_declare(queue.into(), options, FieldTable::default())
        .await
        .is_ok();
    let cleanup = raw.create_channel().await.expect("a channel");
    cleanup
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await
        .expect("queue.delete");
    let _ = raw.close(200, "done".into()).await;
    plain
}

/// Sends one message to a new queue through a factory for `url`, then one with priority 7:
/// whether the queue came out plain, and whether the priority send was accepted.
async fn declare_and_send(url: &str) -> Result<(bool, Result<()>)> {
    let factory = AmqpFactory::new(url)?;
    let name = format!("amqp-test.priority.{}", uuid::Uuid::new_v4().simple());
    let queue = Destination::queue(name.clone());
    let connection = factory.create_connection().await?;
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let producer = session.create_producer(Some(&queue)).await?;
    producer.send(&mut Message::text("plain")).await?;
    let urgent = SendOptions {
        priority: 7,
        ..producer.options()
    };
    let prioritised = producer
        .send_with(None, &mut Message::text("urgent"), &urgent)
        .await;
    connection.close().await?;
    Ok((is_plain(&name).await, prioritised))
}

#[tokio::test]
async fn priority_false_declares_plain_classic_queues() -> Result<()> {
    let (plain, prioritised) = declare_and_send(&format!("{URL}?priority=false")).await?;
    assert!(plain, "priority=false still declared x-max-priority");
    let refused = prioritised.expect_err("a priority send without priorities");
    assert!(refused.is_unsupported(), "{refused}");

    let (plain, prioritised) = declare_and_send(URL).await?;
    assert!(!plain, "classic queues are priority queues by default");
    prioritised?;
    Ok(())
}
