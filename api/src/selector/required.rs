//! [`required_equalities`]: the equality conditions a broker can serve from an index.
//!
//! Conjuncts are grouped by identifier with a hash map and intersected through hash sets, so
//! the work is linear in the size of the selector however many conjuncts and values it has.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use super::ast::Expr;
use super::SelectorValue;

/// A hashable stand-in for a [`SelectorValue`] with the same equality.
#[derive(Debug, PartialEq, Eq, Hash)]
enum ValueKey<'a> {
    Bool(bool),
    Long(i64),
    /// The bits of a double that is not NaN, with -0.0 folded into 0.0 (they are equal).
    Double(u64),
    String(&'a str),
}

impl ValueKey<'_> {
    /// The key of `value`; `None` for NaN, which equals nothing, not even itself.
    fn of(value: &SelectorValue) -> Option<ValueKey<'_>> {
        Some(match value {
            SelectorValue::Bool(b) => ValueKey::Bool(*b),
            SelectorValue::Long(n) => ValueKey::Long(*n),
            SelectorValue::Double(d) if d.is_nan() => return None,
            SelectorValue::Double(d) => {
                ValueKey::Double(if *d == 0.0 { 0.0 } else { *d }.to_bits())
            }
            SelectorValue::String(s) => ValueKey::String(s),
        })
    }
}

/// Each identifier some conjunct constrains, in order of first appearance, with the values
/// that every one of its conjuncts allows.
pub(super) fn required_equalities(conjuncts: &[Expr]) -> Vec<(String, Vec<SelectorValue>)> {
    let mut required: Vec<(String, Vec<SelectorValue>)> = Vec::new();
    let mut position: HashMap<&str, usize> = HashMap::new();
    for conjunct in conjuncts {
        let Some((ident, values)) = conjunct.required_values() else {
            continue;
        };
        match position.entry(ident) {
            Entry::Vacant(entry) => {
                entry.insert(required.len());
                required.push((ident.to_owned(), values));
            }
            Entry::Occupied(entry) => {
                let Some((_, existing)) = required.get_mut(*entry.get()) else {
                    continue;
                };
                if existing.is_empty() {
                    continue;
                }
                let allowed: HashSet<ValueKey<'_>> =
                    values.iter().filter_map(ValueKey::of).collect();
                existing
                    .retain(|value| ValueKey::of(value).is_some_and(|key| allowed.contains(&key)));
            }
        }
    }
    required
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_equal_exactly_when_values_are() {
        use SelectorValue::{Bool, Double, Long, String};
        let values = [
            Bool(true),
            Bool(false),
            Long(0),
            Long(-1),
            Double(0.0),
            Double(-0.0),
            Double(1.5),
            Double(f64::INFINITY),
            Double(f64::NAN),
            String("a".into()),
            String("".into()),
        ];
        for a in &values {
            for b in &values {
                let keys_equal =
                    matches!((ValueKey::of(a), ValueKey::of(b)), (Some(x), Some(y)) if x == y);
                assert_eq!(keys_equal, a == b, "{a:?} vs {b:?}");
            }
        }
    }
}
