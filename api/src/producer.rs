//! Producers: send messages, stamping the provider-set headers (§7, §3.4).

use async_trait::async_trait;
use std::time::Duration;

use crate::message::{DEFAULT_PRIORITY, MAX_PRIORITY};
use crate::{DeliveryMode, Destination, Error, Message, Result, SendReceipt};

/// How a producer sends: the JMS producer settings, also accepted per send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendOptions {
    /// Persistent (default) or not.
    pub delivery_mode: DeliveryMode,
    /// 0–9, default 4.
    pub priority: u8,
    /// Time to live; zero means the message never expires. Any duration is accepted: one too
    /// long to represent in milliseconds since the epoch means "never expires" in effect.
    pub time_to_live: Duration,
    /// Delay before the message may be delivered; zero means at once. Any duration is
    /// accepted and saturates (the far future). A backend without delivery delay refuses a
    /// send that carries one with [`Error::Unsupported`].
    pub delivery_delay: Duration,
    /// Leave `JMSMessageID` unset (a hint that saves work).
    pub disable_message_id: bool,
    /// Leave `JMSTimestamp` at 0.
    pub disable_timestamp: bool,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions {
            delivery_mode: DeliveryMode::Persistent,
            priority: DEFAULT_PRIORITY,
            time_to_live: Duration::ZERO,
            delivery_delay: Duration::ZERO,
            disable_message_id: false,
            disable_timestamp: false,
        }
    }
}

impl SendOptions {
    /// Checks the values: priority must be 0–9.
    pub fn validate(&self) -> Result<()> {
        if self.priority > MAX_PRIORITY {
            return Err(Error::invalid_argument(format!(
                "priority {} is outside 0-9",
                self.priority
            )));
        }
        Ok(())
    }
}

/// Sends messages to a default destination or to one named per send.
///
/// # Plain and pipelined sends
///
/// [`send`](Producer::send) sends and awaits: it returns once the broker has the message as
/// its delivery mode promises (persistent: durably; non-persistent: the broker holds it), one
/// round trip per message on a network backend.
/// [`send_async`](Producer::send_async) pipelines, in the spirit of JMS 2.0's
/// `CompletionListener`: awaiting it hands the message to the producer and yields a
/// [`SendReceipt`], which resolves when the broker has the message. Rules every backend keeps:
///
/// - **Order.** Messages are sent, and their receipts complete, in the order of the
///   `send_async` calls on one producer (and plain sends keep their place among them).
/// - **Bounded.** At most [`max_outstanding`](Producer::max_outstanding) sends are in flight
///   (accepted, receipt not complete); awaiting `send_async` with the window full waits for
///   room, so a producer pipelining a million sends is flow-controlled, not buffered without
///   bound.
/// - **Dropped receipts.** The send happens whether its receipt is awaited or not; dropping
///   a receipt only forgets the outcome.
/// - **Errors.** `send_async` returns `Err` when the send could not be started (the producer,
///   session or connection is closed or lost); every outcome of a started send, refusals of
///   the message itself included (an oversize message, a deleted temporary destination), is
///   its receipt's. A backend may report a message's error from `send_async` itself when it
///   finds it before sending, as JMS allows, so handle both: `producer.send_async(m).await?.await?`.
/// - **Waiting for outstanding sends.** [`flush`](Producer::flush) waits for all of them;
///   the producer's `close`, and the session's `commit`, `rollback` and `close`, wait for
///   them before acting (JMS 2.0), so a commit covers every send made before it.
/// - **Cancelling.** Dropping the `send_async` future itself before it returns (while it
///   waits for room) leaves the message unsent on the embedded broker; a network backend may
///   already have written it, so treat the outcome as unknown.
///
/// ```no_run
/// # use courier_api::*;
/// # async fn demo(producer: &dyn Producer) -> Result<()> {
/// let mut receipts = Vec::new();
/// for i in 0..1000 {
///     receipts.push(producer.send_async(Message::text(format!("job {i}"))).await?);
/// }
/// for receipt in receipts {
///     let sent = receipt.await?; // in send order
///     println!("confirmed {:?}", sent.message_id());
/// }
/// producer.flush().await?; // nothing outstanding (a no-op here: every receipt was awaited)
/// # Ok(()) }
/// ```
///
/// ```no_run
/// # use courier_api::*;
/// # async fn demo(session: &dyn Session) -> Result<()> {
/// let producer = session.create_producer(Some(&Destination::queue("jobs"))).await?;
/// producer.set_priority(7)?;
/// let mut m = Message::text("urgent");
/// producer.send(&mut m).await?;
/// println!("sent {:?}", m.message_id()); // headers are stamped on the caller's message
/// # Ok(()) }
/// ```
#[async_trait]
pub trait Producer: Send + Sync {
    /// The default destination, if the producer was created with one.
    fn destination(&self) -> Option<&Destination>;

