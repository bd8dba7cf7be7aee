//! Building script arguments and reading script replies.

use courier_api::{Error, Result};
use redis::Value;

/// Script arguments, built in order.
#[derive(Debug, Default)]
pub(crate) struct Args(pub Vec<Vec<u8>>);

impl Args {
    /// Starts the arguments of operation `op`.
    pub fn op(op: &str) -> Args {
        Args(vec![op.as_bytes().to_vec()])
    }

    /// Adds a value by its text.
    pub fn add(mut self, value: impl ToString) -> Args {
        self.0.push(value.to_string().into_bytes());
        self
    }

    /// Adds raw bytes.
    pub fn bytes(mut self, value: &[u8]) -> Args {
        self.0.push(value.to_vec());
        self
    }

    /// Adds values by their text.
    pub fn extend<T: ToString>(mut self, values: impl IntoIterator<Item = T>) -> Args {
        for v in values {
            self.0.push(v.to_string().into_bytes());
        }
        self
    }

    /// Adds a value by its text, in place.
    pub fn push(&mut self, value: impl ToString) {
        self.0.push(value.to_string().into_bytes());
    }
}

/// The elements of an array reply.
pub(crate) fn array(value: Value) -> Result<Vec<Value>> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(unexpected(&other)),
    }
}

/// An integer reply (or an integer in text).
pub(crate) fn int(value: &Value) -> Result<i64> {
    match value {
        Value::Int(n) => Ok(*n),
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .map(|f| f as i64)
            .ok_or_else(|| unexpected(value)),
        Value::SimpleString(s) => s
            .parse::<f64>()
            .map(|f| f as i64)
            .map_err(|_| unexpected(value)),
        other => Err(unexpected(other)),
    }
}

/// A text reply.
pub(crate) fn text(value: &Value) -> Result<String> {
    match value {
        Value::BulkString(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Ok(s.clone()),
        Value::Int(n) => Ok(n.to_string()),
        other => Err(unexpected(other)),
    }
}

/// A bytes reply.
pub(crate) fn bytes(value: &Value) -> Result<&[u8]> {
    match value {
        Value::BulkString(b) => Ok(b),
        other => Err(unexpected(other)),
    }
}

fn unexpected(value: &Value) -> Error {
    let mut shown = format!("{value:?}");
    shown.truncate(80);
    Error::protocol(format!("unexpected reply from the Courier script: {shown}"))
}
