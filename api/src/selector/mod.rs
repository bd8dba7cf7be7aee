//! JMS message selectors (Jakarta Messaging 3.1 §3.8): parser and evaluator.
//!
//! A selector is an SQL-92 conditional expression over message properties and a few JMS
//! headers. [`Selector::parse`] checks the syntax once (errors carry the byte position);
//! [`Selector::matches`] evaluates it with SQL three-valued logic against anything that
//! implements [`SelectorSource`] — a [`crate::Message`], or a backend's own stored form.
//!
//! ```
//! use courier_api::selector::{Selector, SelectorSource, SelectorValue};
//!
//! struct Props;
//! impl SelectorSource for Props {
//!     fn selector_value(&self, name: &str) -> Option<SelectorValue> {
//!         (name == "color").then(|| SelectorValue::String("red".into()))
//!     }
//! }
//! let s = Selector::parse("color IN ('red', 'blue') AND size IS NULL").unwrap();
//! assert!(s.matches(&Props));
//! ```
//!
//! # Semantics
//!
//! The rules follow the specification; where it leaves room, this engine decides:
//!
//! * Comparing values of unlike types (`'1' = 1`, `flag = 1`) is FALSE, for `<>` too, so
//!   `NOT ('1' = 1)` is TRUE. Longs and doubles compare with each other, as doubles.
//!   Comparing a boolean literal or condition with a numeric expression or a string literal
//!   (`TRUE = 0`, `(a = 1) = 'x'`) is a parse error instead, as the TCK requires.
//! * `NULL` is not a value (§3.8.1.1): it appears only in `IS [NOT] NULL`. `NULL = 0`,
//!   `a = NULL`, `NULL` alone, `NULL + 1` or `NULL IN (…)` are parse errors; an absent
//!   property is NULL at run time, and comparisons and arithmetic on it are UNKNOWN.
//! * Strings and booleans support only `=` and `<>`. Ordering them is a parse error when an
//!   operand is a string or boolean literal (`name > 'm'`), and UNKNOWN when both operands are
//!   identifiers.
//! * `IN` and `LIKE` on a value that is not a string are UNKNOWN, as they are on NULL.
//! * Long arithmetic that overflows continues in double; long division by zero is UNKNOWN;
//!   double arithmetic follows IEEE 754 as in Java (`1.0 / 0` is infinity).
//! * Numeric literals follow Java: decimal, hexadecimal (`0x1F`), binary (`0b101`), octal
//!   (`017`), `L` suffix; `7E3`, `7.`, `.5`, `F`/`D` suffix (read as double). Out-of-range
//!   literals are parse errors.
//! * In `LIKE … ESCAPE`, the escape character makes whatever follows it literal. LIKE costs
//!   time linear in the value for patterns whose `_` sit outside `%`-separated middle segments,
//!   and value × segment / 64 at worst otherwise.
//! * Expressions whose type rules out a truth value are parse errors: `'abc'` or `1 + 2` as a
//!   condition, `'a' + 1`, `TRUE BETWEEN 1 AND 2`.
//! * Nesting is limited to 128 levels, so no input can overflow the stack.

mod ast;
mod compiled;
mod eval;
mod in_list;
mod lexer;
mod like;
mod lua;
mod parser;
mod required;
#[cfg(test)]
mod tests;
mod value_set;

pub use compiled::Selector;
pub use lua::LUA_RUNTIME;

/// A value an identifier takes during selector evaluation.
///
/// Properties widen into these four kinds: every integer type is `Long`, `f32`/`f64` are
/// `Double`. No other conversion happens in selectors (§3.8.1.1): the string `'2'` is not 2.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectorValue {
    /// A boolean property.
    Bool(bool),
    /// An exact numeric: any integer property, or `JMSPriority`, `JMSTimestamp`.
    Long(i64),
    /// An approximate numeric: an `f32` or `f64` property.
    Double(f64),
    /// A string property or header.
    String(std::sync::Arc<str>),
}

/// Something a selector can be evaluated against: it answers the value of an identifier.
///
/// Identifiers are case-sensitive. Return `None` for an absent property (the selector sees
/// NULL). JMS header identifiers (`JMSPriority`, `JMSDeliveryMode`, …) are answered by the
/// implementor too.
pub trait SelectorSource {
    /// The value of `identifier`, or `None` when it is absent (NULL).
    fn selector_value(&self, identifier: &str) -> Option<SelectorValue>;
}
