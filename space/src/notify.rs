//! [`Notifications`]: the entries matching a template as they are written.

use courier_api::{Consumer, Result, Session};
use futures::stream::{BoxStream, Stream, StreamExt};
use serde::de::DeserializeOwned;
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::entry;
use crate::lane::{close_consumer, close_session};

/// A stream of copies of the entries matching a template, one per write from the moment
/// [`crate::Space::notify`] returned (JavaSpaces `notify`, as a `Stream` instead of a
/// listener). It runs until dropped or until the connection closes.
///
/// ```no_run
/// # async fn demo(space: courier_space::Space) -> courier_api::Result<()> {
/// use futures::StreamExt;
/// let urgent = courier_space::Template::<(String, i64)>::builder().gt(1, 8).build()?;
/// let mut alerts = space.notify(&urgent).await?;
/// while let Some(entry) = alerts.next().await {
///     println!("urgent entry written: {:?}", entry?);
/// }
/// # Ok(()) }
/// ```
pub struct Notifications<T> {
    inner: BoxStream<'static, Result<T>>,
    entry: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Notifications<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifications").finish_non_exhaustive()
    }
}

/// The subscription behind the stream; closed when the stream is dropped.
struct Listener {
    session: Option<Box<dyn Session>>,
    consumer: Option<Box<dyn Consumer>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(consumer) = self.consumer.take() {
            close_consumer(consumer);
        }
        if let Some(session) = self.session.take() {
            close_session(session);
        }
    }
}

impl<T: DeserializeOwned + 'static> Notifications<T> {
    pub(crate) fn new(session: Box<dyn Session>, consumer: Box<dyn Consumer>) -> Self {
        let listener = Listener {
            session: Some(session),
            consumer: Some(consumer),
        };
        let inner = futures::stream::unfold(Some(listener), |listener| async move {
            let listener = listener?;
            let consumer = listener.consumer.as_ref()?;
            match consumer.receive().await {
                Ok(Some(event)) => Some((entry::decode(&event), Some(listener))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        });
        Notifications {
            inner: inner.boxed(),
            entry: PhantomData,
        }
    }
}

impl<T> Stream for Notifications<T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        self.inner.poll_next_unpin(cx)
    }
}
