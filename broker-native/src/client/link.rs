//! The client's end of one connection: the socket's reader and writer tasks, and the table
//! of requests waiting for their replies. Requests are pipelined — any number may be in
//! flight — and replies matched by correlation id.
//!
//! When the connection is lost every waiting request resolves at once: a send, commit or
//! acknowledge with [`Error::InDoubt`] (the server may have acted on it before the loss),
//! everything else with the loss's [`Error::ConnectionLost`].

use courier_api::{
    spi, Capabilities, Error, ExceptionListener, InDoubtOperation, Message, Result, SendCompletion,
};
use futures::StreamExt;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use super::stream::Prefetch;
use crate::protocol::batch::FrameWriter;
use crate::protocol::frame::{Frame, FrameCodec, Kind, HEADER_LEN};
use crate::protocol::ops::{decode, encode, Reply, Request, WireError};
use crate::protocol::transport::ReadHalf;

/// Messages a consumer got for a receive whose caller stopped waiting: the next receive
/// returns them first, so none is lost.
pub(crate) type Stash = Mutex<VecDeque<Message>>;

enum Pending {
    Call {
        tx: oneshot::Sender<Result<Reply>>,
        in_doubt: Option<InDoubtOperation>,
        stash: Option<Arc<Stash>>,
    },
    Send {
        completion: SendCompletion,
        message: Message,
        _permit: OwnedSemaphorePermit,
    },
    /// A consumer's message stream: many replies, until one that is not a message.
    Stream(Arc<Prefetch>),
}

#[derive(Default)]
struct State {
    calls: HashMap<u64, Pending>,
    /// Why the link ended, once it did.
    end: Option<Error>,
}

/// What the writer task is handed.
enum Out {
    Frame(Frame),
    /// A delivery of the message stream `stream` (of `consumer`) handed to the application:
    /// the writer sends consecutive ones of one stream as one [`Request::Consumed`].
    Consumed {
        stream: u64,
        consumer: u64,
        delivery: u64,
    },
}

/// The most deliveries one `Consumed` request names (a few KiB).
const CONSUMED_BATCH: usize = 1024;

/// One connection's socket and waiting requests.
pub(crate) struct Link {
    out: mpsc::UnboundedSender<Out>,
    /// The protocol version the handshake settled on.
    version: u16,
    state: Mutex<State>,
    next: AtomicU64,
    /// Cancelled when the link ends (closed or lost).
    pub ended: CancellationToken,
    /// Set by a close: the socket's end is then no loss.
    closing: AtomicBool,
    listener: Mutex<Option<ExceptionListener>>,
    /// What the server offers this connection.
    pub capabilities: Capabilities,
    /// The server's version.
    pub server_version: String,
    max_frame: usize,
}

impl Link {
    /// Starts the reader and writer tasks of an authenticated socket.
    pub fn start(
        reader: FramedRead<ReadHalf, FrameCodec>,
        writer: FrameWriter,
        heartbeat: Duration,
        capabilities: Capabilities,
        server_version: String,
        max_frame: usize,
        version: u16,
    ) -> Arc<Link> {
        let (out, rx) = mpsc::unbounded_channel();
        let link = Arc::new(Link {
            out,
            version,
            state: Mutex::new(State::default()),
            next: AtomicU64::new(1),
            ended: CancellationToken::new(),
            closing: AtomicBool::new(false),
            listener: Mutex::new(None),
            capabilities,
            server_version,
            max_frame,
        });
        tokio::spawn(write_loop(writer, rx, heartbeat, link.ended.clone()));
        tokio::spawn(read_loop(reader, heartbeat, link.clone()));
        link
    }

    /// Why the link ended (`None` while open).
    pub fn end_error(&self) -> Option<Error> {
        self.state.lock().end.clone()
    }

