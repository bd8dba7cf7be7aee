//! Entries no take can decode — another program's type under the same serde name, an older
//! shape of the type — and how the space keeps them from blocking it.
//!
//! The backend cannot tell a failed decode from any other unacknowledged delivery, and the
//! space's queues are exempt from dead-lettering (an aborted transaction's take must never
//! move an entry out of the space). So the space counts failed decodes itself, on the entry:
//! after a take fails to decode an entry, one local transaction takes that entry (by its id)
//! and sends a copy carrying [`DECODE_FAILURES`] one higher back to the space — same id,
//! priority, delivery mode and expiration, but last in its priority's order — or, at
//! [`crate::SpaceOptions::max_decode_failures`], to the dead-letter queue instead.

use courier_api::{
    ConsumerOptions, Destination, Message, Producer, Result, SendOptions, Session, SessionMode,
};

use crate::duration::time_left;
use crate::entry::{self, ENTRY_ID};
use crate::space::SpaceInner;

/// The property counting the takes that failed to decode an entry.
pub(crate) const DECODE_FAILURES: &str = "$decode_failures";

impl SpaceInner {
    /// Records one failed decode of each of `failed` (entries a take received, could not
    /// decode and gave back). Returns the entries as they now are in the space (re-sent
    /// with their count raised), to be announced to waiting reads; dead-lettered ones and
    /// ones gone meanwhile (taken, expired, cancelled) are not in it.
    ///
    /// Without a dead-letter queue nothing changes and `failed` is returned as it is. On an
    /// error the transaction rolls back: the entries stay as they were.
    pub async fn record_decode_failures(&self, failed: Vec<Message>) -> Result<Vec<Message>> {
        if self.options.dead_letter_queue.is_none() || failed.is_empty() {
            return Ok(failed);
        }
        let session = self
            .lanes
            .connection()
            .create_session(SessionMode::Transacted)
            .await?;
        let outcome: courier_api::Result<Vec<_>> = async {
            let producer = session.create_producer(None).await?;
            let mut kept = Vec::with_capacity(failed.len());
            for entry in &failed {
                if let Some(copy) = self.count_failure(&*session, &*producer, entry).await? {
                    kept.push(copy);
                }
            }
            session.commit().await?;
            Ok(kept)
        }
        .await;
        if outcome.is_err() {
            let _ = session.rollback().await;
        }
        let closed = session.close().await;
        let kept = outcome?;
        closed?;
        Ok(kept)
    }

    /// In the transaction of `session`: takes the entry `entry` stands for and sends its
    /// copy with one more failure back to its queue (returned) or, at the limit, to the
    /// dead-letter queue (`None`). `None` too when the entry is no longer in the space.
    async fn count_failure(
        &self,
        session: &dyn Session,
        producer: &dyn Producer,
        entry: &Message,
    ) -> Result<Option<Message>> {
        let (Some(type_name), Some(entry_id)) =
            (entry.message_type(), entry.property::<String>(ENTRY_ID)?)
        else {
            return Ok(None);
        };
        let queue = self.queue(type_name);
        let selector = format!("{ENTRY_ID} = '{}'", entry_id.replace('\'', "''"));
        let consumer = session
            .create_consumer(&queue, ConsumerOptions::selector(selector))
            .await?;
        let current = consumer.receive_no_wait().await;
        consumer.close().await?;
        let Some(current) = current? else {
            return Ok(None);
        };
        self.send_failure_copy(producer, &current).await
    }

    /// Sends, with `producer`, the copy of `current` (an undecodable entry received in the
    /// producer's transaction) that counts one more failed decode: back to its queue, or at
    /// the limit to the dead-letter queue when there is one. Returns the copy when it went
    /// back to the space; `None` when dead-lettered or expired.
    pub async fn send_failure_copy(
        &self,
        producer: &dyn Producer,
        current: &Message,
    ) -> Result<Option<Message>> {
        let Some(type_name) = current.message_type() else {
            return Ok(None);
        };
        let Some(ttl) = time_left(current.expiration()) else {
            return Ok(None); // expired meanwhile: taking it is all there is to do
        };
        let failures = current
            .property::<i64>(DECODE_FAILURES)?
            .unwrap_or(0)
            .saturating_add(1);
        let mut copy = entry::resend_copy(current)?;
        copy.set_property(DECODE_FAILURES, failures)?;
        let options = SendOptions {
            delivery_mode: current.delivery_mode(),
            priority: current.priority(),
            time_to_live: ttl,
            ..SendOptions::default()
        };
        let limit = i64::from(self.options.max_decode_failures.max(1));
        if let Some(dead_letters) = self
            .options
            .dead_letter_queue
            .as_deref()
            .filter(|_| failures >= limit)
        {
            let dead_letters = Destination::queue(dead_letters);
            producer
                .send_with(Some(&dead_letters), &mut copy, &options)
                .await?;
            return Ok(None);
        }
        producer
            .send_with(Some(&self.queue(type_name)), &mut copy, &options)
            .await?;
        Ok(Some(copy))
    }
}
