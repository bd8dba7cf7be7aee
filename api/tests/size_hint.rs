//! `size_hint` counts what a message holds: a limit on it cannot be bypassed by headers, map
//! keys or many small entries.

use courier_api::spi;
use courier_api::{Destination, Message, Value};
use std::collections::BTreeMap;

const LIMIT: usize = 1024;
const BIG: usize = 64 * 1024;

#[test]
fn header_strings_count() {
    let big = "x".repeat(BIG);
    let mut m = Message::new();
    m.set_correlation_id(big.as_str()).unwrap();
    assert!(m.size_hint() > BIG, "correlation id: {}", m.size_hint());

    let mut m = Message::new();
    m.set_message_type(Some(&big));
    assert!(m.size_hint() > BIG, "type: {}", m.size_hint());

    let mut m = Message::new();
    m.set_reply_to(Some(Destination::queue(&big)));
    assert!(m.size_hint() > BIG, "reply-to: {}", m.size_hint());

    let mut m = Message::new();
    spi::header_mut(&mut m).message_id = Some(big.as_str().into());
    spi::header_mut(&mut m).destination = Some(Destination::topic(&big));
    assert!(
        m.size_hint() > 2 * BIG,
        "id + destination: {}",
        m.size_hint()
    );
}

#[test]
fn map_keys_and_entries_count() {
    let mut map = BTreeMap::new();
    map.insert("k".repeat(BIG), Value::from(true));
    assert!(Message::map(map).size_hint() > BIG);

    // Many tiny entries: each costs a key string and a value slot, not 9 bytes.
    let map: BTreeMap<String, Value> = (0..1000)
        .map(|i| (format!("{i}"), Value::from(false)))
        .collect();
    let held = 1000 * (std::mem::size_of::<String>() + std::mem::size_of::<Value>());
    assert!(Message::map(map).size_hint() >= held);
}

#[test]
fn small_messages_stay_under_a_small_limit() {
    let mut m = Message::text("hello");
    m.set_property("a", 1_i32).unwrap();
    assert!(m.size_hint() < LIMIT);
}
