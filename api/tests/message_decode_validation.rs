//! `Message::decode` re-checks every invariant the setters keep: bytes that break one are
//! `Error::Decode` with the reason, never a message that lookups and selectors then misread.

use courier_api::spi;
use courier_api::{Destination, Error, Message, Value};
use std::collections::BTreeMap;

/// `bytes` with the one occurrence of `from` replaced by `to` (same length).
fn patched(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at: Vec<usize> = bytes
        .windows(from.len())
        .enumerate()
        .filter(|(_, w)| *w == from)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "{from:?} must occur once");
    let mut out = bytes.to_vec();
    out[at[0]..at[0] + to.len()].copy_from_slice(to);
    out
}

fn refused(bytes: &[u8], what: &str) -> String {
    match Message::decode(bytes) {
        Err(Error::Decode(reason)) => reason,
        other => panic!("{what}: expected Decode, got {other:?}"),
    }
}

fn with_properties(names: &[&str]) -> Vec<u8> {
    let mut m = Message::text("body");
    for (i, name) in names.iter().enumerate() {
        m.set_property(name, i as i32).unwrap();
    }
    m.encode().to_vec()
}

#[test]
fn unsorted_properties_are_refused() {
    // "pa" < "pb" on encode; renaming the first to "pc" breaks the order.
    let bytes = patched(&with_properties(&["pa", "pb"]), b"pa", b"pc");
    let reason = refused(&bytes, "unsorted");
    assert!(reason.contains("order"), "{reason}");
}

#[test]
fn duplicate_properties_are_refused() {
    let bytes = patched(&with_properties(&["pa", "pb"]), b"pb", b"pa");
    let reason = refused(&bytes, "duplicate");
    assert!(reason.contains("duplicated"), "{reason}");
}

#[test]
fn invalid_property_names_are_refused() {
    let base = with_properties(&["ab"]);
    for bad in [&b"1b"[..], b"a-", b"OR", b"IS", b"in"] {
        refused(&patched(&base, b"ab", bad), "bad name");
    }
    let reserved = patched(&with_properties(&["xMSFoo"]), b"xMSFoo", b"JMSFoo");
    refused(&reserved, "reserved JMS name");
    let count = patched(
        &with_properties(&["xMSXDeliveryCount"]),
        b"xMSXDeliveryCount",
        b"JMSXDeliveryCount",
    );
    refused(&count, "JMSXDeliveryCount is not carried in the properties");
}

#[test]
fn the_jmsx_names_a_message_may_carry_are_accepted() {
    let mut m = Message::text("grouped");
    m.set_property("JMSXGroupID", "g").unwrap();
    m.set_property("JMSXGroupSeq", 2_i32).unwrap();
    assert_eq!(Message::decode(&m.encode()).unwrap(), m);
}

#[test]
fn priority_above_nine_is_refused() {
    let mut m = Message::text("x");
    spi::header_mut(&mut m).priority = 250;
    let reason = refused(&m.encode(), "priority 250");
    assert!(reason.contains("priority"), "{reason}");
    spi::header_mut(&mut m).priority = 9;
    assert_eq!(Message::decode(&m.encode()).unwrap().priority(), 9);
}

#[test]
fn invalid_destination_names_are_refused() {
    let mut m = Message::text("x");
    m.set_reply_to(Some(Destination::queue("a b")));
    refused(&m.encode(), "reply-to with a space");
    let mut m = Message::text("x");
    spi::header_mut(&mut m).destination = Some(Destination::topic(""));
    refused(&m.encode(), "empty destination");
    let mut m = Message::text("x");
    spi::header_mut(&mut m).destination = Some(Destination::topic("t".repeat(256)));
    refused(&m.encode(), "destination name too long");
}

#[test]
fn empty_map_entry_names_are_refused() {
    let mut map = BTreeMap::new();
    map.insert("k".to_string(), Value::from(1_i32));
    let bytes = Message::map(map).encode();
    // The map key is the only 'k' string: length 1, byte 'k'; make it length 0 by dropping it.
    let at = bytes.windows(2).position(|w| w == [1, b'k']).unwrap();
    let mut cut = bytes.to_vec();
    cut.splice(at..at + 2, [0]);
    refused(&cut, "empty map entry name");
}

#[test]
fn char_and_bytes_property_values_are_refused() {
    // The property value tag of an i32 (3) becomes the tag of char (8): 'p' = 0x70 fits.
    let mut m = Message::new();
    m.set_property("p", 0x70_i32).unwrap();
    let bytes = m.encode();
    let i32_value = [1, b'p', 3, 0xe0, 0x01]; // name "p", tag 3, zigzag varint 0x70
    let char_value = [1, b'p', 8, 0x01, b'p']; // name "p", tag 8, one-byte UTF-8 'p'
    let reason = refused(&patched(&bytes, &i32_value, &char_value), "char property");
    assert!(reason.contains("property type"), "{reason}");
}

#[test]
fn a_send_refuses_what_a_receiver_could_not_decode() {
    let options = courier_api::SendOptions::default();
    let queue = Destination::queue("q");

    let mut m = Message::text("x");
    m.set_reply_to(Some(Destination::queue("a b")));
    let before = m.clone();
    assert!(matches!(
        spi::stamp(&mut m, &queue, &options, None),
        Err(Error::InvalidDestination { .. })
    ));
    assert_eq!(m, before, "a refused send changes nothing");

    let mut map = BTreeMap::new();
    map.insert(String::new(), Value::from(1_i32));
    let mut m = Message::map(map);
    assert!(matches!(
        spi::stamp(&mut m, &queue, &options, None),
        Err(Error::MessageFormat(_))
    ));

    let mut m = Message::text("x");
    spi::header_mut(&mut m).priority = 250;
    m.set_reply_to(Some(Destination::topic("replies")));
    spi::stamp(&mut m, &queue, &options, Some("ID:1".into())).unwrap();
    assert_eq!(
        Message::decode(&m.encode()).unwrap(),
        m,
        "stamped messages decode"
    );
}

fn map_of(names: &[&str]) -> Vec<u8> {
    let map: BTreeMap<String, Value> = names
        .iter()
        .enumerate()
        .map(|(i, name)| (name.to_string(), Value::from(i as i32)))
        .collect();
    Message::map(map).encode().to_vec()
}

#[test]
fn unsorted_map_entries_are_refused() {
    // "ma" < "mb" on encode; renaming the first to "mc" breaks the order (a map decoded into
    // name order anyway would re-encode to other bytes than it came from).
    let bytes = patched(&map_of(&["ma", "mb"]), b"ma", b"mc");
    let reason = refused(&bytes, "unsorted map");
    assert!(reason.contains("order"), "{reason}");
}

#[test]
fn duplicate_map_entries_are_refused() {
    // Two entries named "ma": decoded into a map, the second would silently replace the first.
    let bytes = patched(&map_of(&["ma", "mb"]), b"mb", b"ma");
    let reason = refused(&bytes, "duplicate map entry");
    assert!(reason.contains("duplicated"), "{reason}");
}
