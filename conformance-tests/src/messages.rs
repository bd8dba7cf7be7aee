//! Message bodies (Jakarta Messaging 3.1 §3.11, §3.10): every body kind survives a trip through
//! the backend, typed reads follow the conversion table, and received messages are read-only.
use std::collections::BTreeMap;
use std::fmt::Debug;

use bytes::Bytes;
use courier_api::*;
use serde::{Deserialize, Serialize};

use crate::expect::assert_format_error;
use crate::waits::assert_delivery_count;
use crate::Harness;

/// Sends `message` to a fresh queue and receives it back.
async fn round_trip(h: &dyn Harness, mut message: Message) -> Result<Message> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("messages"));
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let producer = session.create_producer(Some(&queue)).await?;
    producer.send(&mut message).await?;
    let got = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("the sent message within h.wait()");
    conn.close().await?;
    Ok(got)
}

/// `receive_body` of a message whose body cannot be returned (none, or a stream) fails with
/// `MessageFormat` and leaves the message unacknowledged, also in an auto-acknowledge
/// session: it is redelivered, not consumed (JMS 2.0 `receiveBody`).
pub async fn receive_body_refusal_leaves_the_message_3_11(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("receive-body"));
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let producer = session.create_producer(Some(&queue)).await?;
    let mut plain = Message::new();
    plain.set_property("kind", "plain")?;
    producer.send(&mut plain).await?;
    producer
        .send(&mut Message::stream(vec![Value::from(1_i32)]))
        .await?;
    producer.send(&mut Message::text("after")).await?;

    assert_format_error(
        consumer.receive_body(Some(h.wait())).await,
        "receive_body of a message without a body",
    );
    let again = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("a message refused by receive_body is redelivered");
    assert_eq!(again.property::<String>("kind")?.as_deref(), Some("plain"));
    assert!(
        again.redelivered(),
        "the refused message comes back redelivered"
    );
    assert_delivery_count(h, &again, 2, "the refused plain message");

    assert_format_error(
        consumer.receive_body(Some(h.wait())).await,
        "receive_body of a stream message",
    );
    let stream = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("a refused stream message is redelivered");
    assert_eq!(stream.body_kind(), Some(BodyKind::Stream));
    assert!(stream.redelivered());

    let text = consumer.receive_body(Some(h.wait())).await?;
    assert_eq!(text, Some(Body::Text("after".into())));
    conn.close().await
}

/// Asserts that `result` is an [`Error::MessageNotWriteable`].
fn assert_not_writeable<T: Debug>(result: Result<T>, what: &str) {
    match result {
        Err(Error::MessageNotWriteable(_)) => {}
        other => panic!("{what}: expected Error::MessageNotWriteable, got {other:?}"),
    }
}

/// One value of every kind a map or stream body may hold.
fn every_value() -> Vec<(&'static str, Value)> {
    vec![
        ("bool", Value::from(true)),
        ("byte", Value::from(-8_i8)),
        ("short", Value::from(-30_000_i16)),
        ("int", Value::from(2_000_000_000_i32)),
        ("long", Value::from(i64::MIN)),
        ("float", Value::from(1.5_f32)),
        ("double", Value::from(-2.25e300_f64)),
        ("string", Value::from("héllo ✓")),
        ("empty_string", Value::from("")),
        ("char", Value::from('ß')),
        ("bytes", Value::from(vec![0_u8, 1, 0, 255])),
        ("empty_bytes", Value::from(Vec::<u8>::new())),
    ]
}

/// A message without a body arrives without a body (§3.11).
pub async fn empty_body_round_trip_3_11(h: &dyn Harness) -> Result<()> {
    let got = round_trip(h, Message::new()).await?;
    assert_eq!(got.body(), &Body::Empty, "an empty body stays empty");
    assert_eq!(got.body_text(), None);
    assert_eq!(got.body_bytes(), None);
    Ok(())
}

/// A text body, with characters outside ASCII, arrives unchanged (§3.11).
pub async fn text_body_round_trip_3_11(h: &dyn Harness) -> Result<()> {
    let text = "héllo wörld ✓ 日本語 🦀 \u{0} tab\tnewline\n'quote\"";
    let got = round_trip(h, Message::text(text)).await?;
    assert_eq!(got.body_text(), Some(text));
    assert_eq!(got.body(), &Body::Text(text.into()));
    Ok(())
}

