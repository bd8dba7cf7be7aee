//! What a benchmark message carries: a [`Stamp`] in the first bytes of a bytes body, padded to
//! the workload's message size, and optionally the `key` property that selectors pick on.
//!
//! The stamp lives in the body rather than in properties because that is the cheapest honest
//! place: it costs no property-map allocation or lookup, so the runner measures the broker, not
//! its own bookkeeping — and every backend must carry the body bytes untouched anyway.

use bytes::Bytes;
use courier_api::{Body, Message, Result};

/// Name of the property that selector workloads filter on.
pub const KEY_PROPERTY: &str = "key";

/// Identity and send time of one benchmark message: which producer sent it, its place in that
/// producer's sequence, and when it was sent on the runner's [`crate::Clock`].
///
/// ```
/// use courier_bench::Stamp;
/// let stamp = Stamp { producer: 3, sequence: 41, sent_at_ns: 1_000 };
/// let body = stamp.payload(100);
/// assert_eq!(body.len(), 100);
/// assert_eq!(Stamp::read(&body), Some(stamp));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stamp {
    /// Index of the producer within its workload.
    pub producer: u32,
    /// Position in the producer's sequence, from 0.
    pub sequence: u64,
    /// Send time in nanoseconds since the runner's clock epoch.
    pub sent_at_ns: u64,
}

impl Stamp {
    /// Bytes the stamp occupies at the start of a body; the smallest message size a workload
    /// accepts.
    pub const LEN: usize = 4 + 8 + 8;

    /// Filler byte after the stamp.
    const FILL: u8 = 0xA5;

    /// A body of `size` bytes (at least [`Stamp::LEN`]) starting with the stamp, little-endian.
    pub fn payload(&self, size: usize) -> Bytes {
        let mut body = Vec::with_capacity(size.max(Self::LEN));
        body.extend_from_slice(&self.producer.to_le_bytes());
        body.extend_from_slice(&self.sequence.to_le_bytes());
        body.extend_from_slice(&self.sent_at_ns.to_le_bytes());
        body.resize(size.max(Self::LEN), Self::FILL);
        Bytes::from(body)
    }

    /// Reads the stamp at the start of `body`; `None` when it is too short to hold one.
    pub fn read(body: &[u8]) -> Option<Stamp> {
        let producer = u32::from_le_bytes(body.get(0..4)?.try_into().ok()?);
        let sequence = u64::from_le_bytes(body.get(4..12)?.try_into().ok()?);
        let sent_at_ns = u64::from_le_bytes(body.get(12..20)?.try_into().ok()?);
        Some(Stamp {
            producer,
            sequence,
            sent_at_ns,
        })
    }

    /// Reads the stamp of a received message and checks the rest of it: `None` (malformed)
    /// unless it has a stamped bytes body whose filler arrived byte for byte and, for
    /// properties, nothing but a `key` with a value the runner makes. So a backend that
    /// damages the body past the stamp, or mangles or invents properties, fails the delivery
    /// check instead of passing on its first 20 bytes. (Headers are not checked here: the
    /// raw-channel ceiling carries the same messages and has no broker to stamp them.)
    pub fn of(message: &Message) -> Option<Stamp> {
        let stamp = Self::of_body(message.body_bytes()?)?;
        let key_ok = match message.raw_property(KEY_PROPERTY) {
            None => message.properties().is_empty(),
            Some(courier_api::Value::String(key)) => key
                .strip_prefix('k')
                .is_some_and(|n| n.parse::<u32>().is_ok_and(|n| key_value(n) == **key)),
            Some(_) => false,
        };
        key_ok.then_some(stamp)
    }

    /// Reads the stamp at the start of `body` and checks that the filler after it arrived
    /// byte for byte: `None` (malformed) otherwise. The check of [`Stamp::of`] for a body
    /// that came without a [`Message`] around it (the raw-client baselines).
    pub fn of_body(body: &[u8]) -> Option<Stamp> {
        let stamp = Self::read(body)?;
        body[Self::LEN..]
            .iter()
            .all(|&b| b == Self::FILL)
            .then_some(stamp)
    }
}

