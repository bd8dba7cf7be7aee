//! Version 1 of the message format, frozen: fixed byte vectors for messages covering every
//! header field, every property type, every body kind and every destination kind. Each must
//! encode to exactly its vector and decode from it to the same message, so a reordered enum
//! variant, a new field or a changed field order is a failing test, not a silent change of the
//! storage and wire format. (The layout is described in `courier_api::message::format`.)

use courier_api::message::ENCODING_VERSION;
use courier_api::spi;
use courier_api::{
    Body, DeliveryMode, Destination, DestinationKind, Error, Message, ObjectBody, Value,
};
use std::collections::BTreeMap;

/// Every value type with a value whose encoding is not trivial (sign, width, varint length).
fn every_value() -> Vec<(&'static str, Value)> {
    vec![
        ("bool", Value::from(true)),
        ("byte", Value::from(-2_i8)),
        ("short", Value::from(-300_i16)),
        ("int", Value::from(70_000_i32)),
        ("long", Value::from(-5_000_000_000_i64)),
        ("float", Value::from(1.5_f32)),
        ("double", Value::from(-0.25_f64)),
        ("string", Value::from("s")),
        ("char", Value::from('é')),
        ("bytes", Value::from(vec![0_u8, 255])),
    ]
}

fn every_header_field() -> Message {
    let mut m = Message::text("hi");
    let h = spi::header_mut(&mut m);
    h.message_id = Some("ID:1".into());
    h.timestamp = 1_700_000_000_000;
    h.correlation_id = Some("c".into());
    h.reply_to = Some(Destination::new(DestinationKind::TemporaryQueue, "tq"));
    h.destination = Some(Destination::topic("t"));
    h.delivery_mode = DeliveryMode::NonPersistent;
    h.message_type = Some("ty".into());
    h.expiration = 1_700_000_060_000;
    h.priority = 9;
    h.delivery_time = 1_700_000_001_000;
    m
}

fn every_property_type() -> Message {
    let mut m = Message::bytes(vec![1_u8, 2, 3]);
    for (name, value) in every_value() {
        if value.is_property_type() {
            m.set_property(name, value).unwrap();
        }
    }
    m.set_property("JMSXGroupID", "g").unwrap();
    m.set_property("JMSXGroupSeq", 1_i32).unwrap();
    m
}

fn destinations() -> Message {
    let mut m = Message::new();
    m.set_reply_to(Some(Destination::queue("q")));
    spi::header_mut(&mut m).destination =
        Some(Destination::new(DestinationKind::TemporaryTopic, "tt"));
    m
}

fn map_body() -> Message {
    let map: BTreeMap<String, Value> = every_value()
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
    Message::map(map)
}

fn stream_body() -> Message {
    Message::stream(every_value().into_iter().map(|(_, v)| v).collect())
}

fn object_body() -> Message {
    let body = ObjectBody::with_type_name("pair", &(1, "a")).unwrap();
    Message::with_body(Body::Object(Box::new(body)))
}

fn cleared(mut m: Message) -> Message {
    spi::mark_received(&mut m);
    m.clear_body();
    m
}

/// The frozen vectors: (what, message, hex of its version 1 encoding).
fn vectors() -> Vec<(&'static str, Message, &'static str)> {
    vec![
        ("no body, default header", Message::new(), "0100000000000000000400000000"),
        ("every header field", every_header_field(), "01010449443a3180d095ffbc310101630102027471010101740101027479e0a499ffbc3109e8d795ffbc31000102686900"),
        ("every property type", every_property_type(), "0100000000000000000400010a0b4a4d535847726f757049440701670c4a4d535847726f7570536571030204626f6f6c0001046279746501fe06646f75626c6506000000000000d0bf05666c6f6174050000c03f03696e7403e0c508046c6f6e6704ffc7afa0250573686f727402d70406737472696e67070173020301020300"),
        ("every destination kind", destinations(), "010000000100017101030274740000000400000000"),
        ("map body of every value type", map_body(), "010000000000000000040000030a04626f6f6c0001046279746501fe056279746573090200ff04636861720802c3a906646f75626c6506000000000000d0bf05666c6f6174050000c03f03696e7403e0c508046c6f6e6704ffc7afa0250573686f727402d70406737472696e6707017300"),
        ("stream body of every value type", stream_body(), "010000000000000000040000040a000101fe02d70403e0c50804ffc7afa025050000c03f06000000000000d0bf0701730802c3a9090200ff00"),
        ("object body", object_body(), "010000000000000000040000050470616972075b312c2261225d00"),
        ("empty text body", Message::text(""), "010000000000000000040000010000"),
        ("cleared text message", cleared(Message::text("x")), "010000000000000000040000000100"),
        ("cleared object message", cleared(object_body()), "010000000000000000040000000104"),
        ("cleared map message", cleared(map_body()), "010000000000000000040000030000"),
        ("cleared stream message", cleared(stream_body()), "010000000000000000040000040000"),
        ("cleared bytes message", cleared(Message::bytes(vec![7_u8])), "010000000000000000040000020000"),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn every_vector_is_the_encoding_of_its_message() {
    for (what, message, vector) in vectors() {
        assert_eq!(hex(&message.encode()), vector, "encoding of: {what}");
    }
}

#[test]
fn every_vector_decodes_to_its_message() {
    for (what, message, vector) in vectors() {
        let decoded = Message::decode(&unhex(vector)).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(decoded, message, "decoding of: {what}");
        assert_eq!(decoded.body_kind(), message.body_kind(), "kind of: {what}");
    }
}

/// The first vector, byte by byte, as the module docs of `courier_api::message::format`
/// describe the layout.
#[test]
fn the_default_message_layout() {
    let bytes = Message::new().encode();
    let expected = [
        ENCODING_VERSION,
        0, // message id: none
        0, // timestamp: 0
        0, // correlation id: none
        0, // reply-to: none
        0, // destination: none
        0, // delivery mode: persistent
        0, // type: none
        0, // expiration: 0
        4, // priority: 4
        0, // delivery time: 0
        0, // properties: none
        0, // body: empty
        0, // kind of an emptied body: none
    ];
    assert_eq!(&bytes[..], &expected[..]);
}

#[test]
fn per_delivery_state_is_not_encoded() {
    for (what, message, vector) in vectors() {
        let mut delivered = message.clone();
        spi::header_mut(&mut delivered).redelivered = true;
        spi::header_mut(&mut delivered).delivery_count = 7;
        spi::mark_received(&mut delivered);
        assert_eq!(hex(&delivered.encode()), vector, "delivered: {what}");
    }
    let decoded = Message::decode(&every_header_field().encode()).unwrap();
    assert!(!decoded.redelivered());
    assert_eq!(decoded.delivery_count(), 0);
}

#[test]
fn other_versions_are_refused() {
    for (_, _, vector) in vectors() {
        let mut bytes = unhex(vector);
        for version in [0, 2, 255] {
            bytes[0] = version;
            assert!(matches!(Message::decode(&bytes), Err(Error::Decode(_))));
        }
    }
}
