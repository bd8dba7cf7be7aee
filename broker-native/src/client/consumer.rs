//! `courier://` consumers and browsers. A receive is one credit: the server hands over a
//! message only for a receive, so a consumer never holds one ahead (exact prefetch).

use async_trait::async_trait;
use courier_api::listener::{MessageHandler, Settle};
use courier_api::{
    Body, Browser, Consumer, Delivery, Destination, Error, InDoubtOperation, Message, Result,
};
use futures::future::BoxFuture;
use futures::FutureExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use super::connection::{done, unexpected, ConnInner};
use super::link::Stash;
use super::session::SessionInner;
use super::stream::Prefetch;
use crate::protocol::ops::{Reply, Request, Wait};

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

pub(crate) struct TcpConsumer {
    session: Arc<SessionInner>,
    handle: u64,
    destination: Destination,
    selector: Option<String>,
    stash: Arc<Stash>,
    closed: AtomicBool,
    /// The message stream of a consumer with a prefetch (auto and dups-ok sessions).
    stream: Option<Arc<Prefetch>>,
    /// Set once the consumer left its stream for one credit per receive.
    pulling: AtomicBool,
}

impl TcpConsumer {
    pub fn new(
        session: Arc<SessionInner>,
        handle: u64,
        destination: Destination,
        selector: Option<String>,
        stream: Option<Arc<Prefetch>>,
    ) -> Self {
        TcpConsumer {
            session,
            handle,
            destination,
            selector,
            stash: Arc::default(),
            closed: AtomicBool::new(false),
            stream,
            pulling: AtomicBool::new(false),
        }
    }

    /// A receive from the message stream: what it holds, else what arrives before the
    /// deadline; `NoWait` also asks the broker for what it has ready now.
    async fn next_streamed(&self, stream: &Arc<Prefetch>, wait: Wait) -> Result<Option<Message>> {
        let link = self.session.link();
        // A message already here is taken without registering for the next arrival (or
        // reading the clock): the common case of a busy stream.
        if !self.closed.load(Ordering::Acquire) {
            if let Some(m) = stream.take(link) {
                return Ok(Some(m));
            }
        }
        let deadline = match wait {
            Wait::Timeout(ns) => Instant::now().checked_add(Duration::from_nanos(ns)),
            _ => None,
        };
        loop {
            let arrived = stream.notify.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if self.closed.load(Ordering::Acquire) {
                self.check()?;
            }
            if let Some(m) = stream.take(link) {
                return Ok(Some(m));
            }
            if let Some(e) = stream.error() {
                link.check()?;
                return Err(e);
            }
            match wait {
                Wait::NoWait => {
                    let got = self.pull(Wait::NoWait).await?;
                    return Ok(got.or_else(|| stream.take(link)));
                }
                Wait::Forever => arrived.await,
                Wait::Timeout(_) => {
                    let Some(deadline) = deadline else {
                        arrived.await;
                        continue;
                    };
                    tokio::select! {
                        () = arrived => {}
                        () = tokio::time::sleep_until(deadline) => return Ok(stream.take(link)),
                    }
                }
            }
            if stream.is_closed() {
                return Ok(None);
            }
        }
    }

