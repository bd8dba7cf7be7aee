//! Pipelined persistent sends over `courier://` to a durable server: the server stores each
//! send as it arrives and answers it once the journal's group commit made it durable, in
//! send order, while it goes on reading the connection. Before, the server ran each send to
//! its `fdatasync` before reading the next, so a pipelining client got one message per fsync.
//!
//! Deliveries too: a persistent message's delivery count is recorded before the message
//! leaves the server, and the server's writer waits for the store once per batch of frames
//! instead of once per message (before, a streaming consumer got one message per fsync).

use courier_api::*;
use courier_broker::client::TcpFactory;
use courier_broker::server::{Server, ServerConfig};
use courier_broker::storage::{open_broker, FaultInjector, JournalOptions};
use courier_broker::BrokerConfig;
use futures::FutureExt;
use std::sync::Arc;
use std::time::Duration;

const SENDS: usize = 2_000;

/// A durable server on a fresh data directory (kept alive by the returned guard).
async fn durable_server(options: JournalOptions) -> (tempfile::TempDir, Server, TcpFactory) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (broker, _store, _) =
        open_broker(dir.path(), BrokerConfig::default(), options).expect("the journal");
    let server = Server::bind("127.0.0.1:0", broker, ServerConfig::default())
        .await
        .expect("a listening server");
    let factory = TcpFactory::new(server.local_addr().to_string());
    (dir, server, factory)
}

/// A durable server whose journal's disk faults the returned injector decides.
async fn faulty_server() -> (tempfile::TempDir, Server, TcpFactory, Arc<FaultInjector>) {
    let faults = Arc::new(FaultInjector::default());
    let options = JournalOptions {
        faults: Some(faults.clone()),
        ..JournalOptions::default()
    };
    let (dir, server, factory) = durable_server(options).await;
    (dir, server, factory, faults)
}

