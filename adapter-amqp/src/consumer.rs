//! Consumers: `basic.consume` on the session's channel.
//!
//! **Credit.** lapin buffers deliveries without bound, so what a consumer holds is bounded
//! only by its `basic.qos` (per consumer):
//! - with the default prefetch (`None`) a consumer holds nothing while no receive waits: a
//!   receive starts an AMQP consumer with a credit of one and cancels it once a message
//!   came (or the receive ends without one, or is dropped), giving back whatever arrived
//!   in between. A message is never stranded on a consumer that is not receiving, and a
//!   cancelled receive passes its message on.
//! - with `Some(n)` the AMQP consumer stands for the consumer's life with a credit of `n`
//!   (plus [`HELD_ALLOWANCE`] in CLIENT_ACKNOWLEDGE and transacted sessions, whose
//!   handed-out messages stay unacknowledged and count against it) — the fast path.
//!
//! **Checks on receipt.** An expired message (its `JMSExpiration` passed on the way) is
//! acknowledged and dropped; on a topic subscription so is a message the selector rejects,
//! or that a no-local consumer's own connection sent, or (on a non-durable subscription) a
//! delayed message sent before the subscription was made — its delay queue routes it only at
//! its delivery time (§7.9; compared on the clients' clocks). Each subscription owns its
//! queue, so this filtering is exact.
//!
//! **Delivery count.** `JMSXDeliveryCount` is RabbitMQ's `x-delivery-count` plus one where
//! the queue type keeps it (quorum). A classic queue keeps only the redelivered flag: the
//! count is then exact for redeliveries this connection caused (it counts what it gives
//! back), and 2 for any other redelivery.

use async_trait::async_trait;
use courier_api::listener::Settle;
use courier_api::{
    spi, Body, Consumer, Delivery as ListenerDelivery, Destination, DestinationKind, Error,
    Message, Result, Selector, SessionMode,
};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::codec::{self, short};
use crate::session::{Handed, Resume, SessionCore};
use crate::topology::QueueType;

/// How many handed-out, unacknowledged messages a CLIENT_ACKNOWLEDGE or transacted
/// consumer with a prefetch may hold on top of it before RabbitMQ stops delivering to it.
pub const HELD_ALLOWANCE: u16 = 4096;

/// How long `receive_no_wait` waits for messages the broker reports ready but has not yet
/// pushed.
const NO_WAIT_GRACE: Duration = Duration::from_millis(200);

/// The lapin consumer while one is active, and a delivery taken from it but not yet handed
/// out.
struct Feed {
    stream: Option<lapin::Consumer>,
    stashed: Option<Delivery>,
    /// Counts activations, so a stale deactivation leaves a newer consumer alone.
    generation: u64,
    /// The connection's epoch the stream and the stashed delivery belong to.
    epoch: u64,
}

/// Which messages of its queue a consumer takes.
pub(crate) struct Selection {
    /// The selector as given.
    pub selector_text: Option<String>,
    /// The selector the client evaluates (topic subscriptions).
    pub filter: Option<Selector>,
    /// Whether messages of its own connection are dropped.
    pub no_local: bool,
}

/// A message taken for the application, not yet settled.
pub(crate) struct Held {
    message: Message,
    handed: Handed,
}

/// A consumer's state, shared with its session (recover, close).
pub(crate) struct ConsumerCore {
    session: Arc<SessionCore>,
    destination: Destination,
    /// The queue consumed from (a reconnect gives a non-durable subscription a new one).
    queue: parking_lot::Mutex<Arc<str>>,
    /// How to consume again after a reconnect.
    resume: Resume,
    /// Why the consumer cannot go on after a reconnect (its temporary queue is gone).
    broken: parking_lot::Mutex<Option<Error>>,
    selector_text: Option<String>,
    filter: Option<Selector>,
    no_local: bool,
    /// `None`: a consumer only while a receive waits; `Some(credit)`: a standing consumer.
    standing: Option<u16>,
    feed: tokio::sync::Mutex<Feed>,
    closed: watch::Sender<bool>,
}

