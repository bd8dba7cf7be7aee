//! `ObjectBody::new` names a value from serde's data model, not from the compiler: the serde
//! name of a struct or enum (renames included) and fixed names for everything else. Every
//! expected name is a literal, so a change of the naming is a failing test.

use courier_api::{Body, Error, Message, ObjectBody};
use serde::{Serialize, Serializer};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

mod shop {
    pub mod orders {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        pub struct Order {
            pub id: u32,
        }
    }
}
use shop::orders::Order;

#[derive(Serialize)]
#[serde(rename = "shop.Order")]
struct RenamedOrder {
    id: u32,
}

#[derive(Serialize)]
struct Meters(f64);

#[derive(Serialize)]
struct Point(i32, i32);

#[derive(Serialize)]
struct Marker;

#[derive(Serialize)]
#[serde(transparent)]
struct Wrapper(Order);

#[derive(Serialize)]
#[serde(rename = "shop.Status")]
enum Status {
    Open,
    Held(String),
    Moved(i32, i32),
    Closed { at: u64 },
}

#[derive(Serialize)]
enum Plain {
    One,
}

fn name<T: Serialize + ?Sized>(value: &T) -> String {
    ObjectBody::new(value)
        .unwrap_or_else(|e| panic!("{e}"))
        .type_name()
        .to_owned()
}

#[test]
fn a_plain_struct_is_named_by_its_identifier_not_its_path() {
    assert_eq!(name(&Order { id: 1 }), "Order");
    assert_ne!(
        name(&Order { id: 1 }),
        std::any::type_name::<Order>(),
        "the compiler's name carries the module path"
    );
    assert_eq!(name(&Box::new(Order { id: 1 })), "Order");
    assert_eq!(name(&Arc::new(Order { id: 1 })), "Order");
    assert_eq!(name(&Wrapper(Order { id: 1 })), "Order");
}

#[test]
fn serde_rename_sets_the_name() {
    assert_eq!(name(&RenamedOrder { id: 1 }), "shop.Order");
    for status in [
        Status::Open,
        Status::Held("x".into()),
        Status::Moved(1, 2),
        Status::Closed { at: 3 },
    ] {
        assert_eq!(name(&status), "shop.Status");
    }
    assert_eq!(name(&Plain::One), "Plain");
}

#[test]
fn named_struct_forms_keep_their_names() {
    assert_eq!(name(&Meters(1.5)), "Meters");
    assert_eq!(name(&Point(1, 2)), "Point");
    assert_eq!(name(&Marker), "Marker");
}

#[test]
fn tuples_are_named_by_their_element_kinds() {
    assert_eq!(name(&(1, "a")), "(i32,str)");
    // The names the tuple space gives the same entry types.
    assert_eq!(name(&("task", 7_i64, "resize")), "(str,i64,str)");
    assert_eq!(name(&(3_i32,)), "(i32)");
    assert_eq!(
        name(&(
            (1_u8, 2_u8),
            Some(3),
            vec![1],
            Order { id: 1 },
            None::<bool>,
            'c',
            Status::Open,
            HashMap::<String, i32>::new(),
            (),
            2.5_f32,
        )),
        "(tuple2,option,seq,Order,option,char,shop.Status,map,unit,f32)"
    );
}

#[test]
fn unnamed_values_have_fixed_names() {
    let mut map = BTreeMap::new();
    map.insert("k".to_string(), 1);
    for (got, want) in [
        (name(&vec![Order { id: 1 }]), "seq"),
        (name(&Vec::<u8>::new()), "seq"),
        (name(&[1, 2, 3][..]), "seq"),
        (name(&Some(Order { id: 1 })), "option"),
        (name(&None::<Order>), "option"),
        (name(&map), "map"),
        (name(&HashMap::<i32, bool>::new()), "map"),
        (name(&()), "unit"),
        (name(&true), "bool"),
        (name(&-1_i8), "i8"),
        (name(&-1_i16), "i16"),
        (name(&-1_i32), "i32"),
        (name(&-1_i64), "i64"),
        (name(&-1_i128), "i128"),
        (name(&1_u8), "u8"),
        (name(&1_u16), "u16"),
        (name(&1_u32), "u32"),
        (name(&1_u64), "u64"),
        (name(&1_u128), "u128"),
        (name(&1.5_f32), "f32"),
        (name(&1.5_f64), "f64"),
        (name(&'x'), "char"),
        (name("text"), "str"),
        (name(&"text".to_string()), "str"),
    ] {
        assert_eq!(got, want);
    }
}

#[test]
fn object_messages_carry_the_same_name_through_the_format() {
    let m = Message::object(&RenamedOrder { id: 7 }).unwrap();
    let decoded = Message::decode(&m.encode()).unwrap();
    let Body::Object(object) = decoded.body() else {
        panic!("an object body");
    };
    assert_eq!(object.type_name(), "shop.Order");
    assert_eq!(object.json().as_ref(), br#"{"id":7}"#);
    let chosen = ObjectBody::with_type_name("com.example.Order", &Order { id: 7 }).unwrap();
    assert_eq!(chosen.type_name(), "com.example.Order");
}

/// A `Serialize` implementation that fails.
struct Refuses;

impl Serialize for Refuses {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("refused on purpose"))
    }
}

#[test]
fn a_failing_serialize_is_a_format_error() {
    match ObjectBody::new(&Refuses) {
        Err(Error::MessageFormat(reason)) => assert!(reason.contains("refused on purpose")),
        other => panic!("expected a format error, got {other:?}"),
    }
    match ObjectBody::new(&(1, Refuses)) {
        Err(Error::MessageFormat(reason)) => assert!(reason.contains("refused on purpose")),
        other => panic!("expected a format error, got {other:?}"),
    }
}
