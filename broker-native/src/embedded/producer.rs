//! Embedded producers.

use async_trait::async_trait;
use courier_api::spi::{self, resolve_destination, MessageIds};
use courier_api::{Destination, Error, Message, Producer, Result, SendOptions, SendReceipt};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::pipeline::{Pipeline, WINDOW};
use super::session::SessionShared;
use crate::core::broker::Route;
use crate::core::queue::Origin;
use crate::core::store::Ticket;

/// A producer on an in-process broker.
pub(crate) struct EmbeddedProducer {
    session: Arc<SessionShared>,
    /// The default destination and its resolved route (looked up again once the
    /// destination was auto-deleted).
    default: Option<(Destination, Mutex<Route>)>,
    options: Mutex<SendOptions>,
    closed: AtomicBool,
    /// Its messages' ids: `ID:<broker instance>-<producer number>-<counter>`.
    ids: MessageIds,
    origin: Arc<Origin>,
    /// Pipelined sends waiting for durability, confirmed in send order.
    pipeline: Pipeline,
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
        let ids = MessageIds::new(format!(
            "ID:{}-{}-",
            conn.broker.instance,
            conn.broker.next_id()
        ));
        let origin = conn.origin();
        Ok(EmbeddedProducer {
            session,
            default,
            options: Mutex::new(SendOptions::default()),
            closed: AtomicBool::new(false),
            ids,
            origin,
            pipeline: Pipeline::new(),
        })
    }

    /// `IllegalState` once the producer, its session or its connection is closed.
    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::illegal_state("the producer is closed"));
        }
        self.session.check_open()
    }

    /// Everything of a send up to the broker storing the message; the ticket confirms it
    /// once durable (pipelined sends hand it to their receipt).
    async fn submit(
        &self,
        destination: Option<&Destination>,
        message: &mut Message,
        options: &SendOptions,
    ) -> Result<Ticket> {
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
        let id = (!options.disable_message_id).then(|| self.ids.next());
        let now = spi::stamp(message, destination, options, id)?;
        self.session
            .send(&route, destination, message.clone(), &self.origin, now)
            .await
    }

    /// A send confirmed before it returns: stored, and durable when it must be.
    async fn send_inner(
        &self,
        destination: Option<&Destination>,
        message: &mut Message,
        options: &SendOptions,
    ) -> Result<()> {
        let ticket = self.submit(destination, message, options).await?;
        if ticket.is_done() {
            return Ok(());
        }
        ticket.await.map_err(|e| self.session.connection.lost_or(e))
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

    /// Pipelined send: the message is stored (visible to consumers, in send order) when this
    /// returns, and the receipt resolves once it is durable — at once for a non-persistent
    /// message or an in-memory broker. A durable broker's receipts wait for the journal's
    /// group commit, so many sends in flight share one `fdatasync`. A closed producer,
    /// session or connection is this call's error; every other outcome is the receipt's.
    async fn send_async_with(
        &self,
        destination: Option<&Destination>,
        message: Message,
        options: &SendOptions,
    ) -> Result<SendReceipt> {
        self.check_open()?;
        // Room in the window first: at most `WINDOW` receipts wait for the disk.
        let permit = self.pipeline.room().await?;
        let mut message = message;
        let ticket = match self.submit(destination, &mut message, options).await {
            Ok(ticket) => ticket,
            Err(e) => return Ok(self.pipeline.settled(permit, Err(e))),
        };
        if ticket.is_done() {
            return Ok(self.pipeline.settled(permit, Ok(message)));
        }
        Ok(self
            .pipeline
            .confirm_later(permit, ticket, message, self.session.connection.clone()))
    }

    /// Waits until every pipelined send's receipt has its outcome.
    async fn flush(&self) -> Result<()> {
        self.check_open()?;
        self.pipeline.drained().await;
        Ok(())
    }

    fn max_outstanding(&self) -> usize {
        WINDOW
    }

    async fn close(&self) -> Result<()> {
        // Outstanding sends keep their outcomes: wait for them, then refuse new ones.
        self.pipeline.drained().await;
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}
