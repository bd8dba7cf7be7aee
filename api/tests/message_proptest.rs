//! Property tests of the message encoding: decoding arbitrary bytes never panics, every
//! message survives an encode/decode round trip unchanged (per-delivery state excepted), and
//! whatever a mutated encoding decodes to keeps every invariant.

use courier_api::spi;
use courier_api::{Body, DeliveryMode, Destination, Message, ObjectBody, Value};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::from),
        any::<i8>().prop_map(Value::from),
        any::<i16>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f32>()
            .prop_filter("NaN is not equal to itself", |f| !f.is_nan())
            .prop_map(Value::from),
        any::<f64>()
            .prop_filter("NaN is not equal to itself", |f| !f.is_nan())
            .prop_map(Value::from),
        ".{0,16}".prop_map(|s: String| Value::from(s)),
        any::<char>().prop_map(Value::from),
        proptest::collection::vec(any::<u8>(), 0..32).prop_map(Value::from),
    ]
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        Just(Body::Empty),
        ".{0,64}".prop_map(|s: String| Body::Text(s.into())),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| Body::Bytes(b.into())),
        proptest::collection::btree_map("[a-z]{1,8}", value(), 0..6)
            .prop_map(|m: BTreeMap<String, Value>| Body::Map(m.into())),
        proptest::collection::vec(value(), 0..6).prop_map(|v| Body::Stream(v.into())),
        (".{0,12}", proptest::collection::vec(any::<i32>(), 0..4)).prop_map(|(name, v)| {
            Body::Object(Box::new(
                ObjectBody::with_type_name(&name, &v).expect("plain ints"),
            ))
        }),
    ]
}

/// Header fields beyond the basics, each optional: ids, type, destination, times, delivery
/// and whether the body was cleared.
#[derive(Debug, Clone)]
struct Extra {
    message_id: Option<String>,
    correlation_id: Option<String>,
    message_type: Option<String>,
    destination: Option<String>,
    expiration: u64,
    delivery_time: u64,
    cleared: bool,
}

fn extra() -> impl Strategy<Value = Extra> {
    (
        (
            proptest::option::of("ID:[a-z0-9-]{1,12}"),
            proptest::option::of("[a-zA-Z0-9:-]{0,12}"),
            proptest::option::of(".{0,8}"),
            proptest::option::of("[a-z.]{1,12}"),
        ),
        (any::<u64>(), any::<u64>(), any::<bool>()),
    )
        .prop_map(
            |((message_id, correlation_id, message_type, destination), (e, d, cleared))| Extra {
                message_id,
                correlation_id,
                message_type,
                destination,
                expiration: e,
                delivery_time: d,
                cleared,
            },
        )
}

fn message() -> impl Strategy<Value = Message> {
    (
        body(),
        proptest::collection::vec(("[a-z][a-z0-9_]{0,8}", value()), 0..6),
        0u8..10,
        any::<bool>(),
        any::<u64>(),
        proptest::option::of("[a-z]{1,12}"),
        extra(),
    )
        .prop_map(|(body, props, priority, persistent, time, reply, extra)| {
            let mut m = Message::with_body(body);
            for (name, v) in props {
                if v.is_property_type()
                    && !matches!(
                        name.as_str(),
                        "and"
                            | "or"
                            | "not"
                            | "in"
                            | "is"
                            | "like"
                            | "null"
                            | "true"
                            | "false"
                            | "between"
                            | "escape"
                    )
                {
                    m.set_property(&name, v).expect("valid property");
                }
            }
            let h = spi::header_mut(&mut m);
            h.priority = priority;
            h.delivery_mode = if persistent {
                DeliveryMode::Persistent
            } else {
                DeliveryMode::NonPersistent
            };
            h.timestamp = time;
            h.reply_to = reply.map(Destination::queue);
            h.message_id = extra.message_id.map(Into::into);
            h.correlation_id = extra.correlation_id.map(Into::into);
            h.message_type = extra.message_type.map(Into::into);
            h.destination = extra.destination.map(Destination::topic);
            h.expiration = extra.expiration;
            h.delivery_time = extra.delivery_time;
            if extra.cleared {
                m.clear_body();
            }
            m
        })
}

/// The message as a receiver of its bytes sees it: per-delivery state is not encoded.
fn as_decoded(m: &Message) -> Message {
    let mut m = m.clone();
    spi::header_mut(&mut m).delivery_count = 0;
    spi::header_mut(&mut m).redelivered = false;
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Message::decode(&bytes);
        let mut versioned = vec![courier_api::message::ENCODING_VERSION];
        versioned.extend_from_slice(&bytes);
        let _ = Message::decode(&versioned);
    }

    #[test]
    fn every_message_round_trips(m in message(), count in any::<u32>()) {
        let expected = m.clone();
        let mut m = m;
        spi::header_mut(&mut m).delivery_count = count;
        spi::header_mut(&mut m).redelivered = count > 1;
        let bytes = m.encode();
        prop_assert_eq!(&bytes, &expected.encode(), "per-delivery state is not in the bytes");
        let decoded = Message::decode(&bytes).expect("decodes");
        prop_assert_eq!(&decoded, &as_decoded(&m));
        prop_assert_eq!(decoded.body_kind(), m.body_kind());
    }

    #[test]
    fn mutated_encodings_never_panic_and_decode_only_to_valid_messages(
        m in message(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..4), 1..6),
    ) {
        let mut bytes = m.encode().to_vec();
        for (at, byte, how) in edits {
            let at = at % (bytes.len() + 1);
            match how {
                0 if at < bytes.len() => bytes[at] = byte,
                1 if at < bytes.len() => bytes[at] ^= 1 << (byte % 8),
                2 => bytes.insert(at, byte),
                _ if at < bytes.len() && at > 0 => { bytes.remove(at); }
                _ => {}
            }
        }
        if let Ok(decoded) = Message::decode(&bytes) {
            prop_assert!(decoded.validate().is_ok(), "{:?}", decoded.validate());
            prop_assert!(decoded.priority() <= 9);
            let names: Vec<&str> = decoded.properties().keys().map(String::as_str).collect();
            prop_assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted, unique: {:?}", names);
            for name in &names {
                prop_assert!(decoded.has_property(name));
            }
            prop_assert_eq!(Message::decode(&decoded.encode()).expect("re-decodes"), decoded);
        }
    }

    #[test]
    fn truncated_encodings_are_errors(m in message(), cut in 0usize..1000) {
        let bytes = m.encode();
        let cut = cut % bytes.len();
        prop_assert!(Message::decode(&bytes[..cut]).is_err());
    }
}