    /// `Ok` while open; the loss (or `IllegalState` after a close) once ended.
    pub fn check(&self) -> Result<()> {
        match self.end_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub fn set_listener(&self, listener: Option<ExceptionListener>) {
        *self.listener.lock() = listener;
    }

    /// Marks the link as closing: the server will close the socket, which is then no loss.
    pub fn closing(&self) {
        self.closing.store(true, Ordering::SeqCst);
    }

    fn request_frame(&self, request: &Request) -> Result<(u64, Frame)> {
        let payload = encode(request);
        if payload.len() + HEADER_LEN > self.max_frame {
            return Err(Error::ResourceLimit(format!(
                "the request is {} bytes; the server accepts frames of at most {}",
                payload.len(),
                self.max_frame
            )));
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        Ok((id, Frame::new(Kind::Request, id, payload)))
    }

    /// Sends `request` without waiting for (or caring about) its reply.
    pub fn fire(&self, request: &Request) {
        if let Ok((_, frame)) = self.request_frame(request) {
            let _ = self.out.send(Out::Frame(frame));
        }
    }

    /// Sends `request` under the correlation id `id` (a stream's), expecting no reply.
    pub fn fire_on(&self, id: u64, request: &Request) {
        let _ = self
            .out
            .send(Out::Frame(Frame::new(Kind::Request, id, encode(request))));
    }

    /// Settles `delivery` of the message stream `stream` as handed over and grants the
    /// stream one more credit, batched with its neighbours into one request by the writer.
    /// `false` when the server speaks no [`Request::Consumed`] (the caller then sends
    /// `Settle` and `Credit`).
    pub fn consumed(&self, stream: u64, consumer: u64, delivery: u64) -> bool {
        if self.version < crate::protocol::CONSUMED_VERSION {
            return false;
        }
        let _ = self.out.send(Out::Consumed {
            stream,
            consumer,
            delivery,
        });
        true
    }

    /// Opens a message stream: `request` (a credit) under a new correlation id whose
    /// replies go to `stream` until one is not a message. Returns the id.
    pub fn open_stream(&self, request: &Request, stream: Arc<Prefetch>) -> Result<u64> {
        let (id, frame) = self.request_frame(request)?;
        {
            let mut state = self.state.lock();
            if let Some(e) = &state.end {
                return Err(e.clone());
            }
            state.calls.insert(id, Pending::Stream(stream));
        }
        let _ = self.out.send(Out::Frame(frame));
        Ok(id)
    }

    /// Sends `request` and waits for its reply; a `Failed` reply is its error. A loss while
    /// waiting is `in_doubt`'s [`Error::InDoubt`] when given, else the loss. `stash` takes a
    /// received message whose caller stopped waiting.
    pub async fn call(
        &self,
        request: &Request,
        in_doubt: Option<InDoubtOperation>,
        stash: Option<Arc<Stash>>,
    ) -> Result<Reply> {
        let (id, frame) = self.request_frame(request)?;
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.state.lock();
            if let Some(e) = &state.end {
                return Err(e.clone());
            }
            state.calls.insert(
                id,
                Pending::Call {
                    tx,
                    in_doubt,
                    stash,
                },
            );
        }
        let _ = self.out.send(Out::Frame(frame));
        let cancel = CancelOnDrop {
            link: self,
            id,
            armed: matches!(
                request,
                Request::Receive(..) | Request::ReceiveBody(..) | Request::ReceiveDelivery(_)
            ),
        };
        let reply = rx.await;
        cancel.disarm();
        let reply = match reply {
            Ok(reply) => reply?,
            Err(_) => return Err(self.check().err().unwrap_or_else(|| lost("reply lost"))),
        };
        match reply {
            Reply::Failed(e) => Err(e.into()),
            reply => Ok(reply),
        }
    }

    /// Sends `request` (a send) and completes `completion` with `message`, stamped, when the
    /// server confirms it. `permit` is its place in the producer's window.
    pub fn send_pipelined(
        &self,
        request: &Request,
        message: Message,
        completion: SendCompletion,
        permit: OwnedSemaphorePermit,
    ) -> Result<()> {
        let (id, frame) = self.request_frame(request)?;
        {
            let mut state = self.state.lock();
            if let Some(e) = &state.end {
                return Err(e.clone());
            }
            state.calls.insert(
                id,
                Pending::Send {
                    completion,
                    message,
                    _permit: permit,
                },
            );
        }
        let _ = self.out.send(Out::Frame(frame));
        Ok(())
    }

    /// Ends the link once: by a close (`lost == None`) or a loss. Waiting requests resolve.
    pub fn end(&self, lost: Option<Error>) {
        let calls = {
            let mut state = self.state.lock();
            if state.end.is_some() {
                return;
            }
            state.end = Some(
                lost.clone()
                    .unwrap_or_else(|| Error::illegal_state("the connection is closed")),
            );
            std::mem::take(&mut state.calls)
        };
        let reason = lost
            .as_ref()
            .map_or_else(|| "the connection was closed".to_owned(), |e| e.to_string());
        let mut ordered: Vec<_> = calls.into_iter().collect();
        ordered.sort_by_key(|(id, _)| *id);
        for (_, pending) in ordered {
            match pending {
                Pending::Call { tx, in_doubt, .. } => {
                    let e = match (in_doubt, &lost) {
                        (Some(op), Some(_)) => Error::in_doubt(op, reason.clone()),
                        (_, Some(lost)) => lost.clone(),
                        (_, None) => Error::illegal_state("the connection is closed"),
                    };
                    let _ = tx.send(Err(e));
                }
                Pending::Send { completion, .. } => {
                    completion
                        .complete(Err(Error::in_doubt(InDoubtOperation::Send, reason.clone())));
                }
                Pending::Stream(stream) => stream.failed(
                    lost.clone()
                        .unwrap_or_else(|| Error::illegal_state("the connection is closed")),
                ),
            }
        }
        self.ended.cancel();
        if let Some(lost) = lost {
            tracing::debug!(error = %lost, "courier connection lost");
            if let Some(listener) = self.listener.lock().take() {
                listener(&lost);
            }
        }
    }

    /// Routes a reply to its waiting request.
    fn deliver(&self, id: u64, reply: Reply) {
        let pending = {
            let mut state = self.state.lock();
            if let Some(Pending::Stream(stream)) = state.calls.get(&id) {
                let stream = stream.clone();
                if !matches!(reply, Reply::Delivery(Some(_))) {
                    state.calls.remove(&id);
                }
                drop(state);
                stream.arrived(self, reply);
                return;
            }
            state.calls.remove(&id)
        };
        let Some(pending) = pending else {
            return;
        };
        match pending {
            Pending::Call { tx, stash, .. } => {
                if let Err(Ok(reply)) = tx.send(Ok(reply)) {
                    // Its caller stopped waiting: keep what it would have got.
                    match reply {
                        Reply::Message(Some(d)) => {
                            if let Some(stash) = stash {
                                stash.lock().push_back(d.into_message());
                            }
                        }
                        Reply::Delivery(Some((handle, _))) => {
                            self.fire(&Request::Settle(handle, false));
                        }
                        _ => {}
                    }
                }
            }
            Pending::Stream(_) => {}
            Pending::Send {
                completion,
                mut message,
                ..
            } => match reply {
                Reply::Sent(header) => {
                    *spi::header_mut(&mut message) = header;
                    completion.complete(Ok(message));
                }
                Reply::Failed(e) => completion.complete(Err(e.into())),
                other => completion.complete(Err(Error::protocol(format!(
                    "unexpected reply to a send: {other:?}"
                )))),
            },
        }
    }
}

/// Tells the server that the caller of a waiting request stopped waiting for it.
struct CancelOnDrop<'a> {
    link: &'a Link,
    id: u64,
    armed: bool,
}

