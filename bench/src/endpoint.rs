//! A participant of a workload: its own connection and session, as separate applications
//! would have, so the runner measures the backend and not contention inside one session.

use courier_api::{
    Connection, ConnectionFactory, Consumer, ConsumerOptions, DeliveryMode, Destination, Producer,
    Result, Session, SessionMode,
};
use std::time::{Duration, Instant};

use super::check::DeliveryLog;
use super::latency::Clock;
use super::payload::{MessageMaker, Stamp};

/// A started connection with one session.
pub(crate) struct Endpoint {
    connection: Box<dyn Connection>,
    /// The session producers and consumers of this participant are made from.
    pub session: Box<dyn Session>,
}

impl Endpoint {
    /// Opens and starts a connection and opens a session in `mode`.
    pub async fn open(factory: &dyn ConnectionFactory, mode: SessionMode) -> Result<Self> {
        let connection = factory.create_connection().await?;
        connection.start().await?;
        let session = connection.create_session(mode).await?;
        Ok(Endpoint {
            connection,
            session,
        })
    }

    /// A producer for `destination` sending in `mode`.
    pub async fn producer(
        &self,
        destination: &Destination,
        mode: DeliveryMode,
    ) -> Result<Box<dyn Producer>> {
        let producer = self.session.create_producer(Some(destination)).await?;
        producer.set_delivery_mode(mode)?;
        Ok(producer)
    }

    /// A consumer on `destination` with an optional selector.
    pub async fn consumer(
        &self,
        destination: &Destination,
        selector: Option<String>,
        prefetch: Option<u32>,
    ) -> Result<Box<dyn Consumer>> {
        let options = ConsumerOptions {
            selector,
            prefetch,
            ..ConsumerOptions::default()
        };
        self.session.create_consumer(destination, options).await
    }

    /// Closes the connection, and with it the session and everything made from it.
    pub async fn close(self) -> Result<()> {
        self.connection.close().await
    }
}

/// Receipts a fill keeps unresolved: the fill is set-up, not what is measured, so it
/// pipelines its sends (a persistent fill of a million awaited sends would wait for a million
/// fsyncs on a durable broker).
const FILL_WINDOW: usize = 1_000;

/// Sends `count` messages from producer 0 to `queue` on a connection of its own, pipelined
/// (every receipt checked, in order), as fast as the backend takes them. Returns how long it
/// took.
pub(crate) async fn fill(
    factory: &dyn ConnectionFactory,
    queue: &Destination,
    count: u64,
    maker: &MessageMaker,
    mode: DeliveryMode,
    clock: Clock,
) -> Result<Duration> {
    let endpoint = Endpoint::open(factory, SessionMode::AutoAcknowledge).await?;
    let producer = endpoint.producer(queue, mode).await?;
    let start = Instant::now();
    let mut receipts = std::collections::VecDeque::with_capacity(FILL_WINDOW + 1);
    for sequence in 0..count {
        let message = maker.make(Stamp {
            producer: 0,
            sequence,
            sent_at_ns: clock.now_ns(),
        });
        receipts.push_back(producer.send_async(message).await?);
        if receipts.len() > FILL_WINDOW {
            if let Some(oldest) = receipts.pop_front() {
                oldest.await?;
            }
        }
        tokio::task::coop::consume_budget().await;
    }
    for receipt in receipts {
        receipt.await?;
    }
    producer.flush().await?;
    let elapsed = start.elapsed();
    endpoint.close().await?;
    Ok(elapsed)
}

/// Receives whatever `consumer` can take right now into `log`: after a group received all it
/// expected, anything still there is a duplicate or a stray.
pub(crate) async fn drain_leftovers(consumer: &dyn Consumer, log: &mut DeliveryLog) -> Result<()> {
    while let Some(message) = consumer.receive_no_wait().await? {
        log.observe_message(&message);
    }
    Ok(())
}

/// A destination name no other run uses: `courier.bench.<workload>.<role>.<uuid>`.
pub(crate) fn unique_name(workload: &str, role: &str) -> String {
    let clean: String = workload
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!(
        "courier.bench.{clean}.{role}.{}",
        uuid::Uuid::new_v4().simple()
    )
}
