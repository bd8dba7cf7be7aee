//! Embedded sessions: the api's `Session` over the core session, which keeps the
//! acknowledgement bookkeeping and the local transaction.

use async_trait::async_trait;
use courier_api::selector::Selector;
use courier_api::{
    Browser, Consumer, ConsumerOptions, Destination, DestinationKind, Error, Message, Producer,
    Result, Session, SessionMode,
};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use tokio_util::sync::CancellationToken;

use super::browser::EmbeddedBrowser;
use super::connection::ConnectionShared;
use super::consumer::{ConsumerInner, EmbeddedConsumer};
use super::producer::EmbeddedProducer;
use crate::access::Operation;
use crate::core::broker::{Route, SubscriptionRequest};
use crate::core::queue::{ConsumerSlot, Envelope, Origin, Queue};
use crate::core::session::{CoreSession, Delivered, PendingSend};
use crate::core::store::Ticket;
use crate::core::subscription::SubscriptionKind;

#[derive(Default)]
struct SessionState {
    /// The session's consumers, closed with it; entries of dropped consumers are pruned.
    consumers: Vec<Weak<ConsumerInner>>,
    /// Length of `consumers` at which the next prune happens: twice what survived the last
    /// one, so registering stays amortised O(1) however many consumers the session has.
    prune_at: usize,
}

/// State shared by a session and its producers, consumers and browsers: the core session
/// (tags, unacknowledged deliveries, the transaction) plus what only the embedded adapter
/// needs (its consumers, the close token).
pub(crate) struct SessionShared {
    pub connection: Arc<ConnectionShared>,
    pub mode: SessionMode,
    closed: AtomicBool,
    pub token: CancellationToken,
    core: CoreSession,
    state: Mutex<SessionState>,
}

impl SessionShared {
    pub fn new(connection: Arc<ConnectionShared>, mode: SessionMode) -> Arc<Self> {
        let token = connection.token.child_token();
        let core = CoreSession::new(connection.broker.clone());
        Arc::new(SessionShared {
            connection,
            mode,
            closed: AtomicBool::new(false),
            token,
            core,
            state: Mutex::new(SessionState::default()),
        })
    }

    /// `Ok` while open; [`Error::ConnectionLost`] once the connection is lost (even though
    /// the loss closed the session too), `IllegalState` after a close.
    pub fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            self.connection.check_open()?;
            return Err(Error::illegal_state("the session is closed"));
        }
        self.connection.check_open()
    }

    fn keeps_unacked(&self) -> bool {
        matches!(
            self.mode,
            SessionMode::ClientAcknowledge | SessionMode::Transacted
        )
    }

    /// Hands a taken message to the application through the core session, which remembers
    /// it until acknowledged in client-ack and transacted sessions. A message taken while
    /// the session closed goes back untouched and `None` is returned; a paged message that
    /// does not read back goes back too, and the store's error is returned.
    pub fn deliver(&self, queue: &Arc<Queue>, env: Envelope) -> Result<Option<Delivered>> {
        self.core.deliver(queue, env, self.keeps_unacked())
    }

    /// Gives a delivery the application never saw back to its queue (its receive was
    /// cancelled while the delivery's count was being made durable).
    pub fn give_back(&self, tag: u64) {
        self.core.settle(tag, false);
    }

    /// Hands a taken message to a listener: like [`Self::deliver`], but remembered as
    /// unacknowledged in every mode (auto-acknowledge included) until [`Self::settle_held`]
    /// — or the session's recover, rollback or close — settles it. Returns its tag.
    pub fn deliver_held(&self, queue: &Arc<Queue>, env: Envelope) -> Result<Option<Delivered>> {
        self.core.deliver(queue, env, true)
    }

    /// Settles the delivery `tag` a listener held, after its handler: `handled` (returned
    /// `Ok`) or not (failed, panicked, cancelled). Auto- and dups-ok sessions acknowledge it
    /// or redeliver it alone; a client-ack session keeps it for `acknowledge` on success and
    /// recovers on failure; a transacted session leaves it to commit or rollback. A delivery
    /// already settled by recover or close is left alone.
    pub fn settle_held(&self, tag: u64, handled: bool) {
        match self.mode {
            SessionMode::Transacted => {}
            SessionMode::ClientAcknowledge => {
                if !handled {
                    self.core.recover();
                }
            }
            SessionMode::AutoAcknowledge | SessionMode::DupsOkAcknowledge => {
                self.core.settle(tag, handled);
            }
        }
    }

    /// Sends now, or at commit in a transacted session; `now` is the send time. Waits for
    /// room when the destination's policy blocks. The message is stored (or pending in the
    /// transaction) when this returns; the ticket confirms it once durable (the caller maps
    /// its error with the connection's `lost_or`).
    pub async fn send(
        &self,
        route: &Route,
        destination: &Destination,
        message: Message,
        origin: &Arc<Origin>,
        now: u64,
    ) -> Result<Ticket> {
        // A plain destination deleted while unused is made afresh by the broker.
        if destination.is_temporary() && !route.is_live() {
            return Err(Error::invalid_destination(
                destination.to_string(),
                "the temporary destination was deleted",
            ));
        }
        if self.mode == SessionMode::Transacted {
            let send = PendingSend {
                route: route.clone(),
                message,
                origin: origin.clone(),
            };
            return self
                .core
                .send_later(send)
                .map(|()| Ticket::done())
                .map_err(|e| self.connection.lost_or(e));
        }
        // A send waiting for room is cut short by the session's close; after a loss it
        // reports the loss.
        self.core
            .send_now(route, message, origin, now, &self.token)
            .await
            .map_err(|e| self.connection.lost_or(e))
    }

    async fn commit(&self) -> Result<()> {
        // Cut short by a loss: the loss, which rolled the transaction back.
        self.core
            .commit(&self.token)
            .await
            .map_err(|e| self.connection.lost_or(e))
    }

    fn register(&self, consumer: &Arc<ConsumerInner>) {
        let mut state = self.state.lock();
        if state.consumers.len() >= state.prune_at {
            state.consumers.retain(|w| w.strong_count() > 0);
            state.prune_at = (2 * state.consumers.len()).max(16);
            if state.consumers.capacity() > 2 * state.prune_at {
                let keep = state.prune_at;
                state.consumers.shrink_to(keep);
            }
        }
        state.consumers.push(Arc::downgrade(consumer));
    }

    /// Closes the session: the transaction rolls back, unacknowledged messages become
    /// available again, consumers close.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.token.cancel();
        // The core session first: a consumer of this session taking a returned message
        // before it is shut down gives it back.
        self.core.close();
        let consumers = std::mem::take(&mut self.state.lock().consumers);
        for consumer in consumers.iter().filter_map(Weak::upgrade) {
            consumer.shutdown();
        }
    }
}

