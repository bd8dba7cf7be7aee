//! A message to and from parts (`Message::to_parts` / `Message::from_parts`): every message
//! round-trips exactly (float bits, NaN payloads and -0.0 included), also when every part is
//! flattened to byte strings as a Redis backend stores them; the body bytes are frozen; hostile
//! parts are decode errors, never panics.

use bytes::Bytes;
use courier_api::spi;
use courier_api::{
    Body, BodyKind, DeliveryMode, Destination, DestinationKind, Error, Message, MessageParts,
    ObjectBody, Value,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// Any value, floats as any bit pattern (properties may hold NaN: they are not JSON).
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::from),
        any::<i8>().prop_map(Value::from),
        any::<i16>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u32>().prop_map(|bits| Value::F32(f32::from_bits(bits))),
        any::<u64>().prop_map(|bits| Value::F64(f64::from_bits(bits))),
        Just(Value::F32(-0.0)),
        Just(Value::F64(-0.0)),
        Just(Value::F64(f64::from_bits(0x7ff0_0000_0000_0001))),
        ".{0,16}".prop_map(|s: String| Value::from(s)),
        any::<char>().prop_map(Value::from),
        proptest::collection::vec(any::<u8>(), 0..32).prop_map(Value::from),
    ]
}

fn destination() -> impl Strategy<Value = Destination> {
    (
        prop_oneof![
            Just(DestinationKind::Queue),
            Just(DestinationKind::Topic),
            Just(DestinationKind::TemporaryQueue),
            Just(DestinationKind::TemporaryTopic),
        ],
        "[a-zA-Z0-9._:/é-]{1,24}",
    )
        .prop_map(|(kind, name)| Destination::new(kind, name))
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        Just(Body::Empty),
        ".{0,64}".prop_map(|s: String| Body::Text(s.into())),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| Body::Bytes(b.into())),
        proptest::collection::btree_map(".{1,8}", value(), 0..6)
            .prop_map(|m: BTreeMap<String, Value>| Body::Map(m.into())),
        proptest::collection::vec(value(), 0..6).prop_map(|v| Body::Stream(v.into())),
        (".{0,12}", proptest::collection::vec(any::<i32>(), 0..4)).prop_map(|(name, v)| {
            Body::Object(Box::new(
                ObjectBody::with_type_name(&name, &v).expect("plain ints"),
            ))
        }),
    ]
}

/// Header fields: (message id, correlation id, type), (reply-to, destination), (timestamp,
/// expiration, delivery time), priority, persistent.
type Headers = (
    (Option<String>, Option<String>, Option<String>),
    (Option<Destination>, Option<Destination>),
    (u64, u64, u64),
    u8,
    bool,
);

fn headers() -> impl Strategy<Value = Headers> {
    (
        (
            proptest::option::of("ID:.{0,12}"),
            proptest::option::of(".{0,12}"),
            proptest::option::of(".{0,8}"),
        ),
        (
            proptest::option::of(destination()),
            proptest::option::of(destination()),
        ),
        (any::<u64>(), any::<u64>(), any::<u64>()),
        0u8..10,
        any::<bool>(),
    )
}

fn message() -> impl Strategy<Value = Message> {
    (
        body(),
        proptest::collection::vec(("[a-zA-Z_$][a-zA-Z0-9_$]{0,8}", value()), 0..8),
        headers(),
        any::<bool>(),
        any::<u32>(),
    )
        .prop_map(|(body, props, headers, cleared, count)| {
            let ((id, correlation, ty), (reply_to, destination), (time, expiry, due), prio, p) =
                headers;
            let mut m = Message::with_body(body);
            for (name, v) in props {
                // Names that are selector keywords or reserved are refused by the setter.
                let _ = m.set_property(&name, v);
            }
            let h = spi::header_mut(&mut m);
            h.message_id = id.map(Into::into);
            h.correlation_id = correlation.map(Into::into);
            h.message_type = ty.map(Into::into);
            h.reply_to = reply_to;
            h.destination = destination;
            h.timestamp = time;
            h.expiration = expiry;
            h.delivery_time = due;
            h.priority = prio;
            h.delivery_mode = if p {
                DeliveryMode::Persistent
            } else {
                DeliveryMode::NonPersistent
            };
            // Per-delivery state, which is not a part.
            h.delivery_count = count;
            h.redelivered = count > 1;
            if cleared {
                spi::mark_received(&mut m);
                m.clear_body();
            }
            m
        })
}

/// Asserts two messages are the same exactly: the frozen encoding holds every field and the
/// bits of every float (NaN is not equal to itself, so `==` cannot tell).
fn assert_exact(got: &Message, want: &Message) {
    assert_eq!(got.encode(), want.encode(), "{got:?}\n!=\n{want:?}");
    assert_eq!(got.body_kind(), want.body_kind());
    assert!(!got.redelivered());
    assert_eq!(got.delivery_count(), 0);
}