    /// The producer's current settings.
    fn options(&self) -> SendOptions;

    /// Replaces the producer's settings (validated).
    fn set_options(&self, options: SendOptions) -> Result<()>;

    /// Sends to `destination` (which must be `None` when the producer has a default
    /// destination) with explicit settings, stamping the headers on `message`.
    async fn send_with(
        &self,
        destination: Option<&Destination>,
        message: &mut Message,
        options: &SendOptions,
    ) -> Result<()>;

    /// Closes the producer after its outstanding pipelined sends complete (their receipts
    /// keep their outcomes). Closing twice is fine.
    async fn close(&self) -> Result<()>;

    /// The pipelined form of [`send_with`](Producer::send_with): sends `message` to
    /// `destination` (`None` for the producer's default) with explicit settings and returns a
    /// receipt that resolves to the stamped message when the broker has it. Waits while
    /// [`max_outstanding`](Producer::max_outstanding) sends are in flight. See the trait
    /// docs for order, errors and dropped receipts.
    ///
    /// The default completes the send before returning (a window of none): correct for any
    /// backend, pipelining for none. A backend that keeps sends in flight overrides this,
    /// [`flush`](Producer::flush) and [`max_outstanding`](Producer::max_outstanding).
    async fn send_async_with(
        &self,
        destination: Option<&Destination>,
        message: Message,
        options: &SendOptions,
    ) -> Result<SendReceipt> {
        let mut message = message;
        let outcome = self.send_with(destination, &mut message, options).await;
        Ok(SendReceipt::ready(outcome.map(|()| message)))
    }

    /// Pipelined send to the default destination with the producer's settings.
    async fn send_async(&self, message: Message) -> Result<SendReceipt> {
        let options = self.options();
        self.send_async_with(None, message, &options).await
    }

    /// Pipelined send to `destination` with the producer's settings (producer without a
    /// default).
    async fn send_async_to(
        &self,
        destination: &Destination,
        message: Message,
    ) -> Result<SendReceipt> {
        let options = self.options();
        self.send_async_with(Some(destination), message, &options)
            .await
    }

    /// Waits until every pipelined send of this producer has completed (each receipt has its
    /// outcome, awaited or not). A failed send does not fail the flush: its receipt has the
    /// error. The default has nothing to wait for, matching the default
    /// [`send_async_with`](Producer::send_async_with).
    async fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// The window: how many pipelined sends may be in flight (accepted by `send_async`,
    /// receipt not yet complete) before `send_async` waits for room. 0 means each send
    /// completes before `send_async` returns, as the embedded broker's and the default do.
    fn max_outstanding(&self) -> usize {
        0
    }

    /// Sends to the default destination with the producer's settings.
    async fn send(&self, message: &mut Message) -> Result<()> {
        let options = self.options();
        self.send_with(None, message, &options).await
    }

    /// Sends to `destination` with the producer's settings (producer without a default).
    async fn send_to(&self, destination: &Destination, message: &mut Message) -> Result<()> {
        let options = self.options();
        self.send_with(Some(destination), message, &options).await
    }

    /// Sets the default delivery mode.
    fn set_delivery_mode(&self, mode: DeliveryMode) -> Result<()> {
        let mut o = self.options();
        o.delivery_mode = mode;
        self.set_options(o)
    }

    /// Sets the default priority (0–9).
    fn set_priority(&self, priority: u8) -> Result<()> {
        let mut o = self.options();
        o.priority = priority;
        self.set_options(o)
    }

    /// Sets the default time to live (zero = never expires).
    fn set_time_to_live(&self, ttl: Duration) -> Result<()> {
        let mut o = self.options();
        o.time_to_live = ttl;
        self.set_options(o)
    }

    /// Sets the default delivery delay.
    fn set_delivery_delay(&self, delay: Duration) -> Result<()> {
        let mut o = self.options();
        o.delivery_delay = delay;
        self.set_options(o)
    }

    /// Disables message ids on sent messages.
    fn set_disable_message_id(&self, disable: bool) -> Result<()> {
        let mut o = self.options();
        o.disable_message_id = disable;
        self.set_options(o)
    }

    /// Disables timestamps on sent messages.
    fn set_disable_timestamp(&self, disable: bool) -> Result<()> {
        let mut o = self.options();
        o.disable_timestamp = disable;
        self.set_options(o)
    }
}