impl ConsumerCore {
    /// A consumer of `queue`; with a prefetch, consuming starts now.
    pub async fn start(
        session: Arc<SessionCore>,
        destination: Destination,
        queue: String,
        resume: Resume,
        selection: Selection,
        prefetch: Option<u32>,
    ) -> Result<Arc<ConsumerCore>> {
        let Selection {
            selector_text,
            filter,
            no_local,
        } = selection;
        short("a queue name", &queue)?;
        let epoch = session.link.epoch();
        let standing = prefetch.map(|n| {
            let base = u16::try_from(n.max(1)).unwrap_or(u16::MAX);
            match session.mode {
                SessionMode::AutoAcknowledge | SessionMode::DupsOkAcknowledge => base,
                _ => base.saturating_add(HELD_ALLOWANCE),
            }
        });
        let core = Arc::new(ConsumerCore {
            session,
            destination,
            queue: parking_lot::Mutex::new(queue.into()),
            resume,
            broken: parking_lot::Mutex::new(None),
            selector_text,
            filter,
            no_local,
            standing,
            feed: tokio::sync::Mutex::new(Feed {
                stream: None,
                stashed: None,
                generation: 0,
                epoch,
            }),
            closed: watch::channel(false).0,
        });
        if let Some(credit) = standing {
            let mut feed = core.feed.lock().await;
            core.activate(&mut feed, credit).await?;
        }
        Ok(core)
    }

