//! Consumers and browsers (§8): receive messages, or look at a queue without consuming.

use async_trait::async_trait;
use futures::stream::BoxStream;
use std::time::Duration;

use crate::{Destination, Message, Result};

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
}

impl ConsumerOptions {
    /// Options with a selector.
    pub fn selector(selector: impl Into<String>) -> Self {
        ConsumerOptions {
            selector: Some(selector.into()),
            no_local: false,
        }
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

/// A stream of received messages, the Rust form of a `MessageListener`.
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

    // ---- receive_body (JMS 2.0 `JMSConsumer.receiveBody`) -------------------------------

    /// Receives the next message and returns only its body: waits for ever with `None`, up to
    /// `timeout` otherwise; `Ok(None)` when nothing came or the consumer was closed.
    ///
    /// As in JMS 2.0, only messages whose body can be returned qualify: text, bytes, map and
    /// object bodies. A message with no body (a plain JMS `Message`) or a stream body fails
    /// with [`crate::Error::MessageFormat`]. JMS then leaves such a message unacknowledged;
    /// here it was received like any other:
    /// - in a client-acknowledge or transacted session it stays unacknowledged, so `recover`
    ///   or `rollback` redelivers it (and acknowledging or committing consumes it);
    /// - in an auto- or dups-ok-acknowledge session it was acknowledged by the receive and is
    ///   consumed; use `receive` instead where a bodyless or stream message may arrive and must
    ///   not be lost. (JMS 2.0 redelivers it; a backend may override this method to do so.)
    async fn receive_body(&self, timeout: Option<Duration>) -> Result<Option<crate::Body>> {
        let received = match timeout {
            None => self.receive().await?,
            Some(timeout) => self.receive_timeout(timeout).await?,
        };
        let Some(message) = received else {
            return Ok(None);
        };
        match message.body() {
            crate::Body::Empty => Err(crate::Error::format(
                "receive_body: the message has no body (use receive for plain messages)",
            )),
            crate::Body::Stream(_) => Err(crate::Error::format(
                "receive_body: a stream body cannot be returned whole (use receive)",
            )),
            body => Ok(Some(body.clone())),
        }
    }

    // ---- end of receive_body ---------------------------------------------------------------

    /// The messages as a stream. It ends when the consumer is closed; an error is yielded
    /// once and then ends the stream too.
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
