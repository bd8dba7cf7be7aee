//! `courier://` producers: sends are requests; pipelined sends keep up to
//! [`super::WINDOW`] in flight and complete their receipts as confirmations arrive, in order.

use async_trait::async_trait;
use courier_api::{
    spi, Destination, Error, InDoubtOperation, Message, Producer, Result, SendOptions, SendReceipt,
};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::Semaphore;

use super::connection::{done, unexpected};
use super::session::SessionInner;
use super::WINDOW;
use crate::protocol::ops::{Reply, Request};

pub(crate) struct TcpProducer {
    session: Arc<SessionInner>,
    handle: u64,
    destination: Option<Destination>,
    options: Mutex<SendOptions>,
    window: Arc<Semaphore>,
    closed: AtomicBool,
}

impl TcpProducer {
    pub fn new(session: Arc<SessionInner>, handle: u64, destination: Option<Destination>) -> Self {
        TcpProducer {
            session,
            handle,
            destination,
            options: Mutex::new(SendOptions::default()),
            window: Arc::new(Semaphore::new(WINDOW)),
            closed: AtomicBool::new(false),
        }
    }

    fn check(&self) -> Result<()> {
        self.session.link().check()?;
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::illegal_state("the producer is closed"));
        }
        self.session.check()
    }

    fn request(
        &self,
        destination: Option<&Destination>,
        message: &Message,
        options: &SendOptions,
    ) -> Result<Request> {
        options.validate()?;
        spi::resolve_destination(self.destination.as_ref(), destination)?;
        Ok(Request::Send {
            producer: self.handle,
            destination: destination.cloned(),
            message: message.clone(),
            options: options.into(),
        })
    }
}

impl Drop for TcpProducer {
    fn drop(&mut self) {
        if !self.closed.swap(true, Ordering::AcqRel) && self.session.link().check().is_ok() {
            self.session
                .link()
                .fire(&Request::CloseProducer(self.handle));
        }
    }
}

#[async_trait]
impl Producer for TcpProducer {
    fn destination(&self) -> Option<&Destination> {
        self.destination.as_ref()
    }

    fn options(&self) -> SendOptions {
        *self.options.lock()
    }

    fn set_options(&self, options: SendOptions) -> Result<()> {
        self.check()?;
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
        self.check()?;
        let request = self.request(destination, message, options)?;
        let reply = self
            .session
            .link()
            .call(&request, Some(InDoubtOperation::Send), None)
            .await?;
        match reply {
            Reply::Sent(header) => {
                *spi::header_mut(message) = header;
                Ok(())
            }
            other => Err(unexpected(&other)),
        }
    }

    async fn send_async_with(
        &self,
        destination: Option<&Destination>,
        message: Message,
        options: &SendOptions,
    ) -> Result<SendReceipt> {
        self.check()?;
        let request = match self.request(destination, &message, options) {
            Ok(r) => r,
            Err(e) => return Ok(SendReceipt::ready(Err(e))),
        };
        let permit = self
            .window
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::illegal_state("the producer is closed"))?;
        let (completion, receipt) = SendReceipt::pending();
        self.session
            .link()
            .send_pipelined(&request, message, completion, permit)?;
        Ok(receipt)
    }

    /// Waits until every earlier send of the session is confirmed: the server answers a
    /// session's requests in order.
    async fn flush(&self) -> Result<()> {
        self.check()?;
        done(
            self.session
                .call(Request::Sync(self.session.handle), None)
                .await?,
        )
    }

    fn max_outstanding(&self) -> usize {
        WINDOW
    }

    async fn close(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) || self.session.link().check().is_err() {
            return Ok(());
        }
        let _ = self.flush().await;
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let outcome = self
            .session
            .link()
            .call(&Request::CloseProducer(self.handle), None, None)
            .await;
        match outcome {
            Ok(_) => Ok(()),
            Err(_) if self.session.link().check().is_err() => Ok(()),
            Err(e) => Err(e),
        }
    }
}
