//! Embedded consumers: take messages from a queue or a subscription's store, waking on
//! arrival instead of polling.

use async_trait::async_trait;
use courier_api::listener::{Delivery, Settle};
use courier_api::spi::{body_for_receive_body, now_millis};
use courier_api::{Body, Consumer, Destination, Error, Message, Result, SessionMode};
use futures::future::BoxFuture;
use futures::FutureExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::session::SessionShared;
use crate::core::queue::{ConsumerSlot, Envelope, Queue, Take};
use crate::core::session::Delivered;
use crate::core::subscription::Subscription;

/// A consumer's state, shared with its session so the session can close it.
pub(crate) struct ConsumerInner {
    session: Arc<SessionShared>,
    destination: Destination,
    selector_text: Option<String>,
    queue: Arc<Queue>,
    slot: Arc<ConsumerSlot>,
    subscription: Option<(Arc<Subscription>, Option<String>)>,
    closed: AtomicBool,
    token: CancellationToken,
}

impl ConsumerInner {
    pub fn new(
        session: Arc<SessionShared>,
        destination: Destination,
        selector_text: Option<String>,
        queue: Arc<Queue>,
        slot: Arc<ConsumerSlot>,
        subscription: Option<(Arc<Subscription>, Option<String>)>,
    ) -> Self {
        let token = session.token.child_token();
        ConsumerInner {
            session,
            destination,
            selector_text,
            queue,
            slot,
            subscription,
            closed: AtomicBool::new(false),
            token,
        }
    }

    /// Closes the consumer: wakes a pending receive and detaches from the queue or
    /// subscription. Idempotent.
    pub fn shutdown(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.token.cancel();
        self.queue.remove_slot(&self.slot);
        if let Some((sub, name)) = &self.subscription {
            let conn = &self.session.connection;
            conn.broker.release(sub, conn.client_id(), name.as_deref());
        }
    }

