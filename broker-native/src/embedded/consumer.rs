//! Embedded consumers: take messages from a queue or a subscription's store, waking on
//! arrival instead of polling.

use async_trait::async_trait;
use courier_api::producer::now_millis;
use courier_api::{Consumer, Destination, Error, Message, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::session::SessionShared;
use crate::queue::{ConsumerSlot, Queue, Take};
use crate::subscription::Subscription;

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

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::illegal_state("the consumer is closed"));
        }
        self.session.check_open()
    }

    /// The receive loop. `deadline`: `None` waits for ever; `wait == false` tries once.
    async fn next(&self, deadline: Option<Instant>, wait: bool) -> Result<Option<Message>> {
        self.check_open()?;
        // A ready message is returned without waiting; spend tokio's cooperative budget so a
        // consumer that always finds one still lets other tasks on its worker run.
        tokio::task::coop::consume_budget().await;
        let gate = &self.session.connection.delivery;
        let mut marked = false;
        let outcome = loop {
            // Created before the checks below, so a start/stop between them is not missed.
            let gate_changed = gate.changed.notified();
            // Atomic flags, not the token: `is_cancelled` takes a lock on every receive.
            if self.check_open().is_err() || self.queue.is_deleted() {
                break None;
            }
            let will_wait = wait && deadline.is_none_or(|d| Instant::now() < d);
            let mut next_due = None;
            if gate.begin() {
                let taken = self.queue.take(&self.slot, will_wait);
                let delivered = match taken {
                    Take::Message(env) => Some(self.session.deliver(&self.queue, env)),
                    Take::Empty { next_due: due } => {
                        next_due = due;
                        None
                    }
                };
                gate.end();
                if let Some(message) = delivered {
                    return Ok(message);
                }
                marked = will_wait;
            } else if marked {
                // Stopped: a wakeup aimed at this consumer belongs to another connection's.
                self.queue.stop_waiting(&self.slot);
                marked = false;
            }
            if !will_wait {
                break None;
            }
            let due = next_due
                .map(|ms| Instant::now() + Duration::from_millis(ms.saturating_sub(now_millis())));
            let wake_at = match (deadline, due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                _ = self.token.cancelled() => break None,
                _ = self.slot.notify.notified() => {}
                _ = gate_changed => {}
                _ = sleep_until(wake_at) => {}
            }
        };
        if marked {
            self.queue.stop_waiting(&self.slot);
        }
        Ok(outcome)
    }
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
        self.inner.next(Some(Instant::now() + timeout), true).await
    }

    async fn receive_no_wait(&self) -> Result<Option<Message>> {
        self.inner.next(None, false).await
    }

    async fn close(&self) -> Result<()> {
        self.inner.shutdown();
        Ok(())
    }
}
