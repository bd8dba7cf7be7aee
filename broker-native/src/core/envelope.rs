//! A message as the broker keeps it ([`Envelope`]): the stamped message shared by every
//! copy, its sender, and per-copy delivery state; and its place in delivery order
//! ([`OrderKey`]). Leaf of the core: queues, ready stores, waiters and sessions all build on it.

use courier_api::selector::{SelectorSource, SelectorValue};
use courier_api::Message;
use std::cmp::Reverse;
use std::sync::Arc;

use super::limits::Charge;

/// Delivery order: higher priority first, then arrival.
pub(crate) type OrderKey = (Reverse<u8>, u64);

/// The one identifier whose value changes while a message is stored; never indexed.
pub(crate) const DELIVERY_COUNT: &str = "JMSXDeliveryCount";

/// Who sent a message, for no-local subscriptions.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    /// Id of the sending connection.
    pub connection: u64,
    /// Client id of the sending connection, if set.
    pub client_id: Option<Arc<str>>,
}

/// The current time in ms since the epoch, read from the clock at most once and only when a
/// message with an expiration or a delivery time needs it.
pub(crate) struct LazyNow(std::cell::Cell<Option<u64>>);

impl LazyNow {
    /// A clock not read yet.
    pub fn new() -> Self {
        LazyNow(std::cell::Cell::new(None))
    }

    /// The time, reading the clock on first use.
    pub fn get(&self) -> u64 {
        self.0.get().unwrap_or_else(|| {
            let now = courier_api::spi::now_millis();
            self.0.set(Some(now));
            now
        })
    }
}

/// A message as the broker keeps it: the stamped message, shared by every subscription it
/// was published to, plus per-copy delivery state.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    /// Arrival order within the broker; ties within a priority are broken by it.
    pub seq: u64,
    /// How many times this copy was delivered so far.
    pub delivery_count: u32,
    /// The stamped message.
    pub message: Arc<Message>,
    /// Its sender.
    pub origin: Arc<Origin>,
    /// True when `message` is a page stub ([`super::paging`]): headers and properties only,
    /// the body left in the store, read back when the copy is delivered or browsed.
    pub paged: bool,
    /// This copy's account on its store's limits and the broker's memory, released when
    /// the copy is dropped (acknowledged, expired, dead-lettered, dropped, deleted).
    pub charge: Option<Charge>,
}

impl Envelope {
    /// A copy of `message` as a test stores it: sequence `seq`, never delivered, sent by
    /// connection 1, charged to nothing.
    #[cfg(test)]
    pub fn unsent(seq: u64, message: Message) -> Envelope {
        Envelope {
            seq,
            delivery_count: 0,
            message: Arc::new(message),
            origin: Arc::new(Origin {
                connection: 1,
                client_id: None,
            }),
            charge: None,
            paged: false,
        }
    }

    /// Its place in delivery order.
    pub(crate) fn key(&self) -> OrderKey {
        (Reverse(self.message.priority().min(9)), self.seq)
    }

    /// True for a persistent message: the only kind a durable store hears of.
    pub(crate) fn is_persistent(&self) -> bool {
        self.message.delivery_mode() == courier_api::DeliveryMode::Persistent
    }

    pub(crate) fn expired(&self, now: &LazyNow) -> bool {
        let e = self.message.expiration();
        e != 0 && e <= now.get()
    }

    pub(crate) fn due_at(&self) -> u64 {
        self.message.delivery_time()
    }
}

/// Selectors see the delivery count this copy would carry if delivered now.
impl SelectorSource for Envelope {
    fn selector_value(&self, identifier: &str) -> Option<SelectorValue> {
        if identifier == DELIVERY_COUNT {
            return Some(SelectorValue::Long(self.delivery_count as i64 + 1));
        }
        self.message.selector_value(identifier)
    }
}