impl CancelOnDrop<'_> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed && self.link.check().is_ok() {
            self.link.fire(&Request::Cancel(self.id));
        }
    }
}

fn lost(reason: &str) -> Error {
    Error::connection_lost(reason)
}

async fn read_loop(
    mut reader: FramedRead<ReadHalf, FrameCodec>,
    heartbeat: Duration,
    link: Arc<Link>,
) {
    // Made once, not per frame: each `cancelled()` polled registers with the token.
    let ended = link.ended.clone();
    let ended = ended.cancelled();
    tokio::pin!(ended);
    let why = loop {
        let next = tokio::select! {
            () = &mut ended => return,
            next = tokio::time::timeout(heartbeat * 3, reader.next()) => next,
        };
        let frame = match next {
            Err(_) => break lost("the server sent nothing for three heartbeat intervals"),
            Ok(None) => break lost("the server closed the connection"),
            Ok(Some(Err(e))) => break lost(&format!("bad frame from the server: {e}")),
            Ok(Some(Ok(frame))) => frame,
        };
        match frame.kind {
            Kind::Heartbeat => {}
            Kind::Reply => match decode::<Reply>(&frame.payload, "reply") {
                Ok(reply) => link.deliver(frame.id, reply),
                Err(e) => break lost(&e.to_string()),
            },
            Kind::Error => {
                let reason = decode::<WireError>(&frame.payload, "error")
                    .map(|w| Error::from(w).to_string())
                    .unwrap_or_else(|e| e.to_string());
                break lost(&format!("the server closed the connection: {reason}"));
            }
            other => break lost(&format!("unexpected {other:?} frame from the server")),
        }
    };
    let closing = link.closing.load(Ordering::SeqCst);
    link.end(if closing { None } else { Some(why) });
}