fn numbered(n: usize) -> Result<Message> {
    let mut m = Message::text(format!("m{n}"));
    m.set_property("n", n as i64)?;
    Ok(m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_persistent_sends_over_tcp_share_fsyncs_and_confirm_in_order() -> Result<()> {
    let (_dir, server, factory) = durable_server(JournalOptions::default()).await;
    let connection = factory.create_connection().await?;
    connection.start().await?;
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let queue = Destination::queue("pipelined-tcp");
    let producer = session.create_producer(Some(&queue)).await?;
    assert!(producer.max_outstanding() > 1, "sends are pipelined");
    let before = fsyncs(&factory).await?;

    let mut receipts = Vec::with_capacity(SENDS);
    for n in 0..SENDS {
        receipts.push(producer.send_async(numbered(n)?).await?);
    }
    // The last receipt complete means every earlier one is (receipts complete in send order).
    let last = receipts.pop().expect("receipts");
    let last = tokio::time::timeout(Duration::from_secs(60), last)
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

    let used = fsyncs(&factory).await? - before;
    assert!(
        used <= (SENDS / 2) as u64,
        "{used} fsyncs for {SENDS} pipelined sends over TCP: they were not group-committed"
    );

    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    for n in 0..SENDS {
        let m = consumer
            .receive_timeout(Duration::from_secs(10))
            .await?
            .expect("every confirmed message");
        assert_eq!(m.body_text(), Some(format!("m{n}").as_str()));
    }
    producer.close().await?;
    connection.close().await?;
    server.shutdown().await;
    Ok(())
}

/// A failed `fdatasync` under a window of pipelined sends: every receipt still completes, in
/// send order, the failed batch's with a typed error (never a hang, never a protocol error),
/// and the sends after it are confirmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_fails_its_pipelined_sends_and_never_hangs_them() -> Result<()> {
    let (_dir, server, factory, faults) = faulty_server().await;
    let connection = factory.create_connection().await?;
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let producer = session
        .create_producer(Some(&Destination::queue("pipelined-tcp-fault")))
        .await?;
    let mut receipts = Vec::with_capacity(SENDS);
    for n in 0..SENDS {
        if n == SENDS / 4 {
            faults.fail_next_sync();
        }
        receipts.push(producer.send_async(numbered(n)?).await?);
    }
    let mut failed = 0;
    let mut last_ok = None;
    for (n, receipt) in receipts.into_iter().enumerate() {
        let outcome = tokio::time::timeout(Duration::from_secs(60), receipt)
            .await
            .unwrap_or_else(|_| panic!("receipt {n} never completed"));
        match outcome {
            Ok(sent) => {
                assert_eq!(sent.body_text(), Some(format!("m{n}").as_str()));
                last_ok = Some(n);
            }
            Err(e) => {
                assert!(
                    !matches!(e, Error::Protocol(_) | Error::IllegalState(_)),
                    "receipt {n}: a failed fsync is the send's typed error, got {e:?}"
                );
                failed += 1;
            }
        }
    }
    assert!(failed > 0, "the failed fsync failed no send");
    assert_eq!(
        last_ok,
        Some(SENDS - 1),
        "sends after the failure are confirmed"
    );
    producer.close().await?;
    connection.close().await?;
    server.shutdown().await;
    Ok(())
}

/// A started connection, a session in `mode` and a consumer on `queue` with `options`.
async fn consuming(
    factory: &TcpFactory,
    queue: &Destination,
    mode: SessionMode,
    options: ConsumerOptions,
) -> Result<(Box<dyn Connection>, Box<dyn Session>, Box<dyn Consumer>)> {
    let connection = factory.create_connection().await?;
    connection.start().await?;
    let session = connection.create_session(mode).await?;
    let consumer = session.create_consumer(queue, options).await?;
    Ok((connection, session, consumer))
}

/// Sends `n` persistent messages to `queue` and waits until all are confirmed.
async fn fill(factory: &TcpFactory, queue: &Destination, n: usize) -> Result<()> {
    let connection = factory.create_connection().await?;
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let producer = session.create_producer(Some(queue)).await?;
    for i in 0..n {
        // Receipts are dropped: `flush` waits for every outstanding send.
        drop(producer.send_async(numbered(i)?).await?);
    }
    producer.flush().await?;
    connection.close().await
}

/// The server's journal `fdatasync`s so far.
async fn fsyncs(factory: &TcpFactory) -> Result<u64> {
    Ok(factory
        .broker_stats()
        .await?
        .store
        .expect("a durable server")
        .fsyncs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_persistent_deliveries_over_tcp_share_fsyncs() -> Result<()> {
    let (_dir, server, factory) = durable_server(JournalOptions::default()).await;
    let queue = Destination::queue("streamed-tcp");
    fill(&factory, &queue, SENDS).await?;

    let (connection, _session, consumer) = consuming(
        &factory,
        &queue,
        SessionMode::AutoAcknowledge,
        ConsumerOptions::default().with_prefetch(Some(500)),
    )
    .await?;
    let before = fsyncs(&factory).await?;
    for n in 0..SENDS {
        let m = consumer
            .receive_timeout(Duration::from_secs(10))
            .await?
            .expect("every stored message");
        assert_eq!(m.body_text(), Some(format!("m{n}").as_str()));
        assert!(!m.redelivered());
    }
    let used = fsyncs(&factory).await? - before;
    assert!(
        used <= (SENDS / 2) as u64,
        "{used} fsyncs for {SENDS} streamed persistent deliveries: each waited for its own"
    );
    connection.close().await?;
    server.shutdown().await;
    Ok(())
}

/// Lets stalled syncs go on when dropped, so a failing test cannot leave the journal's
/// writer (and the test) hanging.
struct Release(Arc<FaultInjector>);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.release_syncs();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_leaves_the_server_only_once_its_count_is_durable() -> Result<()> {
    let (_dir, server, factory, faults) = faulty_server().await;
    let queue = Destination::queue("count-first");
    fill(&factory, &queue, 1).await?;

    let (connection, session, consumer) = consuming(
        &factory,
        &queue,
        SessionMode::ClientAcknowledge,
        ConsumerOptions::default(),
    )
    .await?;
    let release = Release(faults.clone());
    faults.hold_syncs();
    let receiving = tokio::spawn(async move {
        let m = consumer.receive().await;
        (consumer, m)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !receiving.is_finished(),
        "the message reached the client before its delivery count was on disk"
    );
    drop(release);
    let (consumer, m) = tokio::time::timeout(Duration::from_secs(10), receiving)
        .await
        .expect("the delivery arrives once the disk answers")
        .expect("the receiving task");
    let m = m?.expect("the stored message");
    assert_eq!(m.body_text(), Some("m0"));
    assert_eq!(m.delivery_count(), 1);
    session.acknowledge().await?;
    consumer.close().await?;
    connection.close().await?;
    server.shutdown().await;
    Ok(())
}