    /// `Ok` while open; [`Error::ConnectionLost`] once the connection is lost (even though
    /// the loss closed the consumer too), `IllegalState` after a close.
    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            self.session.check_open()?;
            return Err(Error::illegal_state("the consumer is closed"));
        }
        self.session.check_open()
    }

    /// What a receive returns when the consumer ended while it ran: the loss's error after a
    /// loss, `None` after a close.
    fn ended<T>(&self) -> Result<Option<T>> {
        match self.check_open() {
            Err(lost @ Error::ConnectionLost { .. }) => Err(lost),
            _ => Ok(None),
        }
    }

    /// The receive loop. `deadline`: `None` waits for ever; `wait == false` tries once.
    ///
    /// Cancel-safe: a message is only taken inside one synchronous step, and when the future
    /// is dropped while the consumer is registered as waiting, the guard unregisters it and
    /// hands any wakeup meant for it to another waiting consumer.
    async fn next(&self, deadline: Option<Instant>, wait: bool) -> Result<Option<Message>> {
        let delivered = self
            .next_by(deadline, wait, |queue, env| {
                self.session.deliver(queue, env)
            })
            .await?;
        match delivered {
            Some(delivered) => Ok(Some(self.recorded(delivered).await.message)),
            None => Ok(None),
        }
    }

    /// Waits until `delivered`'s count is durable (see [`Delivered::recorded`]) before the
    /// application may see it — unless the connection defers that wait to its owner
    /// ([`super::EmbeddedConnection::defer_delivery_sync`]): then it raises the owner's flag
    /// and returns at once. Cancelled while waiting, the delivery goes back to its queue
    /// rather than staying held by a session that never handed it out. A store that fails
    /// the record is logged and the message delivered anyway: it is still kept, and a crash
    /// could only bring it back with a count short by one.
    async fn recorded(&self, mut delivered: Delivered) -> Delivered {
        let Some(ticket) = delivered.recorded.take() else {
            return delivered;
        };
        if let Some(unsynced) = self.session.connection.deferred_sync() {
            // Raised after the count was recorded: the connection's owner, seeing it, waits
            // for the store's sync before the message leaves the process.
            unsynced.store(true, Ordering::Release);
            drop(ticket);
            return delivered;
        }
        let mut unseen = GiveBack {
            session: &self.session,
            tag: Some(delivered.tag),
        };
        if let Err(e) = ticket.await {
            tracing::warn!(error = %e, "a delivery count was not made durable");
        }
        unseen.tag = None;
        delivered
    }

    /// The next message, held by the session as unacknowledged in every mode until
    /// `SessionShared::settle_held` settles it by its tag.
    async fn next_held(&self, deadline: Option<Instant>) -> Result<Option<Delivered>> {
        let session = &self.session;
        let delivered = self
            .next_by(deadline, true, |queue, env| {
                session.deliver_held(queue, env)
            })
            .await?;
        match delivered {
            Some(delivered) => Ok(Some(self.recorded(delivered).await)),
            None => Ok(None),
        }
    }

    /// [`Self::next`] handing the taken message over with `deliver` (which returns `None`
    /// when it gave the message back).
    async fn next_by<T>(
        &self,
        deadline: Option<Instant>,
        wait: bool,
        deliver: impl Fn(&Arc<Queue>, Envelope) -> Result<Option<T>>,
    ) -> Result<Option<T>> {
        self.check_open()?;
        // A ready message is returned without waiting; spend tokio's cooperative budget so a
        // consumer that always finds one still lets other tasks on its worker run.
        tokio::task::coop::consume_budget().await;
        let gate = &self.session.connection.delivery;
        let mut waiting = WaitGuard {
            queue: &self.queue,
            slot: &self.slot,
            registered: false,
        };
        loop {
            // Created before the checks below, so a start/stop between them is not missed.
            let gate_changed = gate.changed.notified();
            // Atomic flags, not the token: `is_cancelled` takes a lock on every receive.
            if self.check_open().is_err() {
                return self.ended();
            }
            if self.queue.is_deleted() {
                return Ok(None);
            }
            let will_wait = wait && deadline.is_none_or(|d| Instant::now() < d);
            let mut next_due = None;
            if gate.begin() {
                let taken = self.queue.take(&self.slot, will_wait);
                // `take` registered the slot as waiting, or took it off the wait list.
                waiting.registered = will_wait;
                let delivered = match taken {
                    Take::Message(env) => {
                        waiting.registered = false;
                        Some(deliver(&self.queue, env))
                    }
                    Take::Empty { next_due: due } => {
                        next_due = due;
                        None
                    }
                };
                gate.end();
                match delivered {
                    Some(Ok(Some(message))) => return Ok(Some(message)),
                    // Taken while the session closed, and put back.
                    Some(Ok(None)) => return self.ended(),
                    // A paged message that did not read back (put back).
                    Some(Err(e)) => return Err(e),
                    None => {}
                }
            } else if waiting.registered {
                // Stopped: a wakeup aimed at this consumer belongs to another connection's.
                waiting.stop();
            }
            if !will_wait {
                return Ok(None);
            }
            let wake_at = match (deadline, next_due.and_then(instant_of_millis)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                _ = self.token.cancelled() => return self.ended(),
                _ = self.slot.notify.notified() => {}
                _ = gate_changed => {}
                _ = sleep_until(wake_at) => {}
            }
        }
    }
}

/// Keeps a consumer's registration as a waiter tied to its receive: when the receive ends
/// without a message — returned, or its future dropped by a timeout or `select!` around it —
/// the consumer leaves the wait list and a wakeup aimed at it goes to another consumer.
struct WaitGuard<'a> {
    queue: &'a Queue,
    slot: &'a ConsumerSlot,
    registered: bool,
}

impl WaitGuard<'_> {
    fn stop(&mut self) {
        if std::mem::take(&mut self.registered) {
            self.queue.stop_waiting(self.slot);
        }
    }
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The instant at wall-clock time `ms` (ms since the epoch); `None` when it lies too far
/// ahead to represent, which waits for ever.
fn instant_of_millis(ms: u64) -> Option<Instant> {
    Instant::now().checked_add(Duration::from_millis(ms.saturating_sub(now_millis())))
}