// ---- a Redis-like flat layout built from the parts' pieces ----------------------------------

/// The parts as (field name, byte string) pairs, the way a backend whose fields are untyped
/// bytes stores them: header numbers in decimal, destinations in their text form, the
/// delivery mode and body kind by name, each property through its field-bytes form.
fn to_fields(parts: &MessageParts) -> Vec<(String, Bytes)> {
    let mut fields = Vec::new();
    let mut text = |name: &str, value: String| fields.push((name.to_owned(), Bytes::from(value)));
    if let Some(id) = &parts.message_id {
        text("id", id.to_string());
    }
    text("timestamp", parts.timestamp.to_string());
    if let Some(c) = &parts.correlation_id {
        text("correlation", c.to_string());
    }
    if let Some(d) = &parts.reply_to {
        text("reply_to", d.to_string());
    }
    if let Some(d) = &parts.destination {
        text("destination", d.to_string());
    }
    text("mode", parts.delivery_mode.as_str().to_owned());
    if let Some(t) = &parts.message_type {
        text("type", t.to_string());
    }
    text("expiration", parts.expiration.to_string());
    text("priority", parts.priority.to_string());
    text("delivery_time", parts.delivery_time.to_string());
    if let Some(kind) = parts.body_kind {
        text("kind", kind.as_str().to_owned());
    }
    if let Some(body) = &parts.body {
        fields.push(("body".to_owned(), body.clone()));
    }
    for (name, value) in &parts.properties {
        fields.push((format!("p:{name}"), value.to_field_bytes()));
    }
    // A hash hands its fields back in no particular order.
    fields.reverse();
    fields
}

