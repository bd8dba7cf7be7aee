//! The shape of an entry type, read from its `Deserialize` implementation.
//!
//! A template names an entry type `T` but holds no value of it, yet it must know `T`'s serde
//! name (which picks the queue) and the declared type of every field (to check conditions at
//! creation). Serde exposes both to a deserializer: `deserialize_struct` receives the name
//! and field list, and each field's `Deserialize` asks for the kind of value it wants
//! (`deserialize_i32`, `deserialize_string`, `deserialize_option`, …). The probes below drive
//! `T::deserialize` just far enough to hear those requests, then stop it with an error.

use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;

use courier_api::{Error, Result};

/// The kind of value a field or tuple element holds, as serde reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    /// An integer: signed or not, and its width in bits.
    Int {
        signed: bool,
        bits: u8,
    },
    /// A float of 32 or 64 bits.
    Float(u8),
    Char,
    Str,
    Bytes,
    Unit,
    Option(Box<Kind>),
    Seq,
    Map,
    Tuple(usize),
    /// A struct, tuple struct or unit struct, by serde name.
    Struct(&'static str),
    /// A newtype struct, transparent for matching.
    Newtype(&'static str, Box<Kind>),
    /// An enum, with its variant names.
    Enum(&'static str, &'static [&'static str]),
    /// Asked for `deserialize_any` or `ignored_any`: self-describing, not knowable up front.
    Unknown,
}

impl Kind {
    /// The name this kind contributes to a tuple's type name. The serializer side
    /// ([`crate::entry`]) produces the same names from values, so a tuple written as
    /// `(&str, i64)` and a template for `(String, i64)` land in the same queue.
    pub fn tuple_name(&self) -> String {
        match self {
            Kind::Bool => "bool".into(),
            Kind::Int { signed, bits } => format!("{}{bits}", if *signed { 'i' } else { 'u' }),
            Kind::Float(bits) => format!("f{bits}"),
            Kind::Char => "char".into(),
            Kind::Str => "str".into(),
            Kind::Bytes => "bytes".into(),
            Kind::Unit => "unit".into(),
            Kind::Option(_) => "option".into(),
            Kind::Seq => "seq".into(),
            Kind::Map => "map".into(),
            Kind::Tuple(n) => format!("tuple{n}"),
            Kind::Struct(name) | Kind::Newtype(name, _) | Kind::Enum(name, _) => (*name).into(),
            Kind::Unknown => "any".into(),
        }
    }

    /// What a human calls this kind, for error messages.
    pub fn describe(&self) -> String {
        match self {
            Kind::Int { .. } | Kind::Float(_) => self.tuple_name(),
            Kind::Str => "string".into(),
            Kind::Option(inner) => format!("Option<{}>", inner.describe()),
            Kind::Struct(name) => format!("struct {name}"),
            Kind::Newtype(name, inner) => format!("{name}({})", inner.describe()),
            Kind::Enum(name, _) => format!("enum {name}"),
            Kind::Seq => "sequence".into(),
            Kind::Unknown => "self-describing value".into(),
            other => other.tuple_name(),
        }
    }
}

/// How an entry type is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Named fields.
    Struct,
    /// Positional fields `_0`, `_1`, … of a tuple struct or newtype struct.
    TupleStruct,
    /// A plain tuple: its type name spells out its element kinds.
    Tuple,
    /// No fields.
    Unit,
}

/// An entry type's name and fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shape {
    /// The type name entries of this type carry: the serde name of a struct, or
    /// `(kind,kind,…)` for a tuple.
    pub type_name: String,
    pub layout: Layout,
    /// Field names (`_0`, `_1`, … for positional fields) with their declared kinds.
    pub fields: Vec<(String, Kind)>,
}

impl Shape {
    /// The declared kind of `field`, if the type has it.
    pub fn field(&self, field: &str) -> Option<&Kind> {
        self.fields.iter().find(|(n, _)| n == field).map(|(_, k)| k)
    }

    /// Reads the shape of `T` from its `Deserialize` implementation.
    pub fn of<T: DeserializeOwned>() -> Result<Shape> {
        let rust_name = std::any::type_name::<T>();
        let mut top = None;
        let _ = T::deserialize(TopProbe { out: &mut top });
        let unsupported = |what: &str| {
            Error::invalid_argument(format!(
                "{rust_name} cannot be a space entry: it deserializes as {what}; entries are \
                 structs or tuples"
            ))
        };
        let top = top.ok_or_else(|| unsupported("a self-describing value"))?;
        let plan = PlaceholderPlan::default();
        let positional = |len: usize| -> Result<Vec<(String, Kind)>> {
            (0..len)
                .map(|i| {
                    let kind = element_kind::<T>(i, &plan).map_err(|failure| {
                        let why = match failure {
                            PlaceholderFailure::Refused => {
                                "its Deserialize implementation rejects placeholder values"
                                    .to_owned()
                            }
                            PlaceholderFailure::Recursive => format!(
                                "an element before it is of a recursive type for which no \
                                 finite value nested at most {MAX_PLACEHOLDER_DEPTH} levels \
                                 deep was found"
                            ),
                        };
                        Error::invalid_argument(format!(
                            "cannot tell the type of element {i} of {rust_name}: {why}"
                        ))
                    })?;
                    Ok((format!("_{i}"), kind))
                })
                .collect()
        };
        let shape = match top {
            Top::Struct(name, names) => Shape {
                type_name: name.to_owned(),
                layout: Layout::Struct,
                fields: names
                    .iter()
                    .map(|f| ((*f).to_owned(), field_kind::<T>(f)))
                    .collect(),
            },
            Top::TupleStruct(name, len) => Shape {
                type_name: name.to_owned(),
                layout: Layout::TupleStruct,
                fields: positional(len)?,
            },
            Top::Newtype(name) => {
                let mut inner = None;
                let _ = T::deserialize(NewtypeProbe { out: &mut inner });
                Shape {
                    type_name: name.to_owned(),
                    layout: Layout::TupleStruct,
                    fields: vec![("_0".to_owned(), inner.unwrap_or(Kind::Unknown))],
                }
            }
            Top::UnitStruct(name) => Shape {
                type_name: name.to_owned(),
                layout: Layout::Unit,
                fields: Vec::new(),
            },
            Top::Tuple(len) => {
                let fields = positional(len)?;
                Shape {
                    type_name: tuple_type_name(fields.iter().map(|(_, k)| k.tuple_name())),
                    layout: Layout::Tuple,
                    fields,
                }
            }
            Top::Other(what) => return Err(unsupported(what)),
        };
        Ok(shape)
    }
}

/// The type name of a tuple with elements of these kinds: `(str,i64,str)`.
pub(crate) fn tuple_type_name(kinds: impl IntoIterator<Item = String>) -> String {
    let kinds: Vec<String> = kinds.into_iter().collect();
    format!("({})", kinds.join(","))
}

/// The probes stop `Deserialize` with this error once they have what they came for.
#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("shape probe finished")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<M: fmt::Display>(_msg: M) -> Self {
        Stop
    }
}