    /// Starts an AMQP consumer with `credit`, unless one is active.
    ///
    /// Cancel-safe: the requests run on a task of its own, and an AMQP consumer it starts for
    /// a receive that was dropped meanwhile is cancelled there, what arrived for it given
    /// back. (A receive cancelled between `basic.consume` and its reply once left a consumer
    /// nobody cancelled, holding the next message away from every other consumer.)
    async fn activate(&self, feed: &mut Feed, credit: u16) -> Result<()> {
        if feed.stream.is_some() {
            return Ok(());
        }
        let session = self.session.clone();
        let queue = short("a queue name", &self.queue())?;
        let epoch = feed.epoch;
        let (answer, answered) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let link = &session.link;
            let started = async {
                link.call(
                    "basic.qos",
                    session
                        .channel()
                        .basic_qos(credit, BasicQosOptions { global: false }),
                )
                .await?;
                link.call(
                    "basic.consume",
                    session.channel().basic_consume(
                        queue,
                        "".into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    ),
                )
                .await
            }
            .await;
            if let Err(Ok(orphan)) = answer.send(started) {
                let _ = cancel(&session, orphan, epoch).await;
            }
        });
        let stream = answered
            .await
            .unwrap_or_else(|_| Err(Error::illegal_state("the basic.consume task ended")))?;
        feed.stream = Some(stream);
        feed.generation += 1;
        Ok(())
    }

    /// Cancels the AMQP consumer, if one is active, and gives back what arrived for it.
    async fn deactivate(&self, feed: &mut Feed) -> Result<()> {
        let Some(stream) = feed.stream.take() else {
            return Ok(());
        };
        cancel(&self.session, stream, feed.epoch).await
    }

    /// The queue consumed from.
    pub fn queue(&self) -> Arc<str> {
        self.queue.lock().clone()
    }

    /// After a reconnect: declares the subscription queue again (a non-durable one anew),
    /// or marks the consumer of a temporary destination broken.
    pub async fn resume(&self) {
        match &self.resume {
            Resume::Queue => {
                let link = &self.session.link;
                let channel = self.session.channel();
                if let Err(e) = link.declare_queue(&channel, &self.queue()).await {
                    tracing::debug!("courier-amqp: declaring a queue after a reconnect: {e}");
                }
            }
            Resume::Temporary => {
                *self.broken.lock() = Some(Error::invalid_destination(
                    self.destination.to_string(),
                    "the temporary destination went with the lost connection",
                ));
            }
            Resume::Subscription(spec) => {
                let declared = self
                    .session
                    .subscription_queue(
                        &spec.topic,
                        spec.named.as_deref(),
                        spec.durable,
                        self.selector_text.as_deref(),
                        spec.prefilter.as_ref(),
                    )
                    .await;
                match declared {
                    Ok(queue) => *self.queue.lock() = queue.into(),
                    Err(e) => {
                        tracing::debug!("courier-amqp: resubscribing after a reconnect: {e}");
                    }
                }
            }
        }
    }

    /// Whether the consumer keeps an AMQP consumer with a prefetch for its whole life.
    pub fn is_standing(&self) -> bool {
        self.standing.is_some()
    }

    /// Marks the consumer closed: pending receives return `None`.
    pub fn closing(&self) {
        if !self.closed.send_replace(true) {
            self.release_counts();
        }
    }

    /// Takes this consumer off its connection's consumer counts (temporary destinations,
    /// plain queues), once, as it closes.
    fn release_counts(&self) {
        let link = &self.session.link;
        let name = self.destination.name();
        if let Some(count) = link.temporaries.lock().get_mut(name) {
            *count = count.saturating_sub(1);
        }
        if self.destination.kind() == DestinationKind::Queue {
            let mut open = link.queue_consumers.lock();
            if let Some(count) = open.get_mut(name) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    open.remove(name);
                }
            }
        }
    }

    /// Drops the delivery taken but not handed out (the session's `recover` gives it back at
    /// the broker).
    pub fn forget_held(&self) {
        // A receive holding the feed has nothing stashed that it will not hand out itself.
        if let Ok(mut feed) = self.feed.try_lock() {
            feed.stashed = None;
        }
    }

    fn check(&self) -> Result<()> {
        self.session.check()?;
        if *self.closed.borrow() {
            return Err(Error::illegal_state("the consumer is closed"));
        }
        Ok(())
    }

    /// Whether neither the consumer nor its session is closed.
    fn is_open(&self) -> bool {
        !*self.closed.borrow() && !*self.session.closed.borrow()
    }

    /// Resolves when the consumer or its session is closed.
    async fn closed_signal(&self) {
        let mut mine = self.closed.subscribe();
        let mut session = self.session.closed.subscribe();
        tokio::select! {
            _ = mine.wait_for(|c| *c) => {}
            _ = session.wait_for(|c| *c) => {}
        }
    }

    /// The next message for the application, unsettled, waiting until `deadline` (`None`:
    /// forever; `no_wait`: only for what is there now).
    async fn next_held(
        self: &Arc<Self>,
        deadline: Option<Instant>,
        no_wait: bool,
    ) -> Result<Option<Held>> {
        let link = self.session.link.clone();
        loop {
            let epoch = link.epoch();
            let outcome = self.next_held_once(deadline, no_wait).await;
            let Err(e @ Error::ConnectionLost { .. }) = &outcome else {
                return outcome;
            };
            if link.reconnect.is_none() {
                return outcome;
            }
            // With reconnect: a loss is an outage to wait out (until the deadline).
            let _ = link.check();
            if link.epoch() == epoch && link.lost().is_none() {
                return Err(e.clone());
            }
            tokio::select! {
                usable = link.usable(if no_wait { Some(Instant::now()) } else { deadline }) => {
                    match usable {
                        Ok(true) => continue,
                        Ok(false) => return Ok(None),
                        Err(e) => return end(e),
                    }
                }
                () = self.closed_signal() => return Ok(None),
            }
        }
    }

    /// One attempt of [`ConsumerCore::next_held`], within one epoch of the connection.
    async fn next_held_once(
        self: &Arc<Self>,
        deadline: Option<Instant>,
        no_wait: bool,
    ) -> Result<Option<Held>> {
        self.check()?;
        let link = self.session.link.clone();
        // Uncontended (one receive at a time, the usual case): no wait to set up.
        let mut feed = match self.feed.try_lock() {
            Ok(feed) => feed,
            Err(_) => tokio::select! {
                feed = self.feed.lock() => feed,
                () = self.closed_signal() => return Ok(None),
            },
        };
        let mut guard = CancelGuard {
            core: self.clone(),
            generation: None,
        };
        let mut grace: Option<Instant> = None;
        let outcome = loop {
            if feed.epoch != link.epoch() {
                // A reconnect: the stream and anything stashed went with the old channel.
                feed.stream = None;
                feed.stashed = None;
                feed.epoch = link.epoch();
                guard.generation = None;
            }
            if let Some(e) = self.broken.lock().clone() {
                break Err(e);
            }
            if !*link.started.borrow() {
                tokio::select! {
                    () = link.wait_started() => {}
                    () = sleep_until(if no_wait { Some(Instant::now()) } else { deadline }) => break Ok(None),
                    () = self.closed_signal() => break Ok(None),
                    error = link.ended() => break end(error),
                }
            }
            if self.standing.is_none() && feed.stream.is_none() && feed.stashed.is_none() {
                // No consumer yet: take what is ready with one basic.get, so a busy queue
                // costs one round trip per receive; only an empty one needs a consumer.
                match self.get().await {
                    Ok(Some(d)) => feed.stashed = Some(d),
                    Ok(None) if no_wait => break Ok(None),
                    Ok(None) => {}
                    Err(e) => break Err(e),
                }
            }
            let delivery = match feed.stashed.take() {
                Some(d) => d,
                None => {
                    self.activate(&mut feed, self.standing.unwrap_or(1)).await?;
                    guard.generation = Some(feed.generation);
                    let stream = feed.stream.as_mut().expect("activated");
                    if no_wait && grace.is_none() {
                        if let Some(item) = stream.next().now_or_never() {
                            match item {
                                Some(Ok(d)) => {
                                    feed.stashed = Some(d);
                                    continue;
                                }
                                Some(Err(e)) => break Err(stream_error(&link, e)),
                                None => {
                                    let _ = link.check();
                                    break link.lost().map_or(Ok(None), Err);
                                }
                            }
                        }
                        // A round trip: deliveries the broker sent before it are here after.
                        let ready = self.ready_at_broker().await?;
                        let wait = if ready > 0 {
                            NO_WAIT_GRACE
                        } else {
                            Duration::from_millis(5)
                        };
                        grace = Some(Instant::now() + wait);
                        continue;
                    }
                    let wait_until = if no_wait { grace } else { deadline };
                    // A delivery already buffered (a busy queue, the usual case under load)
                    // is taken without setting up the wait, while the consumer and its
                    // session are open (the connection's loss ends the stream itself).
                    let buffered = if self.is_open() {
                        stream.next().now_or_never()
                    } else {
                        None
                    };
                    let next = match buffered {
                        Some(item) => item,
                        None => tokio::select! {
                            item = stream.next() => item,
                            () = sleep_until(wait_until) => break Ok(None),
                            () = self.closed_signal() => break Ok(None),
                            error = link.ended() => break end(error),
                        },
                    };
                    match next {
                        Some(Ok(d)) => d,
                        Some(Err(e)) => break Err(stream_error(&link, e)),
                        None => {
                            let _ = link.check();
                            break link.lost().map_or(Ok(None), Err);
                        }
                    }
                }
            };
            if !*link.started.borrow() {
                feed.stashed = Some(delivery);
                continue;
            }
            if self.standing.is_none() {
                // Hold nothing beyond this message: cancel before settling it frees credit.
                if let Err(e) = self.deactivate(&mut feed).await {
                    feed.stashed = Some(delivery);
                    break Err(e);
                }
                guard.generation = None;
            }
            match self.admit(delivery, feed.epoch).await {
                Ok(Some(held)) => break Ok(Some(held)),
                Ok(None) => continue,
                Err(e) => break Err(e),
            }
        };
        if self.standing.is_none() && feed.stream.is_some() && link.check().is_ok() {
            self.deactivate(&mut feed).await?;
        }
        guard.generation = None;
        outcome
    }

    /// One `basic.get`: the next ready message of the queue, if any. Cancel-safe: the request
    /// runs on a task of its own, and a message it takes for a receive that was dropped
    /// meanwhile goes back to the queue.
    async fn get(&self) -> Result<Option<Delivery>> {
        let session = self.session.clone();
        let queue = short("a queue name", &self.queue())?;
        let epoch = session.link.epoch();
        let (answer, answered) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let got = session
                .link
                .call(
                    "basic.get",
                    session
                        .channel()
                        .basic_get(queue, lapin::options::BasicGetOptions { no_ack: false }),
                )
                .await
                .map(|m| m.map(|m| m.delivery));
            if let Err(Ok(Some(orphan))) = answer.send(got) {
                let _ = session.nack(orphan.delivery_tag, epoch, true).await;
            }
        });
        answered
            .await
            .unwrap_or_else(|_| Err(Error::illegal_state("the basic.get task ended")))
    }

    /// How many messages the consumer's queue has ready (a passive declare: a round trip on
    /// the session's channel, after which deliveries sent before it have arrived).
    async fn ready_at_broker(&self) -> Result<u32> {
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let queue = self
            .session
            .link
            .call(
                "queue.declare",
                self.session.channel().queue_declare(
                    short("a queue name", &self.queue())?,
                    passive,
                    FieldTable::default(),
                ),
            )
            .await?;
        Ok(queue.message_count())
    }

    /// Checks one delivery: the message to hand out, or `None` when it was dropped (expired,
    /// rejected by the selector, no-local).
    async fn admit(&self, delivery: Delivery, epoch: u64) -> Result<Option<Held>> {
        let tag = delivery.delivery_tag;
        let session = &self.session;
        let decoded = match codec::decode(
            &delivery.properties,
            delivery.data,
            delivery.routing_key.as_str(),
        ) {
            Ok(d) => d,
            Err(e) => {
                // Malformed: never handed out, never redelivered in a loop.
                session.nack(tag, epoch, false).await?;
                return Err(e);
            }
        };
        let mut message = decoded.message;
        let handed = Handed {
            tag,
            epoch,
            queue: self.queue(),
            message_id: message.message_id().map(Arc::from),
        };
        let expiration = message.expiration();
        let expired = expiration != 0 && spi::now_millis() >= expiration;
        let own = self.no_local && decoded.connection.as_deref() == Some(session.link.tag.as_str());
        let rejected = self.filter.as_ref().is_some_and(|f| !f.matches(&message));
        let before_subscription = match &self.resume {
            Resume::Subscription(spec) => spec.since.is_some_and(|since| {
                let sent = message.timestamp();
                sent != 0 && message.delivery_time() > sent && sent < since
            }),
            _ => false,
        };
        if expired || own || rejected || before_subscription {
            if session.mode == SessionMode::Transacted {
                session.hand(handed);
            } else {
                session.ack(tag, epoch)?;
            }
            return Ok(None);
        }
        let count = match (session.link.topology.queue_type(), decoded.delivery_count) {
            (QueueType::Quorum, Some(before)) => before.saturating_add(1),
            _ => session
                .link
                .delivery_count(message.message_id(), delivery.redelivered),
        };
        let header = spi::header_mut(&mut message);
        header.delivery_count = count;
        header.redelivered = delivery.redelivered || count > 1;
        spi::mark_received(&mut message);
        Ok(Some(Held { message, handed }))
    }

    /// Settles a message handed to the application as the session's mode says.
    async fn settle_received(&self, handed: Handed) -> Result<()> {
        match self.session.mode {
            SessionMode::AutoAcknowledge | SessionMode::DupsOkAcknowledge => {
                self.session.ack(handed.tag, handed.epoch)
            }
            SessionMode::ClientAcknowledge | SessionMode::Transacted => {
                self.session.hand(handed);
                Ok(())
            }
        }
    }

    /// Gives a message the application refused back, as the session's mode says.
    async fn settle_refused(&self, handed: Handed) -> Result<()> {
        match self.session.mode {
            SessionMode::AutoAcknowledge | SessionMode::DupsOkAcknowledge => {
                self.session
                    .link
                    .count_redelivery(handed.message_id.as_ref());
                self.session.nack(handed.tag, handed.epoch, true).await
            }
            SessionMode::ClientAcknowledge | SessionMode::Transacted => {
                self.session.hand(handed);
                Ok(())
            }
        }
    }

    /// Cancels the consumer and gives back what it holds.
    pub async fn close(&self) -> Result<()> {
        if self.closed.send_replace(true) {
            return Ok(());
        }
        let session = &self.session;
        self.release_counts();
        if session.check().is_err() {
            return Ok(());
        }
        let mut feed = self.feed.lock().await;
        let stashed = feed.stashed.take();
        self.deactivate(&mut feed).await?;
        if let Some(d) = stashed {
            give_back(&self.session, d.delivery_tag, feed.epoch).await?;
        }
        Ok(())
    }
}