/// The deadline `timeout` from now; `None` (no deadline) when too far ahead to represent.
fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A consumer on an in-process broker. Dropping it closes it.
pub(crate) struct EmbeddedConsumer {
    inner: Arc<ConsumerInner>,
}

impl EmbeddedConsumer {
    pub fn new(inner: Arc<ConsumerInner>) -> Self {
        EmbeddedConsumer { inner }
    }
}

impl Drop for EmbeddedConsumer {
    fn drop(&mut self) {
        self.inner.shutdown();
    }
}

#[async_trait]
impl Consumer for EmbeddedConsumer {
    fn destination(&self) -> &Destination {
        &self.inner.destination
    }

    fn selector(&self) -> Option<&str> {
        self.inner.selector_text.as_deref()
    }

    async fn receive(&self) -> Result<Option<Message>> {
        self.inner.next(None, true).await
    }

    async fn receive_timeout(&self, timeout: Duration) -> Result<Option<Message>> {
        self.inner.next(deadline_after(timeout), true).await
    }

    async fn receive_no_wait(&self) -> Result<Option<Message>> {
        self.inner.next(None, false).await
    }

    async fn close(&self) -> Result<()> {
        self.inner.shutdown();
        Ok(())
    }

    /// JMS 2.0 `receiveBody`: in an auto- or dups-ok-acknowledge session the message is held
    /// like a listener's and settled on the spot, acknowledged when its body qualifies and
    /// redelivered when it is refused; other modes keep every received message
    /// unacknowledged anyway.
    async fn receive_body(&self, timeout: Option<Duration>) -> Result<Option<Body>> {
        let session = &self.inner.session;
        if matches!(
            session.mode,
            SessionMode::ClientAcknowledge | SessionMode::Transacted
        ) {
            let received = match timeout {
                None => self.receive().await?,
                Some(timeout) => self.receive_timeout(timeout).await?,
            };
            return received.map(|m| body_for_receive_body(&m)).transpose();
        }
        let Some(held) = self
            .inner
            .next_held(timeout.and_then(deadline_after))
            .await?
        else {
            return Ok(None);
        };
        let body = body_for_receive_body(&held.message);
        session.settle_held(held.tag, body.is_ok());
        body.map(Some)
    }

    /// The next message held by the session until its listener settles it (see
    /// `SessionShared::settle_held`).
    async fn receive_delivery(&self) -> Result<Option<Delivery>> {
        let session = &self.inner.session;
        let held = self.inner.next_held(None).await?;
        Ok(held.map(|held| {
            let settle = HeldMessage {
                session: session.clone(),
                tag: held.tag,
            };
            Delivery::new(held.message, Box::new(settle))
        }))
    }
}

/// A message a listener holds, by its tag: settled through its session after the handler.
struct HeldMessage {
    session: Arc<SessionShared>,
    tag: u64,
}

impl Settle for HeldMessage {
    fn acknowledge(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        self.session.settle_held(self.tag, true);
        futures::future::ready(Ok(())).boxed()
    }

    fn redeliver(self: Box<Self>) {
        self.session.settle_held(self.tag, false);
    }
}

/// Gives a delivery back to its queue when dropped armed: the receive that took it was
/// cancelled before the application saw the message.
struct GiveBack<'a> {
    session: &'a SessionShared,
    tag: Option<u64>,
}

