//! Property tests of the message encoding: decoding arbitrary bytes never panics, and every
//! message survives an encode/decode round trip unchanged.

use courier_api::{Body, DeliveryMode, Destination, Message, Value};
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
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (
        body(),
        proptest::collection::vec(("[a-z][a-z0-9_]{0,8}", value()), 0..6),
        0u8..10,
        any::<bool>(),
        any::<u64>(),
        proptest::option::of("[a-z]{1,12}"),
    )
        .prop_map(|(body, props, priority, persistent, time, reply)| {
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
            let h = m.header_mut();
            h.priority = priority;
            h.delivery_mode = if persistent {
                DeliveryMode::Persistent
            } else {
                DeliveryMode::NonPersistent
            };
            h.timestamp = time;
            h.reply_to = reply.map(Destination::queue);
            m
        })
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
    fn every_message_round_trips(m in message()) {
        let bytes = m.encode();
        prop_assert_eq!(Message::decode(&bytes).expect("decodes"), m);
    }

    #[test]
    fn truncated_encodings_are_errors(m in message(), cut in 0usize..1000) {
        let bytes = m.encode();
        let cut = cut % bytes.len();
        prop_assert!(Message::decode(&bytes[..cut]).is_err());
    }
}
