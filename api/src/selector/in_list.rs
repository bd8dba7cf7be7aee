//! The values of an `IN` list: a sorted slice for short lists, a hash set for long ones, so a
//! lookup costs one hash instead of a binary search's many string comparisons.

use std::collections::HashSet;
use std::sync::Arc;

/// Lists longer than this are looked up through a hash set; shorter ones by binary search,
/// which is faster than hashing for a few values.
const HASHED_FROM: usize = 16;

/// The string literals of an `IN` list, without duplicates.
#[derive(Debug)]
pub(super) enum InList {
    /// Sorted, for binary search.
    Sorted(Box<[Arc<str>]>),
    /// More than [`HASHED_FROM`] values.
    Hashed(HashSet<Arc<str>>),
}

impl InList {
    /// The list of `values`, in any order and possibly repeated. Costs O(n) for long lists,
    /// O(n log n) for short ones.
    pub(super) fn new(mut values: Vec<Arc<str>>) -> Self {
        if values.len() > HASHED_FROM {
            let set: HashSet<Arc<str>> = values.into_iter().collect();
            // Repeats can leave few distinct values.
            if set.len() > HASHED_FROM {
                return InList::Hashed(set);
            }
            values = set.into_iter().collect();
        }
        values.sort_unstable();
        values.dedup();
        InList::Sorted(values.into_boxed_slice())
    }

    /// Whether `value` is in the list.
    pub(super) fn contains(&self, value: &str) -> bool {
        match self {
            InList::Sorted(sorted) => sorted
                .binary_search_by(|candidate| (**candidate).cmp(value))
                .is_ok(),
            InList::Hashed(set) => set.contains(value),
        }
    }

    /// The distinct values, sorted (so results built from them do not depend on hashing).
    pub(super) fn values(&self) -> Vec<Arc<str>> {
        let mut values: Vec<Arc<str>> = match self {
            InList::Sorted(sorted) => return sorted.to_vec(),
            InList::Hashed(set) => set.iter().cloned().collect(),
        };
        values.sort_unstable();
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_lists_find_exactly_their_values() {
        for n in [0, 1, HASHED_FROM, HASHED_FROM + 1, 1000] {
            // Each value twice, in reverse order.
            let values: Vec<Arc<str>> = (0..n)
                .rev()
                .flat_map(|i| [format!("v{i:04}").into(), format!("v{i:04}").into()])
                .collect();
            let list = InList::new(values);
            assert_eq!(matches!(list, InList::Hashed(_)), n > HASHED_FROM);
            let expected: Vec<Arc<str>> = (0..n).map(|i| format!("v{i:04}").into()).collect();
            assert_eq!(list.values(), expected);
            for i in 0..n {
                assert!(list.contains(&format!("v{i:04}")));
            }
            assert!(!list.contains(&format!("v{n:04}")));
            assert!(!list.contains(""));
            assert!(!list.contains("v"));
        }
    }
}
