//! Delivery delay through dead-letter delay queues.
//!
//! A delayed message is published to a fanout exchange that feeds one delay queue per
//! (queue type, target kind, delay): the queue's `x-message-ttl` is the delay, and its
//! dead-letter exchange sends each message, once its time is up, on to its real destination
//! under the routing key it was published with (the destination's name): the default
//! exchange for queues, [`TOPICS`] for topics.
//!
//! - **Exact:** every message of a delay queue has the same time to live, so the one at the
//!   head is always the first due. Per-message `expiration` would hold a short delay behind a
//!   long one (RabbitMQ expires messages only at a queue's head); a queue per delay value does
//!   not. Messages of one delay to one kind of target stay in send order.
//! - **Never early:** the time to live starts when RabbitMQ enqueues the message, after the
//!   send stamped its delivery time.
//! - **Tidy:** a delay queue expires (`x-expires`) [`EXPIRY_MARGIN`] after its delay once no
//!   one declared it; its auto-delete exchange goes with its binding. A connection declares a
//!   delay queue again before a send when its last declaration is older than half the margin,
//!   so no queue expires with a message in it.
//! - A delayed message carries no AMQP `expiration` (it would count in the delay queue, and
//!   RabbitMQ drops it when dead-lettering anyway): its `JMSExpiration` is checked on receipt.
//!
//! The delayed-message plugin (`x-delayed-message` exchanges) is detected
//! ([`probe_plugin`]) and reported, but not used: it keeps delayed messages on one node,
//! outside the queue's replication, and it cannot return unroutable messages.

use courier_api::{DestinationKind, Error, Result};
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::ExchangeKind;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::codec::short;
use crate::link::Link;
use crate::topology::{QueueType, TOPICS};

/// How long a delay queue outlives its delay once no one declares it.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// The longest delivery delay: RabbitMQ's largest `x-message-ttl` (2³² − 1 ms, 49 days).
pub const MAX_DELAY: Duration = Duration::from_millis(u32::MAX as u64);

/// The most delay queues a connection remembers declaring; past it, it forgets them all (and
/// declares again on the next send).
const MAX_REMEMBERED: usize = 4096;

/// How delivery delay is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelayMechanism {
    /// Dead-letter delay queues, one per delay value (the only one used).
    DeadLetterQueues,
}

impl DelayMechanism {
    /// A short description, for provider information.
    pub fn describe(self) -> &'static str {
        match self {
            DelayMechanism::DeadLetterQueues => "dead-letter delay queues",
        }
    }
}

/// The delay queues one connection declared, and when.
#[derive(Debug, Default)]
pub(crate) struct DelayQueues {
    declared: Mutex<HashMap<String, Instant>>,
}

/// The name of the delay queue (and of its exchange) for `delay` to targets of `kind`.
pub fn delay_queue(queue_type: QueueType, kind: DestinationKind, delay: Duration) -> String {
    let queue_type = match queue_type {
        QueueType::Classic => "classic",
        QueueType::Quorum => "quorum",
    };
    let target = match kind {
        DestinationKind::Queue | DestinationKind::TemporaryQueue => "queue",
        DestinationKind::Topic | DestinationKind::TemporaryTopic => "topic",
    };
    format!("courier.delay.{queue_type}.{target}.{}", delay.as_millis())
}

/// The delay as a whole number of milliseconds RabbitMQ accepts as a time to live.
fn delay_millis(delay: Duration) -> Result<i64> {
    if delay > MAX_DELAY {
        return Err(Error::invalid_argument(format!(
            "delivery delay {delay:?} is longer than RabbitMQ's longest ({MAX_DELAY:?})"
        )));
    }
    // Round up: a message is never due before its delay.
    let millis = delay.as_nanos().div_ceil(1_000_000);
    Ok(i64::try_from(millis).unwrap_or(i64::MAX))
}

impl DelayQueues {
    /// Forgets every declaration (after a reconnect: declared again on the next send).
    pub fn forget(&self) {
        self.declared.lock().clear();
    }

