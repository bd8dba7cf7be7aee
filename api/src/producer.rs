//! Producers: send messages, stamping the provider-set headers (§7, §3.4).

use async_trait::async_trait;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::message::{DEFAULT_PRIORITY, MAX_PRIORITY};
use crate::{DeliveryMode, Destination, Error, Message, Result};

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

    /// Stamps the provider-set headers on `message` for a send to `destination` now:
    /// destination, delivery mode, priority, timestamp, expiration, delivery time, message id;
    /// and resets redelivered and the delivery count. Every backend calls this on send.
    /// Returns the send time it used (ms since the epoch).
    ///
    /// Refuses, before changing anything, a message a receiver could not decode: an invalid
    /// destination or reply-to name ([`Error::InvalidDestination`]), or a map body with an
    /// empty entry name ([`Error::MessageFormat`]); see [`Message::validate`].
    pub fn stamp(
        &self,
        message: &mut Message,
        destination: &Destination,
        message_id: Option<Arc<str>>,
    ) -> Result<u64> {
        self.validate()?;
        destination.validate()?;
        message.validate_content(false)?;
        let now = now_millis();
        let expiration = self.expiration_at(now);
        let delivery_time = self.delivery_time_at(now);
        let h = message.header_mut();
        h.destination = Some(destination.clone());
        h.delivery_mode = self.delivery_mode;
        h.priority = self.priority;
        h.timestamp = if self.disable_timestamp { 0 } else { now };
        h.expiration = expiration;
        h.delivery_time = delivery_time;
        h.message_id = if self.disable_message_id {
            None
        } else {
            message_id
        };
        h.redelivered = false;
        h.delivery_count = 0;
        Ok(now)
    }

    /// `JMSExpiration` for a send at `now` (ms since the epoch): 0 (never) without a time to
    /// live, else `now` + the time to live rounded up to whole milliseconds, so a time to live
    /// above zero never expires at the send itself. Saturates at `u64::MAX` (never, in effect)
    /// instead of wrapping into the past.
    pub fn expiration_at(&self, now: u64) -> u64 {
        if self.time_to_live.is_zero() {
            0
        } else {
            now.saturating_add(ceil_millis(self.time_to_live))
        }
    }

    /// `JMSDeliveryTime` for a send at `now` (ms since the epoch): `now` + the delivery delay
    /// rounded up to whole milliseconds (never delivered early), saturating at `u64::MAX`.
    pub fn delivery_time_at(&self, now: u64) -> u64 {
        now.saturating_add(ceil_millis(self.delivery_delay))
    }
}

/// Whole milliseconds in `duration`, rounded up, saturating at `u64::MAX`.
fn ceil_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// Milliseconds since the Unix epoch, the unit of every JMS time header (saturating; 0 for a
/// clock before the epoch).
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Sends messages to a default destination or to one named per send.
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

    /// Closes the producer. Closing twice is fine.
    async fn close(&self) -> Result<()>;

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

/// Picks the destination of a send: the producer's default or the one given, never both.
pub fn resolve_destination<'a>(
    default: Option<&'a Destination>,
    given: Option<&'a Destination>,
) -> Result<&'a Destination> {
    match (default, given) {
        (Some(d), None) | (None, Some(d)) => Ok(d),
        (Some(_), Some(_)) => Err(Error::illegal_state(
            "this producer has a default destination; send without naming one",
        )),
        (None, None) => Err(Error::invalid_destination(
            "",
            "the producer has no default destination; name one per send",
        )),
    }
}
