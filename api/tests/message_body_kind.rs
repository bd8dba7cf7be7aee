//! After `clear_body` a message is an empty, writable message of its own kind (§3.11): a
//! cleared map answers "no such name", a cleared text message refuses map entries, and the
//! kind survives an encode/decode round trip.

use courier_api::spi;
use courier_api::{Body, Error, Message, ObjectBody, Value};
use std::collections::BTreeMap;

fn received(mut m: Message) -> Message {
    spi::mark_received(&mut m);
    m
}

fn assert_format<T: std::fmt::Debug>(r: courier_api::Result<T>, what: &str) {
    assert!(
        matches!(r, Err(Error::MessageFormat(_))),
        "{what}: expected MessageFormat, got {r:?}"
    );
}

fn every_kind() -> Vec<Message> {
    let mut map = BTreeMap::new();
    map.insert("k".to_string(), Value::from(1_i32));
    vec![
        Message::text("t"),
        Message::bytes(vec![1_u8, 2]),
        Message::map(map),
        Message::stream(vec![Value::from(1_i32)]),
        Message::object(&vec![1, 2]).unwrap(),
    ]
}

#[test]
fn cleared_map_is_an_empty_writable_map() {
    let mut map = BTreeMap::new();
    map.insert("k".to_string(), Value::from(1_i32));
    let mut m = received(Message::map(map));
    m.clear_body();
    assert_eq!(m.map_get::<i32>("k").unwrap(), None, "no such name");
    m.map_set("k2", 2_i32).unwrap();
    assert_eq!(m.map_get::<i32>("k2").unwrap(), Some(2));
    assert_format(m.stream_write(1_i32), "stream_write on a cleared map");
}

#[test]
fn cleared_text_stays_text() {
    let mut m = received(Message::text("hello"));
    m.clear_body();
    assert_eq!(m.body_text(), None, "no text after clear_body");
    assert_format(m.map_set("k", 1_i32), "map_set on a cleared text message");
    assert_format(
        m.stream_write(1_i32),
        "stream_write on a cleared text message",
    );
    assert_format(m.map_get::<i32>("k"), "map_get on a cleared text message");
    assert_format(
        m.set_body(Body::Bytes(vec![1_u8].into())),
        "a bytes body on a text message",
    );
    m.set_body(Body::Text("again".into())).unwrap();
    assert_eq!(m.body_text(), Some("again"));
}

#[test]
fn cleared_stream_is_an_empty_writable_stream() {
    let mut m = received(Message::stream(vec![Value::from(1_i32)]));
    m.clear_body();
    let mut reader = m.stream_reader().unwrap();
    assert_eq!(reader.remaining(), 0);
    assert!(matches!(reader.read::<i32>(), Err(Error::EndOfStream)));
    assert_format(m.map_set("k", 1_i32), "map_set on a cleared stream");
    m.stream_write(5_i32).unwrap();
    assert_eq!(m.stream_reader().unwrap().read::<i32>().unwrap(), 5);
}

#[test]
fn cleared_bytes_is_empty_bytes() {
    let mut m = received(Message::bytes(vec![1_u8, 2, 3]));
    m.clear_body();
    assert_eq!(m.body_bytes().map(|b| b.len()), Some(0), "empty bytes");
    assert_format(m.map_set("k", 1_i32), "map_set on a cleared bytes message");
    assert_format(
        m.stream_write(1_i32),
        "stream_write on a cleared bytes message",
    );
    m.set_body(Body::Bytes(vec![9_u8].into())).unwrap();
    assert_eq!(m.body_bytes().map(|b| b.to_vec()), Some(vec![9]));
}

#[test]
fn cleared_object_has_no_object() {
    let mut m = received(Message::object(&7_u32).unwrap());
    m.clear_body();
    assert_format(m.body_object::<u32>(), "reading a cleared object");
    assert_format(m.map_set("k", 1_i32), "map_set on a cleared object message");
    assert_format(
        m.set_body(Body::Text("x".into())),
        "text on an object message",
    );
    m.set_body(Body::Object(Box::new(ObjectBody::new(&8_u32).unwrap())))
        .unwrap();
    assert_eq!(m.body_object::<u32>().unwrap(), 8);
}

#[test]
fn cleared_messages_of_every_kind_round_trip_with_their_kind() {
    for original in every_kind() {
        let mut m = received(original);
        m.clear_body();
        let copy = Message::decode(&m.encode()).unwrap();
        assert_eq!(copy, m, "{:?}", m.body());
        assert_eq!(copy.body_kind(), m.body_kind());
        assert!(
            copy.body_kind().is_some(),
            "the kind survives the round trip"
        );
    }
}

#[test]
fn a_message_without_body_still_takes_any_first_body() {
    let mut m = Message::new();
    m.map_set("k", 1_i32).unwrap();
    let mut s = Message::new();
    s.stream_write(1_i32).unwrap();
    let mut t = Message::new();
    t.set_body(Body::Text("x".into())).unwrap();
    assert_eq!(t.body_text(), Some("x"));
}