/// An empty string is a text body, not an empty body (§3.11).
pub async fn empty_text_body_round_trip_3_11(h: &dyn Harness) -> Result<()> {
    let got = round_trip(h, Message::text("")).await?;
    assert_eq!(
        got.body_text(),
        Some(""),
        "an empty text body must stay a text body"
    );
    Ok(())
}

/// A bytes body with zero bytes (leading, inside and trailing) arrives byte for byte (§3.11).
pub async fn bytes_body_with_zero_bytes_round_trip_3_11(h: &dyn Harness) -> Result<()> {
    let payload: &[u8] = &[0, 0, 1, 0, 0xff, 0x7f, 0x80, 0, 0];
    let got = round_trip(h, Message::bytes(payload.to_vec())).await?;
    assert_eq!(got.body_bytes().map(|b| &b[..]), Some(payload));
    let empty = round_trip(h, Message::bytes(Vec::new())).await?;
    assert_eq!(
        empty.body_bytes().map(|b| b.len()),
        Some(0),
        "an empty bytes body must stay a bytes body"
    );
    Ok(())
}

/// A 64 KiB bytes body holding every byte value arrives unchanged (§3.11).
pub async fn large_bytes_body_round_trip_3_11(h: &dyn Harness) -> Result<()> {
    let payload: Vec<u8> = (0..64 * 1024_u32)
        .map(|i| (i.wrapping_mul(31) % 251) as u8)
        .collect();
    let got = round_trip(h, Message::bytes(payload.clone())).await?;
    let body = got.body_bytes().expect("a bytes body");
    assert_eq!(body.len(), payload.len(), "size of the 64 KiB body");
    assert!(
        body[..] == payload[..],
        "the 64 KiB body changed in transit"
    );
    Ok(())
}

/// A map body with one entry of every value type (char and bytes included) arrives with the
/// same entries, each of the same type (§3.11.3).
pub async fn map_body_every_type_round_trip_3_11(h: &dyn Harness) -> Result<()> {
    let mut message = Message::new();
    for (name, value) in every_value() {
        message.map_set(name, value)?;
    }
    let got = round_trip(h, message).await?;
    let Body::Map(map) = got.body() else {
        panic!("expected a map body, got {:?}", got.body());
    };
    assert_eq!(map.len(), every_value().len(), "number of map entries");
    for (name, value) in every_value() {
        assert_eq!(
            got.map_get::<Value>(name)?,
            Some(value.clone()),
            "map entry {name}"
        );
    }
    assert_eq!(got.map_get::<bool>("bool")?, Some(true));
    assert_eq!(got.map_get::<i8>("byte")?, Some(-8));
    assert_eq!(got.map_get::<i16>("short")?, Some(-30_000));
    assert_eq!(got.map_get::<i32>("int")?, Some(2_000_000_000));
    assert_eq!(got.map_get::<i64>("long")?, Some(i64::MIN));
    assert_eq!(got.map_get::<f32>("float")?, Some(1.5));
    assert_eq!(got.map_get::<f64>("double")?, Some(-2.25e300));
    assert_eq!(got.map_get::<String>("string")?.as_deref(), Some("héllo ✓"));
    assert_eq!(got.map_get::<char>("char")?, Some('ß'));
    assert_eq!(
        got.map_get::<Bytes>("bytes")?,
        Some(Bytes::from_static(&[0, 1, 0, 255]))
    );
    Ok(())
}

