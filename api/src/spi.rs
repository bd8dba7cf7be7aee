//! The service-provider interface: what a backend author uses and an application does not.
//!
//! These helpers are the contract between Courier's user api and its backends. They change
//! provider-set state of a [`Message`] (headers, read-only flags) and stamp a send, so they
//! are kept off the user types: an application sets none of this itself.
//!
//! # Stamping a send: the client part and the broker part
//!
//! A send stamps the JMS provider-set headers in two steps, because they come from two
//! places:
//!
//! - [`stamp_client`], on the client, before the message leaves: checks the options, the
//!   destination and the content, then sets `JMSDestination`, `JMSDeliveryMode`,
//!   `JMSPriority` and `JMSMessageID`, and resets the per-delivery state (`JMSRedelivered`,
//!   `JMSXDeliveryCount`).
//! - [`stamp_times`], with the **broker's** clock: `JMSTimestamp`, `JMSExpiration` (from the
//!   time to live) and `JMSDeliveryTime` (from the delivery delay). A wire backend sends the
//!   time to live, delivery delay and disable-timestamp flag beside the message and its broker
//!   applies this part on receipt, so expiry and delivery delay are judged on one clock and
//!   a skewed client clock cannot make a message expire early or be delivered late.
//!
//! An in-process backend (the embedded broker) shares the broker's clock and calls both, or
//! [`stamp`], which does both in one go.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{Body, Destination, Error, Header, Message, Result, SendOptions};

/// All header fields of `message`, writable: a backend stamps provider-set fields and
/// per-delivery state (`redelivered`, `delivery_count`) through this.
pub fn header_mut(message: &mut Message) -> &mut Header {
    message.header_mut()
}

/// Marks `message` as delivered: its properties and body become read-only (§3.10). A backend
/// calls this on every message it hands to a consumer or browser.
pub fn mark_received(message: &mut Message) {
    message.mark_received();
}

/// The body [`crate::Consumer::receive_body`] returns for `message`: text, bytes, map and
/// object bodies qualify; a message without a body or with a stream body is
/// [`Error::MessageFormat`], and the backend must then leave the message unacknowledged
/// (JMS 2.0 `receiveBody`).
pub fn body_for_receive_body(message: &Message) -> Result<Body> {
    match message.body() {
        Body::Empty => Err(Error::format(
            "receive_body: the message has no body (use receive for plain messages)",
        )),
        Body::Stream(_) => Err(Error::format(
            "receive_body: a stream body cannot be returned whole (use receive)",
        )),
        body => Ok(body.clone()),
    }
}

/// Milliseconds since the Unix epoch, the unit of every JMS time header (saturating; 0 for a
/// clock before the epoch).
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
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

/// The client part of stamping a send (see the module docs): checks `options` (priority
/// 0–9), `destination` and the message content, then sets destination, delivery mode,
/// priority and message id (`None` when the options disable ids) and resets redelivered and
/// the delivery count. Leaves the time headers to [`stamp_times`].
///
/// Refuses, before changing anything, a message a receiver could not decode: an invalid
/// destination or reply-to name ([`Error::InvalidDestination`]), or a map body with an empty
/// entry name ([`Error::MessageFormat`]).
#[inline]
pub fn stamp_client(
    message: &mut Message,
    destination: &Destination,
    options: &SendOptions,
    message_id: Option<Arc<str>>,
) -> Result<()> {
    options.validate()?;
    destination.validate()?;
    message.validate_content(false)?;
    let h = message.header_mut();
    h.destination = Some(destination.clone());
    h.delivery_mode = options.delivery_mode;
    h.priority = options.priority;
    h.message_id = if options.disable_message_id {
        None
    } else {
        message_id
    };
    h.redelivered = false;
    h.delivery_count = 0;
    Ok(())
}

/// The broker part of stamping a send (see the module docs), at `broker_now` (ms since the
/// epoch, the broker's clock): `JMSTimestamp` (0 when `disable_timestamp`), `JMSExpiration`
/// from `time_to_live` ([`expiration_at`]) and `JMSDeliveryTime` from `delivery_delay`
/// ([`delivery_time_at`]).
#[inline]
pub fn stamp_times(
    message: &mut Message,
    time_to_live: Duration,
    delivery_delay: Duration,
    disable_timestamp: bool,
    broker_now: u64,
) {
    let h = message.header_mut();
    h.timestamp = if disable_timestamp { 0 } else { broker_now };
    h.expiration = expiration_at(time_to_live, broker_now);
    h.delivery_time = delivery_time_at(delivery_delay, broker_now);
}