/// A session on an in-process broker.
pub(crate) struct EmbeddedSession {
    shared: Arc<SessionShared>,
}

impl EmbeddedSession {
    pub fn new(shared: Arc<SessionShared>) -> Self {
        EmbeddedSession { shared }
    }

    fn parse_selector(options: &ConsumerOptions) -> Result<Option<Selector>> {
        options
            .effective_selector()
            .map(Selector::parse)
            .transpose()
    }

    fn attach(
        &self,
        destination: &Destination,
        queue: Arc<Queue>,
        slot_selector: Option<Selector>,
        selector_text: Option<String>,
        subscription: Option<(Arc<crate::core::subscription::Subscription>, Option<String>)>,
    ) -> Box<dyn Consumer> {
        let slot = Arc::new(ConsumerSlot::new(slot_selector));
        queue.add_slot(slot.clone());
        let inner = Arc::new(ConsumerInner::new(
            self.shared.clone(),
            destination.clone(),
            selector_text,
            queue,
            slot,
            subscription,
        ));
        self.shared.register(&inner);
        Box::new(EmbeddedConsumer::new(inner))
    }

    async fn subscribe(
        &self,
        kind: SubscriptionKind,
        topic: &Destination,
        name: Option<&str>,
        options: ConsumerOptions,
    ) -> Result<Box<dyn Consumer>> {
        self.shared.check_open()?;
        let conn = &self.shared.connection;
        if !topic.is_topic() {
            return Err(Error::invalid_destination(
                topic.to_string(),
                "subscriptions are made on topics",
            ));
        }
        let operation = if kind.is_durable() {
            Operation::DurableSubscribe
        } else {
            Operation::Receive
        };
        conn.grants.check(operation, topic)?;
        conn.broker.check_consumer_allowed(topic, conn.id)?;
        let selector = Self::parse_selector(&options)?;
        let selector_text = selector.as_ref().map(|s| s.text().to_owned());
        let client_id = conn.client_id();
        let sub = conn.broker.subscribe(SubscriptionRequest {
            kind,
            topic,
            name,
            client_id,
            selector,
            no_local: options.no_local,
            connection: conn.id,
        })?;
        let queue = sub.queue.clone();
        Ok(self.attach(
            topic,
            queue,
            None,
            selector_text,
            Some((sub, name.map(str::to_owned))),
        ))
    }
}

/// A session whose handle is dropped stays open while its producers, consumers or browsers
/// live; the last of them to go closes it.
impl Drop for SessionShared {
    fn drop(&mut self) {
        self.close();
    }
}

#[async_trait]
impl Session for EmbeddedSession {
    fn mode(&self) -> SessionMode {
        self.shared.mode
    }

    async fn create_producer(
        &self,
        destination: Option<&Destination>,
    ) -> Result<Box<dyn Producer>> {
        self.shared.check_open()?;
        if let Some(d) = destination {
            d.validate()?;
            self.shared.connection.grants.check(Operation::Send, d)?;
        }
        Ok(Box::new(EmbeddedProducer::new(
            self.shared.clone(),
            destination.cloned(),
        )?))
    }

