//! The field-bytes form of a [`Value`]: one self-describing byte string per value, for
//! backends whose fields are untyped byte strings (Redis stream entries and hash fields).
//!
//! # Version 1 (frozen)
//!
//! One tag byte — the value's tag in the message format (see [`crate::message::format`]) —
//! then the value:
//!
//! | tag | type     | value bytes                                   |
//! |-----|----------|-----------------------------------------------|
//! | 0   | `bool`   | one byte: 0 false, 1 true                      |
//! | 1   | `i8`     | one byte, two's complement                     |
//! | 2   | `i16`    | 2 bytes, big-endian two's complement           |
//! | 3   | `i32`    | 4 bytes, big-endian two's complement           |
//! | 4   | `i64`    | 8 bytes, big-endian two's complement           |
//! | 5   | `f32`    | 4 bytes, the IEEE 754 bits big-endian          |
//! | 6   | `f64`    | 8 bytes, the IEEE 754 bits big-endian          |
//! | 7   | string   | the UTF-8 bytes, to the end of the field        |
//! | 8   | `char`   | the UTF-8 bytes of the one character (1–4)      |
//! | 9   | bytes    | the bytes as they are, to the end of the field  |
//!
//! Floats keep their exact bits (−0.0, infinities, every NaN payload). A field is exactly
//! one value: a wrong length, an unknown tag, a bool byte other than 0 or 1, invalid UTF-8 or
//! a char field holding other than one character is [`Error::Decode`]. So every value has
//! exactly one field form and every accepted field exactly one value.
//!
//! `api/tests/value_field_bytes.rs` freezes this table with fixed vectors. A change would be a
//! new tag, never a new meaning for an old one.

use bytes::Bytes;
use std::sync::Arc;

use crate::{Error, Result, Value};

/// Tags of the field-bytes form, equal to the value tags of message format version 1.
mod tag {
    pub const BOOL: u8 = 0;
    pub const I8: u8 = 1;
    pub const I16: u8 = 2;
    pub const I32: u8 = 3;
    pub const I64: u8 = 4;
    pub const F32: u8 = 5;
    pub const F64: u8 = 6;
    pub const STRING: u8 = 7;
    pub const CHAR: u8 = 8;
    pub const BYTES: u8 = 9;
}

impl Value {
    /// This value as one self-describing byte string (a tag byte and the value): the form a
    /// backend stores where fields are untyped bytes. Exact for every value, float bits
    /// included. The layout is frozen; see [`Value::from_field_bytes`].
    ///
    /// ```
    /// use courier_api::Value;
    /// assert_eq!(&Value::from(258_i16).to_field_bytes()[..], &[2, 1, 2]);
    /// assert_eq!(&Value::from("hi").to_field_bytes()[..], b"\x07hi");
    /// ```
    pub fn to_field_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(1 + self.field_payload_len());
        match self {
            Value::Bool(v) => out.extend([tag::BOOL, u8::from(*v)]),
            Value::I8(v) => out.extend([tag::I8, v.to_be_bytes()[0]]),
            Value::I16(v) => {
                out.push(tag::I16);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Value::I32(v) => {
                out.push(tag::I32);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Value::I64(v) => {
                out.push(tag::I64);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Value::F32(v) => {
                out.push(tag::F32);
                out.extend_from_slice(&v.to_bits().to_be_bytes());
            }
            Value::F64(v) => {
                out.push(tag::F64);
                out.extend_from_slice(&v.to_bits().to_be_bytes());
            }
            Value::String(v) => {
                out.push(tag::STRING);
                out.extend_from_slice(v.as_bytes());
            }
            Value::Char(v) => {
                out.push(tag::CHAR);
                out.extend_from_slice(v.encode_utf8(&mut [0; 4]).as_bytes());
            }
            Value::Bytes(v) => {
                out.push(tag::BYTES);
                out.extend_from_slice(v);
            }
        }
        Bytes::from(out)
    }

    /// Reads a value back from [`Value::to_field_bytes`]. Anything else — empty input, an
    /// unknown tag, a wrong length, a bool byte other than 0/1, invalid UTF-8, a char field
    /// that is not exactly one character — is [`Error::Decode`]; never panics.
    ///
    /// ```
    /// use courier_api::Value;
    /// let v = Value::from(-0.0_f64);
    /// let back = Value::from_field_bytes(&v.to_field_bytes()).unwrap();
    /// assert!(matches!(back, Value::F64(f) if f.to_bits() == (-0.0_f64).to_bits()));
    /// assert!(Value::from_field_bytes(&[3, 0, 0]).is_err()); // an int needs 4 bytes
    /// ```
    pub fn from_field_bytes(field: &[u8]) -> Result<Value> {
        let (&tag, payload) = field
            .split_first()
            .ok_or_else(|| Error::Decode("an empty field holds no value".into()))?;
        Ok(match tag {
            tag::BOOL => match payload {
                [0] => Value::Bool(false),
                [1] => Value::Bool(true),
                _ => {
                    return Err(Error::Decode(format!(
                        "a boolean field holds {payload:02x?}, not [00] or [01]"
                    )))
                }
            },
            tag::I8 => Value::I8(i8::from_be_bytes(exact(payload, "byte")?)),
            tag::I16 => Value::I16(i16::from_be_bytes(exact(payload, "short")?)),
            tag::I32 => Value::I32(i32::from_be_bytes(exact(payload, "int")?)),
            tag::I64 => Value::I64(i64::from_be_bytes(exact(payload, "long")?)),
            tag::F32 => Value::F32(f32::from_bits(u32::from_be_bytes(exact(payload, "float")?))),
            tag::F64 => Value::F64(f64::from_bits(u64::from_be_bytes(exact(
                payload, "double",
            )?))),
            tag::STRING => Value::String(Arc::from(utf8(payload, "string")?)),
            tag::CHAR => {
                let mut chars = utf8(payload, "char")?.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Value::Char(c),
                    _ => {
                        return Err(Error::Decode(
                            "a char field must hold exactly one character".into(),
                        ))
                    }
                }
            }
            tag::BYTES => Value::Bytes(Bytes::copy_from_slice(payload)),
            other => {
                return Err(Error::Decode(format!(
                    "unknown value tag {other} in a field (known: 0-9)"
                )))
            }
        })
    }

    /// Bytes after the tag in the field form.
    fn field_payload_len(&self) -> usize {
        match self {
            Value::Bool(_) | Value::I8(_) => 1,
            Value::I16(_) => 2,
            Value::I32(_) | Value::F32(_) => 4,
            Value::I64(_) | Value::F64(_) => 8,
            Value::String(s) => s.len(),
            Value::Char(c) => c.len_utf8(),
            Value::Bytes(b) => b.len(),
        }
    }
}

/// The payload of a fixed-width value: exactly `N` bytes.
fn exact<const N: usize>(payload: &[u8], what: &str) -> Result<[u8; N]> {
    payload.try_into().map_err(|_| {
        Error::Decode(format!(
            "a {what} field holds {} bytes after its tag, not {N}",
            payload.len()
        ))
    })
}

/// The payload of a text value as UTF-8.
fn utf8<'a>(payload: &'a [u8], what: &str) -> Result<&'a str> {
    std::str::from_utf8(payload)
        .map_err(|e| Error::Decode(format!("a {what} field is not UTF-8: {e}")))
}