/// What `T::deserialize` asked for at the top level.
enum Top {
    Struct(&'static str, &'static [&'static str]),
    TupleStruct(&'static str, usize),
    Newtype(&'static str),
    UnitStruct(&'static str),
    Tuple(usize),
    Other(&'static str),
}

/// Records the top-level request and stops.
struct TopProbe<'a> {
    out: &'a mut Option<Top>,
}

macro_rules! top_other {
    ($($method:ident => $what:literal),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Stop> {
            *self.out = Some(Top::Other($what));
            Err(Stop)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for TopProbe<'_> {
    type Error = Stop;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Stop> {
        *self.out = Some(Top::Struct(name, fields));
        Err(Stop)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        _visitor: V,
    ) -> Result<V::Value, Stop> {
        *self.out = Some(Top::TupleStruct(name, len));
        Err(Stop)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _visitor: V,
    ) -> Result<V::Value, Stop> {
        *self.out = Some(Top::Newtype(name));
        Err(Stop)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _visitor: V,
    ) -> Result<V::Value, Stop> {
        *self.out = Some(Top::UnitStruct(name));
        Err(Stop)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, _visitor: V) -> Result<V::Value, Stop> {
        *self.out = Some(Top::Tuple(len));
        Err(Stop)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Stop> {
        *self.out = Some(Top::Other("an enum"));
        Err(Stop)
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    top_other! {
        deserialize_bool => "a boolean", deserialize_i8 => "an integer",
        deserialize_i16 => "an integer", deserialize_i32 => "an integer",
        deserialize_i64 => "an integer", deserialize_i128 => "an integer",
        deserialize_u8 => "an integer", deserialize_u16 => "an integer",
        deserialize_u32 => "an integer", deserialize_u64 => "an integer",
        deserialize_u128 => "an integer", deserialize_f32 => "a float",
        deserialize_f64 => "a float", deserialize_char => "a char",
        deserialize_str => "a string", deserialize_string => "a string",
        deserialize_bytes => "bytes", deserialize_byte_buf => "bytes",
        deserialize_option => "an option", deserialize_unit => "unit",
        deserialize_seq => "a sequence", deserialize_map => "a map (is it #[serde(flatten)]?)",
        deserialize_identifier => "an identifier", deserialize_ignored_any => "nothing",
    }
}

/// The kind of struct field `field` of `T`: deserializes `T` from a map whose first key is
/// `field`, and records what the field's value asks for.
fn field_kind<T: DeserializeOwned>(field: &'static str) -> Kind {
    let mut out = None;
    let _ = T::deserialize(StructFieldProbe {
        field,
        out: &mut out,
    });
    out.unwrap_or(Kind::Unknown)
}

struct StructFieldProbe<'a> {
    field: &'static str,
    out: &'a mut Option<Kind>,
}

impl<'de> de::Deserializer<'de> for StructFieldProbe<'_> {
    type Error = Stop;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        visitor.visit_map(OneFieldMap {
            key: Some(self.field),
            out: self.out,
        })
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// A map with one key whose value is the kind probe.
struct OneFieldMap<'a> {
    key: Option<&'static str>,
    out: &'a mut Option<Kind>,
}

impl<'de> de::MapAccess<'de> for OneFieldMap<'_> {
    type Error = Stop;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Stop> {
        match self.key.take() {
            Some(key) => seed
                .deserialize(de::value::BorrowedStrDeserializer::new(key))
                .map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Stop> {
        seed.deserialize(KindProbe::new(self.out))
    }
}

/// The kind of element `index` of a tuple (or tuple struct) `T`: earlier elements get
/// placeholder values as `plan` picks them, element `index` the kind probe.
fn element_kind<T: DeserializeOwned>(
    index: usize,
    plan: &PlaceholderPlan,
) -> Result<Kind, PlaceholderFailure> {
    plan.run(|plan| {
        let mut out = None;
        let _ = T::deserialize(TupleElementProbe {
            index,
            plan,
            out: &mut out,
        });
        out
    })
}

struct TupleElementProbe<'a> {
    index: usize,
    plan: &'a PlaceholderPlan,
    out: &'a mut Option<Kind>,
}

impl<'de> de::Deserializer<'de> for TupleElementProbe<'_> {
    type Error = Stop;

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_seq(ProbeSeq {
            next: 0,
            index: self.index,
            plan: self.plan,
            out: self.out,
        })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq struct map enum identifier ignored_any
    }
}

struct ProbeSeq<'a> {
    next: usize,
    index: usize,
    plan: &'a PlaceholderPlan,
    out: &'a mut Option<Kind>,
}

impl<'de> de::SeqAccess<'de> for ProbeSeq<'_> {
    type Error = Stop;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Stop> {
        let position = self.next;
        self.next += 1;
        if position < self.index {
            seed.deserialize(Placeholder::new(self.plan)).map(Some)
        } else {
            seed.deserialize(KindProbe::new(&mut *self.out)).map(Some)
        }
    }
}

/// The kind of the value inside a newtype struct entry.
struct NewtypeProbe<'a> {
    out: &'a mut Option<Kind>,
}

impl<'de> de::Deserializer<'de> for NewtypeProbe<'_> {
    type Error = Stop;

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        visitor.visit_newtype_struct(KindProbe::new(self.out))
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct seq tuple tuple_struct struct map enum identifier ignored_any
    }
}