/// Map entries read as another type follow the JMS conversion table; a missing entry is
/// `None`; a disallowed conversion or bad string is a format error (§3.11.3, Table 3-2).
pub async fn map_body_conversions_3_11(h: &dyn Harness) -> Result<()> {
    let mut map = BTreeMap::new();
    for (name, value) in every_value() {
        map.insert(name.to_string(), value);
    }
    map.insert("numeric_string".into(), Value::from("123"));
    map.insert("true_string".into(), Value::from("TRUE"));
    map.insert("bad_number".into(), Value::from("12abc"));
    let got = round_trip(h, Message::map(map)).await?;

    // Allowed widenings and to-string conversions.
    assert_eq!(got.map_get::<String>("bool")?.as_deref(), Some("true"));
    assert_eq!(got.map_get::<i16>("byte")?, Some(-8));
    assert_eq!(got.map_get::<i32>("byte")?, Some(-8));
    assert_eq!(got.map_get::<i64>("byte")?, Some(-8));
    assert_eq!(got.map_get::<String>("byte")?.as_deref(), Some("-8"));
    assert_eq!(got.map_get::<i32>("short")?, Some(-30_000));
    assert_eq!(got.map_get::<i64>("short")?, Some(-30_000));
    assert_eq!(got.map_get::<i64>("int")?, Some(2_000_000_000));
    assert_eq!(
        got.map_get::<String>("long")?.as_deref(),
        Some("-9223372036854775808")
    );
    assert_eq!(got.map_get::<f64>("float")?, Some(1.5));
    assert_eq!(got.map_get::<String>("float")?.as_deref(), Some("1.5"));
    assert_eq!(got.map_get::<String>("char")?.as_deref(), Some("ß"));
    // Strings parse.
    assert_eq!(got.map_get::<i8>("numeric_string")?, Some(123));
    assert_eq!(got.map_get::<i16>("numeric_string")?, Some(123));
    assert_eq!(got.map_get::<i32>("numeric_string")?, Some(123));
    assert_eq!(got.map_get::<i64>("numeric_string")?, Some(123));
    assert_eq!(got.map_get::<f64>("numeric_string")?, Some(123.0));
    assert_eq!(got.map_get::<bool>("true_string")?, Some(true));
    // Missing entries.
    assert_eq!(got.map_get::<i32>("missing")?, None);
    assert_eq!(got.map_get::<String>("missing")?, None);
    // Disallowed conversions and bad strings.
    assert_format_error(got.map_get::<i32>("bool"), "boolean as int");
    assert_format_error(got.map_get::<i8>("short"), "short as byte");
    assert_format_error(got.map_get::<i32>("long"), "long as int");
    assert_format_error(got.map_get::<f64>("int"), "int as double");
    assert_format_error(got.map_get::<f32>("double"), "double as float");
    assert_format_error(got.map_get::<i64>("float"), "float as long");
    assert_format_error(got.map_get::<i32>("char"), "char as int");
    assert_format_error(got.map_get::<char>("string"), "string as char");
    assert_format_error(got.map_get::<String>("bytes"), "bytes as string");
    assert_format_error(got.map_get::<Bytes>("string"), "string as bytes");
    assert_format_error(got.map_get::<i32>("bad_number"), "'12abc' as int");
    assert_format_error(got.map_get::<f64>("bad_number"), "'12abc' as double");
    // A body of another kind is not a map.
    let text = round_trip(h, Message::text("not a map")).await?;
    assert_format_error(text.map_get::<i32>("x"), "map_get on a text body");
    Ok(())
}

/// Empty map and stream bodies keep their kind (§3.11).
pub async fn empty_map_and_stream_keep_their_kind_3_11(h: &dyn Harness) -> Result<()> {
    let map = round_trip(h, Message::map(BTreeMap::new())).await?;
    assert!(
        matches!(map.body(), Body::Map(m) if m.is_empty()),
        "an empty map body must stay a map, got {:?}",
        map.body()
    );
    let stream = round_trip(h, Message::stream(Vec::new())).await?;
    assert!(
        matches!(stream.body(), Body::Stream(s) if s.is_empty()),
        "an empty stream body must stay a stream, got {:?}",
        stream.body()
    );
    let mut reader = stream.stream_reader()?;
    assert!(
        matches!(reader.read::<i32>(), Err(Error::EndOfStream)),
        "reading an empty stream is end of stream"
    );
    Ok(())
}

