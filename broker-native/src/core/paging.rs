//! Paging: how a durable broker keeps a persistent backlog larger than its memory.
//!
//! Once the memory charged for stored messages passes the paging threshold
//! ([`crate::BrokerConfig::paging_threshold`], by default half of `max_memory`), a persistent
//! message sent to a durable queue or subscription is stored as a **stub**: an [`Envelope`]
//! whose message is a copy with the body cleared ([`stub`]) and whose `paged` flag is set. The
//! body stays where it already is — in the journal record the send wrote — and is read back
//! ([`read_back`]) when the copy is delivered or browsed, or dead-lettered.
//!
//! What the stub keeps, and why:
//! - the headers (id, priority, expiration, delivery time, destination, correlation id,
//!   type…): delivery order, expiry and scheduled delivery work on stubs unchanged;
//! - the properties: **selectors keep working on paged messages**, with no disk read, both
//!   through the queue's selector indexes (built from property values) and by evaluation.
//!   (Artemis and RabbitMQ cannot select among paged messages.) A message whose weight is its
//!   properties therefore saves little by paging; one whose weight is its body saves it all.
//!
//! Its memory charge is its real size: the stub's size hint plus the envelope overhead, so
//! the broker's memory account ([`crate::BrokerStats::stored_bytes`]) stays exact and a
//! backlog of stubs still meets `max_memory` (then each destination's when-full policy
//! applies, as for any message).
//!
//! Where the body is found: the store serves [`Store::read`](super::store::Store::read) by
//! store and message id. The journal's index knows each live copy's segment and offset and
//! keeps them valid through compaction, so the core keeps no location. A send's record may
//! not be on disk yet when its stub is delivered: the core flags such records
//! ([`StoredMessage::read_back`](super::store::StoredMessage::read_back)) and the store serves
//! them from memory until they are written.
//!
//! At start-up the same rule applies to replayed messages: past the threshold they are
//! restored as stubs (the replayed bytes are dropped once the stub is made).
//!
//! Read-back happens in the consumer's task after the message is taken, never under the
//! queue lock: one positioned read of one record, usually from the page cache. A failed read
//! (a disk error) puts the copy back and fails the receive with the store's error.

use courier_api::{Message, Result};
use std::sync::Arc;

use super::envelope::Envelope;
use super::limits::ENVELOPE_OVERHEAD;
use super::store::Recorder;

/// The stub of `message`: the same message with its body cleared.
pub(crate) fn stub(message: &Message) -> Message {
    let mut stub = message.clone();
    stub.clear_body();
    stub
}

/// The memory charge of a stored copy of `message`.
pub(crate) fn charge_of(message: &Message) -> usize {
    message.size_hint().saturating_add(ENVELOPE_OVERHEAD)
}

/// The whole message of `env`: its own for a copy in memory, read back from the store of
/// `recorder` for a paged one.
pub(crate) fn read_back(recorder: Option<&Recorder>, env: &Envelope) -> Result<Arc<Message>> {
    if !env.paged {
        return Ok(env.message.clone());
    }
    let Some(recorder) = recorder else {
        return Err(courier_api::Error::illegal_state(
            "a paged message is in a store without a durable store behind it",
        ));
    };
    let bytes = recorder.store().read(recorder.key(), env.seq)?;
    Ok(Arc::new(Message::decode(&bytes)?))
}

/// Makes `env` whole again (a paged copy leaving for a store that cannot page it, such as
/// the dead-letter queue under a new id); its charge is left as it is.
pub(crate) fn unpage(recorder: Option<&Recorder>, env: &mut Envelope) -> Result<()> {
    if env.paged {
        env.message = read_back(recorder, env)?;
        env.paged = false;
    }
    Ok(())
}
