//! Entries as messages: an entry's type name and scalar fields become typed properties, the
//! whole value becomes an object body.
//!
//! The properties come from a small serde serializer that walks the entry's top level only:
//! a struct's named fields, or a tuple's elements as `_0`, `_1`, …. A field is matchable when
//! its value is a scalar (bool, integer, float, char, string, a unit enum variant, or one of
//! those inside `Option` or a newtype) and its name is a JMS property name; everything else
//! travels in the body only.

use courier_api::message::check_property_name;
use courier_api::{Body, Error, Message, ObjectBody, Result, Value};
use serde::de::DeserializeOwned;
use serde::ser::{self, Serialize};
use std::fmt;

use crate::schema::tuple_type_name;

/// The property holding an entry's unique id (leases find their entry by it). The `$`
/// prefix keeps it apart from field names, which serde takes from Rust identifiers.
pub(crate) const ENTRY_ID: &str = "$entry";

/// A field value as the property serializer sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Bool(bool),
    Int(i128),
    /// A float and the width it was serialized with.
    Float(f64, u8),
    Char(char),
    Str(String),
    /// An enum variant; `unit` is false when the variant carries data.
    Variant {
        enum_name: &'static str,
        variant: &'static str,
        unit: bool,
    },
    /// `None`.
    Null,
    /// Anything else: a sequence, map, struct, bytes, an integer beyond 128 bits.
    Composite,
}

impl Scalar {
    /// The property value stored for this scalar, if it has one. Integers are stored as
    /// longs (selectors compare every integer as a long anyway); values that do not fit are
    /// left out, so no template matches them.
    pub fn to_property(&self) -> Option<Value> {
        Some(match self {
            Scalar::Bool(b) => Value::Bool(*b),
            Scalar::Int(n) => Value::I64(i64::try_from(*n).ok()?),
            Scalar::Float(x, 32) => Value::F32(*x as f32),
            Scalar::Float(x, _) => Value::F64(*x),
            Scalar::Char(c) => Value::String(c.to_string().into()),
            Scalar::Str(s) => Value::String(s.as_str().into()),
            Scalar::Variant { variant, .. } => Value::String((*variant).into()),
            Scalar::Null | Scalar::Composite => return None,
        })
    }

    /// What a human calls this value's type, for error messages.
    pub fn describe(&self) -> String {
        match self {
            Scalar::Bool(_) => "boolean".into(),
            Scalar::Int(_) => "integer".into(),
            Scalar::Float(..) => "float".into(),
            Scalar::Char(_) => "char".into(),
            Scalar::Str(_) => "string".into(),
            Scalar::Variant {
                enum_name, variant, ..
            } => format!("{enum_name}::{variant}"),
            Scalar::Null => "None".into(),
            Scalar::Composite => "composite value".into(),
        }
    }
}

/// A field: its kind name (for tuple type names) and its value.
#[derive(Debug, Clone)]
pub(crate) struct FieldValue {
    pub kind: String,
    pub scalar: Scalar,
}

/// An entry's type name and fields, read from its `Serialize` implementation.
#[derive(Debug)]
pub(crate) struct Fields {
    pub type_name: String,
    pub fields: Vec<(String, Scalar)>,
}

/// Reads the type name and top-level fields of `entry`.
pub(crate) fn fields_of<E: Serialize + ?Sized>(entry: &E) -> Result<Fields> {
    entry.serialize(EntrySerializer).map_err(|e| match e {
        EncodeError::NotAnEntry(what) => Error::invalid_argument(format!(
            "{} cannot be a space entry: it serializes as {what}; entries are structs or tuples",
            std::any::type_name::<E>()
        )),
        EncodeError::Custom(msg) => Error::format(format!(
            "cannot serialise {}: {msg}",
            std::any::type_name::<E>()
        )),
    })
}

