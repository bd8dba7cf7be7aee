//! Destinations: where messages are sent and where they come from.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

use crate::{Error, Result};

/// The longest destination name Courier accepts, in bytes.
pub const MAX_DESTINATION_NAME: usize = 255;

/// The kind of a [`Destination`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DestinationKind {
    /// Point to point: each message goes to exactly one consumer.
    Queue,
    /// Publish/subscribe: each message goes to every subscription.
    Topic,
    /// A queue that lives as long as the connection that created it.
    TemporaryQueue,
    /// A topic that lives as long as the connection that created it.
    TemporaryTopic,
}

/// A queue or topic, named.
///
/// Destinations are plain values: cheap to clone, comparable, and the same on every backend.
///
/// ```
/// use courier_api::Destination;
/// let orders = Destination::queue("orders");
/// assert!(orders.is_queue());
/// assert_eq!(orders.to_string(), "queue://orders");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Destination {
    kind: DestinationKind,
    name: Arc<str>,
}

impl Destination {
    /// A queue named `name`.
    pub fn queue(name: impl AsRef<str>) -> Self {
        Self::new(DestinationKind::Queue, name)
    }

    /// A topic named `name`.
    pub fn topic(name: impl AsRef<str>) -> Self {
        Self::new(DestinationKind::Topic, name)
    }

    /// A destination of any kind. Backends use this to build temporary destinations.
    pub fn new(kind: DestinationKind, name: impl AsRef<str>) -> Self {
        Destination {
            kind,
            name: Arc::from(name.as_ref()),
        }
    }

    /// The destination's name, unique per kind.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The destination's kind.
    pub fn kind(&self) -> DestinationKind {
        self.kind
    }

    /// True for queues and temporary queues.
    pub fn is_queue(&self) -> bool {
        matches!(
            self.kind,
            DestinationKind::Queue | DestinationKind::TemporaryQueue
        )
    }

    /// True for topics and temporary topics.
    pub fn is_topic(&self) -> bool {
        !self.is_queue()
    }

    /// True for temporary queues and topics.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self.kind,
            DestinationKind::TemporaryQueue | DestinationKind::TemporaryTopic
        )
    }

    /// Checks the name: not empty, at most [`MAX_DESTINATION_NAME`] bytes, no control
    /// characters or whitespace. Backends call this before using a destination.
    pub fn validate(&self) -> Result<()> {
        let reason = if self.name.is_empty() {
            "name is empty"
        } else if self.name.len() > MAX_DESTINATION_NAME {
            "name is longer than 255 bytes"
        } else if has_control_or_whitespace(&self.name) {
            "name contains whitespace or control characters"
        } else {
            return Ok(());
        };
        Err(Error::invalid_destination(self.to_string(), reason))
    }

    /// Parses the `queue://name` / `topic://name` form that [`fmt::Display`] prints.
    pub fn parse(text: &str) -> Result<Self> {
        let (kind, name) = if let Some(n) = text.strip_prefix("queue://") {
            (DestinationKind::Queue, n)
        } else if let Some(n) = text.strip_prefix("topic://") {
            (DestinationKind::Topic, n)
        } else if let Some(n) = text.strip_prefix("temp-queue://") {
            (DestinationKind::TemporaryQueue, n)
        } else if let Some(n) = text.strip_prefix("temp-topic://") {
            (DestinationKind::TemporaryTopic, n)
        } else {
            return Err(Error::invalid_destination(
                text,
                "expected queue://, topic://, temp-queue:// or temp-topic://",
            ));
        };
        let d = Destination::new(kind, name);
        d.validate()?;
        Ok(d)
    }
}

/// True when `name` holds a control or whitespace character. Every send is checked, so an
/// ASCII name (nearly all) is scanned byte by byte: in ASCII those characters are exactly
/// the bytes up to the space and DEL.
fn has_control_or_whitespace(name: &str) -> bool {
    if name.is_ascii() {
        name.bytes().any(|b| b <= b' ' || b == 0x7f)
    } else {
        name.chars().any(|c| c.is_control() || c.is_whitespace())
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.kind {
            DestinationKind::Queue => "queue",
            DestinationKind::Topic => "topic",
            DestinationKind::TemporaryQueue => "temp-queue",
            DestinationKind::TemporaryTopic => "temp-topic",
        };
        write!(f, "{scheme}://{}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ascii_scan_refuses_exactly_what_the_char_scan_does() {
        for b in 0u8..=0x7f {
            let c = b as char;
            let name = format!("a{c}b");
            assert_eq!(
                has_control_or_whitespace(&name),
                c.is_control() || c.is_whitespace(),
                "byte {b:#x}"
            );
        }
        assert!(has_control_or_whitespace("é\u{a0}x"));
        assert!(!has_control_or_whitespace("café"));
    }

    #[test]
    fn display_parse_round_trip() {
        for d in [
            Destination::queue("a.b"),
            Destination::topic("t"),
            Destination::new(DestinationKind::TemporaryQueue, "x/1"),
        ] {
            assert_eq!(Destination::parse(&d.to_string()).unwrap(), d);
        }
    }

    #[test]
    fn bad_names_are_rejected() {
        assert!(Destination::queue("").validate().is_err());
        assert!(Destination::queue("a b").validate().is_err());
        assert!(Destination::queue("x".repeat(256)).validate().is_err());
        assert!(Destination::parse("nope://x").is_err());
    }
}
