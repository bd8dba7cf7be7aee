//! Consumers and browsers (§8): receive messages, or look at a queue without consuming.

use async_trait::async_trait;
use futures::stream::BoxStream;
use std::time::Duration;

use crate::listener::{Delivery, MessageHandler};
use crate::{Destination, Error, Message, Result};

/// Options of a new consumer.
///
/// ```
/// use courier_api::ConsumerOptions;
/// let o = ConsumerOptions::selector("color = 'red'").with_no_local(true);
/// assert_eq!(o.selector.as_deref(), Some("color = 'red'"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerOptions {
    /// Message selector; `None` or empty selects every message.
    pub selector: Option<String>,
    /// On a topic: do not deliver messages published by this consumer's own connection.
    pub no_local: bool,
    /// Consumer credit: how many messages the backend may hold for this consumer ahead of
    /// its receives. `None` (the default) holds none: a message is taken from the broker
    /// only by a `receive` (or listener) waiting for it, so a consumer that is not receiving
    /// never strands messages another consumer of the queue could take — the tuple space
    /// relies on this. `Some(n)` lets a network backend keep up to `n` messages in flight
    /// for throughput; those may sit with this consumer while others wait, until it
    /// receives, or closes, stops or recovers (which gives them back). The embedded broker
    /// delivers in-process with no buffer at all, so it honours every prefetch exactly (it
    /// holds 0 ≤ n). A backend that can only approximate the credit (e.g. counts it per
    /// channel) says so with [`Capabilities::exact_prefetch`](crate::Capabilities::exact_prefetch)
    /// `false`.
    pub prefetch: Option<u32>,
}

impl ConsumerOptions {
    /// Options with a selector.
    pub fn selector(selector: impl Into<String>) -> Self {
        ConsumerOptions {
            selector: Some(selector.into()),
            no_local: false,
            prefetch: None,
        }
    }

    /// Sets the consumer credit (see [`ConsumerOptions::prefetch`]).
    pub fn with_prefetch(mut self, prefetch: Option<u32>) -> Self {
        self.prefetch = prefetch;
        self
    }

    /// Sets no-local.
    pub fn with_no_local(mut self, no_local: bool) -> Self {
        self.no_local = no_local;
        self
    }

    /// The selector, with an empty one read as none.
    pub fn effective_selector(&self) -> Option<&str> {
        self.selector.as_deref().filter(|s| !s.trim().is_empty())
    }
}

/// A stream of received messages: a loop over [`Consumer::receive`], so each message is
/// acknowledged as `receive` acknowledges it (in an auto-acknowledge session, before the
/// stream yields it). For JMS `MessageListener` semantics — acknowledge after the handler —
/// use [`Consumer::listen`].
pub type MessageStream<'a> = BoxStream<'a, Result<Message>>;

/// Receives messages from a queue or a topic subscription.
///
/// The receive futures are cancel-safe, and every backend must keep them so: a `receive`
/// dropped before it completes (in `tokio::select!`, or by a timeout around it) has taken no
/// message, so no message is lost — and it keeps no wakeup either: a message that arrived
/// for the dropped receive goes to another consumer waiting on the same queue, so that
/// consumer is not left sleeping while the message waits.
///
/// ```no_run
/// # use courier_api::*;
/// # use futures::StreamExt;
/// # async fn demo(consumer: &dyn Consumer) -> Result<()> {
/// while let Some(message) = consumer.stream().next().await {
///     println!("{:?}", message?.body_text());
/// }
/// # Ok(()) }
/// ```
#[async_trait]
pub trait Consumer: Send + Sync {
    /// The queue or topic consumed.
    fn destination(&self) -> &Destination;

    /// The consumer's selector; `None` when it was created without one or with an empty one.
    fn selector(&self) -> Option<&str>;

    /// Waits for the next message; `None` when the consumer, its session or its connection is
    /// closed while waiting. Calling it on a consumer already closed is
    /// [`crate::Error::IllegalState`]. When the connection is lost, a pending and every later
    /// receive fails with [`crate::Error::ConnectionLost`] (never `None`).
    async fn receive(&self) -> Result<Option<Message>>;

    /// Waits up to `timeout`; `None` when nothing came. Ends like [`Consumer::receive`] on a
    /// close or a connection loss.
    async fn receive_timeout(&self, timeout: Duration) -> Result<Option<Message>>;

    /// The next message if one is ready now: anything the consumer already holds or the broker
    /// has ready for it at this moment; it waits for nothing else.
    async fn receive_no_wait(&self) -> Result<Option<Message>>;

    /// Closes the consumer; a pending receive returns `None`, and messages the consumer holds
    /// but has not handed out go back to the broker. Closing twice, or after the connection is
    /// lost, is fine.
    async fn close(&self) -> Result<()>;

