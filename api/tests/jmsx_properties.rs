//! `JMSXDeliveryCount` is one property seen the same way by `has_property`, `property`,
//! `property_names` and selectors: present exactly when the message was delivered.

use courier_api::spi;
use courier_api::{Message, Selector};

fn delivered(count: u32) -> Message {
    let mut m = Message::text("x");
    m.set_property("a", 1_i32).unwrap();
    spi::header_mut(&mut m).delivery_count = count;
    spi::mark_received(&mut m);
    m
}

#[test]
fn delivery_count_is_present_on_a_delivered_message() {
    let m = delivered(1);
    assert!(m.has_property("JMSXDeliveryCount"));
    assert_eq!(m.property::<i32>("JMSXDeliveryCount").unwrap(), Some(1));
    assert!(Selector::parse("JMSXDeliveryCount = 1")
        .unwrap()
        .matches(&m));
    assert!(!Selector::parse("JMSXDeliveryCount IS NULL")
        .unwrap()
        .matches(&m));
}

#[test]
fn delivery_count_is_absent_before_delivery() {
    let m = delivered(0);
    assert!(!m.has_property("JMSXDeliveryCount"));
    assert_eq!(m.property::<i32>("JMSXDeliveryCount").unwrap(), None);
    assert!(Selector::parse("JMSXDeliveryCount IS NULL")
        .unwrap()
        .matches(&m));
    assert!(!Selector::parse("JMSXDeliveryCount = 0")
        .unwrap()
        .matches(&m));
}

#[test]
fn property_names_list_user_and_present_jmsx_properties() {
    assert_eq!(delivered(0).property_names(), ["a"]);
    let m = delivered(3);
    let names = m.property_names();
    assert_eq!(names, ["JMSXDeliveryCount", "a"]);
    for name in names {
        assert!(m.has_property(name), "{name}");
    }
}
