//! The property set of a message: a small map kept as a sorted vector, because a message has
//! few properties and brokers hold millions of messages (a tree map costs a node of hundreds
//! of bytes even for one entry).

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::Value;

/// A message's properties by name, in name order.
///
/// ```
/// use courier_api::{Properties, Value};
/// let mut p = Properties::new();
/// p.insert("b".into(), Value::from(2_i32));
/// p.insert("a".into(), Value::from(1_i32));
/// assert_eq!(p.keys().map(String::as_str).collect::<Vec<_>>(), ["a", "b"]);
/// assert_eq!(p.get("b"), Some(&Value::from(2_i32)));
/// ```
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Properties {
    entries: Vec<(String, Value)>,
}

impl Properties {
    /// No properties.
    pub const fn new() -> Self {
        Properties {
            entries: Vec::new(),
        }
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.as_str().cmp(name))
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.position(name).ok().map(|i| &self.entries[i].1)
    }

    /// True when `name` is set.
    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    /// Sets `name`, returning the value it replaces.
    pub fn insert(&mut self, name: String, value: Value) -> Option<Value> {
        match self.position(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (name, value));
                None
            }
        }
    }

    /// Removes `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        self.position(name).ok().map(|i| self.entries.remove(i).1)
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The properties in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// The names in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.entries.iter().map(|(k, _)| k)
    }
}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl FromIterator<(String, Value)> for Properties {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        let mut p = Properties::new();
        for (k, v) in iter {
            p.insert(k, v);
        }
        p
    }
}
