//! Messages to AMQP and back, through the api's [`MessageParts`].
//!
//! The body bytes are the AMQP payload. Every JMS header field travels in the headers table
//! under its JMS name (`JMSMessageID`, `JMSTimestamp`, …), typed, so it round-trips exactly
//! (milliseconds, not the AMQP timestamp's seconds); a property can never collide with them,
//! as property names may not start with `JMS`. Properties are typed entries of the same table
//! (`t` bool, `b` i8, `s` i16, `I` i32, `l` i64, `f` f32, `d` f64, `S` string). The AMQP
//! properties are set too, for the broker and for other clients: delivery mode, priority,
//! `expiration` (the time to live left, in ms), message id, correlation id, type and
//! `reply-to` (the destination's text form).
//!
//! An expiration of 0 (never) is left out, and so is the sending connection's tag
//! (`x-courier-connection`, for no-local) on messages sent to a queue: fewer entries for
//! RabbitMQ and every consumer to parse.
//!
//! Keys starting with `x-` are RabbitMQ's (`x-delivery-count`, `x-death`) or this adapter's
//! (`x-courier-…`) and are never properties; entries of types no property has (a foreign
//! publisher's decimals, tables, arrays) are skipped on receipt.

use bytes::Bytes;
use courier_api::{
    BodyKind, DeliveryMode, Destination, Error, Message, MessageParts, Result, Value,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::BasicProperties;

/// The headers-table key naming the connection that sent a message (no-local).
pub(crate) const CONNECTION_KEY: &str = "x-courier-connection";
/// The headers-table key of the body kind.
const KIND_KEY: &str = "x-courier-body";
/// Set when the message has a body kind but no body bytes (a cleared text or object message).
const NO_BODY_KEY: &str = "x-courier-no-body";

/// A short string from `text`, or [`Error::InvalidArgument`] naming `what` when it is over
/// 255 bytes (lapin would panic on it).
pub(crate) fn short(what: &str, text: &str) -> Result<ShortString> {
    ShortString::try_new(text).map_err(|_| {
        Error::invalid_argument(format!(
            "{what} is over 255 bytes, the AMQP limit: {text:?}"
        ))
    })
}

/// The AMQP properties and payload of `message`, sent at `now` (ms since the epoch) on the
/// connection tagged `connection`.
pub(crate) fn encode(
    message: &Message,
    connection: &str,
    now: u64,
) -> Result<(BasicProperties, Bytes)> {
    let parts = message.to_parts();
    let mut table = FieldTable::default();
    for (name, value) in &parts.properties {
        let key = short("a property name", name)?;
        let value = match value {
            Value::Bool(b) => AMQPValue::Boolean(*b),
            Value::I8(n) => AMQPValue::ShortShortInt(*n),
            Value::I16(n) => AMQPValue::ShortInt(*n),
            Value::I32(n) => AMQPValue::LongInt(*n),
            Value::I64(n) => AMQPValue::LongLongInt(*n),
            Value::F32(n) => AMQPValue::Float(*n),
            Value::F64(n) => AMQPValue::Double(*n),
            Value::String(s) => AMQPValue::LongString(LongString::from(s.as_bytes())),
            other => {
                return Err(Error::format(format!(
                    "property {name:?} has type {}, which no property may have",
                    other.type_name()
                )))
            }
        };
        table.insert(key, value);
    }
    let text = |s: &str| AMQPValue::LongString(LongString::from(s.as_bytes()));
    let long = |n: u64| AMQPValue::LongLongInt(i64::try_from(n).unwrap_or(i64::MAX));
    if let Some(id) = &parts.message_id {
        table.insert("JMSMessageID".into(), text(id));
    }
    table.insert("JMSTimestamp".into(), long(parts.timestamp));
    if let Some(id) = &parts.correlation_id {
        table.insert("JMSCorrelationID".into(), text(id));
    }
    if let Some(reply_to) = &parts.reply_to {
        table.insert("JMSReplyTo".into(), text(&reply_to.to_string()));
    }
    if let Some(destination) = &parts.destination {
        table.insert("JMSDestination".into(), text(&destination.to_string()));
    }
    if let Some(t) = &parts.message_type {
        table.insert("JMSType".into(), text(t));
    }
    // Left out when it says nothing (each entry is parsed by RabbitMQ and every consumer): no
    // expiration reads back as 0, and the sender's tag only matters to no-local topic
    // subscribers.
    if parts.expiration != 0 {
        table.insert("JMSExpiration".into(), long(parts.expiration));
    }
    table.insert("JMSDeliveryTime".into(), long(parts.delivery_time));
    if !parts
        .destination
        .as_ref()
        .is_some_and(Destination::is_queue)
    {
        table.insert(CONNECTION_KEY.into(), text(connection));
    }
    if let Some(kind) = parts.body_kind {
        table.insert(KIND_KEY.into(), text(kind.as_str()));
        if parts.body.is_none() {
            table.insert(NO_BODY_KEY.into(), AMQPValue::Boolean(true));
        }
    }
    let mut properties = BasicProperties::default()
        .with_delivery_mode(match parts.delivery_mode {
            DeliveryMode::Persistent => 2,
            DeliveryMode::NonPersistent => 1,
        })
        .with_priority(parts.priority);
    // A delayed message carries no AMQP expiration: it would count in the delay queue (see
    // `delay`); its JMSExpiration is checked on receipt.
    if parts.expiration != 0 && parts.delivery_time <= now {
        let left = parts.expiration.saturating_sub(now).max(1);
        properties = properties.with_expiration(short("expiration", &left.to_string())?);
    }
    if let Some(id) = parts
        .message_id
        .as_deref()
        .and_then(|id| ShortString::try_new(id).ok())
    {
        properties = properties.with_message_id(id);
    }
    if let Some(id) = parts
        .correlation_id
        .as_deref()
        .and_then(|id| ShortString::try_new(id).ok())
    {
        properties = properties.with_correlation_id(id);
    }
    if let Some(t) = parts
        .message_type
        .as_deref()
        .and_then(|t| ShortString::try_new(t).ok())
    {
        properties = properties.with_type(t);
    }
    if let Some(r) = parts
        .reply_to
        .as_ref()
        .and_then(|r| ShortString::try_new(r.to_string()).ok())
    {
        properties = properties.with_reply_to(r);
    }
    if parts.timestamp != 0 {
        properties = properties.with_timestamp(parts.timestamp / 1000);
    }
    let properties = properties.with_headers(table);
    Ok((properties, parts.body.unwrap_or_default()))
}

/// What a delivery carries besides the message: who sent it and how often RabbitMQ counted
/// it delivered before.
#[derive(Debug)]
pub(crate) struct Decoded {
    /// The message, writable, with redelivered false and a delivery count of 0.
    pub message: Message,
    /// The tag of the sending connection, when a Courier client sent it.
    pub connection: Option<String>,
    /// `x-delivery-count` (deliveries before this one), where the queue type keeps it.
    pub delivery_count: Option<u32>,
}

/// Puts a delivery back together; a malformed one is [`Error::Decode`].
pub(crate) fn decode(properties: &BasicProperties, payload: Vec<u8>) -> Result<Decoded> {
    let empty = FieldTable::default();
    let table = properties.headers().as_ref().unwrap_or(&empty);
    let text = |key: &str| -> Result<Option<String>> {
        match table.inner().get(key) {
            None => Ok(None),
            Some(AMQPValue::LongString(s)) => String::from_utf8(s.as_bytes().to_vec())
                .map(Some)
                .map_err(|_| Error::Decode(format!("{key} is not UTF-8"))),
            Some(AMQPValue::ShortString(s)) => Ok(Some(s.as_str().to_owned())),
            Some(other) => Err(Error::Decode(format!(
                "{key} has the wrong type: {other:?}"
            ))),
        }
    };
    let number = |key: &str| -> Result<u64> {
        match table.inner().get(key) {
            None => Ok(0),
            Some(value) => integer(value)
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| Error::Decode(format!("{key} is not a time: {value:?}"))),
        }
    };
    let destination = |key: &str| -> Result<Option<Destination>> {
        text(key)?
            .map(|t| Destination::parse(&t).map_err(|e| Error::Decode(e.to_string())))
            .transpose()
    };
    let mut props = Vec::new();
    for (key, value) in table.inner() {
        let name = key.as_str();
        if name.starts_with("JMS") && name != "JMSXGroupID" && name != "JMSXGroupSeq"
            || name.starts_with("x-")
        {
            continue;
        }
        let value = match value {
            AMQPValue::Boolean(b) => Value::Bool(*b),
            AMQPValue::ShortShortInt(n) => Value::I8(*n),
            AMQPValue::ShortInt(n) => Value::I16(*n),
            AMQPValue::LongInt(n) => Value::I32(*n),
            AMQPValue::LongLongInt(n) => Value::I64(*n),
            AMQPValue::Float(n) => Value::F32(*n),
            AMQPValue::Double(n) => Value::F64(*n),
            AMQPValue::LongString(s) => match String::from_utf8(s.as_bytes().to_vec()) {
                Ok(s) => Value::from(s),
                Err(_) => continue,
            },
            AMQPValue::ShortString(s) => Value::from(s.as_str()),
            _ => continue,
        };
        props.push((name.to_owned(), value));
    }
    let body_kind = text(KIND_KEY)?
        .map(|k| BodyKind::parse(&k).map_err(|e| Error::Decode(e.to_string())))
        .transpose()?;
    let no_body = matches!(
        table.inner().get(NO_BODY_KEY),
        Some(AMQPValue::Boolean(true))
    );
    let (body_kind, body) = match body_kind {
        // A foreign publisher's message: its payload as bytes.
        None if !table.contains_key("JMSTimestamp") => (Some(BodyKind::Bytes), Some(payload)),
        None => (None, None),
        Some(kind) if no_body => (Some(kind), None),
        Some(kind) => (Some(kind), Some(payload)),
    };
    let parts = MessageParts {
        message_id: text("JMSMessageID")?.map(Into::into),
        timestamp: number("JMSTimestamp")?,
        correlation_id: text("JMSCorrelationID")?.map(Into::into),
        reply_to: destination("JMSReplyTo")?,
        destination: destination("JMSDestination")?,
        delivery_mode: match properties.delivery_mode() {
            Some(2) => DeliveryMode::Persistent,
            _ => DeliveryMode::NonPersistent,
        },
        message_type: text("JMSType")?.map(Into::into),
        expiration: number("JMSExpiration")?,
        priority: properties.priority().unwrap_or(4).min(9),
        delivery_time: number("JMSDeliveryTime")?,
        properties: props,
        body_kind,
        body: body.map(Bytes::from),
    };
    let message = Message::from_parts(parts)?;
    let delivery_count = table
        .inner()
        .get("x-delivery-count")
        .and_then(integer)
        .and_then(|n| u32::try_from(n).ok());
    Ok(Decoded {
        message,
        connection: text(CONNECTION_KEY).ok().flatten(),
        delivery_count,
    })
}

