//! Templates: which entries an operation matches, compiled to a JMS selector.

use courier_api::selector::Selector;
use courier_api::{Error, Message, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use crate::entry::{matchable_name, scalar_of, Scalar};
use crate::schema::{Kind, Shape};

/// Which entries of type `T` an operation matches: the JavaSpaces template (exact values for
/// some fields, wildcards for the rest) plus conditions beyond JavaSpaces — comparisons,
/// ranges, `IN` and `LIKE`.
///
/// A template is checked when it is built: every field it names must exist in `T`, be
/// matchable (a scalar with a property-name-safe name) and get values of its own type. It
/// compiles to a JMS selector that the backend evaluates (and can index), so matching costs
/// no round trips and no client-side filtering.
///
/// Matching is type-strict: an entry of another type never matches (each entry type has
/// its own queue), and a field never matches a value of another type — `3_i32` is not
/// `"3"`, an integer is not a float, a bool is not a string; asking for such a condition is
/// an error at creation. Integer *widths* are not types here: `.eq("size", 3)` compares a
/// `u64` field with 3, since the field's declared type decides; a value that does not fit
/// the field (300 for a `u8`) is an error. Tuples are stricter, because their type name
/// spells out every element type: `(3_i32,)` and `(3_i64,)` are different entry types.
///
/// ```
/// use courier_space::Template;
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Task { kind: String, size: u32, owner: Option<String> }
///
/// let any_task = Template::<Task>::any()?;
/// assert_eq!(any_task.selector(), None);
///
/// let big_resizes = Template::<Task>::builder()
///     .eq("kind", "resize")
///     .range("size", 100..=999)
///     .build()?;
/// assert_eq!(
///     big_resizes.selector(),
///     Some("kind = 'resize' AND size BETWEEN 100 AND 999")
/// );
///
/// // Checked at creation, with the field named:
/// let wrong = Template::<Task>::builder().eq("size", "3").build();
/// assert!(wrong.unwrap_err().to_string().contains("size"));
///
/// // Linda tuples: fields are positions.
/// let jobs = Template::<(String, i64, String)>::builder().eq(0, "task").build()?;
/// assert_eq!(jobs.selector(), Some("_0 = 'task'"));
/// # Ok::<(), courier_api::Error>(())
/// ```
pub struct Template<T> {
    shape: Arc<Shape>,
    selector: Option<Selector>,
    entry: PhantomData<fn() -> T>,
}

impl<T> Clone for Template<T> {
    fn clone(&self) -> Self {
        Template {
            shape: self.shape.clone(),
            selector: self.selector.clone(),
            entry: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Template<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Template")
            .field("type_name", &self.shape.type_name)
            .field("selector", &self.selector())
            .finish()
    }
}

impl<T: DeserializeOwned> Template<T> {
    /// A template that matches every entry of type `T` (JavaSpaces: a template whose
    /// fields are all wildcards).
    ///
    /// Fails when `T` is not a struct or tuple (entries are).
    pub fn any() -> Result<Self> {
        Self::builder().build()
    }

    /// Starts a template for entries of type `T`; conditions are ANDed.
    pub fn builder() -> TemplateBuilder<T> {
        TemplateBuilder {
            shape: Shape::of::<T>().map(Arc::new),
            conditions: Vec::new(),
            error: None,
            entry: PhantomData,
        }
    }
}

impl<T> Template<T> {
    /// The entry type name this template matches: the serde name of a struct, or
    /// `(kind,kind,…)` for a tuple.
    pub fn type_name(&self) -> &str {
        &self.shape.type_name
    }

    /// The selector the conditions compiled to; `None` for a template that matches every
    /// entry of its type.
    pub fn selector(&self) -> Option<&str> {
        self.selector.as_ref().map(Selector::text)
    }

    /// Whether an entry message of this template's type matches, evaluated here (for a
    /// transaction's own writes, which no backend has seen yet).
    pub(crate) fn matches(&self, message: &Message) -> bool {
        self.selector.as_ref().is_none_or(|s| s.matches(message))
    }
}

/// Names a field in a template: a struct field by name (`"size"`) or a tuple position
/// (`0`, the same as `"_0"`).
pub trait FieldName {
    /// The field's name as entries store it.
    fn field_name(self) -> String;
}

impl FieldName for &str {
    fn field_name(self) -> String {
        self.to_owned()
    }
}

impl FieldName for String {
    fn field_name(self) -> String {
        self
    }
}

impl FieldName for usize {
    fn field_name(self) -> String {
        format!("_{self}")
    }
}

/// Builds a [`Template`]; made by [`Template::builder`]. Every condition is checked against
/// the entry type; the first problem is reported by [`TemplateBuilder::build`].
pub struct TemplateBuilder<T> {
    shape: Result<Arc<Shape>>,
    conditions: Vec<String>,
    error: Option<Error>,
    entry: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for TemplateBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemplateBuilder")
            .field("conditions", &self.conditions)
            .field("error", &self.error)
            .finish()
    }
}

/// A comparison of a field with one value.
#[derive(Clone, Copy)]
enum Compare {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Compare {
    fn operator(self) -> &'static str {
        match self {
            Compare::Eq => "=",
            Compare::Ne => "<>",
            Compare::Lt => "<",
            Compare::Le => "<=",
            Compare::Gt => ">",
            Compare::Ge => ">=",
        }
    }

    fn orders(self) -> bool {
        !matches!(self, Compare::Eq | Compare::Ne)
    }
}

/// A value checked against its field's type, ready to be written as a selector literal.
enum Literal {
    Bool(bool),
    Long(i64),
    Double(f64),
    Str(String),
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Bool(true) => f.write_str("TRUE"),
            Literal::Bool(false) => f.write_str("FALSE"),
            Literal::Long(n) => write!(f, "{n}"),
            // `{:?}` prints the shortest text that reads back as the same double, always
            // with a `.` or an exponent, which selectors read as an approximate numeric.
            Literal::Double(x) => write!(f, "{x:?}"),
            Literal::Str(s) => write!(f, "'{}'", s.replace('\'', "''")),
        }
    }
}

