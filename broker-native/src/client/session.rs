//! `courier://` sessions: each call is a request to the server's session, which keeps the
//! acknowledgement and transaction state.

use async_trait::async_trait;
use courier_api::{
    Browser, Consumer, ConsumerOptions, Destination, Error, InDoubtOperation, Producer, Result,
    Session, SessionMode,
};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use super::connection::{done, unexpected, ConnInner};
use super::consumer::{TcpBrowser, TcpConsumer};
use super::link::Link;
use super::producer::TcpProducer;
use super::stream::Prefetch;
use crate::protocol::ops::{ConsumerKind, Reply, Request};

/// State shared by a session and what it made; dropping the last of them closes it.
pub(crate) struct SessionInner {
    pub conn: Arc<ConnInner>,
    pub handle: u64,
    pub mode: SessionMode,
    closed: AtomicBool,
    /// Its consumers' message streams, given back on recover.
    streams: Mutex<Vec<Weak<Prefetch>>>,
}

impl SessionInner {
    pub fn new(conn: Arc<ConnInner>, handle: u64, mode: SessionMode) -> Self {
        SessionInner {
            conn,
            handle,
            mode,
            closed: AtomicBool::new(false),
            streams: Mutex::new(Vec::new()),
        }
    }

    /// Opens a message stream for `consumer` when `prefetch` asks for one and the session
    /// acknowledges on hand-over (auto, dups-ok); client-ack and transacted sessions keep
    /// the exact credit of one per receive.
    fn stream_for(&self, consumer: u64, prefetch: Option<u32>) -> Result<Option<Arc<Prefetch>>> {
        let n = match prefetch.or(self.conn.prefetch) {
            Some(n) if n > 0 => n,
            _ => return Ok(None),
        };
        if !matches!(
            self.mode,
            SessionMode::AutoAcknowledge | SessionMode::DupsOkAcknowledge
        ) {
            return Ok(None);
        }
        let stream = Prefetch::new(consumer, n);
        stream.open(self.link())?;
        for list in [&self.streams, &self.conn.streams] {
            let mut list = list.lock();
            list.retain(|w| w.strong_count() > 0);
            list.push(Arc::downgrade(&stream));
        }
        Ok(Some(stream))
    }

    /// Gives back what this session's streams hold ahead of receives.
    async fn drain_streams(&self) -> Result<()> {
        let streams: Vec<_> = self
            .streams
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for stream in streams {
            stream.drain(self.link(), true).await?;
        }
        Ok(())
    }

    pub fn link(&self) -> &Link {
        &self.conn.link
    }

    /// `Ok` while open; the connection's loss, or `IllegalState` once closed.
    pub fn check(&self) -> Result<()> {
        self.link().check()?;
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::illegal_state("the session is closed"));
        }
        Ok(())
    }

    pub async fn call(
        &self,
        request: Request,
        in_doubt: Option<InDoubtOperation>,
    ) -> Result<Reply> {
        self.check()?;
        self.link().call(&request, in_doubt, None).await
    }

    fn close_now(&self) -> bool {
        !self.closed.swap(true, Ordering::AcqRel) && self.link().check().is_ok()
    }
}

impl Drop for SessionInner {
    fn drop(&mut self) {
        if self.close_now() {
            self.link().fire(&Request::CloseSession(self.handle));
        }
    }
}

/// A session on a Courier server.
pub(crate) struct TcpSession {
    inner: Arc<SessionInner>,
}

impl TcpSession {
    pub fn new(inner: Arc<SessionInner>) -> Self {
        TcpSession { inner }
    }

    async fn consumer(
        &self,
        kind: ConsumerKind,
        destination: &Destination,
        name: Option<&str>,
        options: ConsumerOptions,
    ) -> Result<Box<dyn Consumer>> {
        let selector = options.effective_selector().map(str::to_owned);
        let reply = self
            .inner
            .call(
                Request::CreateConsumer {
                    session: self.inner.handle,
                    kind,
                    destination: destination.clone(),
                    name: name.map(str::to_owned),
                    selector: selector.clone(),
                    no_local: options.no_local,
                    prefetch: options.prefetch,
                },
                None,
            )
            .await?;
        let Reply::Created(handle) = reply else {
            return Err(unexpected(&reply));
        };
        let stream = self.inner.stream_for(handle, options.prefetch)?;
        Ok(Box::new(TcpConsumer::new(
            self.inner.clone(),
            handle,
            destination.clone(),
            selector,
            stream,
        )))
    }
}

#[async_trait]
impl Session for TcpSession {
    fn mode(&self) -> SessionMode {
        self.inner.mode
    }

