//! Raw redis-rs Streams: the Redis baseline of `courier-redis`.
//!
//! The queue is a stream with a unique key and one consumer group (`XGROUP CREATE … $
//! MKSTREAM` before anyone sends), deleted after the run. Each participant has its own
//! multiplexed connection.
//! - Producers `XADD key * b <body> p <0|1>`: awaited one by one, or pipelined: a writer
//!   task sends whatever the producer queued (at most the send window) as one pipeline per
//!   round trip, so entries reach the stream in send order; an error fails the run.
//! - Consumers `XREADGROUP GROUP g c<i> COUNT <batch> BLOCK 100 STREAMS key >` and `XACK`
//!   each entry (auto-ack), or the entries of each batch in one `XACK` (client-ack,
//!   dups-ok). Competing consumers share the group.
//!
//! Redis has no per-message durability: "persistent" runs the same commands; with a server
//! on `appendfsync always` each write is fsynced before its reply.

use async_trait::async_trait;
use bytes::Bytes;
use courier_api::{Error, Result};
use redis::aio::MultiplexedConnection;
use redis::streams::StreamReadReply;
use redis::{AsyncConnectionConfig, Value};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::mpsc;

use super::driver::{self, AckPolicy, RawDelivery, RawReceiver, RawSender};
use crate::endpoint::unique_name;
use crate::latency::Clock;
use crate::measurement::Measurement;
use crate::spec::FlowSpec;

const BACKEND: &str = "raw redis";

/// The consumer group of every run's stream.
const GROUP: &str = "g";

/// How long one `XREADGROUP` blocks before it asks again.
const BLOCK_MS: u64 = 100;

/// A reply slower than this is a failure (redis-rs's default is 500 ms, too short for a
/// loaded machine with `appendfsync always`).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

fn failed(what: &str, e: redis::RedisError) -> Error {
    Error::connection_lost_from(format!("{BACKEND} {what}: {e}"), e)
}

async fn connect(client: &redis::Client) -> Result<MultiplexedConnection> {
    let config = AsyncConnectionConfig::new().set_response_timeout(Some(RESPONSE_TIMEOUT));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| failed("connect", e))
}

/// Runs a queue flow through raw redis-rs Streams on `url`.
pub(super) async fn run(
    url: &str,
    read_batch: usize,
    name: &str,
    spec: &FlowSpec,
) -> Result<Measurement> {
    let client = redis::Client::open(url)
        .map_err(|e| Error::invalid_argument(format!("{BACKEND}: bad URL: {e}")))?;
    let key = unique_name(name, "raw-stream");
    let mut admin = connect(&client).await?;
    let () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&key)
        .arg(GROUP)
        .arg("$")
        .arg("MKSTREAM")
        .query_async(&mut admin)
        .await
        .map_err(|e| failed("XGROUP CREATE", e))?;
    let outcome = flow(&client, &key, read_batch, spec).await;
    let deleted: Result<i64> = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut admin)
        .await
        .map_err(|e| failed("DEL", e));
    let measured = outcome?;
    deleted?;
    Ok(measured)
}

async fn flow(
    client: &redis::Client,
    key: &str,
    read_batch: usize,
    spec: &FlowSpec,
) -> Result<Measurement> {
    let clock = Clock::start();
    let (producers, consumers) = spec.topology.participants();
    let persistent = spec.delivery_mode == courier_api::DeliveryMode::Persistent;
    let mut receivers: Vec<Box<dyn RawReceiver>> = Vec::with_capacity(consumers);
    for c in 0..consumers {
        receivers.push(Box::new(StreamReceiver {
            connection: connect(client).await?,
            key: key.to_owned(),
            consumer: format!("c{c}"),
            read_batch: read_batch.max(1),
            buffered: VecDeque::new(),
            unacknowledged: Vec::new(),
            policy: AckPolicy::new(spec.ack),
        }));
    }
    let mut senders: Vec<Box<dyn RawSender>> = Vec::with_capacity(producers);
    for _ in 0..producers {
        senders.push(Box::new(StreamSender::new(
            connect(client).await?,
            key,
            persistent,
            spec.send_window,
        )));
    }
    driver::run(spec, senders, receivers, clock).await
}

/// A producer: awaited `XADD`s, or (with a send window) a writer task that sends whatever
/// is queued as one pipeline per round trip, in send order.
struct StreamSender {
    connection: MultiplexedConnection,
    key: String,
    persistent: bool,
    /// With a send window: the writer's queue (bounded by the window) and the writer.
    writer: Option<(mpsc::Sender<Bytes>, tokio::task::JoinHandle<Result<()>>)>,
}

/// Most `XADD`s one pipeline of the writer carries.
const MAX_PIPELINE: usize = 1_000;

fn xadd(key: &str, persistent: bool, body: &[u8]) -> redis::Cmd {
    let mut command = redis::cmd("XADD");
    command
        .arg(key)
        .arg("*")
        .arg("b")
        .arg(body)
        .arg("p")
        .arg(if persistent { "1" } else { "0" });
    command
}