/// What a field's declared kind allows.
enum FieldClass {
    Bool,
    Int {
        min: i128,
        max: i128,
    },
    Float(u8),
    /// Stored as a string property: strings, chars and enum variants.
    Text(TextKind),
}

enum TextKind {
    Str,
    Char,
    Enum(&'static str, &'static [&'static str]),
}

impl<T> TemplateBuilder<T> {
    /// Field equals `value` (JavaSpaces exact matching). `value` is any serde scalar: a
    /// bool, number, char, string, unit enum variant, or such a value in a newtype.
    pub fn eq(self, field: impl FieldName, value: impl Serialize) -> Self {
        self.compare(field, Compare::Eq, scalar_of(&value))
    }

    /// Field differs from `value` (an absent `Option` field matches neither `eq` nor `ne`,
    /// as in SQL).
    pub fn ne(self, field: impl FieldName, value: impl Serialize) -> Self {
        self.compare(field, Compare::Ne, scalar_of(&value))
    }

    /// Numeric field is less than `value`.
    pub fn lt(self, field: impl FieldName, value: impl Serialize) -> Self {
        self.compare(field, Compare::Lt, scalar_of(&value))
    }

    /// Numeric field is at most `value`.
    pub fn le(self, field: impl FieldName, value: impl Serialize) -> Self {
        self.compare(field, Compare::Le, scalar_of(&value))
    }

    /// Numeric field is greater than `value`.
    pub fn gt(self, field: impl FieldName, value: impl Serialize) -> Self {
        self.compare(field, Compare::Gt, scalar_of(&value))
    }

    /// Numeric field is at least `value`.
    pub fn ge(self, field: impl FieldName, value: impl Serialize) -> Self {
        self.compare(field, Compare::Ge, scalar_of(&value))
    }

    /// Numeric field lies in `range` (`10..20`, `10..=20`, `10..`, …), compiled to
    /// `BETWEEN` or comparisons.
    pub fn range<V: Serialize>(self, field: impl FieldName, range: impl RangeBounds<V>) -> Self {
        let field = field.field_name();
        let lower = match range.start_bound() {
            Bound::Included(v) => Some((Compare::Ge, scalar_of(v))),
            Bound::Excluded(v) => Some((Compare::Gt, scalar_of(v))),
            Bound::Unbounded => None,
        };
        let upper = match range.end_bound() {
            Bound::Included(v) => Some((Compare::Le, scalar_of(v))),
            Bound::Excluded(v) => Some((Compare::Lt, scalar_of(v))),
            Bound::Unbounded => None,
        };
        self.add(|shape| {
            let (property, class) = resolve(shape, &field)?;
            let literal = |compare: Compare, scalar: Result<Scalar>| {
                check_operator(shape, &field, &class, compare.operator(), compare.orders())?;
                literal_for(shape, &field, &class, scalar?)
            };
            Ok(match (lower, upper) {
                (Some((Compare::Ge, lo)), Some((Compare::Le, hi))) => {
                    let (lo, hi) = (literal(Compare::Ge, lo)?, literal(Compare::Le, hi)?);
                    format!("{property} BETWEEN {lo} AND {hi}")
                }
                (lower, upper) => {
                    let mut parts = Vec::new();
                    for (compare, scalar) in lower.into_iter().chain(upper) {
                        let value = literal(compare, scalar)?;
                        parts.push(format!("{property} {} {value}", compare.operator()));
                    }
                    if parts.is_empty() {
                        format!("{property} IS NOT NULL")
                    } else {
                        parts.join(" AND ")
                    }
                }
            })
        })
    }

    /// Field equals one of `values` (SQL `IN`). At least one value is required.
    pub fn one_of<V: Serialize>(
        self,
        field: impl FieldName,
        values: impl IntoIterator<Item = V>,
    ) -> Self {
        let field = field.field_name();
        let scalars: Vec<Result<Scalar>> = values.into_iter().map(|v| scalar_of(&v)).collect();
        self.add(|shape| {
            let (property, class) = resolve(shape, &field)?;
            if scalars.is_empty() {
                return Err(template_error(
                    shape,
                    &field,
                    "one_of needs at least one value (an empty list matches nothing)",
                ));
            }
            let literals = scalars
                .into_iter()
                .map(|s| literal_for(shape, &field, &class, s?))
                .collect::<Result<Vec<_>>>()?;
            let list = |sep: &str, each: &dyn Fn(&Literal) -> String| {
                literals.iter().map(each).collect::<Vec<_>>().join(sep)
            };
            Ok(match (&class, literals.len()) {
                (_, 1) => format!("{property} = {}", literals[0]),
                // JMS `IN` takes string literals only; other kinds become ORed equalities.
                (FieldClass::Text(_), _) => {
                    format!("{property} IN ({})", list(", ", &|l| l.to_string()))
                }
                _ => format!("({})", list(" OR ", &|l| format!("{property} = {l}"))),
            })
        })
    }

    /// String field matches the SQL `LIKE` pattern: `%` any run of characters, `_` one
    /// character, `\` makes the next character literal.
    pub fn like(self, field: impl FieldName, pattern: &str) -> Self {
        let field = field.field_name();
        let pattern = pattern.to_owned();
        self.add(|shape| {
            let (property, class) = resolve(shape, &field)?;
            if !matches!(class, FieldClass::Text(_)) {
                return Err(template_error(
                    shape,
                    &field,
                    format!(
                        "LIKE needs a string field, and {field} is {}",
                        describe(shape, &field)
                    ),
                ));
            }
            let text = Literal::Str(pattern.clone());
            Ok(if pattern.contains('\\') {
                format!("{property} LIKE {text} ESCAPE '\\'")
            } else {
                format!("{property} LIKE {text}")
            })
        })
    }

    /// `Option` field is `None`.
    pub fn is_none(self, field: impl FieldName) -> Self {
        self.null_check(field.field_name(), "IS NULL")
    }

    /// `Option` field is `Some`.
    pub fn is_some(self, field: impl FieldName) -> Self {
        self.null_check(field.field_name(), "IS NOT NULL")
    }

    /// Checks every condition and makes the template.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the entry type and field when `T` is not a struct
    /// or tuple, a field does not exist or cannot be matched (nested, a sequence, a name
    /// that is not a JMS identifier such as a selector keyword), a value has another type
    /// than its field or does not fit it, or an operator does not apply to the field's type
    /// (ordering strings, `LIKE` on numbers).
    pub fn build(self) -> Result<Template<T>> {
        let shape = self.shape?;
        if let Some(error) = self.error {
            return Err(error);
        }
        let selector = if self.conditions.is_empty() {
            None
        } else {
            let text = self.conditions.join(" AND ");
            Some(Selector::parse(&text).map_err(|e| {
                Error::invalid_argument(format!(
                    "template for {} compiled to a selector the parser refuses ({e}); this is \
                     a courier-space bug",
                    shape.type_name
                ))
            })?)
        };
        Ok(Template {
            shape,
            selector,
            entry: PhantomData,
        })
    }

    fn null_check(self, field: String, test: &'static str) -> Self {
        self.add(|shape| {
            let (property, _) = resolve(shape, &field)?;
            if !matches!(shape.field(&field), Some(Kind::Option(_))) {
                return Err(template_error(
                    shape,
                    &field,
                    format!(
                        "{field} is {}, not an Option, so it is never None",
                        describe(shape, &field)
                    ),
                ));
            }
            Ok(format!("{property} {test}"))
        })
    }

    fn compare(self, field: impl FieldName, compare: Compare, scalar: Result<Scalar>) -> Self {
        let field = field.field_name();
        self.add(|shape| {
            let (property, class) = resolve(shape, &field)?;
            check_operator(shape, &field, &class, compare.operator(), compare.orders())?;
            let literal = literal_for(shape, &field, &class, scalar?)?;
            Ok(format!("{property} {} {literal}", compare.operator()))
        })
    }

    /// Adds the condition `make` compiles, or records its error.
    fn add(mut self, make: impl FnOnce(&Shape) -> Result<String>) -> Self {
        if self.error.is_some() {
            return self;
        }
        if let Ok(shape) = &self.shape {
            match make(shape) {
                Ok(condition) => self.conditions.push(condition),
                Err(e) => self.error = Some(e),
            }
        }
        self
    }
}

fn template_error(shape: &Shape, field: &str, reason: impl fmt::Display) -> Error {
    Error::invalid_argument(format!(
        "template for {}: field {field:?}: {reason}",
        shape.type_name
    ))
}

fn describe(shape: &Shape, field: &str) -> String {
    shape
        .field(field)
        .map_or_else(|| "absent".to_owned(), |k| format!("a {}", k.describe()))
}

/// The property a field is stored under and what its type allows.
fn resolve(shape: &Shape, field: &str) -> Result<(String, FieldClass)> {
    let Some(kind) = shape.field(field) else {
        let known: Vec<&str> = shape.fields.iter().map(|(n, _)| n.as_str()).collect();
        return Err(template_error(
            shape,
            field,
            format!(
                "{} has no such field (its fields: {})",
                shape.type_name,
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ),
        ));
    };
    if let Err(e) = matchable_name(field) {
        return Err(template_error(
            shape,
            field,
            format!("not matchable, it travels in the body only: {e}"),
        ));
    }
    let class = class_of(kind).ok_or_else(|| {
        template_error(
            shape,
            field,
            format!(
                "a {} is not matchable (only scalar fields are); it travels in the body only",
                kind.describe()
            ),
        )
    })?;
    Ok((field.to_owned(), class))
}

fn class_of(kind: &Kind) -> Option<FieldClass> {
    Some(match kind {
        Kind::Bool => FieldClass::Bool,
        Kind::Int { signed, bits } => {
            let bits = u32::from(*bits);
            let (min, max) = match (signed, bits) {
                (_, 128) | (false, 64) => {
                    (if *signed { i64::MIN.into() } else { 0 }, i64::MAX.into())
                }
                (true, b) => (-(1_i128 << (b - 1)), (1_i128 << (b - 1)) - 1),
                (false, b) => (0, (1_i128 << b) - 1),
            };
            FieldClass::Int { min, max }
        }
        Kind::Float(bits) => FieldClass::Float(*bits),
        Kind::Char => FieldClass::Text(TextKind::Char),
        Kind::Str => FieldClass::Text(TextKind::Str),
        Kind::Enum(name, variants) => FieldClass::Text(TextKind::Enum(name, variants)),
        Kind::Option(inner) | Kind::Newtype(_, inner) => return class_of(inner),
        _ => return None,
    })
}

fn check_operator(
    shape: &Shape,
    field: &str,
    class: &FieldClass,
    operator: &str,
    orders: bool,
) -> Result<()> {
    if orders && matches!(class, FieldClass::Bool | FieldClass::Text(_)) {
        return Err(template_error(
            shape,
            field,
            format!(
                "{operator} needs a numeric field, and {field} is {} (strings, chars, enums \
                 and booleans compare only with = and <>)",
                describe(shape, field)
            ),
        ));
    }
    Ok(())
}

/// Checks `scalar` against the field's type and converts it to the literal that equals what
/// the field stores.
fn literal_for(shape: &Shape, field: &str, class: &FieldClass, scalar: Scalar) -> Result<Literal> {
    let mismatch = || {
        template_error(
            shape,
            field,
            format!(
                "{field} is {}; a {} value never matches it",
                describe(shape, field),
                scalar.describe()
            ),
        )
    };
    Ok(match (class, &scalar) {
        (FieldClass::Bool, Scalar::Bool(b)) => Literal::Bool(*b),
        (FieldClass::Int { min, max }, Scalar::Int(n)) => {
            if n < min || n > max {
                return Err(template_error(
                    shape,
                    field,
                    format!(
                        "{n} is outside the range of {field} ({})",
                        describe(shape, field)
                    ),
                ));
            }
            Literal::Long(i64::try_from(*n).map_err(|_| mismatch())?)
        }
        (FieldClass::Float(bits), Scalar::Float(x, _)) => {
            if !x.is_finite() {
                return Err(template_error(
                    shape,
                    field,
                    format!("{x} cannot be written in a selector"),
                ));
            }
            // The field stores its own width; an f32 field holds the f32 nearest the value.
            let x = if *bits == 32 {
                f64::from(*x as f32)
            } else {
                *x
            };
            Literal::Double(x)
        }
        (FieldClass::Text(TextKind::Str), Scalar::Str(s)) => Literal::Str(s.clone()),
        (FieldClass::Text(TextKind::Char), Scalar::Char(c)) => Literal::Str(c.to_string()),
        (
            FieldClass::Text(TextKind::Enum(name, _)),
            Scalar::Variant {
                enum_name,
                variant,
                unit,
            },
        ) if enum_name == name => {
            if !unit {
                return Err(template_error(
                    shape,
                    field,
                    format!(
                        "{name}::{variant} carries data; templates match enum fields by \
                         variant, so give a unit variant or the variant name as a string"
                    ),
                ));
            }
            Literal::Str((*variant).to_owned())
        }
        (FieldClass::Text(TextKind::Enum(name, variants)), Scalar::Str(s)) => {
            if !variants.contains(&s.as_str()) {
                return Err(template_error(
                    shape,
                    field,
                    format!(
                        "{name} has no variant {s:?} (variants: {})",
                        variants.join(", ")
                    ),
                ));
            }
            Literal::Str(s.clone())
        }
        _ => return Err(mismatch()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize)]
    enum Status {
        Open,
        Done,
        Failed(String),
    }

    #[derive(Serialize, Deserialize)]
    struct Meters(f32);

    #[derive(Serialize, Deserialize)]
    struct Task {
        id: u8,
        kind: String,
        ratio: f64,
        length: Meters,
        status: Status,
        owner: Option<String>,
        done: bool,
        tags: Vec<String>,
        initial: char,
        not: bool,
    }

    fn selector(b: TemplateBuilder<Task>) -> String {
        b.build().unwrap().selector().unwrap_or("").to_owned()
    }

    fn error(b: TemplateBuilder<Task>) -> String {
        b.build().unwrap_err().to_string()
    }

    #[test]
    fn conditions_compile_to_selectors() {
        let b = Template::<Task>::builder;
        assert_eq!(selector(b().eq("kind", "it's")), "kind = 'it''s'");
        assert_eq!(selector(b().eq("id", 7)), "id = 7");
        assert_eq!(selector(b().ne("done", true)), "done <> TRUE");
        assert_eq!(selector(b().gt("ratio", 0.5)), "ratio > 0.5");
        assert_eq!(selector(b().eq("ratio", 1.0)), "ratio = 1.0");
        assert_eq!(
            selector(b().eq("length", 0.1)),
            format!("length = {:?}", f64::from(0.1_f32))
        );
        assert_eq!(selector(b().range("id", 1..5)), "id >= 1 AND id < 5");
        assert_eq!(selector(b().range("id", 1..=5)), "id BETWEEN 1 AND 5");
        assert_eq!(selector(b().range("id", ..=5)), "id <= 5");
        assert_eq!(
            selector(b().one_of("kind", ["a", "b"])),
            "kind IN ('a', 'b')"
        );
        assert_eq!(selector(b().one_of("id", [1, 2])), "(id = 1 OR id = 2)");
        assert_eq!(selector(b().like("kind", "re%")), "kind LIKE 're%'");
        assert_eq!(
            selector(b().like("kind", "100\\%")),
            "kind LIKE '100\\%' ESCAPE '\\'"
        );
        assert_eq!(selector(b().eq("status", Status::Done)), "status = 'Done'");
        assert_eq!(selector(b().eq("status", "Open")), "status = 'Open'");
        assert_eq!(selector(b().eq("owner", "ann")), "owner = 'ann'");
        assert_eq!(selector(b().is_none("owner")), "owner IS NULL");
        assert_eq!(selector(b().eq("initial", 'x')), "initial = 'x'");
        assert_eq!(
            selector(b().eq("kind", "a").eq("done", false)),
            "kind = 'a' AND done = FALSE"
        );
    }

    #[test]
    fn extreme_values_read_back_exactly() {
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Wide {
            n: i64,
            x: f64,
        }
        let t = Template::<Wide>::builder()
            .eq("n", i64::MIN)
            .eq("x", 1e300)
            .build()
            .unwrap();
        assert_eq!(t.selector(), Some("n = -9223372036854775808 AND x = 1e300"));
    }

    #[test]
    fn mistakes_are_reported_with_the_field() {
        let b = Template::<Task>::builder;
        for (message, needle) in [
            (error(b().eq("nope", 1)), "no such field"),
            (error(b().eq("kind", 3)), "never matches"),
            (error(b().eq("id", "3")), "never matches"),
            (error(b().eq("id", 300)), "outside the range"),
            (error(b().eq("ratio", 1)), "never matches"),
            (error(b().eq("done", 1)), "never matches"),
            (error(b().gt("kind", "a")), "numeric field"),
            (error(b().like("id", "1%")), "LIKE needs a string"),
            (error(b().eq("tags", "a")), "not matchable"),
            (error(b().eq("not", true)), "not matchable"),
            (error(b().is_none("kind")), "not an Option"),
            (error(b().eq("status", "Closed")), "no variant"),
            (
                error(b().eq("status", Status::Failed("x".into()))),
                "carries data",
            ),
            (error(b().eq("ratio", f64::NAN)), "cannot be written"),
            (error(b().one_of("id", Vec::<u8>::new())), "at least one"),
        ] {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
            assert!(message.contains("Task"), "{message:?} names the type");
        }
        assert!(Template::<String>::any().is_err());
    }

    /// An expression tree whose first variant recurses.
    #[derive(Serialize, Deserialize)]
    enum Expr {
        Add(Box<Expr>, Box<Expr>),
        Num(i64),
    }

    #[test]
    fn templates_for_recursive_entry_types_build() {
        let any = Template::<(Expr, i64)>::any().unwrap();
        assert_eq!(any.type_name(), "(Expr,i64)");
        let t = Template::<(Expr, i64)>::builder().eq(1, 5).build().unwrap();
        assert_eq!(t.selector(), Some("_1 = 5"));
        let (type_name, _) = crate::entry::to_message(
            &(
                Expr::Add(Box::new(Expr::Num(1)), Box::new(Expr::Num(2))),
                5_i64,
            ),
            "id",
        )
        .unwrap();
        assert_eq!(type_name, "(Expr,i64)", "written and templated types agree");
    }

    #[test]
    fn tuple_positions_are_fields() {
        let t = Template::<(String, i64)>::builder()
            .eq(0, "task")
            .gt(1, 3)
            .build()
            .unwrap();
        assert_eq!(t.type_name(), "(str,i64)");
        assert_eq!(t.selector(), Some("_0 = 'task' AND _1 > 3"));
        let e = Template::<(String, i64)>::builder().eq(1, "7").build();
        assert!(e.unwrap_err().to_string().contains("\"_1\""));
    }
}