/// A stream body with a value of every type arrives in order and reads back as each value's own
/// type (§3.11.5).
pub async fn stream_body_every_type_round_trip_3_11(h: &dyn Harness) -> Result<()> {
    let mut message = Message::new();
    for (_, value) in every_value() {
        message.stream_write(value)?;
    }
    let got = round_trip(h, message).await?;
    let mut raw = got.stream_reader()?;
    assert_eq!(raw.remaining(), every_value().len(), "stream length");
    for (name, value) in every_value() {
        assert_eq!(raw.read::<Value>()?, value, "stream value {name}");
    }
    let mut r = got.stream_reader()?;
    assert!(r.read::<bool>()?);
    assert_eq!(r.read::<i8>()?, -8);
    assert_eq!(r.read::<i16>()?, -30_000);
    assert_eq!(r.read::<i32>()?, 2_000_000_000);
    assert_eq!(r.read::<i64>()?, i64::MIN);
    assert_eq!(r.read::<f32>()?, 1.5);
    assert_eq!(r.read::<f64>()?, -2.25e300);
    assert_eq!(r.read::<String>()?, "héllo ✓");
    assert_eq!(r.read::<String>()?, "");
    assert_eq!(r.read::<char>()?, 'ß');
    assert_eq!(r.read::<Bytes>()?, Bytes::from_static(&[0, 1, 0, 255]));
    assert_eq!(r.read::<Bytes>()?, Bytes::new());
    assert_eq!(r.remaining(), 0);
    Ok(())
}

/// Stream values read as another type follow the JMS conversion table (§3.11.5, Table 3-2).
pub async fn stream_body_read_with_conversions_3_11(h: &dyn Harness) -> Result<()> {
    let values = vec![
        Value::from(7_i8),
        Value::from(300_i16),
        Value::from(70_000_i32),
        Value::from(1_i64 << 40),
        Value::from(0.5_f32),
        Value::from(false),
        Value::from("-42"),
        Value::from("6.25"),
        Value::from('q'),
    ];
    let got = round_trip(h, Message::stream(values)).await?;
    let mut r = got.stream_reader()?;
    assert_eq!(r.read::<i64>()?, 7, "byte as long");
    assert_eq!(r.read::<i32>()?, 300, "short as int");
    assert_eq!(r.read::<String>()?, "70000", "int as string");
    assert_eq!(r.read::<String>()?, "1099511627776", "long as string");
    assert_eq!(r.read::<f64>()?, 0.5, "float as double");
    assert_eq!(r.read::<String>()?, "false", "boolean as string");
    assert_eq!(r.read::<i16>()?, -42, "string as short");
    assert_eq!(r.read::<f32>()?, 6.25, "string as float");
    assert_eq!(r.read::<String>()?, "q", "char as string");
    assert_eq!(r.remaining(), 0);
    r.reset();
    assert_eq!(r.read::<i8>()?, 7, "reset goes back to the first value");
    Ok(())
}

/// A stream read that fails to convert does not advance: the same value can be read again as
/// another type (§3.11.5).
pub async fn stream_failed_read_does_not_advance_3_11(h: &dyn Harness) -> Result<()> {
    let values = vec![Value::from("abc"), Value::from(9_i64), Value::from(true)];
    let got = round_trip(h, Message::stream(values)).await?;
    let mut r = got.stream_reader()?;
    assert_format_error(r.read::<i32>(), "'abc' as int");
    assert_eq!(r.remaining(), 3, "a failed read must not advance");
    assert_format_error(r.read::<char>(), "string as char");
    assert_eq!(r.read::<String>()?, "abc");
    assert_format_error(r.read::<i32>(), "long as int");
    assert_format_error(r.read::<bool>(), "long as boolean");
    assert_eq!(r.remaining(), 2, "a failed read must not advance");
    assert_eq!(r.read::<i64>()?, 9);
    assert!(r.read::<bool>()?);
    Ok(())
}

