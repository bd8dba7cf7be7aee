//! Raw lapin: the RabbitMQ baseline of `courier-amqp`.
//!
//! Each producer and consumer has its own connection and channel, as the api runner's
//! participants have. The queue is durable (classic or quorum; a classic one plain, or with
//! `x-max-priority` when asked) with a unique name, reached through the default exchange, and
//! deleted after the run.
//! - Persistent messages (`delivery_mode` 2) go on a channel in confirm mode: awaited one by
//!   one, or pipelined with at most the workload's send window unconfirmed, oldest first. A
//!   nack fails the run. Non-persistent messages (`delivery_mode` 1) are published without
//!   confirms, as a raw application sending them would.
//! - Consumers set `basic.qos` to the prefetch, consume with manual acknowledgement, and
//!   acknowledge each message (auto-ack), or every batch with `multiple` (client-ack,
//!   dups-ok).

use async_trait::async_trait;
use bytes::Bytes;
use courier_api::{DeliveryMode, Error, Result};
use futures::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, PublisherConfirm};
use std::collections::VecDeque;

use super::driver::{self, AckPolicy, RawDelivery, RawReceiver, RawSender};
use super::RawQueueType;
use crate::endpoint::unique_name;
use crate::latency::Clock;
use crate::measurement::Measurement;
use crate::spec::FlowSpec;

const BACKEND: &str = "raw lapin";

fn failed(what: &str, e: lapin::Error) -> Error {
    Error::connection_lost_from(format!("{BACKEND} {what}: {e}"), e)
}

async fn open(url: &str) -> Result<(Connection, Channel)> {
    let properties =
        ConnectionProperties::default().with_connection_name("courier-bench-raw".into());
    let connection = Connection::connect(url, properties)
        .await
        .map_err(|e| failed("connect", e))?;
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| failed("channel.open", e))?;
    Ok((connection, channel))
}

async fn close(connection: &Connection) -> Result<()> {
    connection
        .close(200, "done".into())
        .await
        .map_err(|e| failed("connection.close", e))
}

/// The queue a raw run declares: its type, and for a classic one its `x-max-priority`.
#[derive(Debug, Clone, Copy)]
pub(super) struct QueueShape {
    pub queue_type: RawQueueType,
    pub max_priority: Option<u8>,
}

/// Runs a queue flow through raw lapin on `url`.
pub(super) async fn run(
    url: &str,
    shape: QueueShape,
    prefetch: u16,
    name: &str,
    spec: &FlowSpec,
) -> Result<Measurement> {
    let queue = unique_name(name, "raw");
    let (admin, channel) = open(url).await?;
    let mut arguments = FieldTable::default();
    match shape {
        QueueShape {
            queue_type: RawQueueType::Quorum,
            ..
        } => {
            arguments.insert(
                "x-queue-type".into(),
                AMQPValue::LongString(LongString::from("quorum")),
            );
        }
        QueueShape {
            queue_type: RawQueueType::Classic,
            max_priority: Some(p),
        } => {
            arguments.insert("x-max-priority".into(), AMQPValue::ShortShortUInt(p));
        }
        _ => {}
    }
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await
        .map_err(|e| failed("queue.declare", e))?;
    // The workload's own prefetch, when it has one, so the adapter and raw lapin match.
    let prefetch = spec
        .prefetch
        .filter(|&p| p > 0)
        .map_or(prefetch, |p| u16::try_from(p).unwrap_or(u16::MAX));
    let outcome = flow(url, &queue, prefetch, spec).await;
    let deleted = channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .map_err(|e| failed("queue.delete", e));
    let closed = close(&admin).await;
    let measured = outcome?;
    deleted?;
    closed?;
    Ok(measured)
}

