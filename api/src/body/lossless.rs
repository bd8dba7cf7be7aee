//! A serde pass over an object body's value that refuses what JSON cannot carry back.
//!
//! `serde_json` writes NaN and ±infinity as `null`, writes `Some(x)` as `x` (so `Some(())`,
//! `Some(None)` and `Some` of a unit struct become `null` and read back as `None`), and its
//! parser refuses nesting deeper than 127 levels. Each of these would make a body that is
//! accepted on send and fails (or changes) on receive, so [`check`] walks the value the way
//! `serde_json` will write it and names the first such problem. Map keys that JSON cannot hold
//! are refused by `serde_json` itself.

use serde::ser::{self, Serialize};
use std::fmt;

/// The deepest nesting of arrays and objects `serde_json`'s parser reads back.
pub(crate) const MAX_JSON_DEPTH: usize = 127;

/// Checks that `value` survives a JSON round trip unchanged; the error names the problem and
/// where it is (`.field`, `[index]`).
pub(crate) fn check<T: Serialize + ?Sized>(value: &T) -> Result<(), Lossy> {
    value.serialize(&mut Checker { depth: 0 }).map(|_| ())
}

/// Why a value cannot be an object body, with its path inside the value.
#[derive(Debug)]
pub(crate) struct Lossy {
    path: String,
    problem: String,
}

impl Lossy {
    fn new(problem: impl Into<String>) -> Self {
        Lossy {
            path: String::new(),
            problem: problem.into(),
        }
    }

    fn at(mut self, step: impl fmt::Display) -> Self {
        self.path = format!("{step}{}", self.path);
        self
    }
}

impl fmt::Display for Lossy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.problem)
        } else {
            write!(f, "{} (at {})", self.problem, self.path)
        }
    }
}

impl std::error::Error for Lossy {}

impl ser::Error for Lossy {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Lossy::new(msg.to_string())
    }
}

/// Walks a value as `serde_json` writes it. `Ok(true)` means "this was written as `null`".
struct Checker {
    depth: usize,
}

impl Checker {
    fn enter(&mut self, levels: usize) -> Result<(), Lossy> {
        self.depth += levels;
        if self.depth > MAX_JSON_DEPTH {
            return Err(Lossy::new(format!(
                "the value nests too deep for JSON to read back (more than {MAX_JSON_DEPTH} levels)"
            )));
        }
        Ok(())
    }

    fn leave(&mut self, levels: usize) -> Result<bool, Lossy> {
        self.depth -= levels;
        Ok(false)
    }

    fn float(&mut self, value: f64, kind: &str) -> Result<bool, Lossy> {
        if value.is_finite() {
            Ok(false)
        } else {
            let shown = if value.is_nan() {
                "NaN".to_string()
            } else {
                format!("{value}")
            };
            Err(Lossy::new(format!(
                "{kind} {shown} has no JSON form (it would read back as null)"
            )))
        }
    }
}

