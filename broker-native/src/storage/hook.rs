//! The journal behind the core's storage hook: [`JournalStore`] implements
//! [`crate::store::Store`], translating the core's records into the journal's (one to one,
//! with the same stable ids) and its replay into the core's [`crate::store::Recovered`].
//!
//! This is the one file of the storage module that knows the core; the journal itself does not.
//!
//! Paging: the core reads a paged message back with [`store::Store::read`], served from the
//! journal's index ([`Journal::read`]: the copy's segment and offset, kept valid through
//! compaction). A send the core marks [`store::StoredMessage::read_back`] may be read before
//! its batch is on disk and in the index: its bytes wait in [`JournalStore`]'s `unwritten`
//! map, from the record's submission until its outcome — on success the index serves it
//! (the writer updates the index before it reports outcomes); on failure the bytes stay
//! until every copy is removed, since the core still holds the stubs.

use super::{
    DurableSubscription, Journal, JournalOptions, Owner, Record, ReplayReport, StoredMessage,
};
use crate::store::{self, StoreKey, Ticket};
use crate::{Broker, BrokerConfig};
use bytes::Bytes;
use courier_api::{Error, Result};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The core's store, kept by a journal.
pub struct JournalStore {
    journal: Journal,
    /// Paged sends not readable from the journal yet, by message id.
    unwritten: Arc<Mutex<HashMap<u64, Unwritten>>>,
}

/// A paged send whose record is not in the journal's index (yet, or ever: it failed).
struct Unwritten {
    bytes: Bytes,
    /// Copies the core holds (the stores the send went to).
    copies: usize,
    /// Its record failed: the bytes stay until every copy is removed.
    failed: bool,
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
            // The core makes the stubs of the messages it pages from their replayed bytes
            // (it needs their headers and properties): load them all.
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
        let store = JournalStore {
            journal,
            unwritten: Arc::default(),
        };
        Ok((Arc::new(store), state, report))
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
            disk_bytes: s.disk_bytes,
            segments: s.segments,
        })
    }

    fn record(&self, record: store::Record) -> Result<Ticket> {
        let (ticket, confirm) = Ticket::pending();
        let paged = self.note_unwritten(&record);
        // A failed send stays stored in the core (as a stub when paged); a failed commit
        // stores nothing.
        let stays = matches!(record, store::Record::Message(_));
        let unwritten = self.unwritten.clone();
        let written = paged.clone();
        let done = move |outcome: super::Result<()>| {
            if !written.is_empty() {
                let mut map = unwritten.lock();
                for id in &written {
                    match map.get_mut(id) {
                        Some(u) if outcome.is_err() && stays => u.failed = true,
                        _ => drop(map.remove(id)),
                    }
                }
            }
            confirm.resolve(outcome.map_err(Error::from))
        };
        if let Err(e) = self.journal.submit(translate(record), Box::new(done)) {
            // Refused at once: the core stores nothing.
            let mut map = self.unwritten.lock();
            for id in &paged {
                map.remove(id);
            }
            return Err(Error::from(e));
        }
        Ok(ticket)
    }

    fn fire(&self, record: store::Record) -> Result<()> {
        if matches!(
            record,
            store::Record::Message(_) | store::Record::Commit { .. }
        ) {
            // Sends may be paged: their bytes are kept readable until the outcome.
            return self.record(record).map(drop);
        }
        self.note_unwritten(&record);
        self.journal
            .submit_unwatched(translate(record))
            .map_err(Error::from)
    }

    fn synced(&self) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(self.journal.synced())
    }

    fn read(&self, store: &StoreKey, id: u64) -> Result<Bytes> {
        // The map first: a send leaves it only once the journal's index has it.
        if let Some(u) = self.unwritten.lock().get(&id) {
            return Ok(u.bytes.clone());
        }
        self.journal
            .read(&owner(store.clone()), id)
            .map_err(Error::from)
    }
}

impl JournalStore {
    /// Keeps the bytes of the paged sends of `record` readable until it is written, and
    /// forgets those of a message removed; returns the ids kept.
    fn note_unwritten(&self, record: &store::Record) -> Vec<u64> {
        let sends: &[store::StoredMessage] = match record {
            store::Record::Message(m) => std::slice::from_ref(m),
            store::Record::Commit { sends, .. } => sends,
            store::Record::Removed { id, .. } | store::Record::DeadLettered { id, .. } => {
                // A failed send's copy is gone: its bytes go with the last one.
                let mut map = self.unwritten.lock();
                if let Some(u) = map.get_mut(id).filter(|u| u.failed) {
                    u.copies = u.copies.saturating_sub(1);
                    if u.copies == 0 {
                        map.remove(id);
                    }
                }
                return Vec::new();
            }
            _ => return Vec::new(),
        };
        let paged: Vec<u64> = sends.iter().filter(|m| m.read_back).map(|m| m.id).collect();
        if !paged.is_empty() {
            let mut map = self.unwritten.lock();
            for m in sends.iter().filter(|m| m.read_back) {
                let entry = Unwritten {
                    bytes: m.bytes.clone(),
                    copies: m.stores.len(),
                    failed: false,
                };
                map.insert(m.id, entry);
            }
        }
        paged
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