    fn check(&self) -> Result<()> {
        self.session.link().check()?;
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::illegal_state("the consumer is closed"));
        }
        self.session.check()
    }

    /// Switches a streaming consumer to one credit per receive for good: a listener settles
    /// after its handler, and `receive_body` only takes a message whose body qualifies, so
    /// neither can take from a stream that settles on hand-over. What the stream holds is
    /// given back first.
    async fn stop_streaming(&self) -> Result<()> {
        if let Some(stream) = &self.stream {
            if !self.pulling.swap(true, Ordering::AcqRel) {
                stream.close(None);
                stream.drain(self.session.link(), false).await?;
            }
        }
        Ok(())
    }

    async fn next(&self, wait: Wait) -> Result<Option<Message>> {
        self.check()?;
        if let Some(stream) = &self.stream {
            if !self.pulling.load(Ordering::Acquire) {
                return self.next_streamed(stream, wait).await;
            }
        }
        self.pull(wait).await
    }

    /// One receive request: one credit.
    async fn pull(&self, wait: Wait) -> Result<Option<Message>> {
        if let Some(m) = self.stash.lock().pop_front() {
            return Ok(Some(m));
        }
        let reply = self
            .session
            .link()
            .call(
                &Request::Receive(self.handle, wait),
                None,
                Some(self.stash.clone()),
            )
            .await;
        match reply {
            Ok(Reply::Message(m)) => Ok(m.map(|d| d.into_message())),
            Ok(other) => Err(unexpected(&other)),
            // A consumer closed while receiving answers `None`.
            Err(Error::IllegalState(_)) if self.closed.load(Ordering::Acquire) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Drop for TcpConsumer {
    fn drop(&mut self) {
        if let Some(stream) = &self.stream {
            stream.close(Some(self.session.link()));
        }
        if !self.closed.swap(true, Ordering::AcqRel) && self.session.link().check().is_ok() {
            self.session
                .link()
                .fire(&Request::CloseConsumer(self.handle));
        }
    }
}

/// Settles a listener's delivery at the server.
struct RemoteSettle {
    conn: Arc<ConnInner>,
    handle: u64,
}

impl Settle for RemoteSettle {
    fn acknowledge(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        async move {
            let request = Request::Settle(self.handle, true);
            let reply = self
                .conn
                .link
                .call(&request, Some(InDoubtOperation::Acknowledge), None)
                .await?;
            done(reply)
        }
        .boxed()
    }

    fn redeliver(self: Box<Self>) {
        self.conn.link.fire(&Request::Settle(self.handle, false));
    }
}

#[async_trait]
impl Consumer for TcpConsumer {
    fn destination(&self) -> &Destination {
        &self.destination
    }

    fn selector(&self) -> Option<&str> {
        self.selector.as_deref()
    }

    async fn receive(&self) -> Result<Option<Message>> {
        self.next(Wait::Forever).await
    }

    async fn receive_timeout(&self, timeout: Duration) -> Result<Option<Message>> {
        self.next(Wait::Timeout(nanos(timeout))).await
    }

    async fn receive_no_wait(&self) -> Result<Option<Message>> {
        self.next(Wait::NoWait).await
    }

    async fn receive_body(&self, timeout: Option<Duration>) -> Result<Option<Body>> {
        self.check()?;
        self.stop_streaming().await?;
        if let Some(m) = self.stash.lock().pop_front() {
            return courier_api::spi::body_for_receive_body(&m).map(Some);
        }
        let request = Request::ReceiveBody(self.handle, timeout.map(nanos));
        match self.session.link().call(&request, None, None).await? {
            Reply::Body(body) => Ok(body),
            other => Err(unexpected(&other)),
        }
    }

    async fn receive_delivery(&self) -> Result<Option<Delivery>> {
        self.check()?;
        self.stop_streaming().await?;
        let request = Request::ReceiveDelivery(self.handle);
        match self.session.link().call(&request, None, None).await? {
            Reply::Delivery(None) => Ok(None),
            Reply::Delivery(Some((handle, delivered))) => Ok(Some(Delivery::new(
                delivered.into_message(),
                Box::new(RemoteSettle {
                    conn: self.session.conn.clone(),
                    handle,
                }),
            ))),
            other => Err(unexpected(&other)),
        }
    }

    /// The api's listener loop, ending (with `Ok`) when the consumer is closed — also when
    /// the close comes while the handler runs, before the next delivery is asked for.
    async fn listen(&self, mut handler: MessageHandler<'_>) -> Result<()> {
        loop {
            let delivery = match self.receive_delivery().await {
                Err(Error::IllegalState(_)) if self.closed.load(Ordering::Acquire) => return Ok(()),
                other => other?,
            };
            let Some(delivery) = delivery else {
                return Ok(());
            };
            match handler(delivery.message().clone()).await {
                Ok(()) => delivery.acknowledge().await?,
                // Dropping it unacknowledged gives the message back.
                Err(_) => drop(delivery),
            }
        }
    }

    async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) || self.session.link().check().is_err() {
            return Ok(());
        }
        if let Some(stream) = &self.stream {
            stream.close(None);
            let _ = stream.drain(self.session.link(), false).await;
        }
        let outcome = self
            .session
            .link()
            .call(&Request::CloseConsumer(self.handle), None, None)
            .await;
        match outcome {
            Ok(_) => Ok(()),
            Err(_) if self.session.link().check().is_err() => Ok(()),
            Err(e) => Err(e),
        }
    }
}

pub(crate) struct TcpBrowser {
    session: Arc<SessionInner>,
    handle: u64,
    queue: Destination,
    selector: Option<String>,
    closed: AtomicBool,
}

impl TcpBrowser {
    pub fn new(
        session: Arc<SessionInner>,
        handle: u64,
        queue: Destination,
        selector: Option<String>,
    ) -> Self {
        TcpBrowser {
            session,
            handle,
            queue,
            selector,
            closed: AtomicBool::new(false),
        }
    }
}

impl Drop for TcpBrowser {
    fn drop(&mut self) {
        if !self.closed.swap(true, Ordering::AcqRel) && self.session.link().check().is_ok() {
            self.session
                .link()
                .fire(&Request::CloseBrowser(self.handle));
        }
    }
}

#[async_trait]
impl Browser for TcpBrowser {
    fn queue(&self) -> &Destination {
        &self.queue
    }

    fn selector(&self) -> Option<&str> {
        self.selector.as_deref()
    }

    async fn next(&self) -> Result<Option<Message>> {
        self.session.link().check()?;
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::illegal_state("the browser is closed"));
        }
        self.session.check()?;
        let request = Request::BrowseNext(self.handle);
        match self.session.link().call(&request, None, None).await? {
            Reply::Message(m) => Ok(m.map(|d| d.into_message())),
            other => Err(unexpected(&other)),
        }
    }

    async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) || self.session.link().check().is_err() {
            return Ok(());
        }
        let outcome = self
            .session
            .link()
            .call(&Request::CloseBrowser(self.handle), None, None)
            .await;
        match outcome {
            Ok(_) => Ok(()),
            Err(_) if self.session.link().check().is_err() => Ok(()),
            Err(e) => Err(e),
        }
    }
}
