//! Deleting a queue while another connection still remembers declaring it: that connection's
//! next send fails with `InvalidDestination` (RabbitMQ returns it, never a silent drop), the
//! send after declares the queue again, and a consumer made on it finds the queue there.
//! Against the RabbitMQ on this machine (127.0.0.1:5672, guest/guest).

use courier_amqp::AmqpFactory;
use courier_api::{
    ConnectionFactory, ConsumerOptions, Destination, Error, Message, Result, SessionMode,
};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_deleted_elsewhere_is_declared_again_by_the_next_send_or_consumer() -> Result<()> {
    let factory = AmqpFactory::new("amqp://guest:guest@127.0.0.1:5672/%2f?request_timeout=10s")?;
    let queue = Destination::queue(format!(
        "amqp-test.delete-queue.{}",
        uuid::Uuid::new_v4().simple()
    ));
    let user = factory.create_connection().await?;
    user.start().await?;
    let producer = user
        .create_session(SessionMode::AutoAcknowledge)
        .await?
        .create_producer(Some(&queue))
        .await?;
    producer.send(&mut Message::text("before")).await?;

    let admin = factory.create_connection().await?;
    let admin_session = admin.create_session(SessionMode::AutoAcknowledge).await?;
    admin_session.delete_destination(&queue).await?;

    match producer.send(&mut Message::text("lost-queue")).await {
        Err(Error::InvalidDestination { reason, .. }) => {
            assert!(reason.contains("does not exist"), "{reason}")
        }
        other => panic!("a send to the deleted queue must fail, got {other:?}"),
    }
    producer.send(&mut Message::text("after")).await?;

    // The consumer's connection had declared the queue too; deleted again, the consumer
    // declares it anew instead of failing at its first receive.
    admin_session.delete_destination(&queue).await?;
    let session = user.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    producer.send(&mut Message::text("fresh")).await?;
    let got = consumer
        .receive_timeout(Duration::from_secs(5))
        .await?
        .expect("the message sent after the queue was made again");
    assert_eq!(got.body_text(), Some("fresh"));
    consumer.close().await?;
    admin_session.delete_destination(&queue).await?;
    user.close().await?;
    admin.close().await
}