impl<'a> ser::Serializer for &'a mut Checker {
    type Ok = bool;
    type Error = Lossy;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, _: bool) -> Result<bool, Lossy> {
        Ok(false)
    }
    fn serialize_i8(self, _: i8) -> Result<bool, Lossy> {
        Ok(false)
    }
    fn serialize_i16(self, _: i16) -> Result<bool, Lossy> {
        Ok(false)
    }
    fn serialize_i32(self, _: i32) -> Result<bool, Lossy> {
        Ok(false)
    }
    fn serialize_i64(self, _: i64) -> Result<bool, Lossy> {
        Ok(false)
    }
    fn serialize_i128(self, _: i128) -> Result<bool, Lossy> {
        Ok(false)
    }
    fn serialize_u8(self, _: u8) -> Result<bool, Lossy> {
        Ok(false)
    }
    fn serialize_u16(self, _: u16) -> Result<bool, Lossy> {
        Ok(false)
    }
    fn serialize_u32(self, _: u32) -> Result<bool, Lossy> {
        Ok(false)
    }
    fn serialize_u64(self, _: u64) -> Result<bool, Lossy> {
        Ok(false)
    }
    fn serialize_u128(self, _: u128) -> Result<bool, Lossy> {
        Ok(false)
    }
    fn serialize_f32(self, v: f32) -> Result<bool, Lossy> {
        self.float(v as f64, "the float")
    }
    fn serialize_f64(self, v: f64) -> Result<bool, Lossy> {
        self.float(v, "the double")
    }
    fn serialize_char(self, _: char) -> Result<bool, Lossy> {
        Ok(false)
    }
    fn serialize_str(self, _: &str) -> Result<bool, Lossy> {
        Ok(false)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<bool, Lossy> {
        // Written as an array of numbers: one level.
        self.enter(1)?;
        self.leave(1)
    }
    fn serialize_none(self) -> Result<bool, Lossy> {
        Ok(true)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<bool, Lossy> {
        if value.serialize(&mut *self)? {
            return Err(Lossy::new(
                "Some(..) of a value JSON writes as null (None, (), a unit struct) would read \
                 back as None",
            ));
        }
        Ok(false)
    }
    fn serialize_unit(self) -> Result<bool, Lossy> {
        Ok(true)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<bool, Lossy> {
        Ok(true)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<bool, Lossy> {
        Ok(false)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<bool, Lossy> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<bool, Lossy> {
        self.enter(1)?;
        value
            .serialize(&mut *self)
            .map_err(|e| e.at(format_args!("::{variant}")))?;
        self.leave(1)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a>, Lossy> {
        Compound::open(self, 1)
    }
    fn serialize_tuple(self, _: usize) -> Result<Compound<'a>, Lossy> {
        Compound::open(self, 1)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, Lossy> {
        Compound::open(self, 1)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, Lossy> {
        Compound::open(self, 2)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'a>, Lossy> {
        Compound::open(self, 1)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, Lossy> {
        Compound::open(self, 1)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, Lossy> {
        Compound::open(self, 2)
    }
}

/// An open array or object (or a variant's object around one): counts elements for error
/// paths and closes the levels it opened.
struct Compound<'a> {
    checker: &'a mut Checker,
    levels: usize,
    index: usize,
}

impl<'a> Compound<'a> {
    fn open(checker: &'a mut Checker, levels: usize) -> Result<Self, Lossy> {
        checker.enter(levels)?;
        Ok(Compound {
            checker,
            levels,
            index: 0,
        })
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Lossy> {
        let index = self.index;
        self.index += 1;
        value
            .serialize(&mut *self.checker)
            .map(|_| ())
            .map_err(|e| e.at(format_args!("[{index}]")))
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Lossy> {
        value
            .serialize(&mut *self.checker)
            .map(|_| ())
            .map_err(|e| e.at(format_args!(".{key}")))
    }

    fn close(self) -> Result<bool, Lossy> {
        self.checker.leave(self.levels)
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = bool;
    type Error = Lossy;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Lossy> {
        self.element(value)
    }
    fn end(self) -> Result<bool, Lossy> {
        self.close()
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = bool;
    type Error = Lossy;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Lossy> {
        self.element(value)
    }
    fn end(self) -> Result<bool, Lossy> {
        self.close()
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = bool;
    type Error = Lossy;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Lossy> {
        self.element(value)
    }
    fn end(self) -> Result<bool, Lossy> {
        self.close()
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = bool;
    type Error = Lossy;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Lossy> {
        self.element(value)
    }
    fn end(self) -> Result<bool, Lossy> {
        self.close()
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = bool;
    type Error = Lossy;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Lossy> {
        // serde_json refuses keys JSON cannot hold; a key is never nested here.
        self.element(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Lossy> {
        self.index -= 1;
        self.element(value)
    }
    fn end(self) -> Result<bool, Lossy> {
        self.close()
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = bool;
    type Error = Lossy;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Lossy> {
        self.field(key, value)
    }
    fn end(self) -> Result<bool, Lossy> {
        self.close()
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = bool;
    type Error = Lossy;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Lossy> {
        self.field(key, value)
    }
    fn end(self) -> Result<bool, Lossy> {
        self.close()
    }
}
