//! Embedded producers.

use async_trait::async_trait;
use courier_api::producer::resolve_destination;
use courier_api::{Destination, Error, Message, Producer, Result, SendOptions};
use parking_lot::Mutex;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::session::SessionShared;
use crate::broker::Route;
use crate::queue::Origin;

/// A producer on an in-process broker.
pub(crate) struct EmbeddedProducer {
    session: Arc<SessionShared>,
    /// The default destination and its resolved route.
    default: Option<(Destination, Route)>,
    options: Mutex<SendOptions>,
    closed: AtomicBool,
    id_prefix: String,
    sent: AtomicU64,
    origin: Arc<Origin>,
}

impl EmbeddedProducer {
    pub fn new(session: Arc<SessionShared>, destination: Option<Destination>) -> Result<Self> {
        let conn = &session.connection;
        let default = match destination {
            Some(d) => {
                let route = conn.broker.route(&d)?;
                Some((d, route))
            }
            None => None,
        };
        let id_prefix = format!("ID:{}-{}-", conn.broker.instance, conn.broker.next_id());
        let origin = conn.origin();
        Ok(EmbeddedProducer {
            session,
            default,
            options: Mutex::new(SendOptions::default()),
            closed: AtomicBool::new(false),
            id_prefix,
            sent: AtomicU64::new(0),
            origin,
        })
    }

    /// The next message id: the producer's prefix and a counter, in one allocation.
    fn next_id(&self) -> Arc<str> {
        let n = self.sent.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(self.id_prefix.len() + 20);
        id.push_str(&self.id_prefix);
        // Writing to a String cannot fail.
        let _ = write!(id, "{n}");
        Arc::from(id)
    }

    async fn send_inner(
        &self,
        destination: Option<&Destination>,
        message: &mut Message,
        options: &SendOptions,
    ) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::illegal_state("the producer is closed"));
        }
        self.session.check_open()?;
        let broker = &self.session.connection.broker;
        let named;
        let (destination, route) = match (&self.default, destination) {
            (Some((d, route)), None) => (d, route),
            (default, given) => {
                let d = resolve_destination(default.as_ref().map(|(d, _)| d), given)?;
                d.validate()?;
                named = broker.route(d)?;
                (d, &named)
            }
        };
        let limit = broker.config.max_message_size;
        let size = message.size_hint();
        if size > limit {
            return Err(Error::ResourceLimit(format!(
                "message of about {size} bytes exceeds the broker's limit of {limit} bytes"
            )));
        }
        let id = (!options.disable_message_id).then(|| self.next_id());
        let now = options.stamp(message, destination, id)?;
        self.session
            .send(route, destination, message.clone(), &self.origin, now)
    }
}

#[async_trait]
impl Producer for EmbeddedProducer {
    fn destination(&self) -> Option<&Destination> {
        self.default.as_ref().map(|(d, _)| d)
    }

    fn options(&self) -> SendOptions {
        *self.options.lock()
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
        self.send_inner(destination, message, options).await
    }

    async fn send(&self, message: &mut Message) -> Result<()> {
        let options = self.options();
        self.send_inner(None, message, &options).await
    }

    async fn send_to(&self, destination: &Destination, message: &mut Message) -> Result<()> {
        let options = self.options();
        self.send_inner(Some(destination), message, &options).await
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}
