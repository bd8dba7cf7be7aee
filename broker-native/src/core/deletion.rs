//! Deleting a plain destination on request (`Session::delete_destination`), the admin
//! counterpart of housekeeping's auto-delete, sharing its retirement path.
//!
//! As Artemis does without `force`, a destination in use is refused rather than pulled from
//! under its users: a queue with a consumer or with messages delivered but not acknowledged,
//! a topic with a subscription that has a consumer (or unacknowledged messages) answers
//! `IllegalState`. A topic's inactive durable subscriptions go with it, their stored messages
//! too. A queue's removal reaches the store, so a durable broker's journal forgets the queue
//! and its messages; a later send makes the destination afresh, empty. The deletion returns
//! the store's tickets: a caller that waits for them knows the deletion survives a crash
//! (otherwise a kill right after could bring the messages back).

use std::sync::Arc;

use courier_api::{Destination, Error, Result};

use super::broker::BrokerCore;
use super::housekeeping::retire_queue;
use super::store::{Record, StoreKey, Ticket};

impl BrokerCore {
    /// Deletes the plain queue or topic `destination` with everything it stores; see the
    /// module docs for what is refused. Deleted in memory on return; the tickets resolve once
    /// the store has the deletion.
    pub fn delete_destination(&self, destination: &Destination) -> Result<Vec<Ticket>> {
        destination.validate()?;
        if destination.is_temporary() {
            return Err(Error::invalid_destination(
                destination.to_string(),
                "a temporary destination is deleted with delete_temporary",
            ));
        }
        if destination.is_queue() {
            self.delete_queue(destination)
        } else {
            self.delete_topic(destination)
        }
    }

    fn delete_queue(&self, destination: &Destination) -> Result<Vec<Ticket>> {
        let mut queues = self.queues.write();
        let Some(store) = queues.get(destination) else {
            return Err(missing(destination));
        };
        let consumers = store.queue.consumer_count();
        if consumers > 0 {
            return Err(Error::illegal_state(format!(
                "{destination} has {consumers} consumer(s); close them before deleting it"
            )));
        }
        if store.queue.unacked() > 0 {
            return Err(Error::illegal_state(format!(
                "{destination} has messages delivered but not acknowledged"
            )));
        }
        let ticket = retire_queue(store);
        queues.remove(destination);
        Ok(vec![ticket?])
    }

    fn delete_topic(&self, destination: &Destination) -> Result<Vec<Ticket>> {
        // The order `subscribe` takes them in: subscription maps, then the topic registry.
        let mut durable = self.durable.lock();
        let mut shared = self.shared.lock();
        let mut topics = self.topics.write();
        let Some(topic) = topics.get(destination).cloned() else {
            return Err(missing(destination));
        };
        let subscriptions = topic.subscriptions();
        if subscriptions.iter().any(|s| s.active() > 0) {
            return Err(Error::illegal_state(format!(
                "{destination} has subscribers; close them before deleting it"
            )));
        }
        if subscriptions.iter().any(|s| s.queue.unacked() > 0) {
            return Err(Error::illegal_state(format!(
                "a subscription of {destination} has messages delivered but not acknowledged"
            )));
        }
        let ours = |s: &Arc<super::subscription::Subscription>| {
            subscriptions.iter().any(|t| Arc::ptr_eq(s, t))
        };
        durable.retain(|_, s| !ours(s));
        shared.retain(|_, s| !ours(s));
        topic.delete();
        topics.remove(destination);
        let mut tickets = Vec::new();
        for sub in &subscriptions {
            if let Some(recorder) = sub.queue.recorder() {
                if let StoreKey::Subscription(id) = recorder.key() {
                    tickets.push(recorder.store().record(Record::SubscriptionDeleted(*id))?);
                }
            }
        }
        Ok(tickets)
    }
}

/// The error for a destination the broker does not have.
fn missing(destination: &Destination) -> Error {
    Error::invalid_destination(destination.to_string(), "no such destination")
}
