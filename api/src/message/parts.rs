//! A message taken apart into headers, typed properties and body bytes, for backends that
//! store those separately instead of Courier's one-blob [format](super::format): an AMQP
//! backend puts the properties in the AMQP headers table (its typed values hold every
//! property type: bool, i8, i16, i32, i64, f32, f64, long string), a Redis backend puts each
//! part in a stream entry or hash field (using [`Value::to_field_bytes`] for the values and
//! the `queue://name` text form of [`Destination`]).
//!
//! [`Message::to_parts`] and [`Message::from_parts`] round-trip every message exactly, float
//! bits included; per-delivery state (`redelivered`, the delivery count) is not a part, as it
//! is not in the encoding either.
//!
//! # Body bytes (frozen, version 1)
//!
//! | kind   | body bytes                                                                   |
//! |--------|------------------------------------------------------------------------------|
//! | none   | none: a message without a body                                                |
//! | text   | the UTF-8 text; none for a cleared text message (it holds no text, not `""`) |
//! | bytes  | the bytes as they are                                                         |
//! | map    | the map's payload in message format version 1: varint count, then each entry as name (varint length, UTF-8) and value (varint tag, value) in strictly increasing name order |
//! | stream | the stream's payload in message format version 1: varint count, then each value |
//! | object | the object's payload in message format version 1: type name (varint length, UTF-8), then JSON (varint length, bytes); none for a cleared object message |
//!
//! The value encoding inside map and stream bytes is the one of [`super::format`] (postcard).
//!
//! # Mapping the parts
//!
//! - AMQP 0-9-1 headers table: each property type has its own field type (`t` bool, `b` i8,
//!   `s` i16, `I` i32, `l` i64, `f` f32, `d` f64, `S` long string), so every property
//!   round-trips exactly. Table keys are short strings (at most 255 bytes), which a longer
//!   property name does not fit; headers of other types that a foreign publisher set
//!   (decimal, timestamp, byte array, nested table, unsigned) have no property type.
//! - Untyped byte fields (Redis): [`Value::to_field_bytes`] for each property, the
//!   [`Destination`] text form (`queue://name`, `topic://name`, `temp-queue://name`,
//!   `temp-topic://name`, read back by [`Destination::parse`]),
//!   [`DeliveryMode::as_str`] / [`DeliveryMode::parse`] and [`BodyKind::as_str`] /
//!   [`BodyKind::parse`] for the mode and the kind, and the body bytes as they are.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::{DeliveryMode, Header, Message};
use crate::body::{Body, BodyKind, ObjectBody};
use crate::properties::Properties;
use crate::{Destination, Error, Result, Value};

/// A message as separate parts: the JMS header fields that travel with it, its properties as
/// typed values, its body kind and body bytes. Made by [`Message::to_parts`], turned back by
/// [`Message::from_parts`].
///
/// ```
/// use courier_api::{BodyKind, Message, Value};
/// let mut m = Message::text("hello");
/// m.set_property("attempt", 3_i32).unwrap();
/// let parts = m.to_parts();
/// assert_eq!(parts.properties, [("attempt".to_string(), Value::from(3_i32))]);
/// assert_eq!(parts.body_kind, Some(BodyKind::Text));
/// assert_eq!(parts.body.as_deref(), Some(&b"hello"[..]));
/// assert_eq!(Message::from_parts(parts).unwrap(), m);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MessageParts {
    /// `JMSMessageID`.
    pub message_id: Option<Arc<str>>,
    /// `JMSTimestamp`, ms since the epoch; 0 = unset.
    pub timestamp: u64,
    /// `JMSCorrelationID`.
    pub correlation_id: Option<Arc<str>>,
    /// `JMSReplyTo`.
    pub reply_to: Option<Destination>,
    /// `JMSDestination`.
    pub destination: Option<Destination>,
    /// `JMSDeliveryMode`.
    pub delivery_mode: DeliveryMode,
    /// `JMSType`.
    pub message_type: Option<Arc<str>>,
    /// `JMSExpiration`, ms since the epoch; 0 = never.
    pub expiration: u64,
    /// `JMSPriority`, 0–9.
    pub priority: u8,
    /// `JMSDeliveryTime`, ms since the epoch.
    pub delivery_time: u64,
    /// The properties the application set, in name order ([`Message::to_parts`] writes them
    /// so; [`Message::from_parts`] takes them in any order, refusing duplicates).
    pub properties: Vec<(String, Value)>,
    /// The message's kind ([`Message::body_kind`]); `None` for a message without a body.
    pub body_kind: Option<BodyKind>,
    /// The body bytes (module docs); `None` when there is no body, or a cleared text or
    /// object message holds none.
    pub body: Option<Bytes>,
}

