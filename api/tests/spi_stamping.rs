//! Stamping in two parts: the client part never touches the time headers, the broker part
//! sets them from the clock it is given (the broker's), not the client's.

use courier_api::spi;
use courier_api::{DeliveryMode, Destination, Error, Message, SendOptions};
use std::time::Duration;

#[test]
fn the_client_part_sets_routing_headers_and_leaves_the_times() {
    let mut m = Message::text("x");
    spi::header_mut(&mut m).timestamp = 7;
    spi::header_mut(&mut m).redelivered = true;
    spi::header_mut(&mut m).delivery_count = 3;
    let options = SendOptions {
        delivery_mode: DeliveryMode::NonPersistent,
        priority: 8,
        time_to_live: Duration::from_secs(1),
        ..SendOptions::default()
    };
    let queue = Destination::queue("q");
    spi::stamp_client(&mut m, &queue, &options, Some("ID:1".into())).unwrap();
    assert_eq!(m.destination(), Some(&queue));
    assert_eq!(m.delivery_mode(), DeliveryMode::NonPersistent);
    assert_eq!(m.priority(), 8);
    assert_eq!(m.message_id(), Some("ID:1"));
    assert!(!m.redelivered());
    assert_eq!(m.delivery_count(), 0);
    assert_eq!(
        (m.timestamp(), m.expiration(), m.delivery_time()),
        (7, 0, 0)
    );

    let no_ids = SendOptions {
        disable_message_id: true,
        ..options
    };
    spi::stamp_client(&mut m, &queue, &no_ids, Some("ID:2".into())).unwrap();
    assert_eq!(m.message_id(), None);
}

#[test]
fn the_client_part_refuses_before_changing_anything() {
    let mut m = Message::text("x");
    let bad = SendOptions {
        priority: 10,
        ..SendOptions::default()
    };
    let r = spi::stamp_client(&mut m, &Destination::queue("q"), &bad, None);
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    let r = spi::stamp_client(
        &mut m,
        &Destination::queue(""),
        &SendOptions::default(),
        None,
    );
    assert!(matches!(r, Err(Error::InvalidDestination { .. })), "{r:?}");
    assert_eq!(m.destination(), None);
}

#[test]
fn the_broker_part_uses_the_clock_it_is_given() {
    let mut m = Message::text("x");
    let broker_now = 1_000_000;
    spi::stamp_times(
        &mut m,
        Duration::from_millis(1500),
        Duration::from_nanos(1),
        false,
        broker_now,
    );
    assert_eq!(m.timestamp(), broker_now);
    assert_eq!(m.expiration(), broker_now + 1500);
    assert_eq!(
        m.delivery_time(),
        broker_now + 1,
        "a delay rounds up, never early"
    );

    spi::stamp_times(&mut m, Duration::ZERO, Duration::MAX, true, u64::MAX - 1);
    assert_eq!(m.timestamp(), 0, "timestamps disabled");
    assert_eq!(m.expiration(), 0, "no time to live: never expires");
    assert_eq!(m.delivery_time(), u64::MAX, "saturates instead of wrapping");
}

#[test]
fn a_received_message_is_read_only() {
    let mut m = Message::text("x");
    spi::mark_received(&mut m);
    assert!(matches!(
        m.set_property("a", 1_i32),
        Err(Error::MessageNotWriteable(_))
    ));
}
