//! Deferred automatic acknowledgement: in the automatic modes a received message is
//! acknowledged by the session's next take on the same destination, inside that take's
//! script, so a consumer that keeps receiving pays one script call per take instead of two
//! per message (and a consumer with a prefetch, which takes many messages per call, one
//! call per batch for all their acknowledgements).
//!
//! The messages stay held by this connection (in flight, invisible to other consumers and
//! browsers) until then. They are acknowledged on their own when the session receives from
//! another destination, acknowledges, recovers or closes, when a consumer closes, when
//! [`MAX_PENDING`] wait, and after [`IDLE`] without a next take. Only a failure inside that
//! window (the connection lost before the acknowledgement reached Redis) can deliver them
//! again, flagged redelivered: the at-least-once a lost connection gives every backend.

use std::sync::{Arc, Weak};
use std::time::Duration;

use courier_api::{InDoubtOperation, Result};
use parking_lot::Mutex;

use crate::session::{Held, SessionShared};

/// How long deferred acknowledgements wait for the next take before they go alone.
pub(crate) const IDLE: Duration = Duration::from_millis(5);

/// Most acknowledgements a session defers; one more sends them all.
pub(crate) const MAX_PENDING: usize = 1024;

/// The messages a session received in an automatic mode and has not acknowledged yet.
#[derive(Default)]
pub(crate) struct PendingAck {
    /// The messages, and how many times the list was emptied (an idle timer acknowledges
    /// only the list it was started for).
    slot: Mutex<(u64, Vec<Held>)>,
}

impl PendingAck {
    /// Removes every pending message.
    pub fn take(&self) -> Vec<Held> {
        let mut slot = self.slot.lock();
        if slot.1.is_empty() {
            return Vec::new();
        }
        slot.0 += 1;
        std::mem::take(&mut slot.1)
    }
}

impl SessionShared {
    /// Defers the acknowledgement of a message just handed to the application. The first
    /// message of an empty list starts the idle timer; a full list is acknowledged now.
    pub async fn defer_ack(self: &Arc<Self>, held: Held) -> Result<()> {
        let (epoch, first, full) = {
            let mut slot = self.pending.slot.lock();
            slot.1.push(held);
            (slot.0, slot.1.len() == 1, slot.1.len() >= MAX_PENDING)
        };
        if full {
            return self.flush_ack().await;
        }
        if !first {
            return Ok(());
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let weak: Weak<SessionShared> = Arc::downgrade(self);
            runtime.spawn(async move {
                tokio::time::sleep(IDLE).await;
                let Some(session) = weak.upgrade() else {
                    return;
                };
                let idle = {
                    let mut slot = session.pending.slot.lock();
                    if slot.0 == epoch && !slot.1.is_empty() {
                        slot.0 += 1;
                        std::mem::take(&mut slot.1)
                    } else {
                        Vec::new()
                    }
                };
                if !idle.is_empty() && session.conn.check().is_ok() {
                    let _ = session.ack_now(idle).await;
                }
            });
        }
        Ok(())
    }

    /// The pending acknowledgements a take on `root` carries into its script; those of
    /// other destinations are done now (a script touches one destination's keys).
    pub async fn pending_for(&self, root: &str) -> Result<Vec<Held>> {
        let pending = self.pending.take();
        if pending.iter().all(|h| h.root == root) {
            return Ok(pending);
        }
        let (here, elsewhere): (Vec<Held>, Vec<Held>) =
            pending.into_iter().partition(|h| h.root == root);
        self.ack_grouped(elsewhere).await?;
        Ok(here)
    }

    /// Acknowledges the pending messages now, if any.
    pub async fn flush_ack(&self) -> Result<()> {
        let pending = self.pending.take();
        self.ack_grouped(pending).await
    }

    /// Acknowledges messages, one script call per destination.
    async fn ack_grouped(&self, mut held: Vec<Held>) -> Result<()> {
        while let Some(first) = held.first() {
            let root = first.root.clone();
            let (here, rest): (Vec<Held>, Vec<Held>) =
                held.into_iter().partition(|h| h.root == root);
            self.ack_now(here).await?;
            held = rest;
        }
        Ok(())
    }

    async fn ack_now(&self, held: Vec<Held>) -> Result<()> {
        if held.is_empty() {
            return Ok(());
        }
        self.run_ops(&[], &held, InDoubtOperation::Acknowledge, false)
            .await
            .map(|_| ())
    }
}
