//! Message bodies (Jakarta Messaging 3.1 §3.11): empty, text, bytes, map, stream and object.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::value::{FromValue, Value};
use crate::{Error, Result};

mod lossless;
mod type_name;

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
    /// Named typed values (`MapMessage`). Decoding refuses entries out of name order or
    /// named twice, so decoded bytes are the encoding of what they decode to.
    #[serde(deserialize_with = "deserialize_map_in_order")]
    Map(Arc<BTreeMap<String, Value>>),
    /// A sequence of typed values read in order (`StreamMessage`).
    Stream(Arc<Vec<Value>>),
    /// A serde value with its type name (`ObjectMessage`). Boxed: the rarest body kind should
    /// not make every message larger.
    Object(Box<ObjectBody>),
}

/// Reads a map body whose entries come in strictly increasing name order, as they are
/// encoded; an entry out of order or named twice is an error instead of being reordered or
/// silently replacing the first.
fn deserialize_map_in_order<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Arc<BTreeMap<String, Value>>, D::Error> {
    struct InOrder;

    impl<'de> serde::de::Visitor<'de> for InOrder {
        type Value = BTreeMap<String, Value>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map of named values in name order")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut entries: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            let mut map = BTreeMap::new();
            while let Some((name, value)) = entries.next_entry::<String, Value>()? {
                if map.last_key_value().is_some_and(|(last, _)| *last >= name) {
                    return Err(serde::de::Error::custom(format!(
                        "map entry {name:?} is duplicated or out of name order"
                    )));
                }
                map.insert(name, value);
            }
            Ok(map)
        }
    }

    deserializer.deserialize_map(InOrder).map(Arc::new)
}

/// The JMS message type a body makes: which body a message carries. A message keeps its kind
/// when its body is cleared (a cleared text message is a text message without text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BodyKind {
    /// `TextMessage`.
    Text,
    /// `BytesMessage`.
    Bytes,
    /// `MapMessage`.
    Map,
    /// `StreamMessage`.
    Stream,
    /// `ObjectMessage`.
    Object,
}

impl BodyKind {
    /// Every kind, in the order of its tag in the message format.
    pub const ALL: [BodyKind; 5] = [
        BodyKind::Text,
        BodyKind::Bytes,
        BodyKind::Map,
        BodyKind::Stream,
        BodyKind::Object,
    ];

    /// The JMS name of the kind: `text`, `bytes`, `map`, `stream` or `object`. These names are
    /// frozen, so a backend may store a kind as its name ([`BodyKind::parse`] reads it back).
    pub fn as_str(self) -> &'static str {
        match self {
            BodyKind::Text => "text",
            BodyKind::Bytes => "bytes",
            BodyKind::Map => "map",
            BodyKind::Stream => "stream",
            BodyKind::Object => "object",
        }
    }

    /// The kind named `name` by [`BodyKind::as_str`]; any other text is [`Error::Decode`].
    pub fn parse(name: &str) -> Result<BodyKind> {
        BodyKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| Error::Decode(format!("{name:?} is not a body kind")))
    }
}

impl Body {
    /// The kind of message this body makes; `None` for [`Body::Empty`].
    pub fn body_kind(&self) -> Option<BodyKind> {
        match self {
            Body::Empty => None,
            Body::Text(_) => Some(BodyKind::Text),
            Body::Bytes(_) => Some(BodyKind::Bytes),
            Body::Map(_) => Some(BodyKind::Map),
            Body::Stream(_) => Some(BodyKind::Stream),
            Body::Object(_) => Some(BodyKind::Object),
        }
    }

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

    /// Bytes the payload holds, for size limits and statistics: text and bytes, every map key
    /// and value (with the slot each entry takes), every stream value, an object's type name
    /// and JSON. Saturates instead of overflowing.
    pub fn size_hint(&self) -> usize {
        match self {
            Body::Empty => 0,
            Body::Text(t) => t.len(),
            Body::Bytes(b) => b.len(),
            Body::Map(m) => m.iter().fold(0, |sum: usize, (k, v)| {
                sum.saturating_add(named_value_size(k, v))
            }),
            Body::Stream(s) => s
                .iter()
                .fold(0, |sum: usize, v| sum.saturating_add(value_size(v))),
            Body::Object(o) => std::mem::size_of::<ObjectBody>()
                .saturating_add(o.type_name.len())
                .saturating_add(o.json.len()),
        }
    }
}

/// Bytes a value holds: its slot plus the string or bytes it points to.
pub(crate) fn value_size(v: &Value) -> usize {
    let heap = match v {
        Value::String(s) => s.len(),
        Value::Bytes(b) => b.len(),
        _ => 0,
    };
    std::mem::size_of::<Value>() + heap
}