/// Cancels the AMQP consumer of a receive dropped while waiting, so the message that comes
/// for it goes to another consumer.
struct CancelGuard {
    core: Arc<ConsumerCore>,
    /// The activation to cancel, while the receive waits on it.
    generation: Option<u64>,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        let Some(generation) = self.generation else {
            return;
        };
        if self.core.standing.is_some() {
            return;
        }
        let core = self.core.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let mut feed = core.feed.lock().await;
                if feed.generation == generation && core.session.check().is_ok() {
                    let _ = core.deactivate(&mut feed).await;
                }
            });
        }
    }
}

/// Cancels the AMQP consumer `stream` of epoch `epoch` and gives back what arrived for it.
async fn cancel(session: &SessionCore, mut stream: lapin::Consumer, epoch: u64) -> Result<()> {
    if epoch != session.link.epoch() {
        // Its channel is gone, and with it the consumer.
        return Ok(());
    }
    session
        .link
        .call(
            "basic.cancel",
            session
                .channel()
                .basic_cancel(stream.tag(), BasicCancelOptions::default()),
        )
        .await?;
    let mut extra = Vec::new();
    while let Some(Some(Ok(d))) = stream.next().now_or_never() {
        extra.push(d.delivery_tag);
    }
    for tag in extra {
        give_back(session, tag, epoch).await?;
    }
    Ok(())
}

