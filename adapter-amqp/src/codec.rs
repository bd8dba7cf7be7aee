//! Messages to AMQP and back, through the api's [`MessageParts`].
//!
//! The body bytes are the AMQP payload. Each JMS header field travels once, where it
//! round-trips exactly:
//! - in an AMQP property where one holds it: delivery mode, priority, and message id,
//!   correlation id and type when they fit a short string (255 bytes; a longer one goes in the
//!   table under its JMS name);
//! - as the routing key: `JMSDestination` of a message sent straight to a (non-temporary)
//!   queue is that queue, the routing key it was published under;
//! - otherwise in the headers table under its JMS name (`JMSTimestamp`, `JMSReplyTo`,
//!   `JMSDestination` of topics, temporary queues and delayed messages, …), typed.
//!   `JMSTimestamp` is always there: it is in milliseconds, where the AMQP timestamp (set too,
//!   for other clients) holds seconds, and it marks a Courier message.
//!
//! Left out as implied: an expiration of 0 (never), a `JMSDeliveryTime` equal to the
//! timestamp (no delay), and the sending connection's tag (`x-courier-connection`, for
//! no-local) on messages sent to a queue. A queue message's content header is about 111 bytes
//! (286 when every field was in the table too): less for RabbitMQ to parse and store, and for
//! every consumer to decode. A message in the earlier form, every field in the table, still
//! decodes: the table wins over the properties and the routing key.
//!
//! A property can never collide with the JMS names, as property names may not start with
//! `JMS`. Properties are typed entries of the same table (`t` bool, `b` i8, `s` i16, `I` i32,
//! `l` i64, `f` f32, `d` f64, `S` string). The AMQP `expiration` (the time to live left, in
//! ms) and `reply-to` (the destination's text form) are set too, for the broker and for other
//! clients.
//!
//! Keys starting with `x-` are RabbitMQ's (`x-delivery-count`, `x-death`) or this adapter's
//! (`x-courier-…`) and are never properties; entries of types no property has (a foreign
//! publisher's decimals, tables, arrays) are skipped on receipt.