    async fn create_consumer(
        &self,
        destination: &Destination,
        options: ConsumerOptions,
    ) -> Result<Box<dyn Consumer>> {
        if destination.is_topic() {
            return self
                .subscribe(SubscriptionKind::NonDurable, destination, None, options)
                .await;
        }
        self.shared.check_open()?;
        let conn = &self.shared.connection;
        conn.grants.check(Operation::Receive, destination)?;
        conn.broker.check_consumer_allowed(destination, conn.id)?;
        let selector = Self::parse_selector(&options)?;
        let selector_text = selector.as_ref().map(|s| s.text().to_owned());
        let queue = conn.broker.queue(destination)?;
        Ok(self.attach(destination, queue, selector, selector_text, None))
    }

    async fn create_durable_consumer(
        &self,
        topic: &Destination,
        name: &str,
        options: ConsumerOptions,
    ) -> Result<Box<dyn Consumer>> {
        self.subscribe(SubscriptionKind::Durable, topic, Some(name), options)
            .await
    }

    async fn create_shared_consumer(
        &self,
        topic: &Destination,
        name: &str,
        options: ConsumerOptions,
    ) -> Result<Box<dyn Consumer>> {
        self.subscribe(
            SubscriptionKind::SharedNonDurable,
            topic,
            Some(name),
            options,
        )
        .await
    }

    async fn create_shared_durable_consumer(
        &self,
        topic: &Destination,
        name: &str,
        options: ConsumerOptions,
    ) -> Result<Box<dyn Consumer>> {
        self.subscribe(SubscriptionKind::SharedDurable, topic, Some(name), options)
            .await
    }

    async fn unsubscribe(&self, name: &str) -> Result<()> {
        self.shared.check_open()?;
        let conn = &self.shared.connection;
        if let Some(topic) = conn.broker.durable_topic(conn.client_id(), name) {
            conn.grants.check(Operation::Unsubscribe, &topic)?;
        }
        conn.broker.unsubscribe(conn.client_id(), name)
    }

    async fn create_browser(
        &self,
        queue: &Destination,
        selector: Option<&str>,
    ) -> Result<Box<dyn Browser>> {
        self.shared.check_open()?;
        if !queue.is_queue() {
            return Err(Error::invalid_destination(
                queue.to_string(),
                "only queues can be browsed",
            ));
        }
        self.shared
            .connection
            .grants
            .check(Operation::Browse, queue)?;
        let selector = selector
            .filter(|s| !s.trim().is_empty())
            .map(Selector::parse)
            .transpose()?;
        let store = self.shared.connection.broker.queue(queue)?;
        Ok(Box::new(EmbeddedBrowser::new(
            self.shared.clone(),
            queue.clone(),
            store,
            selector,
        )))
    }

    async fn create_temporary_queue(&self) -> Result<Destination> {
        self.create_temporary(DestinationKind::TemporaryQueue)
    }

    async fn create_temporary_topic(&self) -> Result<Destination> {
        self.create_temporary(DestinationKind::TemporaryTopic)
    }

    async fn delete_temporary(&self, destination: &Destination) -> Result<()> {
        self.shared.check_open()?;
        let conn = &self.shared.connection;
        conn.broker.delete_temporary(destination, conn.id, false)?;
        conn.forget_temporary(destination);
        Ok(())
    }

    async fn delete_destination(&self, destination: &Destination) -> Result<()> {
        self.shared.check_open()?;
        let conn = &self.shared.connection;
        destination.validate()?;
        conn.grants.check(Operation::Delete, destination)?;
        for ticket in conn.broker.delete_destination(destination)? {
            ticket.await?;
        }
        Ok(())
    }

    async fn commit(&self) -> Result<()> {
        self.shared.check_open()?;
        if self.shared.mode != SessionMode::Transacted {
            return Err(Error::illegal_state("commit on a non-transacted session"));
        }
        self.shared.commit().await
    }

    async fn rollback(&self) -> Result<()> {
        self.shared.check_open()?;
        if self.shared.mode != SessionMode::Transacted {
            return Err(Error::illegal_state("rollback on a non-transacted session"));
        }
        self.shared.core.rollback();
        Ok(())
    }

    async fn recover(&self) -> Result<()> {
        self.shared.check_open()?;
        if self.shared.mode == SessionMode::Transacted {
            return Err(Error::illegal_state(
                "recover on a transacted session (use rollback)",
            ));
        }
        self.shared.core.recover();
        Ok(())
    }

    async fn acknowledge(&self) -> Result<()> {
        self.shared.check_open()?;
        if self.shared.mode == SessionMode::ClientAcknowledge {
            self.shared.core.acknowledge_all();
        }
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        self.shared.close();
        Ok(())
    }
}

impl EmbeddedSession {
    fn create_temporary(&self, kind: DestinationKind) -> Result<Destination> {
        self.shared.check_open()?;
        let conn = &self.shared.connection;
        let destination = conn.broker.create_temporary(kind, conn.id);
        conn.add_temporary(destination.clone());
        Ok(destination)
    }
}