impl Message {
    /// The message as separate parts, for a backend that stores headers, properties and body
    /// apart (see [`MessageParts`]). Per-delivery state is not a part. A message that breaks
    /// an invariant ([`Message::validate`]) makes parts that [`Message::from_parts`] refuses.
    pub fn to_parts(&self) -> MessageParts {
        let h = &self.header;
        let body = match &self.body {
            Body::Empty => None,
            Body::Text(text) => Some(Bytes::copy_from_slice(text.as_bytes())),
            Body::Bytes(bytes) => Some(bytes.clone()),
            Body::Map(map) => Some(postcard_bytes(&**map)),
            Body::Stream(values) => Some(postcard_bytes(&**values)),
            Body::Object(object) => Some(postcard_bytes(&**object)),
        };
        MessageParts {
            message_id: h.message_id.clone(),
            timestamp: h.timestamp,
            correlation_id: h.correlation_id.clone(),
            reply_to: h.reply_to.clone(),
            destination: h.destination.clone(),
            delivery_mode: h.delivery_mode,
            message_type: h.message_type.clone(),
            expiration: h.expiration,
            priority: h.priority,
            delivery_time: h.delivery_time,
            properties: self
                .properties()
                .iter()
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
            body_kind: self.body_kind(),
            body,
        }
    }

    /// Puts a message back together from its parts. Checks everything [`Message::decode`]
    /// checks ([`Message::validate`]: priority, destination names, property names and types,
    /// map entry names, an object's JSON) and the body bytes against the body kind; any
    /// violation, and a property named twice, is [`Error::Decode`]. Never panics. The message
    /// is writable, with `redelivered` false and a delivery count of 0 (a backend sets both on
    /// delivery).
    pub fn from_parts(parts: MessageParts) -> Result<Message> {
        let MessageParts {
            message_id,
            timestamp,
            correlation_id,
            reply_to,
            destination,
            delivery_mode,
            message_type,
            expiration,
            priority,
            delivery_time,
            mut properties,
            body_kind,
            body,
        } = parts;
        properties.sort_by(|(a, _), (b, _)| a.cmp(b));
        if let Some(pair) = properties.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(Error::Decode(format!(
                "property {:?} is given twice",
                pair[0].0
            )));
        }
        let (body, empty_kind) = body_from_parts(body_kind, body)?;
        let message = Message {
            header: Header {
                message_id,
                timestamp,
                correlation_id,
                reply_to,
                destination,
                delivery_mode,
                redelivered: false,
                message_type,
                expiration,
                priority,
                delivery_time,
                delivery_count: 0,
            },
            properties: (!properties.is_empty())
                .then(|| Arc::new(properties.into_iter().collect::<Properties>())),
            body,
            empty_kind,
            read_only_properties: false,
            read_only_body: false,
        };
        message
            .validate()
            .map_err(|e| Error::Decode(e.to_string()))?;
        Ok(message)
    }
}

impl From<&Message> for MessageParts {
    /// [`Message::to_parts`].
    fn from(message: &Message) -> Self {
        message.to_parts()
    }
}

impl TryFrom<MessageParts> for Message {
    type Error = Error;

    /// [`Message::from_parts`].
    fn try_from(parts: MessageParts) -> Result<Message> {
        Message::from_parts(parts)
    }
}

/// The body and the kind kept for an emptied body, from a kind and body bytes.
fn body_from_parts(
    kind: Option<BodyKind>,
    bytes: Option<Bytes>,
) -> Result<(Body, Option<BodyKind>)> {
    let Some(kind) = kind else {
        return match bytes {
            None => Ok((Body::Empty, None)),
            Some(_) => Err(Error::Decode(
                "body bytes are given for a message without a body kind".into(),
            )),
        };
    };
    let Some(bytes) = bytes else {
        return match kind {
            BodyKind::Text | BodyKind::Object => Ok((Body::Empty, Some(kind))),
            other => Err(Error::Decode(format!(
                "a {} message needs body bytes (an empty one has an empty {0})",
                other.as_str()
            ))),
        };
    };
    let body = match kind {
        BodyKind::Text => match std::str::from_utf8(&bytes) {
            Ok(text) => Body::Text(Arc::from(text)),
            Err(e) => return Err(Error::Decode(format!("a text body is not UTF-8: {e}"))),
        },
        BodyKind::Bytes => Body::Bytes(bytes),
        BodyKind::Map => {
            let entries: Vec<(String, Value)> = from_postcard(&bytes, "map")?;
            if let Some(pair) = entries.windows(2).find(|pair| pair[0].0 >= pair[1].0) {
                return Err(Error::Decode(format!(
                    "map entry {:?} is duplicated or out of name order",
                    pair[1].0
                )));
            }
            Body::Map(Arc::new(entries.into_iter().collect::<BTreeMap<_, _>>()))
        }
        BodyKind::Stream => Body::Stream(Arc::new(from_postcard(&bytes, "stream")?)),
        BodyKind::Object => Body::Object(Box::new(from_postcard::<ObjectBody>(&bytes, "object")?)),
    };
    Ok((body, None))
}

/// The postcard encoding of a body payload, as message format version 1 writes it.
fn postcard_bytes<T: serde::Serialize + ?Sized>(value: &T) -> Bytes {
    // Serialising plain data into a Vec cannot fail.
    Bytes::from(postcard::to_allocvec(value).expect("encoding a body into memory cannot fail"))
}

/// Reads a whole body payload; trailing bytes are an error.
fn from_postcard<T: DeserializeOwned>(bytes: &[u8], kind: &str) -> Result<T> {
    let (value, tail) = postcard::take_from_bytes(bytes).map_err(|e| {
        Error::Decode(format!(
            "a {kind} body does not decode: {}",
            super::format::decode_error(e)
        ))
    })?;
    if !tail.is_empty() {
        return Err(Error::Decode(format!(
            "{} trailing bytes after a {kind} body",
            tail.len()
        )));
    }
    Ok(value)
}
