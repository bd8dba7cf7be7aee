//! How the JMS model maps onto RabbitMQ's exchanges and queues, and the record of what a
//! factory declared.
//!
//! - A queue is a durable AMQP queue of the same name, reached through the default (direct)
//!   exchange with its name as routing key.
//! - A topic is a routing key on the direct exchange [`TOPICS`]: a direct exchange rather
//!   than a topic exchange, so a topic name is matched exactly (`.`, `*` and `#` in JMS
//!   names are ordinary characters). Each subscription is a queue bound to it with the
//!   topic's name: exclusive auto-delete and server-named for a non-durable subscription;
//!   durable and named [`durable_queue`] from the client id and the subscription name for a
//!   durable one; one auto-delete queue named [`shared_queue`] for a shared one.
//! - The queue type (`classic`, with `x-max-priority` 9 unless the URL says `priority=false`,
//!   or `quorum`) is the factory's. Queues that live only while their consumers do
//!   (temporary destinations, non-durable subscriptions) are classic, with `x-max-priority`
//!   9 unless a classic factory's URL says `priority=false`.
//!
//! The factory records every durable queue its connections declare ([`Topology::declared`]),
//! so a test harness or an administrator can find and delete them.

use courier_api::{Error, Result};
use lapin::types::{AMQPValue, FieldTable, LongString};
use parking_lot::Mutex;
use std::collections::BTreeSet;

/// The direct exchange every topic's messages go through.
pub const TOPICS: &str = "courier.topics";

/// The `x-max-priority` of classic queues: JMS's ten priorities, 0 to 9.
const MAX_PRIORITY: u8 = 9;

/// The most names a [`Topology`] records; past it, the oldest records are not kept.
const MAX_RECORDED: usize = 100_000;

/// The AMQP queue type the factory declares its queues with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueType {
    /// Classic queues: ten priorities (`x-max-priority` 9), a delivery flag but no count.
    Classic,
    /// Quorum queues (replicated on a cluster): `x-delivery-count`, no ten-level priority.
    Quorum,
}

impl QueueType {
    /// Parses the URL option `queue_type`.
    pub fn parse(text: &str) -> Result<QueueType> {
        match text {
            "classic" => Ok(QueueType::Classic),
            "quorum" => Ok(QueueType::Quorum),
            other => Err(Error::invalid_argument(format!(
                "queue_type {other:?}: expected classic or quorum"
            ))),
        }
    }
}

/// A factory's queue type, whether its queues are priority queues, and its record of
/// durable queues declared.
#[derive(Debug)]
pub struct Topology {
    queue_type: QueueType,
    /// Classic queues are declared with `x-max-priority` (RabbitMQ then keeps a queue per
    /// level: JMS priorities, at a cost in throughput).
    priorities: bool,
    declared: Mutex<BTreeSet<String>>,
}

impl Topology {
    /// A topology declaring queues of `queue_type`; classic ones are priority queues.
    pub fn new(queue_type: QueueType) -> Self {
        Topology::with_priorities(queue_type, queue_type == QueueType::Classic)
    }

    /// A topology declaring queues of `queue_type`, classic ones with `x-max-priority` 9 when
    /// `priorities` (quorum queues have no priority levels: `priorities` is then ignored).
    pub fn with_priorities(queue_type: QueueType, priorities: bool) -> Self {
        Topology {
            queue_type,
            priorities: priorities && queue_type == QueueType::Classic,
            declared: Mutex::new(BTreeSet::new()),
        }
    }

    /// The queue type.
    pub fn queue_type(&self) -> QueueType {
        self.queue_type
    }

    /// The `x-max-priority` of this topology's queues, if they are priority queues.
    pub fn max_priority(&self) -> Option<u8> {
        self.priorities.then_some(MAX_PRIORITY)
    }

    /// Notes the durable queue `name` as declared.
    pub(crate) fn record(&self, name: &str) {
        let mut declared = self.declared.lock();
        if declared.len() < MAX_RECORDED {
            declared.insert(name.to_owned());
        }
    }

    /// Forgets `name` (it was deleted).
    pub(crate) fn forget(&self, name: &str) {
        self.declared.lock().remove(name);
    }

    /// Every durable queue declared through this factory, in name order.
    pub fn declared(&self) -> Vec<String> {
        self.declared.lock().iter().cloned().collect()
    }

    /// The arguments of a durable queue (a JMS queue or a durable subscription).
    pub(crate) fn queue_arguments(&self) -> FieldTable {
        let mut arguments = FieldTable::default();
        match self.queue_type {
            QueueType::Classic => {
                if let Some(max) = self.max_priority() {
                    arguments.insert("x-max-priority".into(), AMQPValue::ShortShortUInt(max));
                }
            }
            QueueType::Quorum => {
                arguments.insert(
                    "x-queue-type".into(),
                    AMQPValue::LongString(LongString::from("quorum")),
                );
            }
        }
        arguments
    }

    /// The arguments of a queue that lives only while its consumers do: classic, so it can
    /// be exclusive or auto-delete (quorum queues cannot); a priority queue when the durable
    /// queues are; for a quorum factory always, as before `priority` was an option (its
    /// sends carry the default priority only, see `capabilities`).
    pub(crate) fn transient_arguments(&self) -> FieldTable {
        let mut arguments = FieldTable::default();
        if self.priorities || self.queue_type == QueueType::Quorum {
            arguments.insert(
                "x-max-priority".into(),
                AMQPValue::ShortShortUInt(MAX_PRIORITY),
            );
        }
        arguments
    }
}

/// The queue of the durable subscription `name` of `client_id`.
pub(crate) fn durable_queue(client_id: &str, name: &str) -> String {
    format!("{name}.courier-durable.{client_id}")
}

/// The queue of the shared subscription `name` (of `client_id`, if set): durable or not.
pub(crate) fn shared_queue(client_id: Option<&str>, name: &str, durable: bool) -> String {
    let kind = if durable { "shared-durable" } else { "shared" };
    match client_id {
        Some(id) => format!("{name}.courier-{kind}.{id}"),
        None => format!("{name}.courier-{kind}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_priority(arguments: &FieldTable) -> Option<&AMQPValue> {
        arguments.inner().get("x-max-priority")
    }

    #[test]
    fn priority_queues_are_the_classic_default_and_can_be_left_out() {
        let priority = Some(&AMQPValue::ShortShortUInt(9));
        let classic = Topology::new(QueueType::Classic);
        assert_eq!(max_priority(&classic.queue_arguments()), priority);
        assert_eq!(max_priority(&classic.transient_arguments()), priority);
        let plain = Topology::with_priorities(QueueType::Classic, false);
        assert_eq!(plain.max_priority(), None);
        assert!(plain.queue_arguments().inner().is_empty());
        assert!(plain.transient_arguments().inner().is_empty());
        let quorum = Topology::with_priorities(QueueType::Quorum, true);
        assert_eq!(quorum.max_priority(), None);
        assert_eq!(max_priority(&quorum.queue_arguments()), None);
        assert!(quorum.queue_arguments().contains_key("x-queue-type"));
    }
}