/// Returns a delivery never handed out to its queue.
async fn give_back(session: &SessionCore, tag: u64, epoch: u64) -> Result<()> {
    if session.mode == SessionMode::Transacted {
        session.release_later(tag, epoch);
        Ok(())
    } else {
        session.nack(tag, epoch, true).await
    }
}

/// A consumer stream's error: the connection's loss, or the request's failure.
fn stream_error(link: &crate::link::Link, e: lapin::Error) -> Error {
    link.lost()
        .unwrap_or_else(|| crate::failure::map("basic.consume", e))
}

/// Sleeps until `deadline`; forever for `None`.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => futures::future::pending().await,
    }
}

/// What a receive returns when the connection ended: `None` after a close, the loss after a
/// loss.
fn end<T>(error: Error) -> Result<Option<T>> {
    match error {
        Error::IllegalState(_) => Ok(None),
        e => Err(e),
    }
}

/// How a listener's message is settled after its handler.
struct Settler {
    core: Arc<ConsumerCore>,
    handed: Handed,
}

impl Settle for Settler {
    fn acknowledge(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        async move { self.core.settle_received(self.handed).await }.boxed()
    }

    fn redeliver(self: Box<Self>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let core = self.core;
        let handed = self.handed;
        match core.session.mode {
            SessionMode::AutoAcknowledge | SessionMode::DupsOkAcknowledge => {
                handle.spawn(async move {
                    let _ = core.settle_refused(handed).await;
                });
            }
            SessionMode::ClientAcknowledge => {
                core.session.hand(handed);
                handle.spawn(async move {
                    let _ = core.session.recover().await;
                });
            }
            SessionMode::Transacted => core.session.hand(handed),
        }
    }
}

