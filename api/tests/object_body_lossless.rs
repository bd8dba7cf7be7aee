//! Object bodies never accept what cannot be read back: values JSON would turn into `null`
//! (NaN, infinities, `Some` of a null-valued thing) or nest too deep to parse are refused at
//! creation with [`Error::MessageFormat`]; everything else round-trips exactly.

use courier_api::{Error, Message, ObjectBody};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

fn refused<T: Serialize + ?Sized>(value: &T, what: &str) -> String {
    match Message::object(value) {
        Err(Error::MessageFormat(reason)) => reason,
        other => panic!("{what}: expected MessageFormat, got {other:?}"),
    }
}

fn round_trips<T>(value: &T)
where
    T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
{
    let m = Message::object(value).unwrap_or_else(|e| panic!("{value:?}: {e}"));
    let m = Message::decode(&m.encode()).unwrap();
    assert_eq!(&m.body_object::<T>().unwrap(), value);
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Reading {
    sensor: String,
    value: Option<f64>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Marker;

#[test]
fn non_finite_floats_are_refused() {
    let reason = refused(&f64::NAN, "NaN");
    assert!(reason.contains("NaN"), "{reason}");
    refused(&f64::INFINITY, "inf");
    refused(&f64::NEG_INFINITY, "-inf");
    refused(&f32::NAN, "f32 NaN");
    refused(&vec![1.0, f64::NAN], "NaN in a list");
    refused(
        &Reading {
            sensor: "t".into(),
            value: Some(f64::NAN),
        },
        "Option<f64> = NaN",
    );
    let mut map = BTreeMap::new();
    map.insert("x", f32::INFINITY);
    refused(&map, "inf in a map");
    assert!(matches!(
        ObjectBody::with_type_name("reading", &f64::NAN),
        Err(Error::MessageFormat(_))
    ));
}

#[test]
fn some_of_a_null_value_is_refused() {
    refused(&Some(()), "Some(())");
    refused(&Some(None::<i32>), "Some(None)");
    refused(&Some(Some(None::<i32>)), "Some(Some(None))");
    refused(&Some(Marker), "Some(unit struct)");
    refused(&vec![Some(None::<u8>)], "Some(None) in a list");
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Deep(Option<Box<Deep>>, u8);

fn deep(levels: usize) -> Deep {
    let mut deep = Deep(None, 0);
    for _ in 1..levels {
        deep = Deep(Some(Box::new(deep)), 0);
    }
    deep
}

#[test]
fn nesting_json_cannot_parse_is_refused() {
    let reason = refused(&deep(200), "200 levels");
    assert!(reason.contains("deep"), "{reason}");
    // The boundary is JSON's own: 127 levels read back, 128 do not.
    round_trips(&deep(127));
    refused(&deep(128), "128 levels");
    let json = serde_json::to_vec(&deep(128)).unwrap();
    assert!(serde_json::from_slice::<Deep>(&json).is_err());
}

#[test]
fn map_keys_json_cannot_hold_are_refused() {
    let mut pairs = BTreeMap::new();
    pairs.insert((1, 2), "tuple key");
    refused(&pairs, "tuple keys");
    let mut units = BTreeMap::new();
    units.insert((), 1);
    refused(&units, "unit keys");
    let mut optional = BTreeMap::new();
    optional.insert(Some(1), 1);
    round_trips(&optional);
    optional.insert(None, 0);
    refused(&optional, "a None key");
}

#[test]
fn faithful_values_still_round_trip() {
    round_trips(&Reading {
        sensor: "t".into(),
        value: Some(21.5),
    });
    round_trips(&Reading {
        sensor: "t".into(),
        value: None,
    });
    round_trips(&None::<i32>);
    round_trips(&Some(Some(3_i32)));
    round_trips(&Some(vec![None::<u8>, Some(1)]));
    round_trips(&());
    round_trips(&Marker);
    round_trips(&(f64::MAX, f64::MIN_POSITIVE, -0.0_f64, f32::MAX));
    round_trips(&(u128::MAX, i128::MIN, u64::MAX, i64::MIN));
    let mut keyed = HashMap::new();
    keyed.insert(-7_i64, "neg".to_string());
    keyed.insert(u32::MAX as i64, "big".to_string());
    round_trips(&keyed);
    let mut flags = BTreeMap::new();
    flags.insert(true, 1_u8);
    flags.insert(false, 0_u8);
    round_trips(&flags);
    let mut chars = BTreeMap::new();
    chars.insert('k', vec![1_u8, 2]);
    round_trips(&chars);
    round_trips(&deep(100));
}

type Shape = Vec<(
    Option<Option<f64>>,
    Option<f32>,
    Option<()>,
    Option<Option<Marker>>,
)>;

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
    ]
}

proptest! {
    /// Accepted exactly when JSON carries the value back unchanged, and then read back equal.
    #[test]
    fn accepted_exactly_when_faithful(shape in proptest::collection::vec(
        (
            proptest::option::of(proptest::option::of(float())),
            proptest::option::of(float().prop_map(|f| f as f32)),
            proptest::option::of(Just(())),
            proptest::option::of(proptest::option::of(Just(Marker))),
        ),
        0..4,
    )) {
        let shape: Shape = shape;
        let json = serde_json::to_vec(&shape).unwrap();
        let faithful = serde_json::from_slice::<Shape>(&json).ok().as_ref() == Some(&shape);
        match Message::object(&shape) {
            Ok(m) => {
                prop_assert!(faithful, "accepted a lossy value: {:?}", shape);
                prop_assert_eq!(m.body_object::<Shape>().unwrap(), shape);
            }
            Err(Error::MessageFormat(_)) => prop_assert!(!faithful, "refused a faithful value: {:?}", shape),
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }
}

/// Every f64 reads back bit for bit: `serde_json`'s default float parser may round the last
/// bit wrong (this value read back one ulp off), so the crate enables its exact parser.
#[test]
fn floats_read_back_bit_for_bit() {
    for value in [
        -1.4468678324385019e-155_f64,
        f64::MIN_POSITIVE,
        5e-324,
        0.1 + 0.2,
        1.7976931348623157e308,
    ] {
        let m = Message::object(&value).unwrap();
        assert_eq!(
            m.body_object::<f64>().unwrap().to_bits(),
            value.to_bits(),
            "{value:e}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Every finite f64 and f32 an object body accepts reads back bit for bit.
    #[test]
    fn finite_floats_read_back_bit_for_bit(double in any::<u64>(), single in any::<u32>()) {
        let (double, single) = (f64::from_bits(double), f32::from_bits(single));
        if double.is_finite() {
            let back: f64 = Message::object(&double).unwrap().body_object().unwrap();
            prop_assert_eq!(back.to_bits(), double.to_bits(), "{:e}", double);
        }
        if single.is_finite() {
            let back: f32 = Message::object(&single).unwrap().body_object().unwrap();
            prop_assert_eq!(back.to_bits(), single.to_bits(), "{:e}", single);
        }
    }
}