/// Reading past the end of a stream body is an end-of-stream error, every time (§3.11.5).
pub async fn stream_read_past_end_is_end_of_stream_3_11(h: &dyn Harness) -> Result<()> {
    let got = round_trip(h, Message::stream(vec![Value::from(1_i32)])).await?;
    let mut r = got.stream_reader()?;
    assert_eq!(r.read::<i32>()?, 1);
    for attempt in 0..2 {
        match r.read::<i32>() {
            Err(Error::EndOfStream) => {}
            other => panic!("read {attempt} past the end: expected EndOfStream, got {other:?}"),
        }
    }
    assert!(matches!(r.read::<String>(), Err(Error::EndOfStream)));
    let text = round_trip(h, Message::text("not a stream")).await?;
    assert_format_error(text.stream_reader(), "stream_reader on a text body");
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    customer: String,
    lines: Vec<(String, u32)>,
    note: Option<String>,
}

/// An object body (a serde value) arrives with its type name and decodes to an equal value; a
/// decode into the wrong shape is a format error (§3.11.4).
pub async fn object_body_round_trip_3_11(h: &dyn Harness) -> Result<()> {
    let order = Order {
        id: 17,
        customer: "Zoë".into(),
        lines: vec![("apple".into(), 3), ("pear".into(), 0)],
        note: None,
    };
    let got = round_trip(h, Message::object(&order)?).await?;
    let Body::Object(object) = got.body() else {
        panic!("expected an object body, got {:?}", got.body());
    };
    assert!(
        object.type_name().ends_with("Order"),
        "type name {:?} should name the Rust type",
        object.type_name()
    );
    assert_eq!(got.body_object::<Order>()?, order);
    assert_format_error(
        got.body_object::<Vec<u8>>(),
        "object decoded as the wrong type",
    );

    let named = ObjectBody::with_type_name("com.example.Order", &order)?;
    let got = round_trip(h, Message::with_body(Body::Object(Box::new(named)))).await?;
    let Body::Object(object) = got.body() else {
        panic!("expected an object body, got {:?}", got.body());
    };
    assert_eq!(object.type_name(), "com.example.Order");
    assert_eq!(got.body_object::<Order>()?, order);
    Ok(())
}

/// Every body kind also arrives unchanged through a topic subscription (§3.11).
pub async fn every_body_kind_through_topic_3_11(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let topic = Destination::topic(h.name("messages-topic"));
    let consumer = session
        .create_consumer(&topic, ConsumerOptions::default())
        .await?;
    let producer = session.create_producer(Some(&topic)).await?;
    let mut map = BTreeMap::new();
    map.insert("k".to_string(), Value::from('c'));
    let bodies = vec![
        Body::Empty,
        Body::Text("tëxt".into()),
        Body::Bytes(Bytes::from_static(&[0, 1, 2, 0])),
        Body::Map(map.into()),
        Body::Stream(vec![Value::from(1_i16), Value::from(vec![9_u8])].into()),
        Body::Object(Box::new(ObjectBody::new(&vec![1_u8, 2, 3])?)),
    ];
    for body in &bodies {
        producer.send(&mut Message::with_body(body.clone())).await?;
    }
    for body in &bodies {
        let got = consumer
            .receive_timeout(h.wait())
            .await?
            .expect("each published message within h.wait()");
        assert_eq!(got.body(), body, "body of kind {}", body.kind());
    }
    assert!(consumer.receive_timeout(h.quiet()).await?.is_none());
    conn.close().await
}

/// The body of a received message is read-only until `clear_body`, which empties it and makes
/// it writable; properties stay read-only meanwhile (§3.10).
pub async fn received_body_read_only_until_cleared_3_10(h: &dyn Harness) -> Result<()> {
    let mut sent = Message::text("original");
    sent.set_property("p", 1_i32)?;
    let mut got = round_trip(h, sent).await?;
    assert_not_writeable(
        got.set_body(Body::Text("changed".into())),
        "set_body on a received message",
    );
    assert_not_writeable(got.map_set("k", 1_i32), "map_set on a received message");
    assert_not_writeable(
        got.stream_write(1_i32),
        "stream_write on a received message",
    );
    assert_eq!(
        got.body_text(),
        Some("original"),
        "failed writes change nothing"
    );
    got.clear_body();
    assert_eq!(got.body(), &Body::Empty, "clear_body empties the body");
    got.set_body(Body::Text("changed".into()))?;
    assert_eq!(got.body_text(), Some("changed"));
    assert_eq!(
        got.property::<i32>("p")?,
        Some(1),
        "clear_body keeps properties"
    );
    assert_not_writeable(
        got.set_property("q", 2_i32),
        "clear_body must not make properties writable",
    );

    let mut map_msg = round_trip(h, Message::map(BTreeMap::new())).await?;
    assert_not_writeable(map_msg.map_set("k", 1_i32), "map_set on a received map");
    map_msg.clear_body();
    map_msg.map_set("k", 1_i32)?;
    assert_eq!(map_msg.map_get::<i32>("k")?, Some(1));
    Ok(())
}