/// A consumer handle.
pub(crate) struct AmqpConsumer {
    core: Arc<ConsumerCore>,
}

impl AmqpConsumer {
    /// The handle of `core`.
    pub fn new(core: Arc<ConsumerCore>) -> Self {
        AmqpConsumer { core }
    }

    async fn take(&self, deadline: Option<Instant>, no_wait: bool) -> Result<Option<Message>> {
        let Some(held) = self.core.next_held(deadline, no_wait).await? else {
            return Ok(None);
        };
        self.core.settle_received(held.handed).await?;
        Ok(Some(held.message))
    }
}

/// The deadline `timeout` from now; `None` (never) when it is too far to represent.
fn deadline_in(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

#[async_trait]
impl Consumer for AmqpConsumer {
    fn destination(&self) -> &Destination {
        &self.core.destination
    }

    fn selector(&self) -> Option<&str> {
        self.core.selector_text.as_deref()
    }

    async fn receive(&self) -> Result<Option<Message>> {
        self.take(None, false).await
    }

    async fn receive_timeout(&self, timeout: Duration) -> Result<Option<Message>> {
        self.take(deadline_in(timeout), false).await
    }

    async fn receive_no_wait(&self) -> Result<Option<Message>> {
        self.take(None, true).await
    }

    async fn receive_body(&self, timeout: Option<Duration>) -> Result<Option<Body>> {
        let deadline = timeout.and_then(deadline_in);
        let Some(held) = self.core.next_held(deadline, false).await? else {
            return Ok(None);
        };
        match spi::body_for_receive_body(&held.message) {
            Ok(body) => {
                self.core.settle_received(held.handed).await?;
                Ok(Some(body))
            }
            Err(e) => {
                self.core.settle_refused(held.handed).await?;
                Err(e)
            }
        }
    }

    /// The listener's next message; `None` once the consumer is closed, which ends the
    /// listener.
    async fn receive_delivery(&self) -> Result<Option<ListenerDelivery>> {
        self.core.session.check()?;
        if *self.core.closed.borrow() {
            return Ok(None);
        }
        let Some(held) = self.core.next_held(None, false).await? else {
            return Ok(None);
        };
        let settle = Settler {
            core: self.core.clone(),
            handed: held.handed,
        };
        Ok(Some(ListenerDelivery::new(held.message, Box::new(settle))))
    }

    async fn close(&self) -> Result<()> {
        self.core.close().await
    }
}

impl Drop for AmqpConsumer {
    fn drop(&mut self) {
        if *self.core.closed.borrow() {
            return;
        }
        let core = self.core.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    let _ = core.close().await;
                });
            }
            Err(_) => core.closing(),
        }
    }
}
