//! A consumer's message stream, for a prefetch of `n > 0` in an auto- or dups-ok-acknowledge
//! session: the server pushes up to `n` messages ahead of the application's receives
//! ([`Request::Stream`], [`Request::Credit`]), each held unacknowledged at the server until it is handed to the
//! application (then settled as handled) or given back (settled as not handled: returned to
//! its queue). Handing one over grants one more credit, so the consumer holds at most `n`.
//!
//! Recover, a connection's stop and the consumer's close first end the stream — the server
//! answers after any message already on its way, so none arrives later — then give back
//! what is buffered and, but for close, open a fresh stream.

use courier_api::{Error, Message, Result};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::Notify;

use super::link::Link;
use crate::protocol::ops::{Reply, Request};

#[derive(Default)]
struct State {
    /// Arrived and not handed over: (delivery handle, message).
    items: VecDeque<(u64, Message)>,
    /// The open stream's correlation id.
    stream: Option<u64>,
    /// The consumer is closed: arrivals are given back.
    closed: bool,
    /// Why the stream failed, for the next receive.
    error: Option<Error>,
}

/// The buffer and credit of one consumer's stream.
pub(crate) struct Prefetch {
    consumer: u64,
    credit: u32,
    state: Mutex<State>,
    /// Signalled on every arrival, end of stream and failure.
    pub notify: Notify,
}

impl Prefetch {
    pub fn new(consumer: u64, credit: u32) -> Arc<Self> {
        Arc::new(Prefetch {
            consumer,
            credit,
            state: Mutex::new(State::default()),
            notify: Notify::new(),
        })
    }

    /// Opens the stream with the whole credit.
    pub fn open(self: &Arc<Self>, link: &Link) -> Result<()> {
        let id = link.open_stream(&Request::Stream(self.consumer, self.credit), self.clone())?;
        self.state.lock().stream = Some(id);
        Ok(())
    }

    /// A reply on the stream (called by the link's reader).
    pub fn arrived(&self, link: &Link, reply: Reply) {
        let mut state = self.state.lock();
        match reply {
            Reply::Delivery(Some((handle, delivered))) => {
                if state.closed {
                    link.fire(&Request::Settle(handle, false));
                } else {
                    state.items.push_back((handle, delivered.into_message()));
                }
            }
            Reply::Delivery(None) => state.stream = None,
            Reply::Failed(e) => {
                state.stream = None;
                state.error = Some(e.into());
            }
            other => {
                state.stream = None;
                state.error = Some(Error::protocol(format!(
                    "unexpected reply on a message stream: {other:?}"
                )));
            }
        }
        drop(state);
        self.notify.notify_waiters();
    }

    /// The link ended (called by the link).
    pub fn failed(&self, error: Error) {
        {
            let mut state = self.state.lock();
            state.stream = None;
            state.error.get_or_insert(error);
        }
        self.notify.notify_waiters();
    }

    /// Takes the next message, settling it as handed over and granting one more credit.
    pub fn take(&self, link: &Link) -> Option<Message> {
        let (handle, message, stream) = {
            let mut state = self.state.lock();
            let (handle, message) = state.items.pop_front()?;
            (handle, message, state.stream)
        };
        match stream {
            Some(stream) if link.consumed(stream, self.consumer, handle) => {}
            Some(stream) => {
                link.fire(&Request::Settle(handle, true));
                link.fire_on(stream, &Request::Credit(self.consumer, 1));
            }
            None => link.fire(&Request::Settle(handle, true)),
        }
        Some(message)
    }

    /// The stream's failure, once.
    pub fn error(&self) -> Option<Error> {
        self.state.lock().error.take()
    }

    /// Ends the stream, waits for the server's last word on it, and gives back everything
    /// buffered. With `reopen`, opens a fresh stream afterwards.
    pub async fn drain(self: &Arc<Self>, link: &Link, reopen: bool) -> Result<()> {
        loop {
            let ended = self.notify.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            let stream = self.state.lock().stream;
            let Some(stream) = stream else { break };
            if link.check().is_err() {
                break;
            }
            link.fire_on(stream, &Request::Credit(self.consumer, 0));
            ended.await;
        }
        let items = std::mem::take(&mut self.state.lock().items);
        for (handle, _) in items {
            link.fire(&Request::Settle(handle, false));
        }
        if reopen && !self.state.lock().closed {
            link.check()?;
            self.open(link)?;
        }
        Ok(())
    }

    /// Marks the stream closed: later arrivals are given back. With `link`, also gives back
    /// what it holds now and ends the stream (without waiting); without, [`Self::drain`]
    /// does that.
    pub fn close(&self, link: Option<&Link>) {
        if let Some(link) = link {
            let (items, stream) = {
                let mut state = self.state.lock();
                state.closed = true;
                (std::mem::take(&mut state.items), state.stream)
            };
            for (handle, _) in items {
                link.fire(&Request::Settle(handle, false));
            }
            if let Some(stream) = stream {
                link.fire_on(stream, &Request::Credit(self.consumer, 0));
            }
        } else {
            self.state.lock().closed = true;
        }
        self.notify.notify_waiters();
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }
}
