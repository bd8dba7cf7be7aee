//! The type name [`ObjectBody::new`](super::ObjectBody::new) gives a value, read from serde's
//! data model instead of the compiler's `std::any::type_name` (whose text changes between
//! compiler versions and with the crate path).
//!
//! The mapping is documented on `ObjectBody::new`. The serialiser stops as soon as it has
//! the name: only the top of the value (and a top-level tuple's elements) is looked at.

use serde::ser::{self, Serialize};
use std::borrow::Cow;
use std::fmt;

/// The type name of `value` (see the module docs); `Err` with the message of a `Serialize`
/// implementation that failed.
pub(crate) fn type_name_of<T: Serialize + ?Sized>(value: &T) -> Result<String, String> {
    match value.serialize(Namer { top: true }) {
        Ok(name) | Err(Stop::Named(name)) => Ok(name.into_owned()),
        Err(Stop::Failed(message)) => Err(message),
    }
}

/// Why the namer stopped: it has the name (stopping a compound value early), or the value's
/// `Serialize` implementation failed.
#[derive(Debug)]
enum Stop {
    Named(Cow<'static, str>),
    Failed(String),
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Named(name) => write!(f, "named {name}"),
            Stop::Failed(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Stop {}

impl ser::Error for Stop {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Stop::Failed(msg.to_string())
    }
}

/// Names a value (`top`) or a tuple element (`!top`: a nested tuple is `tuple<N>`).
struct Namer {
    top: bool,
}

type Named = Result<Cow<'static, str>, Stop>;

fn named(name: &'static str) -> Named {
    Ok(Cow::Borrowed(name))
}

/// Stops a compound value as soon as its name is known.
fn stop<T>(name: &'static str) -> Result<T, Stop> {
    Err(Stop::Named(Cow::Borrowed(name)))
}

macro_rules! scalar_names {
    ($($method:ident($ty:ty) => $name:literal),* $(,)?) => {$(
        fn $method(self, _: $ty) -> Named {
            named($name)
        }
    )*};
}

impl ser::Serializer for Namer {
    type Ok = Cow<'static, str>;
    type Error = Stop;
    type SerializeSeq = ser::Impossible<Self::Ok, Stop>;
    type SerializeTuple = TupleKinds;
    type SerializeTupleStruct = ser::Impossible<Self::Ok, Stop>;
    type SerializeTupleVariant = ser::Impossible<Self::Ok, Stop>;
    type SerializeMap = ser::Impossible<Self::Ok, Stop>;
    type SerializeStruct = ser::Impossible<Self::Ok, Stop>;
    type SerializeStructVariant = ser::Impossible<Self::Ok, Stop>;

    scalar_names! {
        serialize_bool(bool) => "bool",
        serialize_i8(i8) => "i8",
        serialize_i16(i16) => "i16",
        serialize_i32(i32) => "i32",
        serialize_i64(i64) => "i64",
        serialize_i128(i128) => "i128",
        serialize_u8(u8) => "u8",
        serialize_u16(u16) => "u16",
        serialize_u32(u32) => "u32",
        serialize_u64(u64) => "u64",
        serialize_u128(u128) => "u128",
        serialize_f32(f32) => "f32",
        serialize_f64(f64) => "f64",
        serialize_char(char) => "char",
        serialize_str(&str) => "str",
        serialize_bytes(&[u8]) => "bytes",
    }

    fn serialize_none(self) -> Named {
        named("option")
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Named {
        named("option")
    }

    fn serialize_unit(self) -> Named {
        named("unit")
    }

    fn serialize_unit_struct(self, name: &'static str) -> Named {
        named(name)
    }

    fn serialize_unit_variant(self, name: &'static str, _: u32, _: &'static str) -> Named {
        named(name)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, _: &T) -> Named {
        named(name)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Named {
        named(name)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Stop> {
        stop("seq")
    }

    fn serialize_tuple(self, len: usize) -> Result<TupleKinds, Stop> {
        if self.top {
            Ok(TupleKinds {
                kinds: Vec::with_capacity(len.min(64)),
            })
        } else {
            Err(Stop::Named(Cow::Owned(format!("tuple{len}"))))
        }
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Stop> {
        stop(name)
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Stop> {
        stop(name)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Stop> {
        stop("map")
    }

    fn serialize_struct(self, name: &'static str, _: usize) -> Result<Self::SerializeStruct, Stop> {
        stop(name)
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Stop> {
        stop(name)
    }
}

/// Collects the kinds of a top-level tuple's elements.
struct TupleKinds {
    kinds: Vec<Cow<'static, str>>,
}

impl ser::SerializeTuple for TupleKinds {
    type Ok = Cow<'static, str>;
    type Error = Stop;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        match value.serialize(Namer { top: false }) {
            Ok(kind) | Err(Stop::Named(kind)) => {
                self.kinds.push(kind);
                Ok(())
            }
            Err(failed) => Err(failed),
        }
    }

    fn end(self) -> Named {
        Ok(Cow::Owned(format!("({})", self.kinds.join(","))))
    }
}
