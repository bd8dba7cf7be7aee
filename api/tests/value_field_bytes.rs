//! The field-bytes form of values (`Value::to_field_bytes` / `Value::from_field_bytes`),
//! frozen: fixed vectors for every type, exact float bits, and refusal of every malformed
//! field. A changed tag, width or byte order is a failing test here.

use courier_api::{Error, Value};
use proptest::prelude::*;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The frozen vectors: a value and the hex of its field bytes.
fn vectors() -> Vec<(Value, &'static str)> {
    vec![
        (Value::from(false), "0000"),
        (Value::from(true), "0001"),
        (Value::from(-2_i8), "01fe"),
        (Value::from(i8::MAX), "017f"),
        (Value::from(-300_i16), "02fed4"),
        (Value::from(258_i16), "020102"),
        (Value::from(70_000_i32), "0300011170"),
        (Value::from(-1_i32), "03ffffffff"),
        (Value::from(-5_000_000_000_i64), "04fffffffed5fa0e00"),
        (Value::from(i64::MIN), "048000000000000000"),
        (Value::from(1.5_f32), "053fc00000"),
        (Value::from(-0.0_f32), "0580000000"),
        (Value::from(f32::INFINITY), "057f800000"),
        (Value::F32(f32::from_bits(0x7fc0_0001)), "057fc00001"),
        (Value::from(-0.25_f64), "06bfd0000000000000"),
        (Value::from(-0.0_f64), "068000000000000000"),
        (Value::from(f64::NEG_INFINITY), "06fff0000000000000"),
        (
            Value::F64(f64::from_bits(0xfff8_0000_dead_beef)),
            "06fff80000deadbeef",
        ),
        (Value::from(""), "07"),
        (Value::from("Zoë"), "075a6fc3ab"),
        (Value::from('a'), "0861"),
        (Value::from('é'), "08c3a9"),
        (Value::from('😀'), "08f09f9880"),
        (Value::from(Vec::<u8>::new()), "09"),
        (Value::from(vec![0_u8, 255, 7]), "0900ff07"),
    ]
}

/// Compares values exactly: floats by their bits.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::F32(x), Value::F32(y)) => x.to_bits() == y.to_bits(),
        (Value::F64(x), Value::F64(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

#[test]
fn every_vector_is_the_field_form_of_its_value() {
    for (value, vector) in vectors() {
        assert_eq!(hex(&value.to_field_bytes()), vector, "{value:?}");
    }
}

#[test]
fn every_vector_reads_back_as_its_value() {
    for (value, vector) in vectors() {
        let back = Value::from_field_bytes(&unhex(vector)).unwrap_or_else(|e| panic!("{e}"));
        assert!(same(&back, &value), "{vector}: {back:?} != {value:?}");
    }
}

#[test]
fn malformed_fields_are_decode_errors() {
    for (bad, why) in [
        ("", "empty"),
        ("0a", "unknown tag 10"),
        ("ff00", "unknown tag 255"),
        ("00", "bool without its byte"),
        ("0002", "bool byte 2"),
        ("000100", "bool with a trailing byte"),
        ("01", "byte without its byte"),
        ("01ff00", "byte with a trailing byte"),
        ("0201", "short of one byte"),
        ("03000000", "int of three bytes"),
        ("0300000000ff", "int of five bytes"),
        ("0400000000000000", "long of seven bytes"),
        ("05000000", "float of three bytes"),
        ("060000000000000000ff", "double of nine bytes"),
        ("07ff", "string not UTF-8"),
        ("07c3", "string cut inside a character"),
        ("08", "char without a character"),
        ("086162", "char of two characters"),
        ("08c3", "char cut inside"),
        ("08eda080", "char a surrogate"),
    ] {
        match Value::from_field_bytes(&unhex(bad)) {
            Err(Error::Decode(_)) => {}
            other => panic!("{why} ({bad}): expected a decode error, got {other:?}"),
        }
    }
}

fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::from),
        any::<i8>().prop_map(Value::from),
        any::<i16>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u32>().prop_map(|bits| Value::F32(f32::from_bits(bits))),
        any::<u64>().prop_map(|bits| Value::F64(f64::from_bits(bits))),
        ".{0,16}".prop_map(|s: String| Value::from(s)),
        any::<char>().prop_map(Value::from),
        proptest::collection::vec(any::<u8>(), 0..32).prop_map(Value::from),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every value, every float bit pattern included, reads back exactly.
    #[test]
    fn every_value_round_trips_exactly(value in any_value()) {
        let field = value.to_field_bytes();
        let back = Value::from_field_bytes(&field).expect("reads back");
        prop_assert!(same(&back, &value), "{:?} != {:?}", back, value);
    }

    /// Any bytes: never a panic, only decode errors, and an accepted field is the one form of
    /// its value (the encoding is a bijection).
    #[test]
    fn arbitrary_fields_never_panic_and_are_canonical(
        tag in 0u8..12,
        payload in proptest::collection::vec(any::<u8>(), 0..12),
    ) {
        let mut field = vec![tag];
        field.extend_from_slice(&payload);
        match Value::from_field_bytes(&field) {
            Ok(value) => prop_assert_eq!(&value.to_field_bytes()[..], &field[..]),
            Err(e) => prop_assert!(matches!(e, Error::Decode(_)), "{:?}", e),
        }
    }
}
