//! Embedded queue browsers.

use async_trait::async_trait;
use courier_api::selector::Selector;
use courier_api::{Browser, Destination, Error, Message, Result};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::session::SessionShared;
use crate::queue::Queue;

/// Browses a queue: on the first `next` it takes a snapshot of the deliverable messages that
/// match the selector, then walks it. Nothing is consumed.
pub(crate) struct EmbeddedBrowser {
    session: Arc<SessionShared>,
    destination: Destination,
    queue: Arc<Queue>,
    selector: Option<Selector>,
    pending: Mutex<Option<VecDeque<Message>>>,
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
            selector,
            pending: Mutex::new(None),
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
        self.selector.as_ref().map(Selector::text)
    }

    async fn next(&self) -> Result<Option<Message>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::illegal_state("the browser is closed"));
        }
        self.session.check_open()?;
        let mut pending = self.pending.lock();
        let pending =
            pending.get_or_insert_with(|| self.queue.snapshot(self.selector.as_ref()).into());
        Ok(pending.pop_front().map(|mut m| {
            m.mark_received();
            m
        }))
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}
