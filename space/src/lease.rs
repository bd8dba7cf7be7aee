//! Leases: how long a written entry stays in its space.

use courier_api::{ConsumerOptions, Error, Result, SessionMode};
use std::fmt;
use std::time::{Duration, SystemTime};

use crate::duration::expiration;
use crate::entry::{self, ENTRY_ID};
use crate::returned::Unsettled;
use crate::space::{lease_ttl, Space};

/// The lease of one written entry: when it expires, and the means to end or extend it
/// (JavaSpaces' `Lease`).
///
/// A lease is the entry's time to live in the backend, so an expired entry is gone for every
/// process at once, with nobody to sweep it. [`Lease::cancel`] takes exactly this entry out
/// (entries carry a unique id property); [`Lease::renew`] gives it a new time to live.
///
/// ```no_run
/// # async fn demo(space: courier_space::Space) -> courier_api::Result<()> {
/// use std::time::Duration;
/// let mut lease = space.write(&("heartbeat", 7_i64), Duration::from_secs(10)).await?;
/// lease.renew(Duration::from_secs(10)).await?; // still alive
/// lease.cancel().await?;                       // gone now
/// # Ok(()) }
/// ```
pub struct Lease {
    space: Space,
    type_name: String,
    entry_id: String,
    expiration: Option<SystemTime>,
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("space", &self.space.name())
            .field("type_name", &self.type_name)
            .field("entry_id", &self.entry_id)
            .field("expiration", &self.expiration)
            .finish()
    }
}

impl Lease {
    pub(crate) fn new(
        space: Space,
        type_name: String,
        entry_id: String,
        expiration: Option<SystemTime>,
    ) -> Self {
        Lease {
            space,
            type_name,
            entry_id,
            expiration,
        }
    }

    /// The unique id of the leased entry.
    pub fn entry_id(&self) -> &str {
        &self.entry_id
    }

    /// The type name of the leased entry.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// When the entry expires (as this process computed it at write or renewal); `None`
    /// for an entry that never does.
    pub fn expiration(&self) -> Option<SystemTime> {
        self.expiration
    }

    /// Removes the entry from the space now. `Ok(true)` when it was removed, `Ok(false)`
    /// when it had already left (taken, expired, or held by an open transaction).
    pub async fn cancel(self) -> Result<bool> {
        let inner = &self.space.inner;
        let mut guard = inner.lanes.checkout().await?;
        let session = &guard.lane().session;
        let consumer = session
            .create_consumer(
                &inner.queue(&self.type_name),
                ConsumerOptions::selector(self.selector()),
            )
            .await?;
        // Until acknowledged, an error or a cancelled call gives the entry back with the
        // lane's session, and `received` announces it to waiting reads.
        let mut received = Unsettled::new(inner.clone());
        let taken = consumer.receive_no_wait().await?;
        if let Some(entry) = &taken {
            received.push(entry.clone());
        }
        consumer.close().await?;
        if taken.is_some() {
            session.acknowledge().await?;
        }
        received.settle();
        guard.release();
        Ok(taken.is_some())
    }

    /// Gives the entry a new lease of `duration` from now (JavaSpaces `renew`), atomically:
    /// in one local transaction the entry is taken and written back, unchanged but for its
    /// time to live and its place in the space's order, which becomes last.
    ///
    /// # Errors
    ///
    /// [`Error::IllegalState`] when the entry is no longer in the space (taken, expired,
    /// cancelled, or held by an open transaction); [`Error::InvalidArgument`] for a zero
    /// duration.
    pub async fn renew(&mut self, duration: Duration) -> Result<()> {
        let ttl = lease_ttl(duration)?;
        let inner = &self.space.inner;
        let session = inner
            .lanes
            .connection()
            .create_session(SessionMode::Transacted)
            .await?;
        // The entry is out of the space from the take to the commit: announce it when it is
        // back, renewed or (on failure) as it was, so waiting reads see it.
        let mut held = Unsettled::new(inner.clone());
        let outcome = async {
            let queue = inner.queue(&self.type_name);
            let consumer = session
                .create_consumer(&queue, ConsumerOptions::selector(self.selector()))
                .await?;
            let Some(current) = consumer.receive_no_wait().await? else {
                return Err(Error::illegal_state(format!(
                    "entry {} of type {} is no longer in space {:?} (taken, expired, cancelled \
                     or held by a transaction); its lease cannot be renewed",
                    self.entry_id,
                    self.type_name,
                    self.space.name()
                )));
            };
            held.push(current.clone());
            let mut renewed = entry::resend_copy(&current)?;
            let mut options = inner.entry_options(ttl);
            options.delivery_mode = current.delivery_mode();
            let producer = session.create_producer(Some(&queue)).await?;
            producer.send_with(None, &mut renewed, &options).await?;
            session.commit().await?;
            Ok(renewed)
        }
        .await;
        if outcome.is_err() {
            let _ = session.rollback().await;
        }
        let closed = session.close().await;
        match &outcome {
            Ok(renewed) => {
                held.settle();
                let _ = inner.announce_returned(vec![renewed.clone()]).await;
            }
            Err(_) => {
                let _ = held.returned().await;
            }
        }
        closed?;
        outcome?;
        self.expiration = expiration(ttl);
        Ok(())
    }

    fn selector(&self) -> String {
        format!("{ENTRY_ID} = '{}'", self.entry_id.replace('\'', "''"))
    }
}