/// Converts a template value to a scalar with the same serializer entries go through, so
/// a value matches exactly what a field holding it would store.
pub(crate) fn scalar_of<V: Serialize + ?Sized>(value: &V) -> Result<Scalar> {
    value
        .serialize(FieldSerializer)
        .map(|f| f.scalar)
        .map_err(|e| Error::invalid_argument(format!("cannot serialise a template value: {e}")))
}

/// Builds the message for an entry with id `id`: properties for the matchable fields, the
/// entry id, `JMSType` = the type name, and the whole value as an object body.
pub(crate) fn to_message<E: Serialize + ?Sized>(entry: &E, id: &str) -> Result<(String, Message)> {
    let Fields { type_name, fields } = fields_of(entry)?;
    check_type_name(&type_name)?;
    let body = ObjectBody::with_type_name(&type_name, entry)?;
    let mut message = Message::with_body(Body::Object(Box::new(body)));
    for (name, scalar) in &fields {
        if let (Some(value), true) = (scalar.to_property(), matchable_name(name).is_ok()) {
            message.set_property(name, value)?;
        }
    }
    message.set_property(ENTRY_ID, id)?;
    message.set_message_type(Some(&type_name));
    Ok((type_name, message))
}

/// The deepest nesting of arrays and objects an entry body may have: `serde_json`, which
/// reads bodies back, refuses 128 levels and more, and `ObjectBody` refuses to write them.
#[cfg(test)]
const MAX_BODY_DEPTH: usize = 127;

/// A copy of a received entry message that can be sent again (properties and body kept).
pub(crate) fn resend_copy(message: &Message) -> Result<Message> {
    let mut copy = Message::with_body(message.body().clone());
    for (name, value) in message.properties().iter() {
        copy.set_property(name, value.clone())?;
    }
    copy.set_message_type(message.message_type());
    Ok(copy)
}

/// Decodes an entry message as `T`.
pub(crate) fn decode<T: DeserializeOwned>(message: &Message) -> Result<T> {
    message.body_object::<T>().map_err(|e| {
        let id = message
            .property::<String>(ENTRY_ID)
            .ok()
            .flatten()
            .unwrap_or_else(|| "(no entry id)".into());
        Error::format(format!("entry {id} is unusable: {e}"))
    })
}

/// Checks that a field name can be a property: a JMS identifier that is not a selector
/// keyword, not `JMS…` and not one of the space's own `$` properties.
pub(crate) fn matchable_name(name: &str) -> Result<()> {
    if name.starts_with('$') {
        return Err(Error::invalid_argument(format!(
            "property name {name:?} is reserved by courier-space"
        )));
    }
    check_property_name(name)
}

/// Type names become part of queue names: no whitespace or control characters.
pub(crate) fn check_type_name(type_name: &str) -> Result<()> {
    if type_name.is_empty()
        || type_name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::invalid_argument(format!(
            "entry type name {type_name:?} must be non-empty without whitespace (check \
             #[serde(rename)])"
        )));
    }
    Ok(())
}

#[derive(Debug)]
enum EncodeError {
    NotAnEntry(&'static str),
    Custom(String),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::NotAnEntry(what) => write!(f, "not an entry: {what}"),
            EncodeError::Custom(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for EncodeError {}

impl ser::Error for EncodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        EncodeError::Custom(msg.to_string())
    }
}

/// Serializes the top level of an entry into [`Fields`].
struct EntrySerializer;

macro_rules! not_an_entry {
    ($($method:ident($($arg:ty),*) => $what:literal),* $(,)?) => {$(
        fn $method(self, $(_: $arg),*) -> Result<Fields, EncodeError> {
            Err(EncodeError::NotAnEntry($what))
        }
    )*};
}

impl ser::Serializer for EntrySerializer {
    type Ok = Fields;
    type Error = EncodeError;
    type SerializeSeq = ser::Impossible<Fields, EncodeError>;
    type SerializeTuple = PositionalFields;
    type SerializeTupleStruct = PositionalFields;
    type SerializeTupleVariant = ser::Impossible<Fields, EncodeError>;
    type SerializeMap = ser::Impossible<Fields, EncodeError>;
    type SerializeStruct = NamedFields;
    type SerializeStructVariant = ser::Impossible<Fields, EncodeError>;

