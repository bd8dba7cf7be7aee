//! Pipelined persistent sends on a durable broker: stored at once, confirmed by the journal's
//! group commit, receipts in send order. Before, each `send_async` waited for its own
//! `fdatasync`, so a pipelined producer got one message per fsync.

use courier_api::*;
use courier_broker::storage::{open_broker, JournalOptions};
use courier_broker::BrokerConfig;
use futures::FutureExt;
use std::time::Duration;

const SENDS: usize = 2_000;

#[tokio::test]
async fn pipelined_persistent_sends_share_fsyncs_and_confirm_in_order() -> Result<()> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (broker, _store, _) = open_broker(
        dir.path(),
        BrokerConfig::default(),
        JournalOptions::default(),
    )?;
    let connection = broker.factory().create_connection().await?;
    connection.start().await?;
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let queue = Destination::queue("pipelined");
    let producer = session.create_producer(Some(&queue)).await?;
    assert!(producer.max_outstanding() > 0, "sends are pipelined");

    let mut receipts = Vec::with_capacity(SENDS);
    for n in 0..SENDS {
        let mut m = Message::text(format!("m{n}"));
        m.set_property("n", n as i64)?;
        receipts.push(producer.send_async(m).await?);
    }
    // The last receipt complete means every earlier one is (receipts complete in send order).
    let last = receipts.pop().expect("receipts");
    let last = tokio::time::timeout(Duration::from_secs(30), last)
        .await
        .expect("the last receipt completes")?;
    assert_eq!(last.body_text(), Some(format!("m{}", SENDS - 1).as_str()));
    for (n, receipt) in receipts.into_iter().enumerate() {
        let sent = receipt
            .now_or_never()
            .unwrap_or_else(|| panic!("receipt {n} incomplete after a later one"))?;
        assert_eq!(sent.body_text(), Some(format!("m{n}").as_str()));
        assert!(sent.message_id().is_some());
    }
    producer.flush().await?;

    let fsyncs = broker.snapshot().store.expect("a durable broker").fsyncs;
    assert!(
        fsyncs <= (SENDS / 2) as u64,
        "{fsyncs} fsyncs for {SENDS} pipelined sends: they were not group-committed"
    );

    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    for n in 0..SENDS {
        let m = consumer
            .receive_timeout(Duration::from_secs(5))
            .await?
            .expect("every confirmed message");
        assert_eq!(m.body_text(), Some(format!("m{n}").as_str()));
    }
    producer.close().await?;
    connection.close().await?;
    Ok(())
}
