//! Pipelined sends: many in flight per producer, batched per destination, receipts in send
//! order, and typed outcomes when the connection goes. Against the machine's Redis.

use courier_api::{ConsumerOptions, Destination, Error, Message, SessionMode};
use std::time::Duration;

fn url() -> String {
    std::env::var("COURIER_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

async fn cleanup(name: &str) {
    let client = redis::Client::open(url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("*{name}*"))
        .query_async(&mut c)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut c)
            .await
            .unwrap();
    }
}

/// Sends alternating between two queues (so batches split by destination) arrive in order
/// on each, and their receipts resolve in send order with the stamped messages.
#[tokio::test]
async fn pipelined_sends_to_two_queues_keep_their_order() -> courier_api::Result<()> {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let queues = [
        Destination::queue(format!("pipe-a-{tag}")),
        Destination::queue(format!("pipe-b-{tag}")),
    ];
    let conn = courier_redis::connect(&url())
        .await?
        .create_connection()
        .await?;
    conn.start().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let producer = session.create_producer(None).await?;
    assert!(producer.max_outstanding() > 0, "sends are kept in flight");
    let mut receipts = Vec::new();
    for i in 0..2000 {
        // Runs of three to one queue, then the other.
        let queue = &queues[(i / 3) % 2];
        let message = Message::text(format!("{i}"));
        receipts.push((i, producer.send_async_to(queue, message).await?));
    }
    for (i, receipt) in receipts {
        let sent = receipt.await?;
        assert_eq!(sent.body_text(), Some(i.to_string().as_str()));
        assert!(sent.message_id().is_some());
    }
    for (q, queue) in queues.iter().enumerate() {
        let consumer = session
            .create_consumer(queue, ConsumerOptions::default().with_prefetch(Some(100)))
            .await?;
        let mut got = Vec::new();
        while let Some(m) = consumer.receive_timeout(Duration::from_millis(300)).await? {
            got.push(m.body_text().unwrap_or_default().parse::<usize>().unwrap());
        }
        let expected: Vec<usize> = (0..2000).filter(|i| (i / 3) % 2 == q).collect();
        assert_eq!(got, expected, "queue {q}");
    }
    conn.close().await?;
    cleanup(&tag).await;
    Ok(())
}

/// When the connection is cut under pipelined sends, every receipt resolves (none hangs):
/// sent, in doubt, or refused because the connection is lost; `send_async` then refuses.
#[tokio::test]
async fn a_lost_connection_resolves_every_receipt() -> courier_api::Result<()> {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let queue = Destination::queue(format!("pipe-lost-{tag}"));
    let factory = courier_redis::factory_for(&url())?;
    let conn = courier_api::ConnectionFactory::create_connection(&factory).await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let producer = session.create_producer(Some(&queue)).await?;
    let mut receipts = Vec::new();
    for i in 0..3000 {
        receipts.push(producer.send_async(Message::text(format!("{i}"))).await?);
    }
    factory.sever_connections().await?;
    let mut failed_after_success = false;
    let mut failures = 0;
    for receipt in receipts {
        let outcome = tokio::time::timeout(Duration::from_secs(20), receipt)
            .await
            .expect("a receipt resolves");
        match outcome {
            Ok(_) => failed_after_success |= failures > 0,
            Err(Error::ConnectionLost { .. } | Error::InDoubt { .. }) => failures += 1,
            Err(e) => panic!("an untyped outcome: {e}"),
        }
    }
    assert!(
        !failed_after_success,
        "a send succeeded after an earlier one failed"
    );
    let refused = producer.send_async(Message::text("late")).await;
    assert!(
        refused.is_err(),
        "send_async on a lost connection must fail"
    );
    cleanup(&tag).await;
    Ok(())
}
