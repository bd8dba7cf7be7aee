//! The window of an embedded producer's pipelined sends.
//!
//! A pipelined send is stored (and visible to consumers) before `send_async` returns; on a
//! durable broker its receipt then waits for the journal record's ticket. Waiting receipts go,
//! in send order, to one confirming task per producer, so they complete in send order (the
//! api's promise) while the journal's group commit confirms many of them with one `fdatasync`.
//! At most [`WINDOW`] receipts wait at a time: `send_async` waits for room past that, so a
//! producer faster than the disk is slowed, not buffered without bound.

use courier_api::{Error, Message, Result, SendCompletion, SendReceipt};
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::connection::ConnectionShared;
use crate::core::store::Ticket;

/// How many pipelined sends of one producer may wait for durability at once.
pub(crate) const WINDOW: usize = 1024;

/// One receipt waiting for its send's ticket (or for earlier receipts, to keep the order).
struct Waiting {
    ticket: Option<Ticket>,
    outcome: Result<Message>,
    completion: SendCompletion,
    connection: Option<Arc<ConnectionShared>>,
    /// Its place in the window, given back once the receipt is complete.
    _room: OwnedSemaphorePermit,
}

/// A producer's pipelined sends in flight.
pub(crate) struct Pipeline {
    room: Arc<Semaphore>,
    confirming: Mutex<Option<mpsc::UnboundedSender<Waiting>>>,
}

impl Pipeline {
    pub fn new() -> Self {
        Pipeline {
            room: Arc::new(Semaphore::new(WINDOW)),
            confirming: Mutex::new(None),
        }
    }

    /// A place in the window, waiting while [`WINDOW`] receipts wait for the disk.
    pub async fn room(&self) -> Result<OwnedSemaphorePermit> {
        self.room
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::illegal_state("the producer's send window is closed"))
    }

    /// The receipt of a send whose outcome is known now: complete at once, unless earlier
    /// receipts still wait (then it completes after them).
    pub fn settled(&self, room: OwnedSemaphorePermit, outcome: Result<Message>) -> SendReceipt {
        if self.room.available_permits() + 1 == WINDOW {
            return SendReceipt::ready(outcome);
        }
        self.enqueue(None, outcome, None, room)
    }

    /// The receipt of a stored send that is confirmed once `ticket` resolves; a ticket's
    /// error is reported as the connection's loss when it was lost.
    pub fn confirm_later(
        &self,
        room: OwnedSemaphorePermit,
        ticket: Ticket,
        message: Message,
        connection: Arc<ConnectionShared>,
    ) -> SendReceipt {
        self.enqueue(Some(ticket), Ok(message), Some(connection), room)
    }

    fn enqueue(
        &self,
        ticket: Option<Ticket>,
        outcome: Result<Message>,
        connection: Option<Arc<ConnectionShared>>,
        room: OwnedSemaphorePermit,
    ) -> SendReceipt {
        let (completion, receipt) = SendReceipt::pending();
        let waiting = Waiting {
            ticket,
            outcome,
            completion,
            connection,
            _room: room,
        };
        let mut confirming = self.confirming.lock();
        let sender = confirming.get_or_insert_with(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            tokio::spawn(confirm(receiver));
            sender
        });
        // The confirming task ends only once this sender is dropped, so it takes the send;
        // were it gone, the dropped completion would make the receipt in doubt, never hung.
        let _ = sender.send(waiting);
        receipt
    }

    /// Waits until every receipt of the window has its outcome.
    pub async fn drained(&self) {
        // Holding the whole window means no receipt waits; it is given back at once.
        let _ = self.room.acquire_many(WINDOW as u32).await;
    }
}

/// Completes the receipts in the order they were sent.
async fn confirm(mut waiting: mpsc::UnboundedReceiver<Waiting>) {
    while let Some(w) = waiting.recv().await {
        let outcome = match w.ticket {
            None => w.outcome,
            Some(ticket) => match ticket.await {
                Ok(()) => w.outcome,
                Err(e) => Err(match &w.connection {
                    Some(connection) => connection.lost_or(e),
                    None => e,
                }),
            },
        };
        w.completion.complete(outcome);
    }
}
