//! A receive dropped at any point — even between `basic.consume` and its reply — leaves no
//! AMQP consumer behind: the next message goes to the consumer that is still waiting.
//! Against the RabbitMQ on this machine (127.0.0.1:5672, guest/guest).

use courier_amqp::AmqpFactory;
use courier_api::{ConnectionFactory, ConsumerOptions, Destination, Message, Result, SessionMode};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receive_dropped_while_it_starts_its_consumer_strands_nothing() -> Result<()> {
    let factory = AmqpFactory::new("amqp://guest:guest@127.0.0.1:5672/%2f?request_timeout=10s")?;
    let queue = Destination::queue(format!(
        "amqp-test.cancelled-receive.{}",
        uuid::Uuid::new_v4().simple()
    ));
    let connection = factory.create_connection().await?;
    connection.start().await?;
    let session_a = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let a = session_a
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let session_b = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let b = session_b
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let producer = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await?
        .create_producer(Some(&queue))
        .await?;
    // Drop A's receive after 0 to 40 polls' worth of time: some land between its
    // basic.consume and the reply, where a consumer nobody cancels was left before.
    for step in 0..40u64 {
        let cut = Duration::from_micros(step * 250);
        assert!(
            tokio::time::timeout(cut, a.receive()).await.is_err(),
            "nothing was sent, so A's receive must be cut"
        );
        producer
            .send(&mut Message::text(format!("m{step}")))
            .await?;
        let got = b
            .receive_timeout(Duration::from_secs(3))
            .await?
            .unwrap_or_else(|| panic!("step {step}: the message went to A's dropped receive"));
        assert_eq!(got.body_text(), Some(format!("m{step}").as_str()));
    }
    connection.close().await?;
    // A plain lapin connection removes the test's queue.
    let raw = lapin::Connection::connect(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        lapin::ConnectionProperties::default(),
    )
    .await
    .expect("RabbitMQ on 127.0.0.1:5672");
    let channel = raw.create_channel().await.expect("a channel");
    let _ = channel
        .queue_delete(queue.name().into(), Default::default())
        .await;
    let _ = raw.close(200, "OK".into()).await;
    Ok(())
}