/// The value of the `key` property for key index `key`: `k0`, `k1`, …
pub fn key_value(key: u32) -> String {
    format!("k{key}")
}

/// The selector that picks the messages of key index `key`: `key = 'k17'`.
pub fn key_selector(key: u32) -> String {
    format!("{KEY_PROPERTY} = '{}'", key_value(key))
}

/// The key index of a producer's `sequence`-th message when messages carry `keys` distinct
/// keys: keys go round by sequence, so every key gets every `keys`-th message.
pub fn key_of(sequence: u64, keys: u32) -> u32 {
    (sequence % u64::from(keys)) as u32
}

/// Builds benchmark messages: a stamped, padded bytes body and, for selector workloads, the
/// `key` property.
///
/// Keyed messages are cloned from one template per key, so they share their (read-only)
/// property map instead of allocating one per message — what a careful application does too.
#[derive(Debug, Clone)]
pub(crate) struct MessageMaker {
    size: usize,
    templates: Vec<Message>,
}

impl MessageMaker {
    /// Messages of `size` bytes, keyed when `keys` is given.
    pub fn new(size: usize, keys: Option<u32>) -> Result<Self> {
        let templates = match keys {
            Some(keys) => (0..keys)
                .map(|k| {
                    let mut m = Message::new();
                    m.set_property(KEY_PROPERTY, key_value(k))?;
                    Ok(m)
                })
                .collect::<Result<Vec<_>>>()?,
            None => Vec::new(),
        };
        Ok(MessageMaker { size, templates })
    }

    /// The message for `stamp`.
    pub fn make(&self, stamp: Stamp) -> Message {
        let body = Body::Bytes(stamp.payload(self.size));
        if self.templates.is_empty() {
            return Message::with_body(body);
        }
        let keys = self.templates.len() as u64;
        let mut message = self.templates[(stamp.sequence % keys) as usize].clone();
        message
            .set_body(body)
            .expect("a template message is never read-only");
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_short_bodies_are_refused() {
        let stamp = Stamp {
            producer: u32::MAX,
            sequence: u64::MAX - 1,
            sent_at_ns: 7,
        };
        assert_eq!(Stamp::read(&stamp.payload(0)), Some(stamp));
        assert_eq!(stamp.payload(3).len(), Stamp::LEN);
        assert_eq!(Stamp::read(&stamp.payload(64)[..Stamp::LEN - 1]), None);
    }

    #[test]
    fn keyed_messages_carry_their_key() {
        let maker = MessageMaker::new(32, Some(10)).unwrap();
        let m = maker.make(Stamp {
            producer: 0,
            sequence: 23,
            sent_at_ns: 0,
        });
        assert_eq!(m.property::<String>(KEY_PROPERTY).unwrap().unwrap(), "k3");
        assert_eq!(key_of(23, 10), 3);
        assert_eq!(key_selector(3), "key = 'k3'");
        assert_eq!(Stamp::of(&m).unwrap().sequence, 23);
    }

    #[test]
    fn damaged_messages_are_malformed() {
        let stamp = Stamp {
            producer: 1,
            sequence: 2,
            sent_at_ns: 3,
        };
        let received = |body: Vec<u8>, property: Option<(&str, &str)>| {
            let mut m = Message::bytes(body);
            if let Some((k, v)) = property {
                m.set_property(k, v).unwrap();
            }
            m
        };
        let good = stamp.payload(64).to_vec();
        assert_eq!(Stamp::of(&received(good.clone(), None)), Some(stamp));
        assert_eq!(
            Stamp::of(&received(good.clone(), Some(("key", "k7")))),
            Some(stamp)
        );
        let mut flipped = good.clone();
        flipped[40] ^= 1;
        assert_eq!(Stamp::of(&received(flipped, None)), None);
        assert_eq!(
            Stamp::of(&received(good.clone(), Some(("key", "k07")))),
            None
        );
        assert_eq!(
            Stamp::of(&received(good.clone(), Some(("extra", "x")))),
            None
        );
        assert_eq!(Stamp::of(&Message::text("stamp")), None);
    }
}