impl Drop for GiveBack<'_> {
    fn drop(&mut self) {
        if let Some(tag) = self.tag {
            self.session.give_back(tag);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::EmbeddedFactory;
    use courier_api::*;
    use std::time::Duration;

    /// A started connection, an auto-acknowledge session and a consumer on queue `name`.
    async fn started_consumer(
        name: &str,
    ) -> (
        Box<dyn Connection>,
        Box<dyn Session>,
        Destination,
        Box<dyn Consumer>,
    ) {
        let connection = EmbeddedFactory::default()
            .create_connection()
            .await
            .unwrap();
        connection.start().await.unwrap();
        let session = connection
            .create_session(SessionMode::AutoAcknowledge)
            .await
            .unwrap();
        let queue = Destination::queue(name);
        let consumer = session
            .create_consumer(&queue, ConsumerOptions::default())
            .await
            .unwrap();
        (connection, session, queue, consumer)
    }

    #[tokio::test]
    async fn a_timeout_too_large_to_represent_waits_for_ever() {
        let (_connection, session, queue, consumer) = started_consumer("forever").await;
        for timeout in [Duration::MAX, Duration::from_secs(u64::MAX / 2)] {
            let waiting = consumer.receive_timeout(timeout);
            let sending = async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let producer = session.create_producer(Some(&queue)).await.unwrap();
                producer.send(&mut Message::text("late")).await.unwrap();
            };
            let (got, ()) = tokio::join!(waiting, sending);
            assert_eq!(got.unwrap().unwrap().body_text(), Some("late"));
        }
    }

    #[tokio::test]
    async fn a_delivery_time_too_far_ahead_does_not_panic_a_waiting_receive() {
        let (_connection, session, queue, consumer) = started_consumer("far").await;
        let producer = session.create_producer(Some(&queue)).await.unwrap();
        producer.set_delivery_delay(Duration::MAX).unwrap();
        producer.send(&mut Message::text("never")).await.unwrap();
        let got = consumer.receive_timeout(Duration::from_millis(50)).await;
        assert!(got.unwrap().is_none());
    }

    async fn queue_with(
        mode: SessionMode,
        messages: Vec<Message>,
    ) -> (Box<dyn Connection>, Box<dyn Session>, Box<dyn Consumer>) {
        let connection = EmbeddedFactory::default()
            .create_connection()
            .await
            .unwrap();
        connection.start().await.unwrap();
        let session = connection.create_session(mode).await.unwrap();
        let queue = Destination::queue("bodies");
        let producer = session.create_producer(Some(&queue)).await.unwrap();
        for mut message in messages {
            producer.send(&mut message).await.unwrap();
        }
        if mode == SessionMode::Transacted {
            session.commit().await.unwrap();
        }
        let consumer = session
            .create_consumer(&queue, ConsumerOptions::default())
            .await
            .unwrap();
        (connection, session, consumer)
    }

    #[tokio::test]
    async fn receive_body_returns_the_body_and_none_when_nothing_comes() {
        let (_c, _s, consumer) = queue_with(
            SessionMode::AutoAcknowledge,
            vec![Message::text("hi"), Message::bytes(&b"raw"[..])],
        )
        .await;
        let text = consumer.receive_body(None).await.unwrap().unwrap();
        assert_eq!(text, Body::Text("hi".into()));
        let bytes = consumer.receive_body(Some(Duration::from_secs(5))).await;
        assert!(matches!(bytes, Ok(Some(Body::Bytes(b))) if b.as_ref() == b"raw"));
        let nothing = consumer.receive_body(Some(Duration::from_millis(20))).await;
        assert!(matches!(nothing, Ok(None)));
    }

    #[tokio::test]
    async fn receive_body_of_a_bodyless_message_fails_and_recover_redelivers_it() {
        let (_c, session, consumer) = queue_with(
            SessionMode::ClientAcknowledge,
            vec![Message::default(), Message::stream(Vec::new())],
        )
        .await;
        for _ in 0..2 {
            let refused = consumer.receive_body(Some(Duration::from_secs(5))).await;
            assert!(
                matches!(refused, Err(Error::MessageFormat(_))),
                "{refused:?}"
            );
        }
        session.recover().await.unwrap();
        let again = consumer.receive().await.unwrap().unwrap();
        assert!(again.redelivered());
        assert_eq!(again.body(), &Body::Empty);
    }
}
