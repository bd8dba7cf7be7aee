//! [`Contents`]: the entries matching a template, read without removing them.

use courier_api::{Browser, Message, Result};
use futures::stream::{BoxStream, Stream, StreamExt};
use serde::de::DeserializeOwned;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::entry;
use crate::lane::LaneGuard;

/// A stream of copies of the entries matching a template, from
/// [`crate::Space::contents`] or [`crate::Transaction::contents`]; nothing is removed.
///
/// An entry that cannot be decoded yields an error and the walk goes on.
///
/// ```no_run
/// # async fn demo(space: courier_space::Space) -> courier_api::Result<()> {
/// use futures::TryStreamExt;
/// let all: Vec<(String, i64)> = space
///     .contents(&courier_space::Template::any()?)
///     .await?
///     .try_collect()
///     .await?;
/// # Ok(()) }
/// ```
pub struct Contents<T> {
    inner: BoxStream<'static, Result<T>>,
    entry: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Contents<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contents").finish_non_exhaustive()
    }
}

/// What the stream walks: first a transaction's own writes, then the browser.
struct Walk {
    pending: VecDeque<Message>,
    browser: Box<dyn Browser>,
    /// The pooled lane the browser belongs to, returned when the walk ends.
    lane: Option<LaneGuard>,
}

impl<T: DeserializeOwned + 'static> Contents<T> {
    pub(crate) fn new(
        pending: Vec<Message>,
        browser: Box<dyn Browser>,
        lane: Option<LaneGuard>,
    ) -> Self {
        let walk = Walk {
            pending: pending.into(),
            browser,
            lane,
        };
        let inner = futures::stream::unfold(Some(walk), |walk| async move {
            let mut walk = walk?;
            if let Some(message) = walk.pending.pop_front() {
                return Some((entry::decode(&message), Some(walk)));
            }
            match walk.browser.next().await {
                Ok(Some(message)) => Some((entry::decode(&message), Some(walk))),
                Ok(None) => {
                    let _ = walk.browser.close().await;
                    if let Some(lane) = walk.lane.take() {
                        lane.release();
                    }
                    None
                }
                Err(e) => Some((Err(e), None)),
            }
        });
        Contents {
            inner: inner.boxed(),
            entry: PhantomData,
        }
    }
}

impl<T> Stream for Contents<T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        self.inner.poll_next_unpin(cx)
    }
}