fn from_fields(fields: Vec<(String, Bytes)>) -> courier_api::Result<MessageParts> {
    let mut parts = Message::new().to_parts();
    parts.body_kind = None;
    let text = |b: &Bytes| String::from_utf8(b.to_vec()).expect("text field");
    for (name, bytes) in fields {
        match name.as_str() {
            "id" => parts.message_id = Some(text(&bytes).into()),
            "timestamp" => parts.timestamp = text(&bytes).parse().unwrap(),
            "correlation" => parts.correlation_id = Some(text(&bytes).into()),
            "reply_to" => parts.reply_to = Some(Destination::parse(&text(&bytes))?),
            "destination" => parts.destination = Some(Destination::parse(&text(&bytes))?),
            "mode" => parts.delivery_mode = DeliveryMode::parse(&text(&bytes))?,
            "type" => parts.message_type = Some(text(&bytes).into()),
            "expiration" => parts.expiration = text(&bytes).parse().unwrap(),
            "priority" => parts.priority = text(&bytes).parse().unwrap(),
            "delivery_time" => parts.delivery_time = text(&bytes).parse().unwrap(),
            "kind" => parts.body_kind = Some(BodyKind::parse(&text(&bytes))?),
            "body" => parts.body = Some(bytes),
            property => {
                let name = property.strip_prefix("p:").expect("a property field");
                parts
                    .properties
                    .push((name.to_owned(), Value::from_field_bytes(&bytes)?));
            }
        }
    }
    Ok(parts)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_message_round_trips_through_parts(m in message()) {
        let parts = m.to_parts();
        let names: Vec<&str> = parts.properties.iter().map(|(n, _)| n.as_str()).collect();
        prop_assert!(names.windows(2).all(|w| w[0] < w[1]), "name order: {:?}", names);
        prop_assert_eq!(parts.body_kind, m.body_kind());
        let back = Message::from_parts(parts).expect("valid parts");
        assert_exact(&back, &m);
    }

    #[test]
    fn every_message_round_trips_through_field_bytes(m in message()) {
        let fields = to_fields(&m.to_parts());
        let back = Message::from_parts(from_fields(fields).expect("fields read back"))
            .expect("valid parts");
        assert_exact(&back, &m);
    }

    #[test]
    fn destinations_round_trip_through_their_text_form(d in destination()) {
        prop_assert_eq!(Destination::parse(&d.to_string()).expect("parses"), d);
    }

    /// Any body bytes under any kind: a decode error or a message that re-parts to itself.
    #[test]
    fn hostile_body_bytes_are_decode_errors_or_valid_messages(
        kind in proptest::option::of(proptest::sample::select(BodyKind::ALL.to_vec())),
        bytes in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
    ) {
        let mut parts = Message::new().to_parts();
        parts.body_kind = kind;
        parts.body = bytes.map(Bytes::from);
        check_hostile(parts)?;
    }

    /// Valid parts with bytes edited: the same.
    #[test]
    fn mutated_parts_are_decode_errors_or_valid_messages(
        m in message(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        priority in any::<u8>(),
        property in ("[ -~]{0,6}", value()),
    ) {
        let mut parts = m.to_parts();
        if let Some(body) = &parts.body {
            let mut body = body.to_vec();
            for (at, byte) in edits {
                match body.len() {
                    0 => body.push(byte),
                    n => body[at % n] = byte,
                }
            }
            parts.body = Some(body.into());
        }
        parts.priority = priority;
        parts.properties.push(property);
        check_hostile(parts)?;
    }
}

/// `from_parts` on hostile parts: only `Error::Decode`, and an accepted message is valid and
/// comes back from its own parts exactly.
fn check_hostile(parts: MessageParts) -> Result<(), TestCaseError> {
    match Message::from_parts(parts) {
        Ok(m) => {
            prop_assert!(m.validate().is_ok(), "{:?}", m.validate());
            let again = Message::from_parts(m.to_parts()).expect("re-parts");
            prop_assert_eq!(again.encode(), m.encode());
            prop_assert!(Message::decode(&m.encode()).is_ok());
        }
        Err(e) => prop_assert!(matches!(e, Error::Decode(_)), "{:?}", e),
    }
    Ok(())
}

// ---- fixed cases ----------------------------------------------------------------------------

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The body bytes of each kind, frozen (the body payloads of message format version 1).
#[test]
fn body_bytes_are_frozen() {
    let mut map = BTreeMap::new();
    map.insert("b".to_string(), Value::from(-2_i8));
    map.insert("a".to_string(), Value::from(true));
    let object = ObjectBody::with_type_name("pair", &(1, "a")).unwrap();
    for (message, kind, body) in [
        (Message::new(), None, None),
        (Message::text("hé"), Some(BodyKind::Text), Some("68c3a9")),
        (Message::text(""), Some(BodyKind::Text), Some("")),
        (
            Message::bytes(vec![0_u8, 255]),
            Some(BodyKind::Bytes),
            Some("00ff"),
        ),
        (
            Message::map(map),
            Some(BodyKind::Map),
            Some("0201610001016201fe"),
        ),
        (
            Message::stream(vec![Value::from(3_i32), Value::from("s")]),
            Some(BodyKind::Stream),
            Some("020306070173"),
        ),
        (
            Message::with_body(Body::Object(Box::new(object))),
            Some(BodyKind::Object),
            Some("0470616972075b312c2261225d"),
        ),
    ] {
        let parts = message.to_parts();
        assert_eq!(parts.body_kind, kind, "{message:?}");
        assert_eq!(
            parts.body.as_deref().map(hex).as_deref(),
            body,
            "{message:?}"
        );
        assert_exact(&Message::from_parts(parts).unwrap(), &message);
    }
}

/// A cleared text or object message holds no body bytes; an empty text holds empty bytes.
#[test]
fn cleared_bodies_are_kept_apart_from_empty_ones() {
    let mut cleared = Message::text("x");
    cleared.clear_body();
    let parts = cleared.to_parts();
    assert_eq!(
        (parts.body_kind, parts.body.clone()),
        (Some(BodyKind::Text), None)
    );
    let back = Message::from_parts(parts).unwrap();
    assert_eq!(back.body_text(), None);
    assert_eq!(back.body_kind(), Some(BodyKind::Text));
    assert_eq!(
        Message::from_parts(Message::text("").to_parts())
            .unwrap()
            .body_text(),
        Some("")
    );
}

#[test]
fn conversions_are_to_parts_and_from_parts() {
    let mut m = Message::stream(vec![Value::from(1_i64)]);
    m.set_property("p", f64::from_bits(0x7ff8_0000_0000_0042))
        .unwrap();
    let parts = MessageParts::from(&m);
    assert_eq!(parts.body, m.to_parts().body);
    assert_exact(&Message::try_from(parts).unwrap(), &m);
    let mut bad = m.to_parts();
    bad.priority = 200;
    assert!(matches!(Message::try_from(bad), Err(Error::Decode(_))));
}

#[test]
fn per_delivery_state_is_not_a_part() {
    let mut m = Message::text("x");
    spi::header_mut(&mut m).delivery_count = 3;
    spi::header_mut(&mut m).redelivered = true;
    spi::mark_received(&mut m);
    let back = Message::from_parts(m.to_parts()).unwrap();
    assert_eq!((back.delivery_count(), back.redelivered()), (0, false));
    back.clone()
        .set_property("writable", 1_i32)
        .expect("a message from parts is writable");
}

/// Properties come in any order (a hash has none) and are put in name order; a name given
/// twice is refused.
#[test]
fn properties_in_any_order_are_sorted_and_duplicates_refused() {
    let mut parts = Message::new().to_parts();
    parts.properties = vec![
        ("b".into(), Value::from(2_i32)),
        ("a".into(), Value::from(1_i32)),
    ];
    let m = Message::from_parts(parts.clone()).unwrap();
    assert_eq!(m.property_names(), ["a", "b"]);
    parts.properties.push(("a".into(), Value::from(3_i32)));
    assert_decode_error(parts, "duplicate property");
}

#[test]
fn invalid_parts_are_decode_errors() {
    let valid = || {
        let mut m = Message::text("t");
        m.set_property("p", 1_i32).unwrap();
        m.to_parts()
    };
    let mut cases: Vec<(&str, MessageParts)> = Vec::new();
    let mut add = |what, edit: &dyn Fn(&mut MessageParts)| {
        let mut p = valid();
        edit(&mut p);
        cases.push((what, p));
    };
    add("priority 10", &|p| p.priority = 10);
    add("empty destination name", &|p| {
        p.destination = Some(Destination::queue(""))
    });
    add("reply-to with a space", &|p| {
        p.reply_to = Some(Destination::topic("a b"))
    });
    add("property named by a keyword", &|p| {
        p.properties = vec![("AND".into(), Value::from(1_i32))]
    });
    add("reserved property name", &|p| {
        p.properties = vec![("JMSFoo".into(), Value::from(1_i32))]
    });
    add("invalid property name", &|p| {
        p.properties = vec![("a-b".into(), Value::from(1_i32))]
    });
    add("char property", &|p| {
        p.properties = vec![("c".into(), Value::from('c'))]
    });
    add("bytes property", &|p| {
        p.properties = vec![("c".into(), Value::from(vec![1_u8]))]
    });
    add("text not UTF-8", &|p| {
        p.body = Some(Bytes::from_static(b"\xff"))
    });
    add("body bytes without a kind", &|p| p.body_kind = None);
    add("map without bytes", &|p| {
        p.body_kind = Some(BodyKind::Map);
        p.body = None;
    });
    add("bytes kind without bytes", &|p| {
        p.body_kind = Some(BodyKind::Bytes);
        p.body = None;
    });
    add("stream without bytes", &|p| {
        p.body_kind = Some(BodyKind::Stream);
        p.body = None;
    });
    add("map out of order", &|p| {
        p.body_kind = Some(BodyKind::Map);
        // {"b": true, "a": true}
        p.body = Some(Bytes::from_static(&[2, 1, b'b', 0, 1, 1, b'a', 0, 1]));
    });
    add("map with a duplicate name", &|p| {
        p.body_kind = Some(BodyKind::Map);
        p.body = Some(Bytes::from_static(&[2, 1, b'a', 0, 1, 1, b'a', 0, 0]));
    });
    add("map with an empty name", &|p| {
        p.body_kind = Some(BodyKind::Map);
        p.body = Some(Bytes::from_static(&[1, 0, 0, 1]));
    });
    add("map with trailing bytes", &|p| {
        p.body_kind = Some(BodyKind::Map);
        p.body = Some(Bytes::from_static(&[0, 0]));
    });
    add("stream claiming a huge count", &|p| {
        p.body_kind = Some(BodyKind::Stream);
        p.body = Some(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f]));
    });
    add("stream with an unknown value tag", &|p| {
        p.body_kind = Some(BodyKind::Stream);
        p.body = Some(Bytes::from_static(&[1, 10]));
    });
    add("object that is not JSON", &|p| {
        p.body_kind = Some(BodyKind::Object);
        p.body = Some(Bytes::from_static(&[1, b'x', 1, b'{']));
    });
    add("empty object bytes", &|p| {
        p.body_kind = Some(BodyKind::Object);
        p.body = Some(Bytes::new());
    });
    for (what, parts) in cases {
        assert_decode_error(parts, what);
    }
}

fn assert_decode_error(parts: MessageParts, what: &str) {
    match Message::from_parts(parts) {
        Err(Error::Decode(_)) => {}
        other => panic!("{what}: expected a decode error, got {other:?}"),
    }
}

#[test]
fn kinds_and_modes_parse_their_frozen_names() {
    let names: Vec<&str> = BodyKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(names, ["text", "bytes", "map", "stream", "object"]);
    for kind in BodyKind::ALL {
        assert_eq!(BodyKind::parse(kind.as_str()).unwrap(), kind);
    }
    assert!(matches!(BodyKind::parse("Text"), Err(Error::Decode(_))));
    for (mode, name) in [
        (DeliveryMode::Persistent, "PERSISTENT"),
        (DeliveryMode::NonPersistent, "NON_PERSISTENT"),
    ] {
        assert_eq!(mode.as_str(), name);
        assert_eq!(DeliveryMode::parse(name).unwrap(), mode);
    }
    assert!(matches!(
        DeliveryMode::parse("persistent"),
        Err(Error::Decode(_))
    ));
}
