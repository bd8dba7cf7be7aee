//! Typed values of message properties and of map and stream bodies, with the JMS conversion
//! rules (Jakarta Messaging 3.1 §3.5.4, Table 3-2; §3.11 for map and stream bodies).

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

use crate::{Error, Result};

mod field_bytes;

/// One typed value.
///
/// Properties take the first eight kinds; map and stream bodies also take `Char` and `Bytes`.
/// Reading a value as another type follows the JMS table: widening integers and floats, anything
/// to string, string parsed to anything; every other conversion is [`Error::MessageFormat`].
///
/// ```
/// use courier_api::Value;
/// let v = Value::from(7_i16);
/// assert_eq!(v.to::<i64>().unwrap(), 7);
/// assert_eq!(v.to::<String>().unwrap(), "7");
/// assert!(v.to::<i8>().is_err()); // narrowing is a format error
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// `boolean`
    Bool(bool),
    /// `byte`
    I8(i8),
    /// `short`
    I16(i16),
    /// `int`
    I32(i32),
    /// `long`
    I64(i64),
    /// `float`
    F32(f32),
    /// `double`
    F64(f64),
    /// `String`
    String(Arc<str>),
    /// `char` (map and stream bodies only)
    Char(char),
    /// `byte[]` (map and stream bodies only)
    Bytes(Bytes),
}

impl Value {
    /// The JMS name of this value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Bool(_) => "boolean",
            Value::I8(_) => "byte",
            Value::I16(_) => "short",
            Value::I32(_) => "int",
            Value::I64(_) => "long",
            Value::F32(_) => "float",
            Value::F64(_) => "double",
            Value::String(_) => "string",
            Value::Char(_) => "char",
            Value::Bytes(_) => "bytes",
        }
    }

    /// True for the kinds a message property may hold (all but `Char` and `Bytes`).
    pub fn is_property_type(&self) -> bool {
        !matches!(self, Value::Char(_) | Value::Bytes(_))
    }

    /// Reads this value as `T`, following the JMS conversion table.
    pub fn to<T: FromValue>(&self) -> Result<T> {
        T::from_value(self)
    }

    fn mismatch<T>(&self, target: &str) -> Result<T> {
        Err(Error::format(format!(
            "a {} value cannot be read as {target}",
            self.type_name()
        )))
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(v) => write!(f, "{v}"),
            Value::I8(v) => write!(f, "{v}"),
            Value::I16(v) => write!(f, "{v}"),
            Value::I32(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::F32(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::String(v) => f.write_str(v),
            Value::Char(v) => write!(f, "{v}"),
            Value::Bytes(v) => write!(f, "{v:?}"),
        }
    }
}

/// A Rust type a [`Value`] can be read as, under the JMS conversion rules.
pub trait FromValue: Sized {
    /// Converts `value`, or fails with [`Error::MessageFormat`].
    fn from_value(value: &Value) -> Result<Self>;
}

fn parse_str<T: std::str::FromStr>(s: &str, target: &str) -> Result<T> {
    s.trim()
        .parse()
        .map_err(|_| Error::format(format!("string {s:?} cannot be read as {target}")))
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Bool(v) => Ok(*v),
            // Java's Boolean.valueOf: "true" in any case is true, anything else false.
            Value::String(s) => Ok(s.eq_ignore_ascii_case("true")),
            other => other.mismatch("boolean"),
        }
    }
}

impl FromValue for i8 {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::I8(v) => Ok(*v),
            Value::String(s) => parse_str(s, "byte"),
            other => other.mismatch("byte"),
        }
    }
}

impl FromValue for i16 {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::I8(v) => Ok(*v as i16),
            Value::I16(v) => Ok(*v),
            Value::String(s) => parse_str(s, "short"),
            other => other.mismatch("short"),
        }
    }
}

impl FromValue for i32 {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::I8(v) => Ok(*v as i32),
            Value::I16(v) => Ok(*v as i32),
            Value::I32(v) => Ok(*v),
            Value::String(s) => parse_str(s, "int"),
            other => other.mismatch("int"),
        }
    }
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::I8(v) => Ok(*v as i64),
            Value::I16(v) => Ok(*v as i64),
            Value::I32(v) => Ok(*v as i64),
            Value::I64(v) => Ok(*v),
            Value::String(s) => parse_str(s, "long"),
            other => other.mismatch("long"),
        }
    }
}

impl FromValue for f32 {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::F32(v) => Ok(*v),
            Value::String(s) => parse_str(s, "float"),
            other => other.mismatch("float"),
        }
    }
}

impl FromValue for f64 {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::F32(v) => Ok(*v as f64),
            Value::F64(v) => Ok(*v),
            Value::String(s) => parse_str(s, "double"),
            other => other.mismatch("double"),
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Bytes(_) => value.mismatch("string"),
            other => Ok(other.to_string()),
        }
    }
}

impl FromValue for char {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Char(c) => Ok(*c),
            other => other.mismatch("char"),
        }
    }
}

impl FromValue for Bytes {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Bytes(b) => Ok(b.clone()),
            other => other.mismatch("bytes"),
        }
    }
}

impl FromValue for Value {
    fn from_value(value: &Value) -> Result<Self> {
        Ok(value.clone())
    }
}

macro_rules! value_from {
    ($($t:ty => $variant:ident),* $(,)?) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$variant(v.into())
            }
        }
    )*};
}

value_from! {
    bool => Bool, i8 => I8, i16 => I16, i32 => I32, i64 => I64, f32 => F32, f64 => F64,
    char => Char, Bytes => Bytes, String => String, &str => String, Arc<str> => String,
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(Bytes::from(v))
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Bytes(Bytes::copy_from_slice(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_table() {
        assert_eq!(Value::from(1_i8).to::<i16>().unwrap(), 1);
        assert_eq!(Value::from(1_i8).to::<i32>().unwrap(), 1);
        assert_eq!(Value::from(1_i16).to::<i64>().unwrap(), 1);
        assert_eq!(Value::from(1.5_f32).to::<f64>().unwrap(), 1.5);
        assert!(Value::from(1_i64).to::<i32>().is_err());
        assert!(Value::from(1_i32).to::<f64>().is_err());
        assert!(Value::from(1.0_f64).to::<f32>().is_err());
        assert!(Value::from(true).to::<i32>().is_err());
        assert!(Value::from(1_i32).to::<bool>().is_err());
    }

    #[test]
    fn strings_parse_or_fail() {
        assert_eq!(Value::from("42").to::<i32>().unwrap(), 42);
        assert_eq!(Value::from("2.5").to::<f64>().unwrap(), 2.5);
        assert!(Value::from("x").to::<i64>().is_err());
        assert!(Value::from("300").to::<i8>().is_err());
        assert!(Value::from("TRUE").to::<bool>().unwrap());
        assert!(!Value::from("yes").to::<bool>().unwrap());
        assert!(Value::from("c").to::<char>().is_err());
    }

    #[test]
    fn everything_but_bytes_reads_as_string() {
        assert_eq!(Value::from(true).to::<String>().unwrap(), "true");
        assert_eq!(Value::from('z').to::<String>().unwrap(), "z");
        assert!(Value::from(vec![1_u8]).to::<String>().is_err());
    }
}