/// Consecutive hand-overs of one stream, gathered into one [`Request::Consumed`].
struct Gathered {
    stream: u64,
    consumer: u64,
    deliveries: Vec<u64>,
}

/// Feeds `out` to `writer`, gathering consecutive hand-overs of one stream in `gathered`;
/// anything else first feeds what was gathered, so the order of requests is kept.
fn feed(
    writer: &mut FrameWriter,
    gathered: &mut Option<Gathered>,
    out: Out,
) -> std::result::Result<(), crate::protocol::frame::FrameError> {
    if let Out::Consumed {
        stream,
        consumer,
        delivery,
    } = out
    {
        if let Some(g) = gathered {
            if g.stream == stream && g.consumer == consumer && g.deliveries.len() < CONSUMED_BATCH {
                g.deliveries.push(delivery);
                return Ok(());
            }
        }
        feed_gathered(writer, gathered)?;
        *gathered = Some(Gathered {
            stream,
            consumer,
            deliveries: vec![delivery],
        });
        return Ok(());
    }
    feed_gathered(writer, gathered)?;
    match out {
        Out::Frame(frame) => writer.feed(frame),
        Out::Consumed { .. } => Ok(()),
    }
}

fn feed_gathered(
    writer: &mut FrameWriter,
    gathered: &mut Option<Gathered>,
) -> std::result::Result<(), crate::protocol::frame::FrameError> {
    match gathered.take() {
        Some(g) => writer.feed(Frame::new(
            Kind::Request,
            g.stream,
            encode(&Request::Consumed(g.consumer, g.deliveries)),
        )),
        None => Ok(()),
    }
}

async fn write_loop(
    mut writer: FrameWriter,
    mut frames: mpsc::UnboundedReceiver<Out>,
    heartbeat: Duration,
    ended: CancellationToken,
) {
    let mut idle = tokio::time::interval(heartbeat);
    idle.tick().await;
    let ended = ended.cancelled();
    tokio::pin!(ended);
    let mut gathered = None;
    loop {
        let first = tokio::select! {
            () = &mut ended => return,
            out = frames.recv() => out,
            _ = idle.tick() => Some(Out::Frame(Frame::heartbeat())),
        };
        let Some(first) = first else { return };
        if feed(&mut writer, &mut gathered, first).is_err() {
            return;
        }
        // Everything queued meanwhile goes out in the same write.
        while !writer.is_full() {
            let Ok(out) = frames.try_recv() else { break };
            if feed(&mut writer, &mut gathered, out).is_err() {
                return;
            }
        }
        if feed_gathered(&mut writer, &mut gathered).is_err() || writer.flush().await.is_err() {
            return;
        }
        idle.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Consecutive hand-overs of one stream go out as one `Consumed`; a request between them,
    /// or another stream's hand-over, starts a new one, so requests keep their order.
    #[tokio::test]
    async fn hand_overs_are_gathered_per_stream_in_order() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let mut writer = FrameWriter::new(Box::new(a), 1 << 20);
        let mut gathered = None;
        let c = |stream, delivery| Out::Consumed {
            stream,
            consumer: 9,
            delivery,
        };
        let settle = Frame::new(Kind::Request, 50, encode(&Request::Settle(3, false)));
        for out in [
            c(7, 1),
            c(7, 2),
            Out::Frame(settle),
            c(7, 4),
            c(8, 5),
            c(8, 6),
        ] {
            feed(&mut writer, &mut gathered, out).unwrap();
        }
        feed_gathered(&mut writer, &mut gathered).unwrap();
        writer.flush().await.unwrap();
        drop(writer);
        let mut reader = FramedRead::new(b, FrameCodec::new(1 << 20));
        let mut got = Vec::new();
        while let Some(frame) = reader.next().await {
            let frame = frame.unwrap();
            got.push((
                frame.id,
                decode::<Request>(&frame.payload, "request").unwrap(),
            ));
        }
        assert_eq!(
            got,
            vec![
                (7, Request::Consumed(9, vec![1, 2])),
                (50, Request::Settle(3, false)),
                (7, Request::Consumed(9, vec![4])),
                (8, Request::Consumed(9, vec![5, 6])),
            ]
        );
    }
}
