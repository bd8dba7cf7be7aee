//! [`RedisProducer`]: stamps a message and sends it with one script call (or buffers it in a
//! transaction).

use std::sync::Arc;

use async_trait::async_trait;
use courier_api::spi::{resolve_destination, stamp_client, stamp_times};
use courier_api::{
    Destination, Error, InDoubtOperation, Message, Producer, Result, SendOptions, SessionMode,
};
use parking_lot::Mutex;

use crate::keys;
use crate::session::{Outgoing, SessionShared};

/// A producer on a Redis session.
pub struct RedisProducer {
    session: Arc<SessionShared>,
    destination: Option<Destination>,
    options: Mutex<SendOptions>,
    closed: std::sync::atomic::AtomicBool,
}

impl RedisProducer {
    pub(crate) fn new(session: Arc<SessionShared>, destination: Option<Destination>) -> Self {
        RedisProducer {
            session,
            destination,
            options: Mutex::new(SendOptions::default()),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl RedisProducer {
    fn check_open(&self) -> Result<()> {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Error::illegal_state("the producer is closed"));
        }
        Ok(())
    }
}

#[async_trait]
impl Producer for RedisProducer {
    fn destination(&self) -> Option<&Destination> {
        self.destination.as_ref()
    }

    fn options(&self) -> SendOptions {
        *self.options.lock()
    }

    fn set_options(&self, options: SendOptions) -> Result<()> {
        self.check_open()?;
        self.session.check()?;
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
        self.session.check()?;
        self.check_open()?;
        let destination = resolve_destination(self.destination.as_ref(), destination)?.clone();
        let conn = &self.session.conn;
        if destination.is_temporary() && !conn.owns_temporary(&destination) {
            // A temporary destination of another connection: it lives while its connection does.
            let root = keys::root(&destination);
            let mut cmd = conn.cmd.clone();
            let owner: Option<String> = redis::cmd("GET")
                .arg(format!("{root}:owner"))
                .query_async(&mut cmd)
                .await
                .map_err(|e| conn.fail(e, None))?;
            let alive = match owner {
                Some(owner) => conn.owner_alive(&owner).await?,
                None => false,
            };
            if !alive {
                return Err(Error::invalid_destination(
                    destination.to_string(),
                    "the temporary destination was deleted (or its connection ended)",
                ));
            }
        }
        let id: Arc<str> = Arc::from(format!("ID:{}", uuid::Uuid::new_v4()).as_str());
        stamp_client(message, &destination, options, Some(id))?;
        let now = conn.now();
        stamp_times(
            message,
            options.time_to_live,
            options.delivery_delay,
            options.disable_timestamp,
            now,
        );
        let encoded = message.encode();
        if encoded.len() > crate::MAX_MESSAGE_BYTES {
            return Err(Error::ResourceLimit(format!(
                "the message is {} bytes encoded; at most {} are accepted",
                encoded.len(),
                crate::MAX_MESSAGE_BYTES
            )));
        }
        let fields = crate::fields::selector_fields(message);
        let h = message.header();
        let outgoing = Outgoing {
            fields,
            root: keys::root(&destination),
            topic: destination.is_topic(),
            encoded,
            priority: h.priority,
            expiration: h.expiration,
            due: if options.delivery_delay.is_zero() {
                0
            } else {
                h.delivery_time
            },
        };
        if self.session.mode == SessionMode::Transacted {
            self.session.sends.lock().push(outgoing);
            return Ok(());
        }
        self.session
            .commit_ops(&[outgoing], &[], InDoubtOperation::Send)
            .await?;
        Ok(())
    }

    async fn send_async_with(
        &self,
        destination: Option<&Destination>,
        message: Message,
        options: &SendOptions,
    ) -> Result<courier_api::SendReceipt> {
        self.check_open()?;
        self.session.check()?;
        let mut message = message;
        let outcome = self.send_with(destination, &mut message, options).await;
        Ok(courier_api::SendReceipt::ready(outcome.map(|()| message)))
    }

    async fn close(&self) -> Result<()> {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }
}
