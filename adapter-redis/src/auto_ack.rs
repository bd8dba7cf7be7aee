//! Deferred automatic acknowledgement: in the automatic modes a received message is
//! acknowledged by the session's next take on the same destination, inside that take's
//! script, so a consumer that keeps receiving pays one script call per message instead of
//! two.
//!
//! The message stays held by this connection (in flight, invisible to other consumers and
//! browsers) until then. It is acknowledged on its own when the session receives from another
//! destination, acknowledges, recovers or closes, when its consumer closes, and after
//! [`IDLE`] without a next receive. Only a failure inside that window (the connection lost
//! before the acknowledgement reached Redis) can deliver it again, flagged redelivered: the
//! at-least-once a lost connection gives every backend.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use courier_api::{InDoubtOperation, Result};
use parking_lot::Mutex;

use crate::session::{Held, SessionShared};

/// How long a deferred acknowledgement waits for the next receive before it goes alone.
pub(crate) const IDLE: Duration = Duration::from_millis(5);

/// The one message a session received in an automatic mode and has not acknowledged yet.
#[derive(Default)]
pub(crate) struct PendingAck {
    slot: Mutex<Option<(u64, Held)>>,
    seq: AtomicU64,
}

impl PendingAck {
    /// Removes the pending message, if any.
    pub fn take(&self) -> Option<Held> {
        self.slot.lock().take().map(|(_, held)| held)
    }
}

impl SessionShared {
    /// Defers the acknowledgement of a message just handed to the application: the previous
    /// pending one (a different destination's, since a take on the same one carried it) is
    /// acknowledged now.
    pub async fn defer_ack(self: &Arc<Self>, held: Held) -> Result<()> {
        let seq = self.pending.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let previous = self.pending.slot.lock().replace((seq, held));
        if let Some((_, previous)) = previous {
            self.ack_now(previous).await?;
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
                    match &*slot {
                        Some((s, _)) if *s == seq => slot.take().map(|(_, h)| h),
                        _ => None,
                    }
                };
                if let Some(held) = idle {
                    if session.conn.check().is_ok() {
                        let _ = session.ack_now(held).await;
                    }
                }
            });
        }
        Ok(())
    }

    /// The pending acknowledgement a take on `root` carries into its script; one for another
    /// destination is done now (a script touches one destination's keys).
    pub async fn pending_for(&self, root: &str) -> Result<Option<Held>> {
        let pending = {
            let mut slot = self.pending.slot.lock();
            match &*slot {
                Some((_, held)) if held.root == root => return Ok(slot.take().map(|(_, h)| h)),
                Some(_) => slot.take().map(|(_, h)| h),
                None => None,
            }
        };
        if let Some(held) = pending {
            self.ack_now(held).await?;
        }
        Ok(None)
    }

    /// Acknowledges the pending message now, if any.
    pub async fn flush_ack(&self) -> Result<()> {
        match self.pending.take() {
            Some(held) => self.ack_now(held).await,
            None => Ok(()),
        }
    }

    async fn ack_now(&self, held: Held) -> Result<()> {
        self.run_ops(&[], &[held], InDoubtOperation::Acknowledge, false)
            .await
            .map(|_| ())
    }
}
