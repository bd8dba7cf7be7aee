//! The values of an `IN` list: sorted and deduplicated, plus a hash set for long lists, so a
//! lookup costs one hash instead of a binary search's many string comparisons.

use std::collections::HashSet;
use std::sync::Arc;

/// Lists longer than this are looked up through a hash set; shorter ones by binary search,
/// which is faster than hashing for a few values.
const HASHED_FROM: usize = 16;

/// The string literals of an `IN` list.
#[derive(Debug)]
pub(super) struct InList {
    /// Sorted, without duplicates.
    sorted: Box<[Arc<str>]>,
    /// The same strings, for lists longer than [`HASHED_FROM`].
    hashed: Option<HashSet<Arc<str>>>,
}

impl InList {
    /// The list of `values`, in any order and possibly repeated. Costs O(n log n).
    pub(super) fn new(mut values: Vec<Arc<str>>) -> Self {
        values.sort_unstable();
        values.dedup();
        let hashed = (values.len() > HASHED_FROM).then(|| values.iter().cloned().collect());
        InList {
            sorted: values.into_boxed_slice(),
            hashed,
        }
    }

    /// Whether `value` is in the list.
    pub(super) fn contains(&self, value: &str) -> bool {
        match &self.hashed {
            Some(set) => set.contains(value),
            None => self
                .sorted
                .binary_search_by(|candidate| (**candidate).cmp(value))
                .is_ok(),
        }
    }

    /// The distinct values, sorted.
    pub(super) fn values(&self) -> &[Arc<str>] {
        &self.sorted
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
                .flat_map(|i| [format!("v{i}").into(), format!("v{i}").into()])
                .collect();
            let list = InList::new(values);
            assert_eq!(list.hashed.is_some(), n > HASHED_FROM);
            assert_eq!(list.values().len(), n);
            assert!(list.values().windows(2).all(|pair| pair[0] < pair[1]));
            for i in 0..n {
                assert!(list.contains(&format!("v{i}")));
            }
            assert!(!list.contains(&format!("v{n}")));
            assert!(!list.contains(""));
            assert!(!list.contains("v"));
        }
    }
}
