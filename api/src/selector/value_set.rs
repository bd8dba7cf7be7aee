//! The literals of `x = v1 OR x = v2 OR …`, folded into one set so that the identifier is
//! looked up once and matched with a few hash lookups instead of one comparison per term.

use std::collections::HashSet;
use std::sync::Arc;

use super::SelectorValue;

/// The bits of a double, with -0.0 folded into 0.0 (they are equal); `None` for NaN, which
/// equals nothing.
fn double_key(d: f64) -> Option<u64> {
    (!d.is_nan()).then(|| if d == 0.0 { 0.0f64 } else { d }.to_bits())
}

/// A set of literals with the selector's `=`: numbers compare across types, as doubles
/// between a long and a double and exactly between two longs.
#[derive(Debug, Default)]
pub(super) struct ValueSet {
    /// The literals, in order, for [`ValueSet::literals`].
    literals: Vec<SelectorValue>,
    strings: HashSet<Arc<str>>,
    /// Whether `FALSE` and `TRUE` are in the set.
    bools: [bool; 2],
    longs: HashSet<i64>,
    /// Double literals, as [`double_key`]s.
    doubles: HashSet<u64>,
    /// Long literals widened to double, as [`double_key`]s: what a double value must equal.
    longs_as_doubles: HashSet<u64>,
}

impl ValueSet {
    /// Adds a literal.
    pub(super) fn insert(&mut self, literal: SelectorValue) {
        match &literal {
            SelectorValue::String(s) => {
                self.strings.insert(s.clone());
            }
            SelectorValue::Bool(b) => self.bools[usize::from(*b)] = true,
            SelectorValue::Long(n) => {
                self.longs.insert(*n);
                self.longs_as_doubles.extend(double_key(*n as f64));
            }
            SelectorValue::Double(d) => self.doubles.extend(double_key(*d)),
        }
        self.literals.push(literal);
    }

    /// Whether `value = literal` is TRUE for some literal of the set.
    pub(super) fn contains(&self, value: &SelectorValue) -> bool {
        match value {
            SelectorValue::String(s) => self.strings.contains(s),
            SelectorValue::Bool(b) => self.bools[usize::from(*b)],
            SelectorValue::Long(n) => {
                self.longs.contains(n)
                    || double_key(*n as f64).is_some_and(|key| self.doubles.contains(&key))
            }
            SelectorValue::Double(d) => double_key(*d).is_some_and(|key| {
                self.doubles.contains(&key) || self.longs_as_doubles.contains(&key)
            }),
        }
    }

    /// The literals, in the order they were added.
    pub(super) fn literals(&self) -> &[SelectorValue] {
        &self.literals
    }
}
