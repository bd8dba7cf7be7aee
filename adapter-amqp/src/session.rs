//! Sessions: one AMQP channel each.
//!
//! - Acknowledgement is manual. AUTO and DUPS_OK acknowledge a message when `receive`
//!   returns it; CLIENT_ACKNOWLEDGE records what the session handed out and acknowledges all
//!   of it on [`Session::acknowledge`], across the session's consumers; `recover` is
//!   `basic.recover` with requeue, which gives back everything unacknowledged (flagged
//!   redelivered) — prefetched messages too.
//! - A transacted session's channel is in `tx.select`: its publishes and acknowledgements
//!   take effect at `tx.commit`. A rollback is `tx.rollback` (discarding the publishes)
//!   followed by a committed `basic.nack` with requeue of everything the transaction received,
//!   so those messages come back flagged redelivered.
//! - Other sessions' channels are in confirm mode: a send returns once RabbitMQ confirmed it
//!   (for a persistent message, once it is on disk).
//! - Closing the session closes the channel: RabbitMQ requeues whatever it had not been
//!   acknowledged and rolls the transaction back.

use async_trait::async_trait;
use courier_api::{
    Browser, Capabilities, Consumer, ConsumerOptions, Destination, DestinationKind, Error,
    Producer, Result, Selector, Session, SessionMode,
};
use futures::FutureExt;
use lapin::options::{
    BasicAckOptions, BasicNackOptions, BasicRecoverOptions, ConfirmSelectOptions,
    ExchangeBindOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::Channel;
use lapin::ExchangeKind;
use parking_lot::Mutex;
use std::sync::{Arc, Weak};
use tokio::sync::watch;

use crate::codec::short;
use crate::consumer::{AmqpConsumer, ConsumerCore, Selection};
use crate::link::Link;
use crate::prefilter::Source;
use crate::producer::AmqpProducer;
use crate::topology::{durable_queue, shared_queue, TOPICS};

/// What a consumer consumes from.
#[derive(Debug, Clone)]
pub(crate) enum Subscription {
    /// A queue.
    Queue,
    /// A non-durable subscription of its own.
    Topic,
    /// The unshared durable subscription of this name.
    Durable(String),
    /// The shared subscription of this name.
    Shared { name: String, durable: bool },
}

/// A delivery handed to the application and not yet acknowledged.
#[derive(Debug, Clone)]
pub(crate) struct Handed {
    /// The delivery tag on the session's channel.
    pub tag: u64,
    /// The connection's epoch of that channel (a tag of an older one means nothing now).
    pub epoch: u64,
    /// The queue it came from.
    pub queue: Arc<str>,
    /// Its message id, for counting redeliveries.
    pub message_id: Option<Arc<str>>,
}

/// Delivery tags a session must still settle.
#[derive(Debug, Default)]
struct Unsettled {
    /// Handed to the application (or skipped by a transacted consumer): acknowledged by
    /// `acknowledge`/`commit`, given back by `recover`/`rollback`.
    handed: Vec<Handed>,
    /// Held by a consumer closed inside a transaction: given back at the transaction's end.
    release: Vec<(u64, u64)>,
}

/// How a consumer consumes again after a reconnect.
#[derive(Debug, Clone)]
pub(crate) enum Resume {
    /// From its (durable) queue, declared again on use.
    Queue,
    /// From its subscription's queue, declared and bound again at once.
    Subscription(Box<SubscriptionSpec>),
    /// Not at all: its temporary destination went with the lost connection.
    Temporary,
}

/// What a subscription queue is declared from.
#[derive(Debug, Clone)]
pub(crate) struct SubscriptionSpec {
    /// The topic.
    pub topic: Destination,
    /// The queue's name; `None` for a non-durable subscription's server-named queue.
    pub named: Option<String>,
    /// Whether the queue is durable.
    pub durable: bool,
    /// The selector's prefilter.
    pub prefilter: Option<Selector>,
    /// For a non-durable subscription, when it was made (ms since the epoch): a delayed
    /// message sent before is not its (§7.9), though its delay queue routes it only at its
    /// delivery time.
    pub since: Option<u64>,
}

/// What a session's producers and consumers share.
pub(crate) struct SessionCore {
    pub link: Arc<Link>,
    /// The session's channel (a reconnect gives a new one).
    channel: Mutex<Channel>,
    /// Set by a reconnect that gave back what the session held: the next acknowledge or
    /// commit fails with it.
    interrupted: Mutex<Option<Error>>,
    pub mode: SessionMode,
    pub capabilities: Capabilities,
    /// Set when the session is closed.
    pub closed: watch::Sender<bool>,
    unsettled: Mutex<Unsettled>,
    consumers: Mutex<Vec<Weak<ConsumerCore>>>,
    /// Serialises commit, rollback, acknowledge and recover.
    settling: tokio::sync::Mutex<()>,
}

impl SessionCore {
    /// The session's channel.
    pub fn channel(&self) -> Channel {
        self.channel.lock().clone()
    }

    /// After a reconnect: puts `channel` in place of the lost one. What the session held
    /// went back to the queues with the old channel; the next acknowledge (if it held
    /// anything) or commit fails.
    pub fn replace_channel(&self, channel: Channel) {
        *self.channel.lock() = channel;
        let unsettled = std::mem::take(&mut *self.unsettled.lock());
        for h in &unsettled.handed {
            self.link.count_redelivery(h.message_id.as_ref());
        }
        let interrupted = match self.mode {
            SessionMode::Transacted => Some(Error::TransactionRolledBack(
                "the connection was lost and made again: the transaction's sends were \
                 discarded and its messages given back"
                    .into(),
            )),
            SessionMode::ClientAcknowledge if !unsettled.handed.is_empty() => {
                Some(Error::connection_lost(
                    "the connection was lost and made again: the messages received before \
                     were given back and come again",
                ))
            }
            _ => None,
        };
        if interrupted.is_some() {
            *self.interrupted.lock() = interrupted;
        }
    }

    /// After a reconnect: declares every consumer's subscription again.
    pub async fn resubscribe(&self) {
        for consumer in self.live_consumers() {
            consumer.resume().await;
        }
    }

    /// `Ok` while the session and its connection are open.
    pub fn check(&self) -> Result<()> {
        self.link.check()?;
        if *self.closed.borrow() {
            return Err(Error::illegal_state("the session is closed"));
        }
        Ok(())
    }

    /// Records a delivery handed out (or skipped inside a transaction) for settling later.
    pub fn hand(&self, handed: Handed) {
        self.unsettled.lock().handed.push(handed);
    }

    /// Whether this session holds an unacknowledged message of `queue`.
    fn holds_from(&self, queue: &str) -> bool {
        self.unsettled
            .lock()
            .handed
            .iter()
            .any(|h| &*h.queue == queue)
    }

    /// Gives back everything unacknowledged (`basic.recover` with requeue): what the
    /// application holds and what the consumers prefetched.
    pub async fn recover(&self) -> Result<()> {
        let _settling = self.settling.lock().await;
        let consumers = self.live_consumers();
        for consumer in &consumers {
            consumer.forget_held();
        }
        let mut handed = std::mem::take(&mut self.unsettled.lock().handed);
        handed.sort_by_key(|h| h.tag);
        for h in &handed {
            self.link.count_redelivery(h.message_id.as_ref());
        }
        // What the application held goes back first, oldest first.
        for h in &handed {
            self.nack(h.tag, h.epoch, true).await?;
        }
        // Then what standing consumers prefetched (lazy ones hold nothing; a basic.recover
        // racing one of their basic.gets would requeue a message about to be handed out).
        if consumers.iter().any(|c| c.is_standing()) {
            self.link
                .call(
                    "basic.recover",
                    self.channel()
                        .basic_recover(BasicRecoverOptions { requeue: true }),
                )
                .await?;
        }
        Ok(())
    }

    /// Records a delivery a consumer closed inside a transaction gives back.
    pub fn release_later(&self, tag: u64, epoch: u64) {
        self.unsettled.lock().release.push((tag, epoch));
    }

    /// Acknowledges one delivery (of the channel of `epoch`): queues its `basic.ack` on the
    /// channel and returns. One of a lost channel cannot be: RabbitMQ gave it back, and it
    /// comes again.
    ///
    /// Not awaited: `basic.ack` has no answer, and lapin's promise for it only says the frame
    /// reached the socket, which tells RabbitMQ nothing more. What matters holds without the
    /// wait: method frames leave in the order they were queued, so a later close, `basic.qos`,
    /// `basic.recover` or `tx.commit` on the channel (the round trips that confirm the acks
    /// were processed) follows it. Awaiting the write cost a hand-off to lapin's I/O thread
    /// and back per received message.
    pub fn ack(&self, tag: u64, epoch: u64) -> Result<()> {
        if epoch != self.link.epoch() {
            return Err(Error::connection_lost(
                "the connection was lost and made again: the message was given back and comes \
                 again",
            ));
        }
        self.link.check()?;
        let channel = self.channel();
        // The first poll checks the channel and queues the frame; the rest only waits for
        // the write.
        match channel
            .basic_ack(tag, BasicAckOptions::default())
            .now_or_never()
        {
            Some(Err(e)) => Err(self
                .link
                .lost()
                .unwrap_or_else(|| crate::failure::map("basic.ack", e))),
            Some(Ok(())) | None => Ok(()),
        }
    }

    /// Gives one delivery (of the channel of `epoch`) back to its queue now (`requeue`) or
    /// drops it. One of a lost channel went back already.
    pub async fn nack(&self, tag: u64, epoch: u64, requeue: bool) -> Result<()> {
        if epoch != self.link.epoch() {
            return Ok(());
        }
        let options = BasicNackOptions {
            multiple: false,
            requeue,
        };
        let channel = self.channel();
        self.link
            .call("basic.nack", channel.basic_nack(tag, options))
            .await
    }

    /// Acknowledges every recorded delivery. Once the first acknowledgement left, a failure
    /// is [`Error::InDoubt`]: RabbitMQ may have acted on some of them.
    async fn ack_handed(&self) -> Result<()> {
        let handed = std::mem::take(&mut self.unsettled.lock().handed);
        if handed.is_empty() {
            return Ok(());
        }
        let in_doubt = |e: Error| {
            Error::in_doubt(
                courier_api::InDoubtOperation::Acknowledge,
                format!("the acknowledgement was cut off: {e}"),
            )
        };
        for h in handed {
            self.ack(h.tag, h.epoch).map_err(in_doubt)?;
        }
        if self.mode != SessionMode::Transacted {
            // basic.ack has no answer: a request that has one, queued after the acks on the
            // same channel, returns once RabbitMQ processed them. (Every consumer sets its own
            // basic.qos before it starts, so this one changes nothing.)
            self.link
                .call(
                    "basic.qos",
                    self.channel()
                        .basic_qos(1, lapin::options::BasicQosOptions { global: false }),
                )
                .await
                .map_err(in_doubt)?;
        }
        Ok(())
    }

    /// Gives back everything a transaction held.
    async fn nack_all(&self, handed: bool) -> Result<()> {
        let tags = {
            let mut unsettled = self.unsettled.lock();
            let mut tags = std::mem::take(&mut unsettled.release);
            if handed {
                for h in std::mem::take(&mut unsettled.handed) {
                    self.link.count_redelivery(h.message_id.as_ref());
                    tags.push((h.tag, h.epoch));
                }
            }
            tags
        };
        for (tag, epoch) in tags {
            self.nack(tag, epoch, true).await?;
        }
        Ok(())
    }

    /// Counts the redelivery of everything handed out and not acknowledged, which closing
    /// the channel gives back.
    fn count_abandoned(&self) {
        let unsettled = std::mem::take(&mut *self.unsettled.lock());
        for h in &unsettled.handed {
            self.link.count_redelivery(h.message_id.as_ref());
        }
    }

    /// Declares the queue of a topic subscription and binds it to the topic.
    pub async fn subscription_queue(
        &self,
        topic: &Destination,
        queue: Option<&str>,
        durable: bool,
        selector: Option<&str>,
        prefilter: Option<&Selector>,
    ) -> Result<String> {
        let link = &self.link;
        self.check_topic(topic).await?;
        link.declare_topics(&self.channel()).await?;
        let mut arguments = if durable {
            link.topology.queue_arguments()
        } else {
            link.topology.transient_arguments()
        };
        let name = match queue {
            None => {
                let options = QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                };
                let declared = link
                    .call(
                        "queue.declare",
                        self.channel().queue_declare("".into(), options, arguments),
                    )
                    .await?;
                declared.name().as_str().to_owned()
            }
            Some(name) => {
                // The subscription's topic and selector, in an argument RabbitMQ compares on
                // every declare: a declare with others fails (406) instead of silently
                // keeping the old ones. Dead letters go to the default exchange under this
                // key, which no queue is named, so they are dropped as without it.
                let identity = format!("courier-subscription:{topic}\n{}", selector.unwrap_or(""));
                arguments.insert(
                    "x-dead-letter-exchange".into(),
                    AMQPValue::LongString(LongString::from("")),
                );
                arguments.insert(
                    "x-dead-letter-routing-key".into(),
                    AMQPValue::LongString(LongString::from(identity.as_bytes())),
                );
                self.declare_named(name, durable, arguments).await?;
                name.to_owned()
            }
        };
        let routing_key = short("a topic name", topic.name())?;
        let queue = short("a queue name", &name)?;
        match Source::of(&name, prefilter) {
            Source::Topics => {
                link.call(
                    "queue.bind",
                    self.channel().queue_bind(
                        queue,
                        TOPICS.into(),
                        routing_key,
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    ),
                )
                .await?;
            }
            Source::Filter { exchange, bindings } => {
                // On a scratch channel: a refused declare must not close the session's.
                link.on_scratch("prefilter bind", move |c| async move {
                    let options = ExchangeDeclareOptions {
                        durable,
                        auto_delete: true,
                        ..ExchangeDeclareOptions::default()
                    };
                    c.exchange_declare(
                        exchange.clone(),
                        ExchangeKind::Headers,
                        options,
                        FieldTable::default(),
                    )
                    .await?;
                    for arguments in bindings {
                        c.queue_bind(
                            queue.clone(),
                            exchange.clone(),
                            "".into(),
                            QueueBindOptions::default(),
                            arguments,
                        )
                        .await?;
                    }
                    c.exchange_bind(
                        exchange,
                        TOPICS.into(),
                        routing_key,
                        ExchangeBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                })
                .await?;
            }
        }
        Ok(name)
    }

    /// Declares a named subscription queue on a scratch channel. A queue of that name made
    /// for another topic or selector is replaced when nothing consumes from it (JMS: changing
    /// a durable subscription is deleting it and making a new one).
    async fn declare_named(&self, name: &str, durable: bool, arguments: FieldTable) -> Result<()> {
        let link = &self.link;
        let queue = short("a subscription queue name", name)?;
        let options = QueueDeclareOptions {
            durable,
            auto_delete: !durable,
            ..QueueDeclareOptions::default()
        };
        if durable {
            link.topology.record(name);
        }
        let attempt = |queue: lapin::types::ShortString, arguments: FieldTable| {
            link.on_scratch("queue.declare", move |c| async move {
                c.queue_declare(queue, options, arguments).await
            })
        };
        match attempt(queue.clone(), arguments.clone()).await {
            Ok(_) => Ok(()),
            Err(Error::IllegalState(_)) if link.check().is_ok() => {
                // 406: declared with other arguments (another topic or selector).
                link.delete_queue(name, true).await.map_err(|_| {
                    Error::illegal_state(format!(
                        "subscription {name:?} is in use with another topic or selector"
                    ))
                })?;
                if durable {
                    link.topology.record(name);
                }
                attempt(queue, arguments).await.map(|_| ())
            }
            Err(e) => Err(e),
        }
    }

    /// A temporary topic must exist: ours, or another live connection's.
    async fn check_topic(&self, topic: &Destination) -> Result<()> {
        if topic.kind() != DestinationKind::TemporaryTopic {
            return Ok(());
        }
        if self.link.temporaries.lock().contains_key(topic.name()) {
            return Ok(());
        }
        Err(Error::invalid_destination(
            topic.to_string(),
            "only the connection that made a temporary topic may subscribe to it",
        ))
    }

    fn live_consumers(&self) -> Vec<Arc<ConsumerCore>> {
        let mut consumers = self.consumers.lock();
        consumers.retain(|c| c.strong_count() > 0);
        consumers.iter().filter_map(Weak::upgrade).collect()
    }
}

/// A session over one AMQP channel.
pub(crate) struct AmqpSession {
    core: Arc<SessionCore>,
}

impl AmqpSession {
    /// Opens a session on `link`: its channel, in `tx.select` or confirm mode.
    pub async fn open(
        link: Arc<Link>,
        mode: SessionMode,
        capabilities: Capabilities,
    ) -> Result<Self> {
        let channel = link.channel().await?;
        if mode == SessionMode::Transacted {
            link.call("tx.select", channel.tx_select()).await?;
        } else {
            link.call(
                "confirm.select",
                channel.confirm_select(ConfirmSelectOptions::default()),
            )
            .await?;
        }
        let core = Arc::new(SessionCore {
            link: link.clone(),
            channel: Mutex::new(channel),
            interrupted: Mutex::new(None),
            mode,
            capabilities,
            closed: watch::channel(false).0,
            unsettled: Mutex::new(Unsettled::default()),
            consumers: Mutex::new(Vec::new()),
            settling: tokio::sync::Mutex::new(()),
        });
        {
            let mut sessions = link.sessions.lock();
            sessions.retain(|s| s.strong_count() > 0);
            sessions.push(Arc::downgrade(&core));
        }
        Ok(AmqpSession { core })
    }

    fn transacted(&self) -> Result<()> {
        if self.core.mode != SessionMode::Transacted {
            return Err(Error::illegal_state("the session is not transacted"));
        }
        Ok(())
    }

    async fn consumer(
        &self,
        destination: &Destination,
        options: ConsumerOptions,
        subscription: Subscription,
    ) -> Result<Box<dyn Consumer>> {
        self.core.check()?;
        destination.validate()?;
        let since = courier_api::spi::now_millis();
        let selector_text = options.effective_selector().map(str::to_owned);
        let selector = selector_text.as_deref().map(Selector::parse).transpose()?;
        let link = &self.core.link;
        let client_id = link.client_id.lock().clone();
        let (queue, temporary) = match (&subscription, destination.kind()) {
            (Subscription::Queue, DestinationKind::Queue) => {
                if selector.is_some() {
                    return Err(Link::unsupported(
                        "selectors on queue consumers (RabbitMQ cannot skip messages per consumer)",
                    ));
                }
                // Declared again even when this connection did before: another may have
                // deleted it since, and a consumer of a missing queue would fail only later.
                link.forget_queue(destination.name());
                link.declare_queue(&self.core.channel(), destination.name())
                    .await?;
                (destination.name().to_owned(), false)
            }
            (Subscription::Queue, DestinationKind::TemporaryQueue) => {
                if selector.is_some() {
                    return Err(Link::unsupported(
                        "selectors on queue consumers (RabbitMQ cannot skip messages per consumer)",
                    ));
                }
                if !link.temporaries.lock().contains_key(destination.name()) {
                    return Err(Error::invalid_destination(
                        destination.to_string(),
                        "only the connection that made a temporary queue may consume from it",
                    ));
                }
                (destination.name().to_owned(), true)
            }
            (_, DestinationKind::Queue | DestinationKind::TemporaryQueue) => {
                return Err(Error::invalid_destination(
                    destination.to_string(),
                    "subscriptions are on topics",
                ))
            }
            (Subscription::Topic | Subscription::Queue, _) => {
                let queue = self
                    .core
                    .subscription_queue(destination, None, false, None, selector.as_ref())
                    .await?;
                (queue, false)
            }
            (Subscription::Durable(name), _) => {
                let Some(client_id) = client_id.as_deref() else {
                    return Err(Error::illegal_state(
                        "a durable subscription needs the connection's client id",
                    ));
                };
                let queue = durable_queue(client_id, name);
                if self.consumer_count(&queue).await? > 0 {
                    return Err(Error::illegal_state(format!(
                        "durable subscription {name:?} already has an active consumer"
                    )));
                }
                self.core
                    .subscription_queue(
                        destination,
                        Some(&queue),
                        true,
                        selector_text.as_deref(),
                        selector.as_ref(),
                    )
                    .await?;
                (queue, false)
            }
            (Subscription::Shared { name, durable }, _) => {
                let queue = shared_queue(client_id.as_deref(), name, *durable);
                self.core
                    .subscription_queue(
                        destination,
                        Some(&queue),
                        *durable,
                        selector_text.as_deref(),
                        selector.as_ref(),
                    )
                    .await?;
                (queue, false)
            }
        };
        if temporary || destination.kind() == DestinationKind::TemporaryTopic {
            if let Some(count) = link.temporaries.lock().get_mut(destination.name()) {
                *count += 1;
            }
        }
        let is_queue = destination.is_queue();
        let spec = |named: Option<String>, durable: bool| {
            let since = named.is_none().then_some(since);
            Resume::Subscription(Box::new(SubscriptionSpec {
                topic: destination.clone(),
                named,
                durable,
                prefilter: selector.clone(),
                since,
            }))
        };
        let resume = match (&subscription, destination.kind()) {
            (_, DestinationKind::TemporaryQueue | DestinationKind::TemporaryTopic) => {
                Resume::Temporary
            }
            (_, DestinationKind::Queue) => Resume::Queue,
            (Subscription::Topic | Subscription::Queue, _) => spec(None, false),
            (Subscription::Durable(_), _) => spec(Some(queue.clone()), true),
            (Subscription::Shared { durable, .. }, _) => spec(Some(queue.clone()), *durable),
        };
        let core = ConsumerCore::start(
            self.core.clone(),
            destination.clone(),
            queue,
            resume,
            Selection {
                selector_text,
                filter: if is_queue { None } else { selector },
                no_local: options.no_local && !is_queue,
            },
            // A subscription's queue must keep its consumer (an auto-delete queue would go
            // with it, a durable one must show it is active): only queue consumers consume
            // lazily.
            // A consumer without its own prefetch takes the URL's (`?prefetch=N`).
            match options.prefetch.or(self.core.link.default_prefetch) {
                Some(prefetch) => Some(prefetch),
                None if is_queue => None,
                None => Some(1),
            },
        )
        .await?;
        if destination.kind() == DestinationKind::Queue {
            *link
                .queue_consumers
                .lock()
                .entry(destination.name().to_owned())
                .or_insert(0) += 1;
        }
        self.core.consumers.lock().push(Arc::downgrade(&core));
        Ok(Box::new(AmqpConsumer::new(core)))
    }

    /// How many consumers the queue `name` has, once a cancel just made has reached it: a
    /// quorum queue reports a cancelled consumer for a moment after `basic.cancel-ok`, so a
    /// count above zero is asked again for up to half a second.
    async fn settled_consumer_count(&self, name: &str) -> Result<u32> {
        let mut count = self.consumer_count(name).await?;
        if self.core.link.topology.queue_type() == crate::topology::QueueType::Quorum {
            for _ in 0..5 {
                if count == 0 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                count = self.consumer_count(name).await?;
            }
        }
        Ok(count)
    }

    /// How many consumers the queue `name` has; 0 when it does not exist.
    async fn consumer_count(&self, name: &str) -> Result<u32> {
        let queue = short("a queue name", name)?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let outcome = self
            .core
            .link
            .on_scratch("queue.declare", |c| async move {
                c.queue_declare(queue, passive, FieldTable::default()).await
            })
            .await;
        match outcome {
            Ok(queue) => Ok(queue.consumer_count()),
            Err(Error::InvalidDestination { .. }) => Ok(0),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl Session for AmqpSession {
    fn mode(&self) -> SessionMode {
        self.core.mode
    }

    async fn create_producer(
        &self,
        destination: Option<&Destination>,
    ) -> Result<Box<dyn Producer>> {
        self.core.check()?;
        if let Some(d) = destination {
            d.validate()?;
        }
        Ok(Box::new(AmqpProducer::new(
            self.core.clone(),
            destination.cloned(),
        )))
    }

    async fn create_consumer(
        &self,
        destination: &Destination,
        options: ConsumerOptions,
    ) -> Result<Box<dyn Consumer>> {
        let subscription = if destination.is_queue() {
            Subscription::Queue
        } else {
            Subscription::Topic
        };
        self.consumer(destination, options, subscription).await
    }

    async fn create_durable_consumer(
        &self,
        topic: &Destination,
        name: &str,
        options: ConsumerOptions,
    ) -> Result<Box<dyn Consumer>> {
        check_subscription_name(name)?;
        self.consumer(topic, options, Subscription::Durable(name.to_owned()))
            .await
    }

    async fn create_shared_consumer(
        &self,
        topic: &Destination,
        name: &str,
        options: ConsumerOptions,
    ) -> Result<Box<dyn Consumer>> {
        check_subscription_name(name)?;
        let subscription = Subscription::Shared {
            name: name.to_owned(),
            durable: false,
        };
        self.consumer(topic, options, subscription).await
    }

    async fn create_shared_durable_consumer(
        &self,
        topic: &Destination,
        name: &str,
        options: ConsumerOptions,
    ) -> Result<Box<dyn Consumer>> {
        check_subscription_name(name)?;
        let subscription = Subscription::Shared {
            name: name.to_owned(),
            durable: true,
        };
        self.consumer(topic, options, subscription).await
    }

    async fn unsubscribe(&self, name: &str) -> Result<()> {
        self.core.check()?;
        check_subscription_name(name)?;
        let client_id = self.core.link.client_id.lock().clone();
        let mut candidates = vec![shared_queue(client_id.as_deref(), name, true)];
        if let Some(id) = client_id.as_deref() {
            candidates.insert(0, durable_queue(id, name));
        }
        for queue in candidates {
            if !self.core.link.queue_exists(&queue).await? {
                continue;
            }
            if self.settled_consumer_count(&queue).await? > 0 {
                return Err(Error::illegal_state(format!(
                    "durable subscription {name:?} has an active consumer"
                )));
            }
            if self.core.holds_from(&queue) {
                return Err(Error::illegal_state(format!(
                    "durable subscription {name:?} has messages this session has not acknowledged"
                )));
            }
            return self.core.link.delete_queue(&queue, true).await;
        }
        Err(Error::invalid_destination(
            name,
            "no durable subscription of that name",
        ))
    }

    async fn create_browser(
        &self,
        _queue: &Destination,
        _selector: Option<&str>,
    ) -> Result<Box<dyn Browser>> {
        self.core.check()?;
        Err(Link::unsupported(
            "queue browsers (RabbitMQ has no non-consuming browse of a classic or quorum queue)",
        ))
    }

    async fn create_temporary_queue(&self) -> Result<Destination> {
        self.core.check()?;
        let name = self.temporary().await?;
        Ok(Destination::new(DestinationKind::TemporaryQueue, name))
    }

    async fn create_temporary_topic(&self) -> Result<Destination> {
        self.core.check()?;
        let name = self.temporary().await?;
        Ok(Destination::new(DestinationKind::TemporaryTopic, name))
    }

    /// Deletes a queue with `queue.delete`, after checking that it exists, that nobody
    /// consumes from it and that this session holds none of its messages unacknowledged.
    /// RabbitMQ cannot see another session's unacknowledged `basic.get` deliveries: such a
    /// queue is deleted anyway and those acknowledgements then find nothing. Topics answer
    /// `Unsupported`: AMQP 0-9-1 cannot list the durable subscriptions bound to one.
    async fn delete_destination(&self, destination: &Destination) -> Result<()> {
        self.core.check()?;
        let name = destination.name();
        match destination.kind() {
            DestinationKind::Queue => {}
            DestinationKind::Topic => {
                return Err(Link::unsupported(&format!(
                    "deleting topics ({destination}): AMQP 0-9-1 cannot list the subscriptions \
                     bound to a topic; unsubscribe its durable subscriptions instead"
                )))
            }
            DestinationKind::TemporaryQueue | DestinationKind::TemporaryTopic => {
                return Err(Error::invalid_destination(
                    destination.to_string(),
                    "a temporary destination is deleted with delete_temporary",
                ))
            }
        }
        if !self.core.link.queue_exists(name).await? {
            return Err(Error::invalid_destination(
                destination.to_string(),
                "no such queue",
            ));
        }
        // A queue consumer subscribes at RabbitMQ only while it waits in a receive: an idle
        // one of this connection is counted here (another connection's idle one is not seen).
        let idle = link_consumers(&self.core.link, name);
        let consumers = self.settled_consumer_count(name).await?.max(idle);
        if consumers > 0 {
            return Err(Error::illegal_state(format!(
                "{destination} has {consumers} consumer(s)"
            )));
        }
        if self.core.holds_from(name) {
            return Err(Error::illegal_state(format!(
                "{destination} has messages this session has not acknowledged"
            )));
        }
        // Consumers were counted just above: `if_unused` would only ask RabbitMQ again.
        self.core.link.delete_queue(name, false).await
    }

    async fn delete_temporary(&self, destination: &Destination) -> Result<()> {
        self.core.check()?;
        let link = &self.core.link;
        let consumers = link.temporaries.lock().get(destination.name()).copied();
        match consumers {
            None => Err(Error::invalid_destination(
                destination.to_string(),
                "not a temporary destination of this connection",
            )),
            Some(n) if n > 0 => Err(Error::illegal_state(format!(
                "{destination} has {n} consumer(s)"
            ))),
            Some(_) => {
                link.delete_queue(destination.name(), false).await?;
                link.temporaries.lock().remove(destination.name());
                Ok(())
            }
        }
    }

    async fn commit(&self) -> Result<()> {
        self.core.check()?;
        self.transacted()?;
        let _settling = self.core.settling.lock().await;
        let interrupted = self.core.interrupted.lock().take();
        if let Some(e) = interrupted {
            // A reconnect lost the transaction's first part: what was done since goes too.
            let link = &self.core.link;
            link.call("tx.rollback", self.core.channel().tx_rollback())
                .await?;
            self.core.nack_all(true).await?;
            link.call("tx.commit", self.core.channel().tx_commit())
                .await?;
            return Err(e);
        }
        // Inside the transaction nothing takes effect before tx.commit: a failure up to it
        // leaves the transaction to roll back.
        let in_tx = |e: Error| match e {
            Error::InDoubt { reason, .. } => Error::connection_lost(reason),
            e => e,
        };
        self.core.nack_all(false).await.map_err(in_tx)?;
        self.core.ack_handed().await.map_err(in_tx)?;
        let link = &self.core.link;
        link.check()?;
        match link
            .call("tx.commit", self.core.channel().tx_commit())
            .await
        {
            Err(e @ (Error::ConnectionLost { .. } | Error::Timeout(_))) => Err(Error::in_doubt(
                courier_api::InDoubtOperation::Commit,
                format!("tx.commit was cut off: {e}"),
            )),
            other => other,
        }
    }

    async fn rollback(&self) -> Result<()> {
        self.core.check()?;
        self.transacted()?;
        let _settling = self.core.settling.lock().await;
        self.core.interrupted.lock().take();
        let link = &self.core.link;
        link.call("tx.rollback", self.core.channel().tx_rollback())
            .await?;
        self.core.nack_all(true).await?;
        link.call("tx.commit", self.core.channel().tx_commit())
            .await
    }

    async fn recover(&self) -> Result<()> {
        self.core.check()?;
        if self.core.mode == SessionMode::Transacted {
            return Err(Error::illegal_state("recover on a transacted session"));
        }
        self.core.recover().await
    }

    async fn acknowledge(&self) -> Result<()> {
        self.core.check()?;
        if self.core.mode != SessionMode::ClientAcknowledge {
            return Ok(());
        }
        let _settling = self.core.settling.lock().await;
        let interrupted = self.core.interrupted.lock().take();
        self.core.ack_handed().await?;
        interrupted.map_or(Ok(()), Err)
    }

    async fn close(&self) -> Result<()> {
        if self.core.closed.send_replace(true) {
            return Ok(());
        }
        for consumer in self.core.live_consumers() {
            consumer.closing();
        }
        if self.core.link.check().is_err() {
            return Ok(());
        }
        self.core.count_abandoned();
        let channel = self.core.channel();
        if channel.status().connected() {
            self.core
                .link
                .call("channel.close", channel.close(200, "OK".into()))
                .await?;
        }
        Ok(())
    }
}

impl AmqpSession {
    /// Declares a server-named exclusive queue: a temporary queue, or the marker of a
    /// temporary topic (subscribers bind to the topics exchange under its name).
    async fn temporary(&self) -> Result<String> {
        let link = &self.core.link;
        let options = QueueDeclareOptions {
            exclusive: true,
            ..QueueDeclareOptions::default()
        };
        let queue = link
            .call(
                "queue.declare",
                self.core.channel().queue_declare(
                    "".into(),
                    options,
                    link.topology.transient_arguments(),
                ),
            )
            .await?;
        let name = queue.name().as_str().to_owned();
        link.temporaries.lock().insert(name.clone(), 0);
        Ok(name)
    }
}

impl Drop for SessionCore {
    /// The last handle of the session is gone: close its channel (RabbitMQ requeues what it
    /// held and rolls its transaction back).
    fn drop(&mut self) {
        self.count_abandoned();
        let channel = self.channel.lock().clone();
        if channel.status().connected() && self.link.check().is_ok() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                let link = self.link.clone();
                handle.spawn(async move {
                    let _ = link
                        .call("channel.close", channel.close(200, "OK".into()))
                        .await;
                });
            }
        }
    }
}

/// A subscription name: non-empty, no whitespace or control characters.
fn check_subscription_name(name: &str) -> Result<()> {
    if name.is_empty() || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::invalid_argument(format!(
            "subscription name {name:?} is empty or has whitespace or control characters"
        )));
    }
    Ok(())
}

/// How many consumers of the plain queue `name` this connection has open.
fn link_consumers(link: &Link, name: &str) -> u32 {
    let open = link.queue_consumers.lock().get(name).copied().unwrap_or(0);
    u32::try_from(open).unwrap_or(u32::MAX)
}