    /// The exchange to publish a message delayed by `delay` to a target of `kind` through,
    /// declaring its delay queue first when this connection has not lately.
    pub async fn exchange(
        &self,
        link: &Link,
        kind: DestinationKind,
        delay: Duration,
    ) -> Result<String> {
        let millis = delay_millis(delay)?;
        let rounded = Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX));
        let name = delay_queue(link.topology.queue_type(), kind, rounded);
        let fresh = self
            .declared
            .lock()
            .get(&name)
            .is_some_and(|at| at.elapsed() < EXPIRY_MARGIN / 2);
        if fresh {
            return Ok(name);
        }
        let declared_at = Instant::now();
        self.declare(link, &name, kind, millis).await?;
        let mut declared = self.declared.lock();
        if declared.len() >= MAX_REMEMBERED {
            declared.clear();
        }
        declared.insert(name.clone(), declared_at);
        Ok(name)
    }

    /// Declares the delay queue `name`, its fanout exchange and the binding between them, on
    /// a scratch channel (a refused declare closes the channel it was made on).
    async fn declare(
        &self,
        link: &Link,
        name: &str,
        kind: DestinationKind,
        millis: i64,
    ) -> Result<()> {
        let dead_letter_exchange = match kind {
            DestinationKind::Queue | DestinationKind::TemporaryQueue => "",
            DestinationKind::Topic | DestinationKind::TemporaryTopic => TOPICS,
        };
        let expires = millis.saturating_add(EXPIRY_MARGIN.as_millis() as i64);
        let mut arguments = FieldTable::default();
        arguments.insert("x-message-ttl".into(), AMQPValue::LongLongInt(millis));
        arguments.insert("x-expires".into(), AMQPValue::LongLongInt(expires));
        arguments.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(LongString::from(dead_letter_exchange)),
        );
        if link.topology.queue_type() == QueueType::Quorum {
            arguments.insert(
                "x-queue-type".into(),
                AMQPValue::LongString(LongString::from("quorum")),
            );
        }
        let queue = short("a delay queue name", name)?;
        let needs_topics = dead_letter_exchange == TOPICS;
        link.on_scratch("delay queue declare", move |c| async move {
            if needs_topics {
                let durable = ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                };
                c.exchange_declare(
                    TOPICS.into(),
                    ExchangeKind::Direct,
                    durable,
                    FieldTable::default(),
                )
                .await?;
            }
            let exchange = ExchangeDeclareOptions {
                durable: true,
                auto_delete: true,
                ..ExchangeDeclareOptions::default()
            };
            c.exchange_declare(
                queue.clone(),
                ExchangeKind::Fanout,
                exchange,
                FieldTable::default(),
            )
            .await?;
            let durable = QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            };
            c.queue_declare(queue.clone(), durable, arguments).await?;
            c.queue_bind(
                queue.clone(),
                queue,
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
        })
        .await
    }
}

/// Whether the RabbitMQ behind `uri` has the delayed-message plugin: declares an
/// `x-delayed-message` exchange on a connection of its own (RabbitMQ answers an unknown
/// exchange type by closing the whole connection) and deletes it again.
pub(crate) async fn probe_plugin(uri: lapin::uri::AMQPUri, timeout: Duration) -> Result<bool> {
    let probe = async move {
        let properties = lapin::ConnectionProperties::default()
            .with_connection_name("courier-amqp delay probe".into());
        let connection = lapin::Connection::connect_uri(uri, properties).await?;
        let channel = connection.create_channel().await?;
        let name = format!("courier.delay-probe.{}", uuid::Uuid::new_v4().simple());
        let mut arguments = FieldTable::default();
        arguments.insert(
            "x-delayed-type".into(),
            AMQPValue::LongString(LongString::from("direct")),
        );
        let options = ExchangeDeclareOptions {
            auto_delete: true,
            ..ExchangeDeclareOptions::default()
        };
        let declared = channel
            .exchange_declare(
                name.as_str().into(),
                ExchangeKind::Custom("x-delayed-message".into()),
                options,
                arguments,
            )
            .await;
        let present = declared.is_ok();
        if present {
            let _ = channel
                .exchange_delete(name.as_str().into(), Default::default())
                .await;
        }
        let _ = connection.close(200, "OK".into()).await;
        Ok::<bool, lapin::Error>(present)
    };
    match tokio::time::timeout(timeout, probe).await {
        Err(_) => Err(Error::Timeout(timeout)),
        Ok(Err(e)) => Err(crate::failure::map("delay plugin probe", e)),
        Ok(Ok(present)) => Ok(present),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_queue_per_type_kind_and_delay() {
        let q = |t, k, ms| delay_queue(t, k, Duration::from_millis(ms));
        assert_eq!(
            q(QueueType::Classic, DestinationKind::Queue, 600),
            "courier.delay.classic.queue.600"
        );
        assert_eq!(
            q(QueueType::Classic, DestinationKind::TemporaryQueue, 600),
            q(QueueType::Classic, DestinationKind::Queue, 600)
        );
        assert_ne!(
            q(QueueType::Quorum, DestinationKind::Topic, 600),
            q(QueueType::Classic, DestinationKind::Topic, 600)
        );
        assert_ne!(
            q(QueueType::Classic, DestinationKind::Topic, 600),
            q(QueueType::Classic, DestinationKind::Queue, 600)
        );
    }

    #[test]
    fn delays_round_up_and_are_bounded() {
        assert_eq!(delay_millis(Duration::from_micros(1)).unwrap(), 1);
        assert_eq!(delay_millis(Duration::from_millis(600)).unwrap(), 600);
        assert_eq!(delay_millis(Duration::from_micros(600_001)).unwrap(), 601);
        assert_eq!(delay_millis(MAX_DELAY).unwrap(), i64::from(u32::MAX));
        let e = delay_millis(MAX_DELAY + Duration::from_millis(1)).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        assert!(delay_millis(Duration::MAX).is_err());
    }
}
