//! Embedded producers.

use async_trait::async_trait;
use courier_api::spi::{self, resolve_destination};
use courier_api::{Destination, Error, Message, Producer, Result, SendOptions, SendReceipt};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::session::SessionShared;
use crate::core::broker::Route;
use crate::core::queue::Origin;

/// A producer on an in-process broker.
pub(crate) struct EmbeddedProducer {
    session: Arc<SessionShared>,
    /// The default destination and its resolved route (looked up again once the
    /// destination was auto-deleted).
    default: Option<(Destination, Mutex<Route>)>,
    options: Mutex<SendOptions>,
    closed: AtomicBool,
    id_prefix: String,
    sent: AtomicU64,
    origin: Arc<Origin>,
}

impl EmbeddedProducer {
    pub fn new(session: Arc<SessionShared>, destination: Option<Destination>) -> Result<Self> {
        let conn = &session.connection;
        let default = match destination {
            Some(d) => {
                let route = conn.broker.route(&d)?;
                Some((d, Mutex::new(route)))
            }
            None => None,
        };
        // At most 3 + 32 + 1 + 20 + 1 bytes, so an id (prefix + 20 digits) fits in 128 bytes.
        let id_prefix = format!("ID:{}-{}-", conn.broker.instance, conn.broker.next_id());
        let origin = conn.origin();
        Ok(EmbeddedProducer {
            session,
            default,
            options: Mutex::new(SendOptions::default()),
            closed: AtomicBool::new(false),
            id_prefix,
            sent: AtomicU64::new(0),
            origin,
        })
    }

    /// The next message id: the producer's prefix and a counter, formatted on the stack and
    /// copied into one allocation.
    fn next_id(&self) -> Arc<str> {
        let mut n = self.sent.fetch_add(1, Ordering::Relaxed);
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let mut id = [0u8; 128];
        let prefix = self.id_prefix.as_bytes();
        let len = prefix.len() + digits.len() - start;
        id[..prefix.len()].copy_from_slice(prefix);
        id[prefix.len()..len].copy_from_slice(&digits[start..]);
        // Both parts are ASCII: the prefix is a hex uuid and decimal ids.
        Arc::from(std::str::from_utf8(&id[..len]).unwrap_or("ID:"))
    }

    /// `IllegalState` once the producer, its session or its connection is closed.
    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::illegal_state("the producer is closed"));
        }
        self.session.check_open()
    }

    async fn send_inner(
        &self,
        destination: Option<&Destination>,
        message: &mut Message,
        options: &SendOptions,
    ) -> Result<()> {
        self.check_open()?;
        // A send never waits on the broker; spend tokio's cooperative budget so a tight send
        // loop still lets the consumers on its worker run.
        tokio::task::coop::consume_budget().await;
        let broker = &self.session.connection.broker;
        let (destination, route) = match (&self.default, destination) {
            (Some((d, cached)), None) => {
                let mut cached = cached.lock();
                if !cached.is_live() && !d.is_temporary() {
                    // Auto-deleted while unused: made afresh.
                    *cached = broker.route(d)?;
                }
                (d, cached.clone())
            }
            (default, given) => {
                let d = resolve_destination(default.as_ref().map(|(d, _)| d), given)?;
                d.validate()?;
                // A destination given per send is checked per send (the producer's own
                // was checked once, when it was made).
                self.session
                    .connection
                    .grants
                    .check(crate::access::Operation::Send, d)?;
                (d, broker.route(d)?)
            }
        };
        let limit = broker.config.max_message_size;
        let size = message.size_hint();
        if size > limit {
            return Err(Error::ResourceLimit(format!(
                "message of about {size} bytes exceeds the broker's limit of {limit} bytes"
            )));
        }
        let id = (!options.disable_message_id).then(|| self.next_id());
        let now = spi::stamp(message, destination, options, id)?;
        self.session
            .send(&route, destination, message.clone(), &self.origin, now)
            .await
    }
}

#[async_trait]
impl Producer for EmbeddedProducer {
    fn destination(&self) -> Option<&Destination> {
        self.default.as_ref().map(|(d, _)| d)
    }

    fn options(&self) -> SendOptions {
        *self.options.lock()
    }

    fn set_options(&self, options: SendOptions) -> Result<()> {
        self.check_open()?;
        options.validate()?;
        *self.options.lock() = options;
        Ok(())
    }

    async fn send_with(
        &self,
        destination: Option<&Destination>,
        message: &mut Message,
        options: &SendOptions,
    ) -> Result<()> {
        self.send_inner(destination, message, options).await
    }

    async fn send(&self, message: &mut Message) -> Result<()> {
        let options = self.options();
        self.send_inner(None, message, &options).await
    }

    async fn send_to(&self, destination: &Destination, message: &mut Message) -> Result<()> {
        let options = self.options();
        self.send_inner(Some(destination), message, &options).await
    }

    /// Pipelined send, truthfully unpipelined: the in-process broker has the message (or
    /// refused it) by the time this returns, after waiting for room under a blocking policy,
    /// so the receipt is already complete and nothing is ever outstanding. A closed producer,
    /// session or connection is this call's error; every other outcome is the receipt's.
    async fn send_async_with(
        &self,
        destination: Option<&Destination>,
        message: Message,
        options: &SendOptions,
    ) -> Result<SendReceipt> {
        self.check_open()?;
        let mut message = message;
        let outcome = self.send_inner(destination, &mut message, options).await;
        Ok(SendReceipt::ready(outcome.map(|()| message)))
    }

    /// Nothing to wait for: every pipelined send completed before its `send_async` returned.
    async fn flush(&self) -> Result<()> {
        self.check_open()
    }

    fn max_outstanding(&self) -> usize {
        0
    }

    async fn close(&self) -> Result<()> {
        // No send is ever outstanding here, so there is nothing to wait for.
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}