    /// Receives the next message and returns only its body: waits for ever with `None`, up to
    /// `timeout` otherwise; `Ok(None)` when nothing came or the consumer was closed.
    ///
    /// As in JMS 2.0, only messages whose body can be returned qualify: text, bytes, map and
    /// object bodies. A message with no body (a plain JMS `Message`) or a stream body fails
    /// with [`crate::Error::MessageFormat`] and is left unacknowledged, whatever the session
    /// mode: in an auto- or dups-ok-acknowledge session it is redelivered (with `redelivered`
    /// set); in a client-acknowledge or transacted session it stays unacknowledged, so
    /// `recover` or `rollback` redelivers it (and acknowledging or committing consumes it).
    ///
    /// The default receives the message with [`receive`](Consumer::receive), which keeps
    /// that promise in client-acknowledge and transacted sessions only; a backend whose
    /// `receive` acknowledges (auto mode) overrides this method, typically through
    /// [`receive_delivery`](Consumer::receive_delivery), so a refused message is redelivered
    /// (see [`crate::spi::body_for_receive_body`]).
    async fn receive_body(&self, timeout: Option<Duration>) -> Result<Option<crate::Body>> {
        let received = match timeout {
            None => self.receive().await?,
            Some(timeout) => self.receive_timeout(timeout).await?,
        };
        let Some(message) = received else {
            return Ok(None);
        };
        crate::spi::body_for_receive_body(&message).map(Some)
    }

    /// The messages as a stream, a loop over [`receive`](Consumer::receive): each message
    /// is acknowledged as `receive` acknowledges it — in an auto-acknowledge session before
    /// the caller sees it, so a crash while handling it loses it. This is not the JMS
    /// `MessageListener` form; that is [`listen`](Consumer::listen). The stream ends when the
    /// consumer is closed; an error is yielded once and then ends the stream too.
    fn stream(&self) -> MessageStream<'_> {
        Box::pin(futures::stream::unfold(Some(self), |consumer| async move {
            let consumer = consumer?;
            match consumer.receive().await {
                Ok(Some(m)) => Some((Ok(m), Some(consumer))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        }))
    }

    // ---- Listener form (see `crate::listener`) ----

    /// Backend hook of [`listen`](Consumer::listen): waits for the next message and returns
    /// it held unacknowledged — in every session mode, auto-acknowledge included — until the
    /// [`Delivery`] is acknowledged or dropped; `None` when the consumer closes. The default
    /// is [`Error::Unsupported`] (a backend that cannot hold a message unacknowledged).
    async fn receive_delivery(&self) -> Result<Option<Delivery>> {
        Err(Error::unsupported(
            "given",
            "listeners with acknowledgement after the handler",
        ))
    }

    /// Listens: calls `handler` with each message until the consumer closes (then `Ok`), the
    /// JMS `MessageListener` form. Unlike [`stream`](Consumer::stream), the message is
    /// acknowledged only after the handler returns `Ok`, by the session's mode:
    ///
    /// - auto- and dups-ok-acknowledge: the message is acknowledged after the handler returns
    ///   `Ok`. When it returns `Err`, panics, or `listen` is dropped mid-handler, the message
    ///   is given back and redelivered (to this listener or another consumer) with
    ///   `redelivered` set and its delivery count raised; the broker's delivery limit and
    ///   dead-letter queue end a message that always fails. A `Session::recover` inside the
    ///   handler redelivers the message too.
    /// - client-acknowledge: the message joins the session's unacknowledged messages, as for
    ///   `receive`; `Ok` leaves acknowledging to the application (`Session::acknowledge`), and
    ///   an `Err` or panic recovers the session (every unacknowledged message, this one
    ///   included, is redelivered).
    /// - transacted: the message is part of the open transaction either way; commit
    ///   acknowledges it and rollback redelivers it.
    ///
    /// Listening goes on after a handler error; a receive or acknowledge error ends it with
    /// that error. Messages are handled one at a time, in delivery order.
    ///
    /// ```no_run
    /// # use courier_api::*;
    /// # async fn demo(consumer: &dyn Consumer) -> Result<()> {
    /// consumer
    ///     .listen(handler(|m: Message| async move {
    ///         println!("{:?}", m.body_text()); // a crash here redelivers the message
    ///         Ok(())
    ///     }))
    ///     .await
    /// # }
    /// ```
    async fn listen(&self, handler: MessageHandler<'_>) -> Result<()> {
        crate::listener::run(self, handler).await
    }
}

/// Looks at a queue's messages in delivery order without consuming them (§5.9).
#[async_trait]
pub trait Browser: Send + Sync {
    /// The queue browsed.
    fn queue(&self) -> &Destination;

    /// The browser's selector, if any.
    fn selector(&self) -> Option<&str>;

    /// The next message, or `None` at the end of the queue.
    async fn next(&self) -> Result<Option<Message>>;

    /// Closes the browser. Closing twice is fine.
    async fn close(&self) -> Result<()>;

    /// Every remaining message.
    async fn collect_all(&self) -> Result<Vec<Message>> {
        let mut out = Vec::new();
        while let Some(m) = self.next().await? {
            out.push(m);
        }
        Ok(out)
    }
}