/// Bytes a named value (a map entry or a property) holds: the name and the value.
pub(crate) fn named_value_size(name: &str, v: &Value) -> usize {
    std::mem::size_of::<String>()
        .saturating_add(name.len())
        .saturating_add(value_size(v))
}

/// An object body: a serde value, kept as JSON, with the name of its type.
///
/// The type name lets a receiver check what it got before decoding, as `ObjectMessage` does
/// with the class name. [`ObjectBody::new`] takes it from serde (the name a struct or enum
/// gives serde, so `#[serde(rename = "shop.Order")]` sets it; fixed names such as `seq`,
/// `map`, `str`, `i64` or `(i32,str)` for other values; the table is on [`ObjectBody::new`]),
/// never from the compiler, so it is the same on every build;
/// [`ObjectBody::with_type_name`] takes any name.
///
/// ```
/// use courier_api::ObjectBody;
/// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct Order { id: u32 }
/// let body = ObjectBody::new(&Order { id: 7 }).unwrap();
/// assert_eq!(body.type_name(), "Order");
/// assert_eq!(body.decode::<Order>().unwrap(), Order { id: 7 });
///
/// #[derive(serde::Serialize)]
/// #[serde(rename = "shop.Order")]
/// struct Renamed { id: u32 }
/// assert_eq!(ObjectBody::new(&Renamed { id: 7 }).unwrap().type_name(), "shop.Order");
/// assert_eq!(ObjectBody::new(&vec![1, 2]).unwrap().type_name(), "seq");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectBody {
    type_name: Arc<str>,
    json: Bytes,
}

impl ObjectBody {
    /// Serialises `value` under the type name its `Serialize` implementation gives serde —
    /// stable across compilers and crate paths, unlike `std::any::type_name`:
    ///
    /// | the value serialises as                             | type name                      |
    /// |-----------------------------------------------------|--------------------------------|
    /// | a struct, unit struct, newtype or tuple struct      | its serde name: the identifier, or `#[serde(rename = "…")]` |
    /// | an enum variant of any form                         | the enum's serde name          |
    /// | a tuple                                             | `(k1,k2,…)`: each element's name from this table, a nested tuple as `tuple2`, `tuple3`, … |
    /// | `bool`, `i8`…`i128`, `u8`…`u128`, `f32`, `f64`, `char` | that name                   |
    /// | a string                                            | `str`                          |
    /// | bytes (`serialize_bytes`)                           | `bytes`                        |
    /// | `None` or `Some(..)`                                | `option`                       |
    /// | `()`                                                | `unit`                         |
    /// | a sequence (`Vec`, slices, sets)                    | `seq`                          |
    /// | a map                                               | `map`                          |
    ///
    /// Wrappers serde looks through (`Box`, `Arc`, `&T`, `#[serde(transparent)]`) take the
    /// name of what they wrap; an untagged enum takes the name of the variant's content. These
    /// are the names the tuple space (`courier-space`) gives its entry types, so an entry and
    /// an object message of the same value carry the same name. Only the top of the value
    /// (and a tuple's elements) is looked at to name it.
    pub fn new<T: Serialize + ?Sized>(value: &T) -> Result<Self> {
        let type_name = type_name::type_name_of(value)
            .map_err(|e| Error::format(format!("cannot serialise the value: {e}")))?;
        Self::with_type_name(&type_name, value)
    }

    /// Serialises `value` under a type name of the caller's choice.
    ///
    /// A value JSON cannot carry back unchanged is refused with [`Error::MessageFormat`]
    /// naming the problem: NaN or ±infinity, `Some` of a value written as `null` (`Some(())`,
    /// `Some(None)`), nesting deeper than 127 levels, map keys that are not strings, numbers,
    /// booleans or chars.
    pub fn with_type_name<T: Serialize + ?Sized>(type_name: &str, value: &T) -> Result<Self> {
        lossless::check(value).map_err(|e| {
            Error::format(format!(
                "cannot serialise {type_name}: {e}; such a value could not be read back"
            ))
        })?;
        let json = serde_json::to_vec(value)
            .map_err(|e| Error::format(format!("cannot serialise {type_name}: {e}")))?;
        Ok(ObjectBody {
            type_name: Arc::from(type_name),
            json: Bytes::from(json),
        })
    }

    /// Checks that the JSON parses (within the nesting JSON readers accept): decoding a
    /// message from untrusted bytes calls this.
    pub(crate) fn check_json(&self) -> std::result::Result<(), String> {
        serde_json::from_slice::<serde::de::IgnoredAny>(&self.json)
            .map(|_| ())
            .map_err(|e| format!("object body of type {} is not JSON: {e}", self.type_name))
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