async fn flow(url: &str, queue: &str, prefetch: u16, spec: &FlowSpec) -> Result<Measurement> {
    let clock = Clock::start();
    let (producers, consumers) = spec.topology.participants();
    let persistent = spec.delivery_mode == DeliveryMode::Persistent;
    let mut receivers: Vec<Box<dyn RawReceiver>> = Vec::with_capacity(consumers);
    for _ in 0..consumers {
        let (connection, channel) = open(url).await?;
        channel
            .basic_qos(prefetch, BasicQosOptions { global: false })
            .await
            .map_err(|e| failed("basic.qos", e))?;
        let stream = channel
            .basic_consume(
                queue.into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| failed("basic.consume", e))?;
        receivers.push(Box::new(LapinReceiver {
            connection,
            channel,
            stream,
            last_tag: None,
            policy: AckPolicy::new(spec.ack),
        }));
    }
    let mut senders: Vec<Box<dyn RawSender>> = Vec::with_capacity(producers);
    for _ in 0..producers {
        let (connection, channel) = open(url).await?;
        if persistent {
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(|e| failed("confirm.select", e))?;
        }
        senders.push(Box::new(LapinSender {
            connection,
            channel,
            queue: queue.to_owned(),
            properties: BasicProperties::default().with_delivery_mode(if persistent {
                2
            } else {
                1
            }),
            confirms: persistent,
            window: spec.send_window,
            unconfirmed: VecDeque::new(),
        }));
    }
    driver::run(spec, senders, receivers, clock).await
}

struct LapinSender {
    connection: Connection,
    channel: Channel,
    queue: String,
    properties: BasicProperties,
    confirms: bool,
    window: Option<usize>,
    unconfirmed: VecDeque<PublisherConfirm>,
}

async fn confirmed(confirm: PublisherConfirm) -> Result<()> {
    let confirmation = confirm.await.map_err(|e| failed("confirm", e))?;
    if confirmation.is_nack() {
        return Err(Error::illegal_state(format!(
            "{BACKEND}: RabbitMQ refused (nacked) a message"
        )));
    }
    Ok(())
}

#[async_trait]
impl RawSender for LapinSender {
    async fn publish(&mut self, body: Bytes) -> Result<()> {
        let confirm = self
            .channel
            .basic_publish(
                "".into(),
                self.queue.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                self.properties.clone(),
            )
            .await
            .map_err(|e| failed("basic.publish", e))?;
        if !self.confirms {
            return Ok(());
        }
        match self.window {
            None => confirmed(confirm).await,
            Some(window) => {
                self.unconfirmed.push_back(confirm);
                while self.unconfirmed.len() > window {
                    if let Some(oldest) = self.unconfirmed.pop_front() {
                        confirmed(oldest).await?;
                    }
                }
                Ok(())
            }
        }
    }

    async fn finish(&mut self) -> Result<()> {
        while let Some(confirm) = self.unconfirmed.pop_front() {
            confirmed(confirm).await?;
        }
        close(&self.connection).await
    }
}

struct LapinReceiver {
    connection: Connection,
    channel: Channel,
    stream: lapin::Consumer,
    last_tag: Option<u64>,
    policy: AckPolicy,
}

impl LapinReceiver {
    async fn ack_through(&self, tag: u64, multiple: bool) -> Result<()> {
        self.channel
            .basic_ack(tag, BasicAckOptions { multiple })
            .await
            .map_err(|e| failed("basic.ack", e))
    }
}

fn delivery(delivery: lapin::message::Delivery) -> (u64, RawDelivery) {
    let persistent = delivery.properties.delivery_mode().map(|m| m == 2);
    (
        delivery.delivery_tag,
        RawDelivery {
            body: delivery.data,
            persistent: Some(persistent.unwrap_or(false)),
        },
    )
}

#[async_trait]
impl RawReceiver for LapinReceiver {
    async fn next(&mut self) -> Result<RawDelivery> {
        match self.stream.next().await {
            Some(Ok(d)) => {
                let (tag, raw) = delivery(d);
                self.last_tag = Some(tag);
                Ok(raw)
            }
            Some(Err(e)) => Err(failed("delivery", e)),
            None => Err(Error::connection_lost(format!(
                "{BACKEND}: the consumer was cancelled"
            ))),
        }
    }

    async fn acknowledge(&mut self) -> Result<()> {
        match self.last_tag {
            Some(tag) if self.policy.due() => self.ack_through(tag, true).await,
            _ => Ok(()),
        }
    }

    async fn leftovers(&mut self) -> Result<Vec<RawDelivery>> {
        let mut extra = Vec::new();
        while let Some(Some(Ok(d))) = self.stream.next().now_or_never() {
            let (tag, raw) = delivery(d);
            self.last_tag = Some(tag);
            self.policy.due();
            extra.push(raw);
        }
        Ok(extra)
    }

    async fn finish(&mut self) -> Result<()> {
        if let (Some(tag), true) = (self.last_tag, self.policy.take_pending()) {
            self.ack_through(tag, true).await?;
        }
        close(&self.connection).await
    }
}