/// `Option`s and newtypes nested deeper than this in a field are of an unknown kind (and
/// not matchable): a type nesting itself through them must not overflow the stack.
const MAX_KIND_DEPTH: usize = 16;

/// Records the kind of value a `Deserialize` implementation asks for, then stops.
struct KindProbe<'a> {
    out: &'a mut Option<Kind>,
    /// How many `Option`s and newtypes the probed value is inside.
    depth: usize,
}

impl<'a> KindProbe<'a> {
    fn new(out: &'a mut Option<Kind>) -> Self {
        KindProbe { out, depth: 0 }
    }

    /// The kind of the value inside this one, recorded in `out`; unknown past the depth bound.
    fn inner(&self, out: &'a mut Option<Kind>) -> Option<KindProbe<'a>> {
        if self.depth >= MAX_KIND_DEPTH {
            *out = Some(Kind::Unknown);
            return None;
        }
        Some(KindProbe {
            out,
            depth: self.depth + 1,
        })
    }

    fn record<T>(self, kind: Kind) -> Result<T, Stop> {
        *self.out = Some(kind);
        Err(Stop)
    }
}

macro_rules! probe_kinds {
    ($($method:ident => $kind:expr),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Stop> {
            self.record($kind)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for KindProbe<'_> {
    type Error = Stop;

    probe_kinds! {
        deserialize_any => Kind::Unknown,
        deserialize_ignored_any => Kind::Unknown,
        deserialize_bool => Kind::Bool,
        deserialize_i8 => Kind::Int { signed: true, bits: 8 },
        deserialize_i16 => Kind::Int { signed: true, bits: 16 },
        deserialize_i32 => Kind::Int { signed: true, bits: 32 },
        deserialize_i64 => Kind::Int { signed: true, bits: 64 },
        deserialize_i128 => Kind::Int { signed: true, bits: 128 },
        deserialize_u8 => Kind::Int { signed: false, bits: 8 },
        deserialize_u16 => Kind::Int { signed: false, bits: 16 },
        deserialize_u32 => Kind::Int { signed: false, bits: 32 },
        deserialize_u64 => Kind::Int { signed: false, bits: 64 },
        deserialize_u128 => Kind::Int { signed: false, bits: 128 },
        deserialize_f32 => Kind::Float(32),
        deserialize_f64 => Kind::Float(64),
        deserialize_char => Kind::Char,
        deserialize_str => Kind::Str,
        deserialize_string => Kind::Str,
        deserialize_identifier => Kind::Str,
        deserialize_bytes => Kind::Bytes,
        deserialize_byte_buf => Kind::Bytes,
        deserialize_unit => Kind::Unit,
        deserialize_seq => Kind::Seq,
        deserialize_map => Kind::Map,
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        let mut inner = None;
        if let Some(probe) = self.inner(&mut inner) {
            let _ = visitor.visit_some(probe);
        }
        self.record(Kind::Option(Box::new(inner.unwrap_or(Kind::Unknown))))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        let mut inner = None;
        if let Some(probe) = self.inner(&mut inner) {
            let _ = visitor.visit_newtype_struct(probe);
        }
        self.record(Kind::Newtype(
            name,
            Box::new(inner.unwrap_or(Kind::Unknown)),
        ))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _visitor: V,
    ) -> Result<V::Value, Stop> {
        self.record(Kind::Struct(name))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, _visitor: V) -> Result<V::Value, Stop> {
        self.record(Kind::Tuple(len))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, Stop> {
        self.record(Kind::Struct(name))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Stop> {
        self.record(Kind::Struct(name))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Stop> {
        self.record(Kind::Enum(name, variants))
    }
}

/// Placeholders nested deeper than this end the attempt: the type recurses (or is absurdly
/// deep), and the probe must not overflow the stack finding out.
const MAX_PLACEHOLDER_DEPTH: usize = 64;

/// Placeholder values built per attempt at most: a bound on the work for wide types.
const MAX_PLACEHOLDER_NODES: usize = 10_000;

/// Attempts at a finite placeholder, each with other variants for the enums that recursed.
const MAX_PLACEHOLDER_ATTEMPTS: usize = 64;

/// Why no placeholder value could be made for the elements before a probed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PlaceholderFailure {
    /// The element's `Deserialize` implementation refused a placeholder.
    Refused,
    /// No finite value was found within the depth, size and attempt bounds: the type
    /// recurses without a way out that the probe found.
    Recursive,
}

/// What the placeholders of one probe share: which variant each enum gets, and the
/// bounds that keep a recursive type from overflowing the stack.
#[derive(Default)]
struct PlaceholderPlan {
    /// Variant index per enum name; absent is the first variant.
    variants: RefCell<HashMap<&'static str, usize>>,
    /// The enums being built, outermost first, with their variant counts.
    path: RefCell<Vec<(&'static str, usize)>>,
    /// `path` when an attempt hit a bound; `None` while none did.
    exceeded: RefCell<Option<Vec<(&'static str, usize)>>>,
    nodes: Cell<usize>,
}

impl PlaceholderPlan {
    /// Counts one placeholder at `depth`; false (and the path noted) past a bound.
    fn enter(&self, depth: usize) -> bool {
        self.nodes.set(self.nodes.get() + 1);
        if depth > MAX_PLACEHOLDER_DEPTH || self.nodes.get() > MAX_PLACEHOLDER_NODES {
            let mut exceeded = self.exceeded.borrow_mut();
            if exceeded.is_none() {
                *exceeded = Some(self.path.borrow().clone());
            }
            return false;
        }
        true
    }

    /// Gets ready for another attempt after one that hit a bound on `path`: the innermost
    /// enum on it that has variants left moves to its next one. False when none has.
    fn vary(&self, path: &[(&'static str, usize)]) -> bool {
        self.nodes.set(0);
        self.path.borrow_mut().clear();
        let mut variants = self.variants.borrow_mut();
        for (name, count) in path.iter().rev() {
            let chosen = variants.entry(name).or_insert(0);
            if *chosen + 1 < *count {
                *chosen += 1;
                return true;
            }
        }
        false
    }

    /// Runs `attempt` until it gets past the placeholders (it returns `Some`), trying other
    /// enum variants after an attempt that hit a bound.
    fn run<R>(&self, mut attempt: impl FnMut(&Self) -> Option<R>) -> Result<R, PlaceholderFailure> {
        for _ in 0..MAX_PLACEHOLDER_ATTEMPTS {
            if let Some(found) = attempt(self) {
                return Ok(found);
            }
            let Some(path) = self.exceeded.borrow_mut().take() else {
                return Err(PlaceholderFailure::Refused);
            };
            if !self.vary(&path) {
                break;
            }
        }
        Err(PlaceholderFailure::Recursive)
    }
}

/// Produces a placeholder value of whatever type asks (zero-ish, empty, a variant the plan
/// picks), so a tuple's later elements can be probed. Integers are 1 so `NonZero*` types
/// accept them.
#[derive(Clone, Copy)]
struct Placeholder<'a> {
    plan: &'a PlaceholderPlan,
    depth: usize,
}

impl<'a> Placeholder<'a> {
    fn new(plan: &'a PlaceholderPlan) -> Self {
        Placeholder { plan, depth: 0 }
    }

    /// The placeholder for a value nested in this one.
    fn nested(self) -> Self {
        Placeholder {
            plan: self.plan,
            depth: self.depth + 1,
        }
    }
}

macro_rules! placeholder_values {
    ($($method:ident => $visit:ident($($value:expr)?)),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
            visitor.$visit($($value)?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Placeholder<'_> {
    type Error = Stop;

    placeholder_values! {
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i8(1),
        deserialize_i16 => visit_i16(1),
        deserialize_i32 => visit_i32(1),
        deserialize_i64 => visit_i64(1),
        deserialize_i128 => visit_i128(1),
        deserialize_u8 => visit_u8(1),
        deserialize_u16 => visit_u16(1),
        deserialize_u32 => visit_u32(1),
        deserialize_u64 => visit_u64(1),
        deserialize_u128 => visit_u128(1),
        deserialize_f32 => visit_f32(0.0),
        deserialize_f64 => visit_f64(0.0),
        deserialize_char => visit_char('a'),
        deserialize_str => visit_str(""),
        deserialize_string => visit_str(""),
        deserialize_identifier => visit_str(""),
        deserialize_bytes => visit_bytes(&[]),
        deserialize_byte_buf => visit_bytes(&[]),
        deserialize_option => visit_none(),
        deserialize_unit => visit_unit(),
        deserialize_ignored_any => visit_unit(),
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        let inner = self.nested();
        if !self.plan.enter(inner.depth) {
            return Err(Stop);
        }
        visitor.visit_newtype_struct(inner)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_seq(PlaceholderSeq {
            left: 0,
            element: self.nested(),
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_seq(PlaceholderSeq {
            left: len,
            element: self.nested(),
        })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_map(PlaceholderMap {
            keys: &[],
            value: self.nested(),
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        visitor.visit_map(PlaceholderMap {
            keys: fields,
            value: self.nested(),
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        let chosen = self.plan.variants.borrow().get(name).copied().unwrap_or(0);
        let variant = variants.get(chosen).copied().ok_or(Stop)?;
        self.plan.path.borrow_mut().push((name, variants.len()));
        let value = visitor.visit_enum(PlaceholderEnum {
            variant,
            contents: self.nested(),
        });
        self.plan.path.borrow_mut().pop();
        value
    }
}

/// A sequence of `left` placeholders.
struct PlaceholderSeq<'a> {
    left: usize,
    element: Placeholder<'a>,
}

impl<'de> de::SeqAccess<'de> for PlaceholderSeq<'_> {
    type Error = Stop;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Stop> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        if !self.element.plan.enter(self.element.depth) {
            return Err(Stop);
        }
        seed.deserialize(self.element).map(Some)
    }
}

/// A map with the given keys, each with a placeholder value.
struct PlaceholderMap<'a> {
    keys: &'static [&'static str],
    value: Placeholder<'a>,
}

impl<'de> de::MapAccess<'de> for PlaceholderMap<'_> {
    type Error = Stop;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Stop> {
        match self.keys.split_first() {
            Some((key, rest)) => {
                self.keys = rest;
                seed.deserialize(de::value::BorrowedStrDeserializer::new(key))
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Stop> {
        if !self.value.plan.enter(self.value.depth) {
            return Err(Stop);
        }
        seed.deserialize(self.value)
    }
}

/// The variant the plan picks, with placeholder contents.
struct PlaceholderEnum<'a> {
    variant: &'static str,
    contents: Placeholder<'a>,
}

impl<'de, 'a> de::EnumAccess<'de> for PlaceholderEnum<'a> {
    type Error = Stop;
    type Variant = Placeholder<'a>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Placeholder<'a>), Stop> {
        let variant = seed.deserialize(de::value::BorrowedStrDeserializer::new(self.variant))?;
        Ok((variant, self.contents))
    }
}

impl<'de> de::VariantAccess<'de> for Placeholder<'_> {
    type Error = Stop;

    fn unit_variant(self) -> Result<(), Stop> {
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Stop> {
        if !self.plan.enter(self.depth) {
            return Err(Stop);
        }
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_seq(PlaceholderSeq {
            left: len,
            element: self,
        })
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        visitor.visit_map(PlaceholderMap {
            keys: fields,
            value: self,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Status {
        Open,
        Done,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Meters(f64);

    #[derive(Deserialize)]
    #[serde(rename = "shop.Order")]
    #[allow(dead_code)]
    struct Order {
        id: u64,
        customer: String,
        note: Option<String>,
        status: Status,
        length: Meters,
        lines: Vec<u32>,
        #[serde(rename = "and")]
        keyword: bool,
        raw: serde_json_free::Any,
    }

    /// A field type that deserializes through `deserialize_any`.
    mod serde_json_free {
        pub struct Any;
        impl<'de> serde::Deserialize<'de> for Any {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(serde::de::IgnoredAny).map(|_| Any)
            }
        }
    }

    #[test]
    fn struct_fields_and_kinds() {
        let shape = Shape::of::<Order>().unwrap();
        assert_eq!(shape.type_name, "shop.Order");
        assert_eq!(shape.layout, Layout::Struct);
        assert_eq!(
            shape.field("id"),
            Some(&Kind::Int {
                signed: false,
                bits: 64
            })
        );
        assert_eq!(shape.field("customer"), Some(&Kind::Str));
        assert_eq!(
            shape.field("note"),
            Some(&Kind::Option(Box::new(Kind::Str)))
        );
        assert!(matches!(shape.field("status"), Some(Kind::Enum("Status", v)) if v.len() == 2));
        assert_eq!(
            shape.field("length"),
            Some(&Kind::Newtype("Meters", Box::new(Kind::Float(64))))
        );
        assert_eq!(shape.field("lines"), Some(&Kind::Seq));
        assert_eq!(shape.field("and"), Some(&Kind::Bool));
        assert_eq!(shape.field("raw"), Some(&Kind::Unknown));
    }

    #[test]
    fn tuples_spell_out_their_element_kinds() {
        let shape = Shape::of::<(String, i64, Option<u8>, Status, Vec<String>)>().unwrap();
        assert_eq!(shape.type_name, "(str,i64,option,Status,seq)");
        assert_eq!(shape.layout, Layout::Tuple);
        assert_eq!(
            shape.fields[1],
            (
                "_1".to_owned(),
                Kind::Int {
                    signed: true,
                    bits: 64
                }
            )
        );
        let point = Shape::of::<(i32, i32)>().unwrap();
        assert_eq!(point.type_name, "(i32,i32)");
    }

    #[test]
    fn tuple_structs_and_newtypes_are_positional() {
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Pair(String, std::num::NonZeroU32, bool);
        let shape = Shape::of::<Pair>().unwrap();
        assert_eq!(shape.type_name, "Pair");
        assert_eq!(shape.field("_2"), Some(&Kind::Bool));
        let meters = Shape::of::<Meters>().unwrap();
        assert_eq!(meters.field("_0"), Some(&Kind::Float(64)));
    }

    /// A recursive enum whose first variant recurses: the placeholder for an earlier tuple
    /// element must pick a variant that ends.
    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Expr {
        Add(Box<Expr>, Box<Expr>),
        Neg(Box<Expr>),
        Num(i64),
    }

    /// A type with no finite value at all.
    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Endless {
        next: Box<Endless>,
    }

    /// A newtype that nests itself through `Option`: its kind probe must stop.
    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Chain(Option<Box<Chain>>);

    #[test]
    fn recursive_types_are_probed_without_overflowing_the_stack() {
        let shape = Shape::of::<(Expr, i64)>().unwrap();
        assert_eq!(shape.type_name, "(Expr,i64)");
        assert_eq!(
            shape.field("_1"),
            Some(&Kind::Int {
                signed: true,
                bits: 64
            })
        );
        let shape = Shape::of::<(Expr, Expr, String)>().unwrap();
        assert_eq!(shape.type_name, "(Expr,Expr,str)");

        // Mutual recursion, where only the outer enum has a way out.
        #[derive(Deserialize)]
        #[allow(dead_code)]
        enum Outer {
            Wrap(Box<Inner>),
            Leaf,
        }
        #[derive(Deserialize)]
        #[allow(dead_code)]
        enum Inner {
            Back(Box<Outer>),
        }
        let shape = Shape::of::<(Inner, u16)>().unwrap();
        assert_eq!(shape.type_name, "(Inner,u16)");

        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Holder {
            chain: Chain,
            id: u8,
        }
        let shape = Shape::of::<Holder>().unwrap();
        assert!(matches!(
            shape.field("chain"),
            Some(Kind::Newtype("Chain", _))
        ));
        assert_eq!(
            shape.field("id"),
            Some(&Kind::Int {
                signed: false,
                bits: 8
            })
        );
        let shape = Shape::of::<(Chain, bool)>().unwrap();
        assert_eq!(shape.field("_1"), Some(&Kind::Bool));
    }

    #[test]
    fn types_without_a_finite_value_are_refused() {
        let err = Shape::of::<(Endless, i64)>().unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
        assert!(err.to_string().contains("recursive"), "{err}");
        assert!(err.to_string().contains("element 1"), "{err}");
    }

    #[test]
    fn other_types_are_refused() {
        for err in [
            Shape::of::<i64>().unwrap_err(),
            Shape::of::<Vec<String>>().unwrap_err(),
            Shape::of::<Status>().unwrap_err(),
            Shape::of::<std::collections::HashMap<String, i32>>().unwrap_err(),
        ] {
            assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
        }
    }
}
