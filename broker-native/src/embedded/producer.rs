//! Embedded producers.

use async_trait::async_trait;
use courier_api::producer::resolve_destination;
use courier_api::{Destination, Error, Message, Producer, Result, SendOptions};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::session::SessionShared;
use crate::queue::Origin;

/// A producer on an in-process broker.
pub(crate) struct EmbeddedProducer {
    session: Arc<SessionShared>,
    destination: Option<Destination>,
    options: Mutex<SendOptions>,
    closed: AtomicBool,
    id_prefix: String,
    sent: AtomicU64,
    origin: Arc<Origin>,
}

impl EmbeddedProducer {
    pub fn new(session: Arc<SessionShared>, destination: Option<Destination>) -> Self {
        let conn = &session.connection;
        let id_prefix = format!("ID:{}-{}-", conn.broker.instance, conn.broker.next_id());
        let origin = conn.origin();
        EmbeddedProducer {
            session,
            destination,
            options: Mutex::new(SendOptions::default()),
            closed: AtomicBool::new(false),
            id_prefix,
            sent: AtomicU64::new(0),
            origin,
        }
    }
}

#[async_trait]
impl Producer for EmbeddedProducer {
    fn destination(&self) -> Option<&Destination> {
        self.destination.as_ref()
    }

    fn options(&self) -> SendOptions {
        self.options.lock().clone()
    }

    fn set_options(&self, options: SendOptions) -> Result<()> {
        options.validate()?;
        *self.options.lock() = options;
        Ok(())
    }

    async fn send_with(
        &self,
        destination: Option<&Destination>,
        message: &mut Message,
        options: &SendOptions,
    ) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::illegal_state("the producer is closed"));
        }
        self.session.check_open()?;
        let destination = resolve_destination(self.destination.as_ref(), destination)?;
        destination.validate()?;
        let limit = self.session.connection.broker.config.max_message_size;
        let size = message.size_hint();
        if size > limit {
            return Err(Error::ResourceLimit(format!(
                "message of about {size} bytes exceeds the broker's limit of {limit} bytes"
            )));
        }
        let id = (!options.disable_message_id).then(|| {
            let n = self.sent.fetch_add(1, Ordering::Relaxed);
            Arc::from(format!("{}{n}", self.id_prefix))
        });
        options.stamp(message, destination, id)?;
        self.session
            .send(destination, message.clone(), &self.origin)
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}
