//! Embedded queue browsers.

use async_trait::async_trait;
use courier_api::selector::Selector;
use courier_api::spi;
use courier_api::{Browser, Destination, Error, Message, Result};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::session::SessionShared;
use crate::core::queue::{BrowseFilter, Queue};
use crate::core::ready::OrderKey;

/// Browses a queue with a cursor: each `next` finds the first deliverable message after the
/// last one returned (through the selector index when one serves the selector), so browsing
/// copies nothing up front and sees messages sent while it runs. Nothing is consumed.
pub(crate) struct EmbeddedBrowser {
    session: Arc<SessionShared>,
    destination: Destination,
    queue: Arc<Queue>,
    filter: BrowseFilter,
    cursor: Mutex<Option<OrderKey>>,
    closed: AtomicBool,
}

impl EmbeddedBrowser {
    pub fn new(
        session: Arc<SessionShared>,
        destination: Destination,
        queue: Arc<Queue>,
        selector: Option<Selector>,
    ) -> Self {
        EmbeddedBrowser {
            session,
            destination,
            queue,
            filter: BrowseFilter::new(selector),
            cursor: Mutex::new(None),
            closed: AtomicBool::new(false),
        }
    }
}

#[async_trait]
impl Browser for EmbeddedBrowser {
    fn queue(&self) -> &Destination {
        &self.destination
    }

    fn selector(&self) -> Option<&str> {
        self.filter.selector_text()
    }

    async fn next(&self) -> Result<Option<Message>> {
        // A lost connection reports the loss even on a browser closed before it.
        self.session.check_open()?;
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::illegal_state("the browser is closed"));
        }
        let mut cursor = self.cursor.lock();
        Ok(self
            .queue
            .browse_next(&self.filter, *cursor)
            .map(|(key, mut message)| {
                *cursor = Some(key);
                spi::mark_received(&mut message);
                message
            }))
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}