/// An integer header value of any width.
fn integer(value: &AMQPValue) -> Option<i64> {
    Some(match value {
        AMQPValue::ShortShortInt(n) => i64::from(*n),
        AMQPValue::ShortShortUInt(n) => i64::from(*n),
        AMQPValue::ShortInt(n) => i64::from(*n),
        AMQPValue::ShortUInt(n) => i64::from(*n),
        AMQPValue::LongInt(n) => i64::from(*n),
        AMQPValue::LongUInt(n) => i64::from(*n),
        AMQPValue::LongLongInt(n) => *n,
        AMQPValue::Timestamp(n) => i64::try_from(*n).ok()?,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn every_property_type_and_header_round_trips() {
        let mut map = BTreeMap::new();
        map.insert("k".to_string(), Value::from('c'));
        for mut m in [
            Message::text("t"),
            Message::bytes(&b"\0\x01"[..]),
            Message::map(map),
            Message::stream(vec![Value::from(1.5_f32)]),
            Message::new(),
        ] {
            m.set_property("b", true).unwrap();
            m.set_property("i8", -3_i8).unwrap();
            m.set_property("i16", -300_i16).unwrap();
            m.set_property("i32", i32::MIN).unwrap();
            m.set_property("i64", i64::MAX).unwrap();
            m.set_property("f32", f32::from_bits(0x7fc0_0001)).unwrap();
            m.set_property("f64", -0.0_f64).unwrap();
            m.set_property("s", "ünï").unwrap();
            m.set_correlation_id("c-1").unwrap();
            m.set_reply_to(Some(Destination::topic("replies")));
            m.set_message_type(Some("kind"));
            let (properties, body) = encode(&m, "conn-1", 0).unwrap();
            let back = decode(&properties, body.to_vec()).unwrap();
            assert_eq!(back.connection.as_deref(), Some("conn-1"));
            // Compared encoded: bit for bit, NaN payloads included.
            assert_eq!(back.message.encode(), m.encode());
        }
    }

    #[test]
    fn a_queue_message_leaves_out_the_sender_tag_and_a_zero_expiration() {
        for (destination, tagged) in [
            (Destination::queue("q"), false),
            (Destination::topic("t"), true),
        ] {
            let mut parts = Message::text("x").to_parts();
            parts.destination = Some(destination.clone());
            parts.timestamp = 1_000;
            parts.delivery_time = 1_000;
            let m = Message::from_parts(parts).unwrap();
            let (properties, body) = encode(&m, "conn-1", 1_000).unwrap();
            let headers = properties.headers().clone().unwrap();
            assert!(!headers.contains_key("JMSExpiration"), "{destination}");
            assert_eq!(
                headers.contains_key(CONNECTION_KEY),
                tagged,
                "{destination}"
            );
            let back = decode(&properties, body.to_vec()).unwrap();
            assert_eq!(back.connection.is_some(), tagged);
            assert_eq!(back.message.expiration(), 0);
            assert_eq!(back.message.encode(), m.encode());
        }
    }

    #[test]
    fn cleared_text_is_not_an_empty_text() {
        let mut m = Message::text("x");
        m.clear_body();
        let (p, b) = encode(&m, "c", 0).unwrap();
        assert_eq!(
            decode(&p, b.to_vec()).unwrap().message.to_parts(),
            m.to_parts()
        );
        let m = Message::text("");
        let (p, b) = encode(&m, "c", 0).unwrap();
        assert_eq!(
            decode(&p, b.to_vec()).unwrap().message.body_text(),
            Some("")
        );
    }

    #[test]
    fn hostile_headers_are_decode_errors_or_skipped() {
        let mut table = FieldTable::default();
        table.insert("JMSTimestamp".into(), AMQPValue::LongLongInt(-5));
        let p = BasicProperties::default().with_headers(table);
        assert!(matches!(decode(&p, vec![]), Err(Error::Decode(_))));
        let mut table = FieldTable::default();
        table.insert("JMSTimestamp".into(), AMQPValue::LongLongInt(5));
        table.insert(KIND_KEY.into(), AMQPValue::LongString("map".into()));
        let p = BasicProperties::default().with_headers(table);
        assert!(decode(&p, vec![0xff, 0xff, 0xff]).is_err());
        let mut table = FieldTable::default();
        table.insert("weird".into(), AMQPValue::Void);
        let p = BasicProperties::default().with_headers(table);
        let foreign = decode(&p, b"raw".to_vec()).unwrap();
        assert!(foreign.message.properties().is_empty());
        assert_eq!(
            foreign.message.body_bytes().map(|b| &b[..]),
            Some(&b"raw"[..])
        );
    }
}