impl StreamSender {
    fn new(
        connection: MultiplexedConnection,
        key: &str,
        persistent: bool,
        window: Option<usize>,
    ) -> Self {
        let writer = window.map(|window| {
            let (queue, mut queued) = mpsc::channel::<Bytes>(window.max(1));
            let mut connection = connection.clone();
            let key = key.to_owned();
            let task = tokio::spawn(async move {
                let mut batch = Vec::new();
                while queued.recv_many(&mut batch, MAX_PIPELINE).await > 0 {
                    let mut pipeline = redis::pipe();
                    for body in batch.drain(..) {
                        pipeline.add_command(xadd(&key, persistent, &body));
                    }
                    let _: Vec<Value> = pipeline
                        .query_async(&mut connection)
                        .await
                        .map_err(|e| failed("XADD", e))?;
                }
                Ok(())
            });
            (queue, task)
        });
        StreamSender {
            connection,
            key: key.to_owned(),
            persistent,
            writer,
        }
    }
}

#[async_trait]
impl RawSender for StreamSender {
    async fn publish(&mut self, body: Bytes) -> Result<()> {
        match &self.writer {
            None => {
                let _: Value = xadd(&self.key, self.persistent, &body)
                    .query_async(&mut self.connection)
                    .await
                    .map_err(|e| failed("XADD", e))?;
                Ok(())
            }
            Some((queue, _)) => {
                if queue.send(body).await.is_ok() {
                    return Ok(());
                }
                // The writer stopped: its error says why.
                self.finish().await?;
                Err(Error::illegal_state(format!(
                    "{BACKEND}: the writer stopped"
                )))
            }
        }
    }

    async fn finish(&mut self) -> Result<()> {
        let Some((queue, task)) = self.writer.take() else {
            return Ok(());
        };
        drop(queue);
        match task.await {
            Ok(outcome) => outcome,
            Err(e) => Err(Error::illegal_state(format!(
                "{BACKEND}: the writer failed: {e}"
            ))),
        }
    }
}

struct StreamReceiver {
    connection: MultiplexedConnection,
    key: String,
    consumer: String,
    read_batch: usize,
    buffered: VecDeque<(String, RawDelivery)>,
    unacknowledged: Vec<String>,
    policy: AckPolicy,
}

impl StreamReceiver {
    /// One `XREADGROUP`; `block` waits up to [`BLOCK_MS`] for entries.
    async fn read(&mut self, block: bool) -> Result<()> {
        let mut command = redis::cmd("XREADGROUP");
        command
            .arg("GROUP")
            .arg(GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(self.read_batch);
        if block {
            command.arg("BLOCK").arg(BLOCK_MS);
        }
        command.arg("STREAMS").arg(&self.key).arg(">");
        let reply: Option<StreamReadReply> = command
            .query_async(&mut self.connection)
            .await
            .map_err(|e| failed("XREADGROUP", e))?;
        for stream in reply.map(|r| r.keys).unwrap_or_default() {
            for entry in stream.ids {
                let field = |name: &str| match entry.map.get(name) {
                    Some(Value::BulkString(bytes)) => Some(bytes.clone()),
                    _ => None,
                };
                let delivery = RawDelivery {
                    body: field("b").unwrap_or_default(),
                    persistent: Some(field("p").as_deref() == Some(b"1")),
                };
                self.buffered.push_back((entry.id, delivery));
            }
        }
        Ok(())
    }

    async fn xack(&mut self) -> Result<()> {
        if self.unacknowledged.is_empty() {
            return Ok(());
        }
        let ids = std::mem::take(&mut self.unacknowledged);
        let _: i64 = redis::cmd("XACK")
            .arg(&self.key)
            .arg(GROUP)
            .arg(&ids)
            .query_async(&mut self.connection)
            .await
            .map_err(|e| failed("XACK", e))?;
        Ok(())
    }
}

#[async_trait]
impl RawReceiver for StreamReceiver {
    async fn next(&mut self) -> Result<RawDelivery> {
        loop {
            if let Some((id, delivery)) = self.buffered.pop_front() {
                self.unacknowledged.push(id);
                return Ok(delivery);
            }
            self.read(true).await?;
        }
    }

    async fn acknowledge(&mut self) -> Result<()> {
        if self.policy.due() {
            self.xack().await?;
        }
        Ok(())
    }

    async fn leftovers(&mut self) -> Result<Vec<RawDelivery>> {
        self.read(false).await?;
        let mut extra = Vec::new();
        while let Some((id, delivery)) = self.buffered.pop_front() {
            self.unacknowledged.push(id);
            extra.push(delivery);
        }
        Ok(extra)
    }

    async fn finish(&mut self) -> Result<()> {
        self.policy.take_pending();
        self.xack().await
    }
}