    not_an_entry! {
        serialize_bool(bool) => "a boolean",
        serialize_i8(i8) => "an integer", serialize_i16(i16) => "an integer",
        serialize_i32(i32) => "an integer", serialize_i64(i64) => "an integer",
        serialize_i128(i128) => "an integer",
        serialize_u8(u8) => "an integer", serialize_u16(u16) => "an integer",
        serialize_u32(u32) => "an integer", serialize_u64(u64) => "an integer",
        serialize_u128(u128) => "an integer",
        serialize_f32(f32) => "a float", serialize_f64(f64) => "a float",
        serialize_char(char) => "a char", serialize_str(&str) => "a string",
        serialize_bytes(&[u8]) => "bytes", serialize_none() => "None",
        serialize_unit() => "unit",
        serialize_unit_variant(&'static str, u32, &'static str) => "an enum",
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<Fields, EncodeError> {
        Err(EncodeError::NotAnEntry("an Option"))
    }

    fn serialize_unit_struct(self, name: &'static str) -> Result<Fields, EncodeError> {
        Ok(Fields {
            type_name: name.to_owned(),
            fields: Vec::new(),
        })
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<Fields, EncodeError> {
        let field = value.serialize(FieldSerializer)?;
        Ok(Fields {
            type_name: name.to_owned(),
            fields: vec![("_0".to_owned(), field.scalar)],
        })
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<Fields, EncodeError> {
        Err(EncodeError::NotAnEntry("an enum"))
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, EncodeError> {
        Err(EncodeError::NotAnEntry("a sequence"))
    }

    fn serialize_tuple(self, len: usize) -> Result<PositionalFields, EncodeError> {
        Ok(PositionalFields {
            name: None,
            kinds: Vec::with_capacity(len),
            fields: Vec::with_capacity(len),
        })
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<PositionalFields, EncodeError> {
        Ok(PositionalFields {
            name: Some(name),
            kinds: Vec::new(),
            fields: Vec::with_capacity(len),
        })
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, EncodeError> {
        Err(EncodeError::NotAnEntry("an enum"))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, EncodeError> {
        Err(EncodeError::NotAnEntry(
            "a map (is it #[serde(flatten)]? entries need plain fields)",
        ))
    }

    fn serialize_struct(self, name: &'static str, len: usize) -> Result<NamedFields, EncodeError> {
        Ok(NamedFields {
            name,
            fields: Vec::with_capacity(len),
        })
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, EncodeError> {
        Err(EncodeError::NotAnEntry("an enum"))
    }
}

/// The fields of a struct entry.
struct NamedFields {
    name: &'static str,
    fields: Vec<(String, Scalar)>,
}

impl ser::SerializeStruct for NamedFields {
    type Ok = Fields;
    type Error = EncodeError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        let field = value.serialize(FieldSerializer)?;
        self.fields.push((key.to_owned(), field.scalar));
        Ok(())
    }

    fn end(self) -> Result<Fields, EncodeError> {
        Ok(Fields {
            type_name: self.name.to_owned(),
            fields: self.fields,
        })
    }
}

/// The elements of a tuple or tuple struct entry.
struct PositionalFields {
    /// The tuple struct's name; `None` for a plain tuple, named after its element kinds.
    name: Option<&'static str>,
    kinds: Vec<String>,
    fields: Vec<(String, Scalar)>,
}

impl PositionalFields {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        let field = value.serialize(FieldSerializer)?;
        self.kinds.push(field.kind);
        self.fields
            .push((format!("_{}", self.fields.len()), field.scalar));
        Ok(())
    }

    fn finish(self) -> Fields {
        let type_name = match self.name {
            Some(name) => name.to_owned(),
            None => tuple_type_name(self.kinds),
        };
        Fields {
            type_name,
            fields: self.fields,
        }
    }
}

impl ser::SerializeTuple for PositionalFields {
    type Ok = Fields;
    type Error = EncodeError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.push(value)
    }

    fn end(self) -> Result<Fields, EncodeError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleStruct for PositionalFields {
    type Ok = Fields;
    type Error = EncodeError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.push(value)
    }

    fn end(self) -> Result<Fields, EncodeError> {
        Ok(self.finish())
    }
}

/// Serializes one field value into its kind name and scalar, without descending into
/// composite values.
struct FieldSerializer;

fn field(kind: impl Into<String>, scalar: Scalar) -> Result<FieldValue, EncodeError> {
    Ok(FieldValue {
        kind: kind.into(),
        scalar,
    })
}

macro_rules! scalar_fields {
    ($($method:ident($ty:ty) => $kind:literal, $v:ident => $scalar:expr),* $(,)?) => {$(
        fn $method(self, $v: $ty) -> Result<FieldValue, EncodeError> {
            field($kind, $scalar)
        }
    )*};
}

impl ser::Serializer for FieldSerializer {
    type Ok = FieldValue;
    type Error = EncodeError;
    type SerializeSeq = Skip;
    type SerializeTuple = Skip;
    type SerializeTupleStruct = Skip;
    type SerializeTupleVariant = Skip;
    type SerializeMap = Skip;
    type SerializeStruct = Skip;
    type SerializeStructVariant = Skip;

    scalar_fields! {
        serialize_bool(bool) => "bool", v => Scalar::Bool(v),
        serialize_i8(i8) => "i8", v => Scalar::Int(v.into()),
        serialize_i16(i16) => "i16", v => Scalar::Int(v.into()),
        serialize_i32(i32) => "i32", v => Scalar::Int(v.into()),
        serialize_i64(i64) => "i64", v => Scalar::Int(v.into()),
        serialize_i128(i128) => "i128", v => Scalar::Int(v),
        serialize_u8(u8) => "u8", v => Scalar::Int(v.into()),
        serialize_u16(u16) => "u16", v => Scalar::Int(v.into()),
        serialize_u32(u32) => "u32", v => Scalar::Int(v.into()),
        serialize_u64(u64) => "u64", v => Scalar::Int(v.into()),
        serialize_u128(u128) => "u128",
            v => i128::try_from(v).map_or(Scalar::Composite, Scalar::Int),
        serialize_f32(f32) => "f32", v => Scalar::Float(v.into(), 32),
        serialize_f64(f64) => "f64", v => Scalar::Float(v, 64),
        serialize_char(char) => "char", v => Scalar::Char(v),
        serialize_str(&str) => "str", v => Scalar::Str(v.to_owned()),
        serialize_bytes(&[u8]) => "bytes", _v => Scalar::Composite,
    }

    fn serialize_none(self) -> Result<FieldValue, EncodeError> {
        field("option", Scalar::Null)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<FieldValue, EncodeError> {
        let inner = value.serialize(FieldSerializer)?;
        field("option", inner.scalar)
    }

    fn serialize_unit(self) -> Result<FieldValue, EncodeError> {
        field("unit", Scalar::Composite)
    }

    fn serialize_unit_struct(self, name: &'static str) -> Result<FieldValue, EncodeError> {
        field(name, Scalar::Composite)
    }

    fn serialize_unit_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<FieldValue, EncodeError> {
        field(
            name,
            Scalar::Variant {
                enum_name: name,
                variant,
                unit: true,
            },
        )
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<FieldValue, EncodeError> {
        let inner = value.serialize(FieldSerializer)?;
        field(name, inner.scalar)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _value: &T,
    ) -> Result<FieldValue, EncodeError> {
        field(
            name,
            Scalar::Variant {
                enum_name: name,
                variant,
                unit: false,
            },
        )
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Skip, EncodeError> {
        Ok(Skip::composite("seq"))
    }

    fn serialize_tuple(self, len: usize) -> Result<Skip, EncodeError> {
        Ok(Skip::composite(format!("tuple{len}")))
    }

    fn serialize_tuple_struct(self, name: &'static str, _len: usize) -> Result<Skip, EncodeError> {
        Ok(Skip::composite(name))
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Skip, EncodeError> {
        Ok(Skip::variant(name, variant))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Skip, EncodeError> {
        Ok(Skip::composite("map"))
    }

    fn serialize_struct(self, name: &'static str, _len: usize) -> Result<Skip, EncodeError> {
        Ok(Skip::composite(name))
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Skip, EncodeError> {
        Ok(Skip::variant(name, variant))
    }
}

/// Swallows the contents of a composite field value; properties only hold scalars.
struct Skip(FieldValue);

impl Skip {
    fn composite(kind: impl Into<String>) -> Self {
        Skip(FieldValue {
            kind: kind.into(),
            scalar: Scalar::Composite,
        })
    }

    fn variant(enum_name: &'static str, variant: &'static str) -> Self {
        Skip(FieldValue {
            kind: enum_name.into(),
            scalar: Scalar::Variant {
                enum_name,
                variant,
                unit: false,
            },
        })
    }
}

macro_rules! skip_impl {
    ($($trait:ident { $($method:ident($($arg:ident: $ty:ty),*);)* })*) => {$(
        impl ser::$trait for Skip {
            type Ok = FieldValue;
            type Error = EncodeError;
            $(
                fn $method<T: Serialize + ?Sized>(
                    &mut self,
                    $($arg: $ty,)*
                    _value: &T,
                ) -> Result<(), EncodeError> {
                    $(let _ = $arg;)*
                    Ok(())
                }
            )*
            fn end(self) -> Result<FieldValue, EncodeError> {
                Ok(self.0)
            }
        }
    )*};
}

skip_impl! {
    SerializeSeq { serialize_element(); }
    SerializeTuple { serialize_element(); }
    SerializeTupleStruct { serialize_field(); }
    SerializeTupleVariant { serialize_field(); }
    SerializeStruct { serialize_field(key: &'static str); }
    SerializeStructVariant { serialize_field(key: &'static str); }
}

impl ser::SerializeMap for Skip {
    type Ok = FieldValue;
    type Error = EncodeError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, _key: &T) -> Result<(), EncodeError> {
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, _value: &T) -> Result<(), EncodeError> {
        Ok(())
    }

    fn end(self) -> Result<FieldValue, EncodeError> {
        Ok(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    use crate::schema::Shape;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum Status {
        Open,
        Done,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Task {
        id: u64,
        kind: String,
        weight: f32,
        note: Option<String>,
        status: Status,
        tags: Vec<String>,
        not: bool,
    }

    /// An expression tree: each `Add` nests the body two levels deeper.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum Expr {
        Add(Box<Expr>, Box<Expr>),
        Num(i64),
    }

    fn nested(levels: usize) -> Expr {
        (0..levels).fold(Expr::Num(0), |inner, _| {
            Expr::Add(Box::new(inner), Box::new(Expr::Num(1)))
        })
    }

    /// Entries too deep to be read back are refused at the write; those that can be read
    /// back are accepted and decode.
    #[test]
    fn entries_too_deep_to_read_back_are_refused() {
        let (_, message) = to_message(&(nested(40), 5_i64), "id").unwrap();
        let back: (Expr, i64) = decode(&message).unwrap();
        assert_eq!(back, (nested(40), 5));
        for levels in [64, 200] {
            let entry = (nested(levels), 5_i64);
            match to_message(&entry, "id") {
                Err(Error::MessageFormat(why)) => assert!(why.contains("nests too deep"), "{why}"),
                Err(other) => panic!("{levels} levels: {other}"),
                Ok((_, message)) => {
                    let read = decode::<(Expr, i64)>(&message);
                    panic!("{levels} levels were accepted; reading back gives {read:?}")
                }
            }
        }
    }

    /// The limit is exactly where reading back starts to fail.
    #[test]
    fn the_depth_limit_is_where_reading_back_fails() {
        let arrays = |depth: usize| -> serde_json::Value {
            serde_json::from_str(&format!("{}{}", "[".repeat(depth), "]".repeat(depth))).unwrap()
        };
        // The tuple is one level: the body nests one deeper than the value.
        let (_, deepest) = to_message(&(arrays(MAX_BODY_DEPTH - 1),), "id").unwrap();
        let back: (serde_json::Value,) = decode(&deepest).unwrap();
        assert_eq!(back.0, arrays(MAX_BODY_DEPTH - 1));
        assert!(to_message(&(arrays(MAX_BODY_DEPTH),), "id").is_err());
    }

    fn task() -> Task {
        Task {
            id: 7,
            kind: "resize".into(),
            weight: 0.1,
            note: None,
            status: Status::Done,
            tags: vec!["a".into()],
            not: true,
        }
    }

    #[test]
    fn struct_fields_become_typed_properties() {
        let (type_name, m) = to_message(&task(), "e1").unwrap();
        assert_eq!(type_name, "Task");
        assert_eq!(m.message_type(), Some("Task"));
        assert_eq!(m.raw_property("id"), Some(&Value::I64(7)));
        assert_eq!(m.raw_property("kind"), Some(&Value::from("resize")));
        assert_eq!(m.raw_property("weight"), Some(&Value::F32(0.1)));
        assert_eq!(m.raw_property("status"), Some(&Value::from("Done")));
        assert!(!m.has_property("note"), "None is NULL");
        assert!(!m.has_property("tags"), "sequences are body only");
        assert!(!m.has_property("not"), "a keyword is not a property name");
        assert_eq!(m.raw_property(ENTRY_ID), Some(&Value::from("e1")));
        assert_eq!(decode::<Task>(&m).unwrap(), task());
    }

    #[test]
    fn tuples_are_positional_and_named_by_element_kinds() {
        let (type_name, m) = to_message(&("task", 7_i64, "resize"), "e2").unwrap();
        assert_eq!(type_name, "(str,i64,str)");
        assert_eq!(m.raw_property("_1"), Some(&Value::I64(7)));
        assert_eq!(
            Shape::of::<(String, i64, String)>().unwrap().type_name,
            type_name,
            "a template for the owned tuple finds the borrowed one"
        );
        let decoded: (String, i64, String) = decode(&m).unwrap();
        assert_eq!(decoded, ("task".into(), 7, "resize".into()));
        assert_eq!(fields_of(&(3_i32,)).unwrap().type_name, "(i32)");
    }

    #[test]
    fn write_and_read_sides_agree_on_tuple_kinds() {
        type T = (Option<u8>, Status, Vec<u16>, char, bool, f64);
        let value: T = (Some(1), Status::Open, vec![], 'x', true, 1.5);
        assert_eq!(
            fields_of(&value).unwrap().type_name,
            Shape::of::<T>().unwrap().type_name
        );
    }

    #[test]
    fn values_that_are_not_entries_are_refused() {
        assert!(matches!(fields_of(&5_i32), Err(Error::InvalidArgument(_))));
        assert!(matches!(
            fields_of(&vec![1]),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            fields_of(&Status::Open),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn out_of_range_integers_are_not_matchable() {
        assert_eq!(Scalar::Int(u64::MAX.into()).to_property(), None);
        assert_eq!(Scalar::Int(-3).to_property(), Some(Value::I64(-3)));
    }
}
