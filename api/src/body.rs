//! Message bodies (Jakarta Messaging 3.1 §3.11): empty, text, bytes, map, stream and object.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::value::{FromValue, Value};
use crate::{Error, Result};

/// The body of a message. Cheap to clone: every payload is shared, not copied.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum Body {
    /// No body (a JMS `Message`).
    #[default]
    Empty,
    /// A string (`TextMessage`).
    Text(Arc<str>),
    /// Uninterpreted bytes (`BytesMessage`).
    Bytes(Bytes),
    /// Named typed values (`MapMessage`).
    Map(Arc<BTreeMap<String, Value>>),
    /// A sequence of typed values read in order (`StreamMessage`).
    Stream(Arc<Vec<Value>>),
    /// A serde value with its type name (`ObjectMessage`). Boxed: the rarest body kind should
    /// not make every message larger.
    Object(Box<ObjectBody>),
}

impl Body {
    /// The JMS name of the body kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Empty => "empty",
            Body::Text(_) => "text",
            Body::Bytes(_) => "bytes",
            Body::Map(_) => "map",
            Body::Stream(_) => "stream",
            Body::Object(_) => "object",
        }
    }

    /// Approximate size of the payload in bytes, for size limits and statistics.
    pub fn size_hint(&self) -> usize {
        match self {
            Body::Empty => 0,
            Body::Text(t) => t.len(),
            Body::Bytes(b) => b.len(),
            Body::Map(m) => m.iter().map(|(k, v)| k.len() + value_size(v)).sum(),
            Body::Stream(s) => s.iter().map(value_size).sum(),
            Body::Object(o) => o.type_name.len() + o.json.len(),
        }
    }
}

pub(crate) fn value_size(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len() + 8,
        Value::Bytes(b) => b.len() + 8,
        _ => 8,
    }
}

/// An object body: a serde value, kept as JSON, with the name of its Rust type.
///
/// The type name lets a receiver check what it got before decoding, as `ObjectMessage` does
/// with the class name.
///
/// ```
/// use courier_api::ObjectBody;
/// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct Order { id: u32 }
/// let body = ObjectBody::new(&Order { id: 7 }).unwrap();
/// assert!(body.type_name().ends_with("Order"));
/// assert_eq!(body.decode::<Order>().unwrap(), Order { id: 7 });
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectBody {
    type_name: Arc<str>,
    json: Bytes,
}

impl ObjectBody {
    /// Serialises `value` under its Rust type name.
    pub fn new<T: Serialize + ?Sized>(value: &T) -> Result<Self> {
        Self::with_type_name(std::any::type_name::<T>(), value)
    }

    /// Serialises `value` under a type name of the caller's choice (stable across crates).
    pub fn with_type_name<T: Serialize + ?Sized>(type_name: &str, value: &T) -> Result<Self> {
        let json = serde_json::to_vec(value)
            .map_err(|e| Error::format(format!("cannot serialise {type_name}: {e}")))?;
        Ok(ObjectBody {
            type_name: Arc::from(type_name),
            json: Bytes::from(json),
        })
    }

    /// The type name given when the body was made.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The serialised value (JSON).
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// Decodes the value as `T`; a shape mismatch is [`Error::MessageFormat`].
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.json).map_err(|e| {
            Error::format(format!(
                "object of type {} cannot be read as {}: {e}",
                self.type_name,
                std::any::type_name::<T>()
            ))
        })
    }
}

/// Reads a stream body value by value, like `StreamMessage.readX()`.
///
/// A read past the end is [`Error::EndOfStream`]; a read that fails to convert does not
/// advance, so the caller may retry it as another type.
///
/// ```
/// use courier_api::{Message, Value};
/// let msg = Message::stream(vec![Value::from(1_i32), Value::from("two")]);
/// let mut r = msg.stream_reader().unwrap();
/// assert_eq!(r.read::<i64>().unwrap(), 1);
/// assert!(r.read::<i32>().is_err()); // "two" is not a number; position stays
/// assert_eq!(r.read::<String>().unwrap(), "two");
/// assert!(r.read::<String>().is_err()); // end of stream
/// ```
#[derive(Debug, Clone)]
pub struct StreamReader {
    values: Arc<Vec<Value>>,
    position: usize,
}

impl StreamReader {
    pub(crate) fn new(values: Arc<Vec<Value>>) -> Self {
        StreamReader {
            values,
            position: 0,
        }
    }

    /// Reads the next value as `T`.
    pub fn read<T: FromValue>(&mut self) -> Result<T> {
        let value = self.values.get(self.position).ok_or(Error::EndOfStream)?;
        let out = T::from_value(value)?;
        self.position += 1;
        Ok(out)
    }

    /// Goes back to the first value.
    pub fn reset(&mut self) {
        self.position = 0;
    }

    /// Values not read yet.
    pub fn remaining(&self) -> usize {
        self.values.len() - self.position
    }
}
