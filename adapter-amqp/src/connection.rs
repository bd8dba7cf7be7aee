//! Connections: one AMQP connection each, watched for loss.
//!
//! The client id is held by an exclusive queue named after it (`courier.client-id.<id>`):
//! RabbitMQ lets one connection at a time own it, so a second connection claiming the same
//! id is refused (`InvalidClientId`), and the id is free again as soon as the owner closes or
//! is lost.

use async_trait::async_trait;
use courier_api::{
    Capabilities, Connection, ConnectionMetadata, Error, ExceptionListener, Result, Session,
    SessionMode,
};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::codec::short;
use crate::link::{Link, State};
use crate::session::AmqpSession;

/// A connection to RabbitMQ.
pub struct AmqpConnection {
    link: Arc<Link>,
    capabilities: Capabilities,
}

impl AmqpConnection {
    pub(crate) fn new(link: Arc<Link>, capabilities: Capabilities) -> Self {
        AmqpConnection { link, capabilities }
    }

    /// Claims `client_id` for this connection.
    pub(crate) async fn claim_client_id(&self, client_id: &str) -> Result<()> {
        if client_id.is_empty() || client_id.chars().any(char::is_control) {
            return Err(Error::invalid_argument(format!(
                "client id {client_id:?} is empty or has control characters"
            )));
        }
        let queue = short(
            "courier.client-id.<id>",
            &format!("courier.client-id.{client_id}"),
        )?;
        let options = QueueDeclareOptions {
            exclusive: true,
            ..QueueDeclareOptions::default()
        };
        let claimed = self
            .link
            .on_scratch("queue.declare", |c| async move {
                c.queue_declare(queue, options, FieldTable::default()).await
            })
            .await;
        match claimed {
            Ok(_) => {
                *self.link.client_id.lock() = Some(client_id.to_owned());
                Ok(())
            }
            Err(Error::IllegalState(_)) if self.link.check().is_ok() => {
                Err(Error::InvalidClientId(client_id.to_owned()))
            }
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl Connection for AmqpConnection {
    async fn set_client_id(&self, client_id: &str) -> Result<()> {
        self.link.check()?;
        if self.link.client_id.lock().is_some() {
            return Err(Error::illegal_state("the client id is already set"));
        }
        if self.link.used.load(Ordering::Acquire) {
            return Err(Error::illegal_state(
                "the client id can only be set before the connection is used",
            ));
        }
        self.claim_client_id(client_id).await
    }

    fn client_id(&self) -> Option<String> {
        self.link.client_id.lock().clone()
    }

    async fn start(&self) -> Result<()> {
        self.link.check()?;
        self.link.used.store(true, Ordering::Release);
        self.link.started.send_replace(true);
        Ok(())
    }

    async fn stop(&self) -> Result<()> {
        self.link.check()?;
        self.link.used.store(true, Ordering::Release);
        self.link.started.send_replace(false);
        Ok(())
    }

    async fn create_session(&self, mode: SessionMode) -> Result<Box<dyn Session>> {
        self.link.check()?;
        self.link.used.store(true, Ordering::Release);
        let session = AmqpSession::open(self.link.clone(), mode, self.capabilities.clone()).await?;
        Ok(Box::new(session))
    }

    fn set_exception_listener(&self, listener: Option<ExceptionListener>) {
        *self.link.listener.lock() = listener;
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities.clone()
    }

    fn metadata(&self) -> ConnectionMetadata {
        ConnectionMetadata::new(
            "RabbitMQ (AMQP 0-9-1, courier-amqp; delivery delay: dead-letter delay queues)",
            env!("CARGO_PKG_VERSION"),
            vec!["JMSXDeliveryCount"],
        )
    }

    async fn closed(&self) -> Error {
        self.link.finished().await
    }

    async fn close(&self) -> Result<()> {
        let was_open = self.link.state.send_if_modified(|state| {
            let open = matches!(state, State::Open | State::Reconnecting(_));
            if open {
                *state = State::Closed;
            }
            open
        });
        if !was_open {
            return Ok(());
        }
        let connection = self.link.connection();
        let closing = connection.close(200, "OK".into());
        let _ = tokio::time::timeout(self.link.request_timeout, closing).await;
        Ok(())
    }
}
