//! The journal behind the core's storage hook: [`JournalStore`] implements
//! [`crate::store::Store`], translating the core's records into the journal's (one to one,
//! with the same stable ids) and its replay into the core's [`crate::store::Recovered`].
//!
//! This is the one file of the storage module that knows the core; the journal itself does not.

use super::{
    DurableSubscription, Journal, JournalOptions, Owner, Record, ReplayReport, StoredMessage,
};
use crate::store::{self, StoreKey, Ticket};
use crate::{Broker, BrokerConfig};
use courier_api::{Error, Result};
use std::path::Path;
use std::sync::Arc;

/// The core's store, kept by a journal.
pub struct JournalStore {
    journal: Journal,
}

impl std::fmt::Debug for JournalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalStore")
            .field("dir", &self.journal.dir())
            .finish()
    }
}

impl JournalStore {
    /// Opens the journal in `dir` and replays it into the state the core rebuilds from.
    pub fn open(
        dir: &Path,
        options: JournalOptions,
    ) -> Result<(Arc<JournalStore>, store::Recovered, ReplayReport)> {
        let options = JournalOptions {
            // The core keeps every message in memory for now: load them all.
            memory_limit: None,
            ..options
        };
        let (journal, recovered) = Journal::open(dir, options).map_err(Error::from)?;
        let report = recovered.report.clone();
        let state = store::Recovered {
            queues: recovered.queues,
            subscriptions: recovered
                .subscriptions
                .into_iter()
                .map(|s| store::DurableSubscription {
                    id: s.id,
                    topic: s.topic,
                    client_id: s.client_id,
                    name: s.name.to_string(),
                    selector: s.selector.map(|x| x.to_string()),
                    no_local: s.no_local,
                    shared: s.shared,
                })
                .collect(),
            messages: recovered
                .messages
                .into_iter()
                .map(|m| store::RecoveredMessage {
                    store: key(m.owner),
                    id: m.id,
                    delivery_count: m.delivery_count,
                    bytes: m.body.unwrap_or_default(),
                })
                .collect(),
            max_message_id: recovered.max_message_id,
            max_subscription_id: recovered.max_subscription_id,
        };
        Ok((Arc::new(JournalStore { journal }), state, report))
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }
}

/// Opens a broker whose durable events go to the journal in `dir`, rebuilt from it.
pub fn open_broker(
    dir: &Path,
    config: BrokerConfig,
    options: JournalOptions,
) -> Result<(Broker, Arc<JournalStore>, ReplayReport)> {
    let (store, recovered, report) = JournalStore::open(dir, options)?;
    let broker = Broker::with_store(config, store.clone(), recovered)?;
    Ok((broker, store, report))
}

impl store::Store for JournalStore {
    fn is_durable(&self) -> bool {
        true
    }

    fn stats(&self) -> Option<crate::StoreStats> {
        let s = self.journal.stats();
        Some(crate::StoreStats {
            fsyncs: s.syncs,
            fsync_nanos: s.sync_nanos,
            fsync_max_nanos: s.sync_max_nanos,
            batches: s.batches,
            records: s.appends,
            bytes: s.bytes,
        })
    }

    fn record(&self, record: store::Record) -> Result<Ticket> {
        let (ticket, confirm) = Ticket::pending();
        self.journal
            .submit(
                translate(record),
                Box::new(move |outcome| confirm.resolve(outcome.map_err(Error::from))),
            )
            .map_err(Error::from)?;
        Ok(ticket)
    }
}

fn owner(key: StoreKey) -> Owner {
    match key {
        StoreKey::Queue(name) => Owner::Queue(name),
        StoreKey::Subscription(id) => Owner::Subscription(id),
    }
}

fn key(owner: Owner) -> StoreKey {
    match owner {
        Owner::Queue(name) => StoreKey::Queue(name),
        Owner::Subscription(id) => StoreKey::Subscription(id),
    }
}

fn message(m: store::StoredMessage) -> StoredMessage {
    StoredMessage {
        id: m.id,
        owners: m.stores.into_iter().map(owner).collect(),
        body: m.bytes,
    }
}

fn translate(record: store::Record) -> Record {
    match record {
        store::Record::Message(m) => Record::Send(message(m)),
        store::Record::Removed { store, id, .. } => Record::Remove {
            owner: owner(store),
            id,
        },
        store::Record::DeadLettered {
            from,
            id,
            to,
            new_id,
        } => Record::DeadLettered {
            from: owner(from),
            id,
            to: owner(to),
            new_id,
        },
        store::Record::DeliveryCount { store, id, count } => Record::DeliveryCount {
            owner: owner(store),
            id,
            count,
        },
        store::Record::Commit { sends, acks } => Record::Commit {
            sends: sends.into_iter().map(message).collect(),
            acks: acks.into_iter().map(|(k, id)| (owner(k), id)).collect(),
        },
        store::Record::QueueCreated(name) => Record::QueueCreated(name),
        store::Record::QueueDeleted(name) => Record::QueueDeleted(name),
        store::Record::SubscriptionCreated(d) => Record::SubscriptionCreated(DurableSubscription {
            id: d.id,
            topic: d.topic,
            client_id: d.client_id,
            name: d.name.into(),
            selector: d.selector.map(Into::into),
            no_local: d.no_local,
            shared: d.shared,
        }),
        store::Record::SubscriptionDeleted(id) => Record::SubscriptionDeleted(id),
    }
}