use bytes::Bytes;
use courier_api::{
    BodyKind, DeliveryMode, Destination, DestinationKind, Error, Message, MessageParts, Result,
    Value,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::BasicProperties;
use std::sync::Arc;

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
    // A field an AMQP property holds exactly (a short string, up to 255 bytes) travels only
    // there; a longer one in the table.
    let property = |value: Option<&Arc<str>>| value.and_then(|v| ShortString::try_new(&**v).ok());
    let message_id = property(parts.message_id.as_ref());
    let correlation_id = property(parts.correlation_id.as_ref());
    let message_type = property(parts.message_type.as_ref());
    if let (Some(id), None) = (&parts.message_id, &message_id) {
        table.insert("JMSMessageID".into(), text(id));
    }
    // Always there: it marks a Courier message (a foreign one's payload decodes as bytes).
    table.insert("JMSTimestamp".into(), long(parts.timestamp));
    if let (Some(id), None) = (&parts.correlation_id, &correlation_id) {
        table.insert("JMSCorrelationID".into(), text(id));
    }
    if let Some(reply_to) = &parts.reply_to {
        table.insert("JMSReplyTo".into(), text(&reply_to.to_string()));
    }
    let delayed = parts.delivery_time > now;
    if let Some(destination) = &parts.destination {
        // A queue's name is the routing key of a message published straight to it.
        if destination.kind() != DestinationKind::Queue || delayed {
            table.insert("JMSDestination".into(), text(&destination.to_string()));
        }
    }
    if let (Some(t), None) = (&parts.message_type, &message_type) {
        table.insert("JMSType".into(), text(t));
    }
    // Left out when it says nothing (each entry is parsed by RabbitMQ and every consumer): no
    // expiration reads back as 0, a delivery time equal to the timestamp (no delay) as the
    // timestamp, and the sender's tag only matters to no-local topic subscribers.
    if parts.expiration != 0 {
        table.insert("JMSExpiration".into(), long(parts.expiration));
    }
    if parts.delivery_time != parts.timestamp {
        table.insert("JMSDeliveryTime".into(), long(parts.delivery_time));
    }
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
    if parts.expiration != 0 && !delayed {
        let left = parts.expiration.saturating_sub(now).max(1);
        properties = properties.with_expiration(short("expiration", &left.to_string())?);
    }
    if let Some(id) = message_id {
        properties = properties.with_message_id(id);
    }
    if let Some(id) = correlation_id {
        properties = properties.with_correlation_id(id);
    }
    if let Some(t) = message_type {
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

/// Puts a delivery back together; a malformed one is [`Error::Decode`]. `routing_key` is the
/// delivery's: the queue a Courier message was sent to when it carries no `JMSDestination`.
pub(crate) fn decode(
    properties: &BasicProperties,
    payload: Vec<u8>,
    routing_key: &str,
) -> Result<Decoded> {
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
    // A Courier message always has JMSTimestamp; fields it left out of the table are in the
    // AMQP properties or implied (see `encode`). Older Courier messages have every field in
    // the table, which wins. A foreign message's own properties are not JMS fields.
    let courier = table.contains_key("JMSTimestamp");
    let (body_kind, body) = match body_kind {
        // A foreign publisher's message: its payload as bytes.
        None if !courier => (Some(BodyKind::Bytes), Some(payload)),
        None => (None, None),
        Some(kind) if no_body => (Some(kind), None),
        Some(kind) => (Some(kind), Some(payload)),
    };
    let implied = |header: Option<String>, property: Option<&ShortString>| match header {
        None if courier => property.map(|p| p.as_str().into()),
        other => other.map(Into::into),
    };
    let timestamp = number("JMSTimestamp")?;
    let sent_to = match destination("JMSDestination")? {
        None if courier && !routing_key.is_empty() => Some(Destination::queue(routing_key)),
        other => other,
    };
    let delivery_time = match table.inner().get("JMSDeliveryTime") {
        None if courier => timestamp,
        _ => number("JMSDeliveryTime")?,
    };
    let parts = MessageParts {
        message_id: implied(text("JMSMessageID")?, properties.message_id().as_ref()),
        timestamp,
        correlation_id: implied(
            text("JMSCorrelationID")?,
            properties.correlation_id().as_ref(),
        ),
        reply_to: destination("JMSReplyTo")?,
        destination: sent_to,
        delivery_mode: match properties.delivery_mode() {
            Some(2) => DeliveryMode::Persistent,
            _ => DeliveryMode::NonPersistent,
        },
        message_type: implied(text("JMSType")?, properties.kind().as_ref()),
        expiration: number("JMSExpiration")?,
        priority: properties.priority().unwrap_or(4).min(9),
        delivery_time,
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
            let back = decode(&properties, body.to_vec(), "").unwrap();
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
            let back = decode(&properties, body.to_vec(), destination.name()).unwrap();
            assert_eq!(back.connection.is_some(), tagged);
            assert_eq!(back.message.expiration(), 0);
            assert_eq!(back.message.encode(), m.encode());
        }
    }

    /// A message as a send stamps it: to `destination` at `now`, with `delay` ms of delivery
    /// delay.
    fn sent(destination: Destination, now: u64, delay: u64) -> Message {
        let mut parts = Message::bytes(vec![7_u8; 1024]).to_parts();
        parts.destination = Some(destination);
        parts.message_id = Some(format!("ID:{}", "0123456789abcdef".repeat(2)).into());
        parts.timestamp = now;
        parts.delivery_time = now + delay;
        parts.delivery_mode = DeliveryMode::Persistent;
        Message::from_parts(parts).unwrap()
    }

    /// Bytes of `table` on the wire (AMQP 0-9-1 field table, with the types `encode` writes).
    fn table_bytes(table: &FieldTable) -> usize {
        4 + table
            .inner()
            .iter()
            .map(|(key, value)| {
                1 + key.as_str().len()
                    + 1
                    + match value {
                        AMQPValue::LongString(s) => 4 + s.as_bytes().len(),
                        AMQPValue::LongLongInt(_) => 8,
                        AMQPValue::Boolean(_) => 1,
                        other => panic!("unexpected {other:?}"),
                    }
            })
            .sum::<usize>()
    }

    /// Bytes of the content header frame's payload of `p` (class, weight, body size, flags,
    /// then the properties `encode` sets).
    fn header_bytes(p: &BasicProperties) -> usize {
        let short = |s: &Option<ShortString>| s.as_ref().map_or(0, |s| 1 + s.as_str().len());
        12 + 2
            + p.delivery_mode().map_or(0, |_| 1)
            + p.priority().map_or(0, |_| 1)
            + p.timestamp().map_or(0, |_| 8)
            + short(p.message_id())
            + short(p.correlation_id())
            + short(p.kind())
            + short(p.reply_to())
            + short(p.expiration())
            + p.headers().as_ref().map_or(0, table_bytes)
    }

    #[test]
    fn a_queue_message_carries_only_what_amqp_does_not() {
        let now = 1_764_000_000_123;
        let queue = Destination::queue("queue-4x4-100b-queue-0123456789abcdef");
        let m = sent(queue.clone(), now, 0);
        let (properties, body) = encode(&m, "conn-1", now).unwrap();
        let headers = properties.headers().clone().unwrap();
        let keys: Vec<&str> = headers.inner().keys().map(|k| k.as_str()).collect();
        // The id is the AMQP message id, the destination the routing key, the delivery time
        // the timestamp; the table keeps the millisecond timestamp and the body kind.
        assert_eq!(keys, ["JMSTimestamp", KIND_KEY]);
        assert_eq!(
            properties.message_id().as_ref().map(|id| id.as_str()),
            m.message_id()
        );
        assert_eq!(properties.timestamp(), &Some(now / 1000));
        // 12 fixed + 2 flags + delivery mode 1 + priority 1 + message id 36 + timestamp 8 +
        // table 51 (4 + JMSTimestamp 22 + x-courier-body 25): 111 bytes, where the same
        // message took 286 with every field in the table as well.
        assert_eq!(header_bytes(&properties), 111);
        let back = decode(&properties, body.to_vec(), queue.name()).unwrap();
        assert_eq!(back.message.encode(), m.encode());
        assert_eq!(back.message.destination(), Some(&queue));
        assert_eq!(back.message.delivery_time(), now);
    }

    #[test]
    fn every_jms_field_round_trips_through_the_compact_header() {
        let now = 1_764_000_000_123;
        let long = "c".repeat(300);
        for destination in [
            Destination::queue("q"),
            Destination::topic("t"),
            Destination::new(DestinationKind::TemporaryQueue, "amq.gen-x"),
        ] {
            for delay in [0, 5_000] {
                for (id, correlation, kind, timestamp) in [
                    (Some("ID:1"), Some("corr"), Some("kind"), now),
                    (None, Some(long.as_str()), Some(long.as_str()), 0),
                ] {
                    let mut parts = sent(destination.clone(), now, delay).to_parts();
                    parts.message_id = id.map(Into::into);
                    parts.correlation_id = correlation.map(Into::into);
                    parts.message_type = kind.map(Into::into);
                    parts.timestamp = timestamp;
                    parts.reply_to = Some(Destination::topic("replies"));
                    parts.expiration = now + 60_000;
                    parts.priority = 7;
                    parts.properties = vec![("n".into(), Value::I64(-1))];
                    let m = Message::from_parts(parts).unwrap();
                    let (properties, body) = encode(&m, "conn-1", now).unwrap();
                    // A delayed message is routed by its delay queue: its destination stays
                    // in the table. The routing key is the destination's name either way.
                    let back = decode(&properties, body.to_vec(), destination.name()).unwrap();
                    let case = format!("{destination} delay {delay} id {id:?} ts {timestamp}");
                    assert_eq!(back.message.encode(), m.encode(), "{case}");
                    assert_eq!(back.message.to_parts(), m.to_parts(), "{case}");
                }
            }
        }
    }

    #[test]
    fn messages_in_the_earlier_full_format_still_decode() {
        // Before the compact header every field was in the table, whatever the properties
        // and the routing key say; the table wins.
        let now = 1_764_000_000_123;
        let mut parts = sent(Destination::queue("orders"), now, 0).to_parts();
        parts.correlation_id = Some("corr".into());
        parts.message_type = Some("kind".into());
        let m = Message::from_parts(parts.clone()).unwrap();
        let (properties, body) = encode(&m, "conn-1", now).unwrap();
        let mut table = properties.headers().clone().unwrap();
        let text = |s: &str| AMQPValue::LongString(LongString::from(s.as_bytes()));
        table.insert("JMSMessageID".into(), text("ID:in-the-table"));
        table.insert("JMSCorrelationID".into(), text("corr"));
        table.insert("JMSType".into(), text("kind"));
        table.insert("JMSDestination".into(), text("queue://orders"));
        table.insert("JMSDeliveryTime".into(), AMQPValue::LongLongInt(now as i64));
        let old = properties.with_headers(table);
        let back = decode(&old, body.to_vec(), "moved-by-a-shovel").unwrap();
        parts.message_id = Some("ID:in-the-table".into());
        assert_eq!(back.message.to_parts(), parts);
    }

    #[test]
    fn cleared_text_is_not_an_empty_text() {
        let mut m = Message::text("x");
        m.clear_body();
        let (p, b) = encode(&m, "c", 0).unwrap();
        assert_eq!(
            decode(&p, b.to_vec(), "").unwrap().message.to_parts(),
            m.to_parts()
        );
        let m = Message::text("");
        let (p, b) = encode(&m, "c", 0).unwrap();
        assert_eq!(
            decode(&p, b.to_vec(), "").unwrap().message.body_text(),
            Some("")
        );
    }

    #[test]
    fn hostile_headers_are_decode_errors_or_skipped() {
        let mut table = FieldTable::default();
        table.insert("JMSTimestamp".into(), AMQPValue::LongLongInt(-5));
        let p = BasicProperties::default().with_headers(table);
        assert!(matches!(decode(&p, vec![], ""), Err(Error::Decode(_))));
        let mut table = FieldTable::default();
        table.insert("JMSTimestamp".into(), AMQPValue::LongLongInt(5));
        table.insert(KIND_KEY.into(), AMQPValue::LongString("map".into()));
        let p = BasicProperties::default().with_headers(table);
        assert!(decode(&p, vec![0xff, 0xff, 0xff], "").is_err());
        let mut table = FieldTable::default();
        table.insert("weird".into(), AMQPValue::Void);
        let p = BasicProperties::default().with_headers(table);
        let foreign = decode(&p, b"raw".to_vec(), "q").unwrap();
        assert!(foreign.message.properties().is_empty());
        assert_eq!(
            foreign.message.body_bytes().map(|b| &b[..]),
            Some(&b"raw"[..])
        );
    }
}