/// Both parts of stamping a send, for a backend that shares the broker's clock: the
/// [`stamp_client`] part, then the [`stamp_times`] part at [`now_millis`]. Returns the send
/// time it used (ms since the epoch).
#[inline]
pub fn stamp(
    message: &mut Message,
    destination: &Destination,
    options: &SendOptions,
    message_id: Option<Arc<str>>,
) -> Result<u64> {
    stamp_client(message, destination, options, message_id)?;
    let now = now_millis();
    stamp_times(
        message,
        options.time_to_live,
        options.delivery_delay,
        options.disable_timestamp,
        now,
    );
    Ok(now)
}

/// `JMSExpiration` for a send at `now` (ms since the epoch): 0 (never) without a time to
/// live, else `now` + the time to live rounded up to whole milliseconds, so a time to live
/// above zero never expires at the send itself. Saturates at `u64::MAX` (never, in effect)
/// instead of wrapping into the past.
pub fn expiration_at(time_to_live: Duration, now: u64) -> u64 {
    if time_to_live.is_zero() {
        0
    } else {
        now.saturating_add(ceil_millis(time_to_live))
    }
}

/// `JMSDeliveryTime` for a send at `now` (ms since the epoch): `now` + the delivery delay
/// rounded up to whole milliseconds (never delivered early), saturating at `u64::MAX`.
pub fn delivery_time_at(delivery_delay: Duration, now: u64) -> u64 {
    now.saturating_add(ceil_millis(delivery_delay))
}

/// Whole milliseconds in `duration`, rounded up, saturating at `u64::MAX`.
fn ceil_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// A producer's `JMSMessageID`s: a prefix unique to the producer (the backend makes it once,
/// e.g. `ID:<uuid>-`) followed by a counter of its sends. Made without a system call or a
/// formatter per message: the counter is formatted on the stack and the id copied into one
/// allocation.
///
/// ```
/// use courier_api::spi::MessageIds;
///
/// let ids = MessageIds::new("ID:p7-");
/// assert_eq!(&*ids.next(), "ID:p7-0");
/// assert_eq!(&*ids.next(), "ID:p7-1");
/// ```
#[derive(Debug)]
pub struct MessageIds {
    prefix: String,
    next: std::sync::atomic::AtomicU64,
}

impl MessageIds {
    /// Ids under `prefix`, counting from 0.
    pub fn new(prefix: impl Into<String>) -> Self {
        MessageIds {
            prefix: prefix.into(),
            next: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The prefix every id starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The next id: the prefix and the counter in decimal (at most 20 digits more).
    pub fn next(&self) -> Arc<str> {
        /// Ids up to this long are assembled on the stack.
        const STACK: usize = 128;
        let mut n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
        let digits = &digits[start..];
        let prefix = self.prefix.as_bytes();
        let len = prefix.len() + digits.len();
        if len > STACK {
            let mut id = String::with_capacity(len);
            id.push_str(&self.prefix);
            id.extend(digits.iter().map(|d| char::from(*d)));
            return Arc::from(id);
        }
        let mut id = [0u8; STACK];
        id[..prefix.len()].copy_from_slice(prefix);
        id[prefix.len()..len].copy_from_slice(digits);
        // A str prefix followed by ASCII digits is a str.
        Arc::from(std::str::from_utf8(&id[..len]).unwrap_or(""))
    }
}

#[cfg(test)]
mod message_id_tests {
    use super::MessageIds;

    #[test]
    fn ids_count_from_zero_under_their_prefix_whatever_its_length() {
        let ids = MessageIds::new("ID:x-");
        assert_eq!(&*ids.next(), "ID:x-0");
        ids.next
            .store(u64::MAX, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(&*ids.next(), format!("ID:x-{}", u64::MAX));
        let long = format!("ID:{}-", "é".repeat(80));
        let ids = MessageIds::new(long.clone());
        assert_eq!(&*ids.next(), format!("{long}0"));
        assert_eq!(&*ids.next(), format!("{long}1"));
    }
}