/// The properties of a received message are read-only until `clear_properties`, which removes
/// them and makes them writable; the body stays read-only meanwhile (§3.10, §3.5.7).
pub async fn received_properties_read_only_until_cleared_3_10(h: &dyn Harness) -> Result<()> {
    let mut sent = Message::text("body");
    sent.set_property("p", "v")?;
    let mut got = round_trip(h, sent).await?;
    assert_not_writeable(
        got.set_property("p", "other"),
        "set_property on a received message",
    );
    assert_not_writeable(
        got.set_property("new", 1_i32),
        "adding a property to a received message",
    );
    assert_eq!(got.property::<String>("p")?.as_deref(), Some("v"));
    got.clear_properties();
    assert!(got.properties().is_empty(), "clear_properties removes all");
    assert_eq!(got.property::<String>("p")?, None);
    got.set_property("p", "again")?;
    assert_eq!(got.property::<String>("p")?.as_deref(), Some("again"));
    assert_eq!(
        got.body_text(),
        Some("body"),
        "clear_properties keeps the body"
    );
    assert_not_writeable(
        got.set_body(Body::Empty),
        "clear_properties must not make the body writable",
    );
    Ok(())
}

/// A sent message may be modified and sent again; each receiver sees the content at its own
/// send (§3.10, §3.9).
pub async fn sent_message_modified_and_sent_again_3_10(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("messages-resend"));
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let producer = session.create_producer(Some(&queue)).await?;
    let mut message = Message::text("first");
    message.set_property("n", 1_i32)?;
    producer.send(&mut message).await?;
    let first_id = message.message_id().map(str::to_owned);
    message.set_body(Body::Text("second".into()))?;
    message.set_property("n", 2_i32)?;
    message.set_property("extra", true)?;
    producer.send(&mut message).await?;

    let a = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("first send");
    let b = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("second send");
    assert_eq!(a.body_text(), Some("first"), "first send keeps its body");
    assert_eq!(a.property::<i32>("n")?, Some(1));
    assert_eq!(a.property::<bool>("extra")?, None);
    assert_eq!(b.body_text(), Some("second"));
    assert_eq!(b.property::<i32>("n")?, Some(2));
    assert_eq!(b.property::<bool>("extra")?, Some(true));
    assert_eq!(a.message_id(), first_id.as_deref());
    assert_ne!(
        a.message_id(),
        b.message_id(),
        "each send gets its own message id"
    );
    assert!(consumer.receive_timeout(h.quiet()).await?.is_none());
    conn.close().await
}

/// The cases of this area, for [`crate::conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! messages_cases {
    ($make:expr) => {
        $crate::cases!(
            $make,
            messages,
            [
                empty_body_round_trip_3_11,
                text_body_round_trip_3_11,
                empty_text_body_round_trip_3_11,
                bytes_body_with_zero_bytes_round_trip_3_11,
                large_bytes_body_round_trip_3_11,
                map_body_every_type_round_trip_3_11,
                map_body_conversions_3_11,
                empty_map_and_stream_keep_their_kind_3_11,
                stream_body_every_type_round_trip_3_11,
                stream_body_read_with_conversions_3_11,
                stream_failed_read_does_not_advance_3_11,
                stream_read_past_end_is_end_of_stream_3_11,
                object_body_round_trip_3_11,
                every_body_kind_through_topic_3_11,
                received_body_read_only_until_cleared_3_10,
                received_properties_read_only_until_cleared_3_10,
                sent_message_modified_and_sent_again_3_10,
                receive_body_refusal_leaves_the_message_3_11,
            ]
        );
    };
}