    async fn create_producer(
        &self,
        destination: Option<&Destination>,
    ) -> Result<Box<dyn Producer>> {
        let reply = self
            .inner
            .call(
                Request::CreateProducer(self.inner.handle, destination.cloned()),
                None,
            )
            .await?;
        let Reply::Created(handle) = reply else {
            return Err(unexpected(&reply));
        };
        Ok(Box::new(TcpProducer::new(
            self.inner.clone(),
            handle,
            destination.cloned(),
        )))
    }

    async fn create_consumer(
        &self,
        destination: &Destination,
        options: ConsumerOptions,
    ) -> Result<Box<dyn Consumer>> {
        self.consumer(ConsumerKind::Plain, destination, None, options)
            .await
    }

    async fn create_durable_consumer(
        &self,
        topic: &Destination,
        name: &str,
        options: ConsumerOptions,
    ) -> Result<Box<dyn Consumer>> {
        self.consumer(ConsumerKind::Durable, topic, Some(name), options)
            .await
    }

    async fn create_shared_consumer(
        &self,
        topic: &Destination,
        name: &str,
        options: ConsumerOptions,
    ) -> Result<Box<dyn Consumer>> {
        self.consumer(ConsumerKind::Shared, topic, Some(name), options)
            .await
    }

    async fn create_shared_durable_consumer(
        &self,
        topic: &Destination,
        name: &str,
        options: ConsumerOptions,
    ) -> Result<Box<dyn Consumer>> {
        self.consumer(ConsumerKind::SharedDurable, topic, Some(name), options)
            .await
    }

    async fn unsubscribe(&self, name: &str) -> Result<()> {
        let request = Request::Unsubscribe(self.inner.handle, name.to_owned());
        done(self.inner.call(request, None).await?)
    }

    async fn create_browser(
        &self,
        queue: &Destination,
        selector: Option<&str>,
    ) -> Result<Box<dyn Browser>> {
        let selector = selector.filter(|s| !s.trim().is_empty()).map(str::to_owned);
        let request = Request::CreateBrowser(self.inner.handle, queue.clone(), selector.clone());
        let reply = self.inner.call(request, None).await?;
        let Reply::Created(handle) = reply else {
            return Err(unexpected(&reply));
        };
        Ok(Box::new(TcpBrowser::new(
            self.inner.clone(),
            handle,
            queue.clone(),
            selector,
        )))
    }

    async fn create_temporary_queue(&self) -> Result<Destination> {
        let reply = self
            .inner
            .call(Request::CreateTemporary(self.inner.handle, false), None)
            .await?;
        match reply {
            Reply::Destination(d) => Ok(d),
            other => Err(unexpected(&other)),
        }
    }

    async fn create_temporary_topic(&self) -> Result<Destination> {
        let reply = self
            .inner
            .call(Request::CreateTemporary(self.inner.handle, true), None)
            .await?;
        match reply {
            Reply::Destination(d) => Ok(d),
            other => Err(unexpected(&other)),
        }
    }

    async fn delete_temporary(&self, destination: &Destination) -> Result<()> {
        let request = Request::DeleteTemporary(self.inner.handle, destination.clone());
        done(self.inner.call(request, None).await?)
    }

    async fn delete_destination(&self, destination: &Destination) -> Result<()> {
        let request = Request::DeleteDestination(self.inner.handle, destination.clone());
        done(self.inner.call(request, None).await?)
    }

    async fn commit(&self) -> Result<()> {
        let request = Request::Commit(self.inner.handle);
        done(
            self.inner
                .call(request, Some(InDoubtOperation::Commit))
                .await?,
        )
    }

    async fn rollback(&self) -> Result<()> {
        done(
            self.inner
                .call(Request::Rollback(self.inner.handle), None)
                .await?,
        )
    }

    /// Recovers at the server — which returns the held messages of this session's streams
    /// too — then empties the streams (what arrived meanwhile goes back) and reopens them.
    async fn recover(&self) -> Result<()> {
        done(
            self.inner
                .call(Request::Recover(self.inner.handle), None)
                .await?,
        )?;
        self.inner.drain_streams().await
    }

    async fn acknowledge(&self) -> Result<()> {
        let request = Request::Acknowledge(self.inner.handle);
        done(
            self.inner
                .call(request, Some(InDoubtOperation::Acknowledge))
                .await?,
        )
    }

    async fn close(&self) -> Result<()> {
        if !self.inner.close_now() {
            return Ok(());
        }
        let outcome = self
            .inner
            .link()
            .call(&Request::CloseSession(self.inner.handle), None, None)
            .await;
        match outcome {
            Ok(_) | Err(Error::ConnectionLost { .. }) => Ok(()),
            Err(e) if self.inner.link().check().is_err() => {
                let _ = e;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}
