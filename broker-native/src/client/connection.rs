//! `courier://` connections.

use async_trait::async_trait;
use courier_api::{
    Capabilities, Connection, ConnectionMetadata, Error, ExceptionListener, Result, Session,
    SessionMode,
};
use parking_lot::Mutex;
use std::sync::{Arc, Weak};

use super::link::Link;
use super::session::{SessionInner, TcpSession};
use super::stream::Prefetch;
use crate::protocol::ops::{mode_to_u8, Reply, Request};

/// State shared by a connection and what it made; dropping the last of them closes it.
pub(crate) struct ConnInner {
    pub link: Arc<Link>,
    client_id: Mutex<Option<String>>,
    /// The URL's prefetch: consumers without their own use it.
    pub prefetch: Option<u32>,
    /// The message streams of its consumers, given back on stop.
    pub streams: Mutex<Vec<Weak<Prefetch>>>,
}

impl Drop for ConnInner {
    fn drop(&mut self) {
        if self.link.check().is_ok() {
            self.link.closing();
            self.link.fire(&Request::Close);
        }
    }
}

/// A connection to a Courier server.
pub struct TcpConnection {
    inner: Arc<ConnInner>,
}

impl TcpConnection {
    /// The link to the server.
    pub(crate) fn link(&self) -> &Arc<Link> {
        &self.inner.link
    }

    pub(crate) fn new(link: Arc<Link>, client_id: Option<String>, prefetch: Option<u32>) -> Self {
        TcpConnection {
            inner: Arc::new(ConnInner {
                link,
                client_id: Mutex::new(client_id),
                prefetch,
                streams: Mutex::new(Vec::new()),
            }),
        }
    }
}

/// Expects [`Reply::Done`].
pub(crate) fn done(reply: Reply) -> Result<()> {
    match reply {
        Reply::Done => Ok(()),
        other => Err(unexpected(&other)),
    }
}

/// A reply that does not fit its request.
pub(crate) fn unexpected(reply: &Reply) -> Error {
    Error::protocol(format!("unexpected reply {reply:?}"))
}

#[async_trait]
impl Connection for TcpConnection {
    async fn set_client_id(&self, client_id: &str) -> Result<()> {
        let link = &self.inner.link;
        done(
            link.call(&Request::SetClientId(client_id.to_owned()), None, None)
                .await?,
        )?;
        *self.inner.client_id.lock() = Some(client_id.to_owned());
        Ok(())
    }

    fn client_id(&self) -> Option<String> {
        self.inner.client_id.lock().clone()
    }

    async fn start(&self) -> Result<()> {
        done(self.inner.link.call(&Request::Start, None, None).await?)
    }

    /// Stops delivery, then gives back what consumers' streams hold ahead of receives.
    async fn stop(&self) -> Result<()> {
        done(self.inner.link.call(&Request::Stop, None, None).await?)?;
        let streams: Vec<_> = {
            let mut streams = self.inner.streams.lock();
            streams.retain(|w| w.strong_count() > 0);
            streams.iter().filter_map(Weak::upgrade).collect()
        };
        for stream in streams {
            stream.drain(&self.inner.link, true).await?;
        }
        Ok(())
    }

    async fn create_session(&self, mode: SessionMode) -> Result<Box<dyn Session>> {
        let reply = self
            .inner
            .link
            .call(&Request::CreateSession(mode_to_u8(mode)), None, None)
            .await?;
        let Reply::Created(handle) = reply else {
            return Err(unexpected(&reply));
        };
        Ok(Box::new(TcpSession::new(Arc::new(SessionInner::new(
            self.inner.clone(),
            handle,
            mode,
        )))))
    }

    fn set_exception_listener(&self, listener: Option<ExceptionListener>) {
        self.inner.link.set_listener(listener);
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.link.capabilities.clone()
    }

    fn metadata(&self) -> ConnectionMetadata {
        ConnectionMetadata::new(
            "Courier",
            self.inner.link.server_version.clone(),
            vec!["JMSXDeliveryCount", "JMSXGroupID", "JMSXGroupSeq"],
        )
    }

    async fn closed(&self) -> Error {
        self.inner.link.ended.cancelled().await;
        self.inner
            .link
            .end_error()
            .unwrap_or_else(|| Error::illegal_state("closed"))
    }

    async fn close(&self) -> Result<()> {
        let link = &self.inner.link;
        if link.check().is_err() {
            return Ok(());
        }
        link.closing();
        let outcome = link.call(&Request::Close, None, None).await;
        link.end(None);
        match outcome {
            Ok(_) | Err(Error::ConnectionLost { .. }) | Err(Error::IllegalState(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
