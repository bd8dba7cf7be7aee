//! Entries that come back to the space — a take undone by an abort, a timeout, a dropped
//! transaction, a failed decode or a cancelled operation — and the write events that let
//! waiting reads see them.
//!
//! A waiting take is a receive, so the backend wakes it for an entry that comes back as for
//! one that is written. A waiting read listens to the space's write events instead, and the
//! backend publishes none for an entry that comes back; so the space publishes one itself,
//! marked with [`RETURNED`] so that [`crate::Space::notify`], which reports writes, skips it.

use courier_api::{DeliveryMode, Message, Result, SendOptions};
use std::sync::Arc;

use crate::duration::time_left;
use crate::entry;
use crate::space::SpaceInner;

/// The property that marks the write event of an entry that came back, not a new write.
pub(crate) const RETURNED: &str = "$returned";

/// The selector of `notify` for `template_selector`: write events of new entries only.
pub(crate) fn writes_only(template_selector: Option<&str>) -> String {
    match template_selector {
        Some(selector) => format!("{RETURNED} IS NULL AND ({selector})"),
        None => format!("{RETURNED} IS NULL"),
    }
}

impl SpaceInner {
    /// Publishes a write event for each entry in `entries`, which came back to the space, so
    /// waiting reads are woken for them. Entries whose lease ran out meanwhile are skipped.
    pub async fn announce_returned(&self, entries: Vec<Message>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut guard = self.lanes.checkout().await?;
        let lane = guard.lane();
        for returned in &entries {
            let (Some(type_name), Some(ttl)) =
                (returned.message_type(), time_left(returned.expiration()))
            else {
                continue;
            };
            let mut event = entry::resend_copy(returned)?;
            event.set_property(RETURNED, true)?;
            let options = SendOptions {
                delivery_mode: DeliveryMode::NonPersistent,
                time_to_live: ttl,
                ..SendOptions::default()
            };
            lane.producer
                .send_with(Some(&self.topic(type_name)), &mut event, &options)
                .await?;
        }
        guard.release();
        Ok(())
    }
}

/// Entries received from the space and not yet settled (acknowledged, committed). If the
/// operation holding them ends without settling them — an error, a cancelled future — the
/// backend gives them back with the session, and dropping this announces them.
pub(crate) struct Unsettled {
    space: Arc<SpaceInner>,
    entries: Vec<Message>,
}

impl Unsettled {
    /// None yet, for an operation on `space`.
    pub fn new(space: Arc<SpaceInner>) -> Self {
        Unsettled {
            space,
            entries: Vec::new(),
        }
    }

    /// Records a received entry.
    pub fn push(&mut self, entry: Message) {
        self.entries.push(entry);
    }

    /// The entries received so far.
    pub fn entries(&self) -> &[Message] {
        &self.entries
    }

    /// The entries are gone for good (acknowledged or committed): nothing to announce.
    pub fn settle(mut self) {
        self.entries.clear();
    }

    /// The entries went back to the space (recovered, rolled back): announces them now.
    pub async fn returned(mut self) -> Result<()> {
        let entries = std::mem::take(&mut self.entries);
        self.space.announce_returned(entries).await
    }
}

impl Drop for Unsettled {
    fn drop(&mut self) {
        if self.entries.is_empty() {
            return;
        }
        let entries = std::mem::take(&mut self.entries);
        let space = self.space.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = space.announce_returned(entries).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Space, Template, FOREVER};
    use courier_api::{Connection, ConnectionFactory};
    use courier_broker::EmbeddedFactory;
    use futures::StreamExt;
    use std::time::Duration;

    /// An operation dropped while holding entries (an error, a cancelled future) announces
    /// them when dropped: a read waiting for ever is woken, `notify` is not.
    #[tokio::test]
    async fn unsettled_entries_dropped_wake_waiting_reads() -> Result<()> {
        let connection: Arc<dyn Connection> =
            EmbeddedFactory::default().create_connection().await?.into();
        let space = Space::open(&connection, "unsettled").await?;
        let any = Template::<(String, i64)>::any()?;
        let mut writes = space.notify(&any).await?;
        let reader = {
            let (space, any) = (space.clone(), any.clone());
            tokio::spawn(async move { space.read(&any, FOREVER).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!reader.is_finished(), "nothing to read yet");
        let (_, message) = entry::to_message(&("back", 7_i64), "id-1")?;
        let mut held = Unsettled::new(space.inner.clone());
        held.push(message);
        drop(held);
        let read = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("the waiting read is woken")
            .expect("reader panicked")?;
        assert_eq!(read, Some(("back".to_owned(), 7)));
        let quiet = tokio::time::timeout(Duration::from_millis(200), writes.next()).await;
        assert!(quiet.is_err(), "an entry coming back is not a write");
        connection.close().await
    }

    #[test]
    fn notify_selector_skips_returned_entries() {
        assert_eq!(writes_only(None), "$returned IS NULL");
        assert_eq!(
            writes_only(Some("a = 1 OR b = 2")),
            "$returned IS NULL AND (a = 1 OR b = 2)"
        );
    }
}
