//! One client connection: the handshake, then a read loop that hands each request to its
//! session's worker (requests of one session run in order, sessions run side by side),
//! waiting requests (receives) to tasks of their own, and a writer that batches replies into
//! as few socket writes as the load allows.
//!
//! A send is stored when its session's worker takes it, and the worker goes on with the next
//! request at once; the send's reply waits for its durability (the journal's group commit on a
//! durable server), so a client pipelining persistent sends shares one `fdatasync` among many
//! of them. A session's replies still go out in the order of its requests ([`Replies`]): a
//! receipt, a `Sync` or a commit is answered only after every earlier send of the session.
//! Waiting replies hold their request's in-flight permit, so a peer that never reads its
//! replies stops the server reading its requests, as before.

use courier_api::{
    Browser, Connection, ConnectionFactory, Consumer, ConsumerOptions, Delivery, Destination,
    Error, Message, Producer, Result, SendOptions, SendReceipt, Session,
};
use futures::{FutureExt, StreamExt};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Shared;
use crate::protocol::batch::FrameWriter;
use crate::protocol::frame::{Frame, FrameCodec, Kind, HANDSHAKE_MAX_FRAME, HEADER_LEN};
use crate::protocol::ops::{
    decode, encode, mode_from_u8, ConsumerKind, Delivered, Hello, Reply, Request, Wait, Welcome,
    WireCapabilities, WireError, MAGIC,
};
use crate::protocol::transport::{split, split_tcp, ReadHalf, WriteHalf, TLS_HANDSHAKE_RECORD};
use crate::protocol::VERSIONS;

/// The frame reader of a connection.
type Reader = FramedRead<ReadHalf, FrameCodec>;
/// The frame writer of a connection.
type Writer = FrameWriter;

/// Frames waiting for the writer; the read loop stops when it is full.
const OUT_QUEUE: usize = 1024;
/// Requests queued for one session's worker.
const SESSION_QUEUE: usize = 256;

/// The api objects a connection holds, by handle.
#[derive(Default)]
struct Handles {
    next: u64,
    sessions: HashMap<u64, SessionEntry>,
    producers: HashMap<u64, (u64, Arc<dyn Producer>)>,
    consumers: HashMap<u64, (u64, Arc<dyn Consumer>)>,
    browsers: HashMap<u64, (u64, Arc<dyn Browser>)>,
    deliveries: HashMap<u64, Delivery>,
}

impl Handles {
    fn count(&self) -> usize {
        self.sessions.len() + self.producers.len() + self.consumers.len() + self.browsers.len()
    }
}

struct SessionEntry {
    queue: mpsc::Sender<(u64, Request, OwnedSemaphorePermit)>,
}

/// A connection after its handshake.
struct Conn {
    connection: Box<dyn Connection>,
    /// What the connection's user may read of the broker's statistics ([`Request::Stats`]).
    stats: crate::embedded::StatsAccess,
    user: String,
    peer: SocketAddr,
    handles: Mutex<Handles>,
    out: mpsc::Sender<Frame>,
    /// Receives in progress.
    tasks: TaskTracker,
    /// Session workers.
    workers: TaskTracker,
    /// Set once the connection ends: replies are dropped, not sent.
    discard: AtomicBool,
    max_handles: usize,
    /// Receives in progress, by correlation id, for [`Request::Cancel`].
    receiving: Mutex<HashMap<u64, CancellationToken>>,
    /// Message streams ([`Request::Credit`]) by consumer: their credit and stop token.
    pumps: Mutex<HashMap<u64, Pump>>,
}

/// A consumer's message stream: credit, and the token that ends it.
struct Pump {
    credit: Arc<Semaphore>,
    stop: CancellationToken,
}

/// Serves one accepted socket until it closes, is severed, or the server shuts down.
pub(super) async fn serve(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    sever: CancellationToken,
) {
    let config = &shared.config;
    let deadline = Instant::now() + config.handshake_timeout;
    let secured = tokio::select! {
        () = sever.cancelled() => return,
        () = shared.shutdown.cancelled() => return,
        secured = tokio::time::timeout_at(deadline, secure(config, stream, peer)) => secured,
    };
    let (rd, wr, plaintext_refused) = match secured {
        Err(_) => {
            tracing::warn!(target: "courier::audit", %peer, "connection closed: no handshake in time");
            return;
        }
        Ok(None) => return,
        Ok(Some(transport)) => transport,
    };
    let mut reader = FramedRead::new(rd, FrameCodec::new(HANDSHAKE_MAX_FRAME));
    let mut writer = FrameWriter::new(wr, usize::MAX >> 1);
    let first = tokio::select! {
        () = sever.cancelled() => return,
        () = shared.shutdown.cancelled() => return,
        first = tokio::time::timeout_at(deadline, reader.next()) => first,
    };
    let hello = match first {
        Err(_) => {
            tracing::warn!(%peer, "connection closed: no handshake in time");
            return;
        }
        Ok(None) => return,
        Ok(Some(Err(e))) => {
            refuse(&mut writer, peer, "-", Error::protocol(e.to_string())).await;
            return;
        }
        Ok(Some(Ok(frame))) if frame.kind == Kind::Hello => {
            match decode::<Hello>(&frame.payload, "hello") {
                Ok(hello) if hello.magic == MAGIC => hello,
                Ok(_) => {
                    refuse(&mut writer, peer, "-", Error::protocol("bad magic")).await;
                    return;
                }
                Err(e) => {
                    refuse(&mut writer, peer, "-", e).await;
                    return;
                }
            }
        }
        Ok(Some(Ok(frame))) => {
            let e = Error::protocol(format!("expected hello, got {:?}", frame.kind));
            refuse(&mut writer, peer, "-", e).await;
            return;
        }
    };
    let user = hello
        .credentials
        .as_ref()
        .map_or_else(|| "<anonymous>".to_owned(), |(u, _)| u.clone());
    if plaintext_refused {
        let e = Error::authentication(
            "this server accepts TLS connections only (use courier+tls:// or ?tls=true)",
        );
        refuse(&mut writer, peer, &user, e).await;
        return;
    }
    let Some(version) = VERSIONS
        .iter()
        .rev()
        .find(|v| hello.versions.contains(v))
        .copied()
    else {
        let e = Error::protocol(format!(
            "no common protocol version (server speaks {VERSIONS:?}, client {:?})",
            hello.versions
        ));
        refuse(&mut writer, peer, &user, e).await;
        return;
    };
    let factory = &shared.factory;
    let credentials = hello.credentials.as_ref();
    let connected = factory
        .connect_embedded(credentials.map(|(u, p)| (u.as_str(), p.as_str())))
        .await;
    let connection = match connected {
        Ok(c) => {
            // The writer syncs the store before a delivery leaves (see `write_loop`).
            let unsynced = c.defer_delivery_sync();
            let stats = c.stats_access();
            (Box::new(c) as Box<dyn Connection>, stats, unsynced)
        }
        Err(e) => {
            refuse(&mut writer, peer, &user, e).await;
            return;
        }
    };
    let (connection, stats, unsynced) = connection;
    if let Some(id) = &hello.client_id {
        if let Err(e) = connection.set_client_id(id).await {
            refuse(&mut writer, peer, &user, e).await;
            return;
        }
    }
    let heartbeat = if hello.heartbeat_ms == 0 {
        config.heartbeat
    } else {
        Duration::from_millis(hello.heartbeat_ms.clamp(100, 3_600_000))
    };
    let caps = factory.capabilities();
    let max_frame = caps
        .max_message_size
        .unwrap_or(64 << 20)
        .saturating_add(64 * 1024 + HEADER_LEN);
    let mut wire_caps = WireCapabilities::from_caps(&caps);
    wire_caps.max_message_size = caps.max_message_size.map(|n| n as u64);
    let welcome = Welcome::Accepted {
        version,
        server_version: env!("CARGO_PKG_VERSION").to_owned(),
        capabilities: wire_caps,
        heartbeat_ms: u64::try_from(heartbeat.as_millis()).unwrap_or(u64::MAX),
        max_frame: max_frame as u64,
    };
    if writer
        .send(Frame::new(Kind::Welcome, 0, encode(&welcome)))
        .await
        .is_err()
    {
        return;
    }
    tracing::info!(%peer, %user, version, "connection authenticated");
    reader.decoder_mut().set_max(max_frame);
    writer.set_max(max_frame);

    let (out, out_rx) = mpsc::channel(OUT_QUEUE);
    // Raised by the embedded layer when it hands over a delivery whose count is recorded
    // and not yet durable.
    let sync = (factory.broker().clone(), unsynced);
    let conn = Arc::new(Conn {
        connection,
        stats,
        user,
        peer,
        handles: Mutex::new(Handles::default()),
        out,
        tasks: TaskTracker::new(),
        workers: TaskTracker::new(),
        discard: AtomicBool::new(false),
        max_handles: config.max_handles,
        receiving: Mutex::new(HashMap::new()),
        pumps: Mutex::new(HashMap::new()),
    });
    let write_done = CancellationToken::new();
    let writing = tokio::spawn(write_loop(
        writer,
        out_rx,
        heartbeat,
        sync,
        write_done.clone(),
    ));
    let permits = Arc::new(Semaphore::new(config.max_in_flight));
    let outcome = read_loop(&conn, &mut reader, heartbeat, &permits, &sever, &shared).await;
    let severed = sever.is_cancelled();
    if let Err(e) = &outcome {
        tracing::warn!(peer = %conn.peer, user = %conn.user, error = %e, "connection closed: protocol error");
        let _ = conn
            .out
            .try_send(Frame::new(Kind::Error, 0, encode(&WireError::from(e))));
    }
    // Stop taking work. The session workers finish the requests they already read and
    // their replies go out (briefly when severed: a request blocked there is cut like the
    // rest); then nothing more reaches the peer, and the broker closes the connection,
    // which rolls back open transactions and redelivers unacknowledged messages.
    let sessions: Vec<_> = std::mem::take(&mut conn.handles.lock().sessions)
        .into_values()
        .collect();
    drop(sessions);
    conn.workers.close();
    let grace = if severed {
        Duration::from_millis(100)
    } else {
        Duration::from_secs(5)
    };
    let _ = tokio::time::timeout(grace, conn.workers.wait()).await;
    conn.discard.store(true, Ordering::Release);
    for (_, pump) in std::mem::take(&mut *conn.pumps.lock()) {
        pump.stop.cancel();
    }
    write_done.cancel();
    let mut writing = writing;
    if tokio::time::timeout(Duration::from_secs(1), &mut writing)
        .await
        .is_err()
    {
        writing.abort();
    }
    let _ = conn.connection.close().await;
    conn.tasks.close();
    conn.tasks.wait().await;
    conn.workers.wait().await;
    *conn.handles.lock() = Handles::default();
    tracing::debug!(peer = %conn.peer, "connection ended");
}

/// The byte stream of an accepted socket: TLS when the server has TLS and the client opens
/// with a TLS record, else plaintext — with `true` when plaintext is to be refused (after the
/// client's `Hello`, so the refusal reaches it as a `Welcome::Refused`). `None` when the peer
/// left or failed its TLS handshake (audited).
async fn secure(
    config: &super::ServerConfig,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<(ReadHalf, WriteHalf, bool)> {
    let Some(tls) = &config.tls else {
        let (rd, wr) = split_tcp(stream);
        return Some((rd, wr, false));
    };
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(1..) => {}
        _ => return None,
    }
    if first[0] != TLS_HANDSHAKE_RECORD {
        let (rd, wr) = split_tcp(stream);
        return Some((rd, wr, !tls.plaintext));
    }
    match tls.acceptor.accept(stream).await {
        Ok(session) => {
            let (rd, wr) = split(session);
            Some((rd, wr, false))
        }
        Err(e) => {
            tracing::warn!(target: "courier::audit", %peer, error = %e, "connection refused: TLS handshake failed");
            None
        }
    }
}

/// Answers a refused handshake and logs it (the audit trail of refused logins).
async fn refuse(writer: &mut Writer, peer: SocketAddr, user: &str, error: Error) {
    tracing::warn!(target: "courier::audit", %peer, %user, error = %error, "connection refused");
    let refused = Welcome::Refused(WireError::from(&error));
    let _ = writer
        .send(Frame::new(Kind::Welcome, 0, encode(&refused)))
        .await;
}

/// Writes frames as they come: every frame queued by the time the writer is free goes out
/// in one batch (one vectored write), and a heartbeat when idle.
///
/// `sync` is the broker and the flag the embedded layer raises when it hands over a
/// delivery whose count is recorded but not yet durable (a durable broker). A batch written
/// after the flag went up first waits until the store has settled every record taken so
/// far, that count among them: a message is not seen outside the process before a crash
/// would bring it back with `redelivered` set. Deliveries queued while the writer waits
/// share the next wait, so a busy stream costs about one `fdatasync` per batch, not one
/// per message.
async fn write_loop(
    mut writer: Writer,
    mut frames: mpsc::Receiver<Frame>,
    heartbeat: Duration,
    sync: (crate::Broker, Arc<AtomicBool>),
    done: CancellationToken,
) {
    let synced = || async {
        let (broker, unsynced) = &sync;
        if unsynced.swap(false, Ordering::AcqRel) {
            broker.synced().await;
        }
    };
    let mut idle = tokio::time::interval(heartbeat);
    idle.tick().await;
    loop {
        let first = tokio::select! {
            frame = frames.recv() => frame,
            _ = idle.tick() => Some(Frame::heartbeat()),
            () = done.cancelled() => {
                // Drain what is queued, then end.
                while let Ok(frame) = frames.try_recv() {
                    if writer.feed(frame).is_err() { return; }
                    if writer.is_full() {
                        synced().await;
                        if writer.flush().await.is_err() { return; }
                    }
                }
                synced().await;
                let _ = writer.flush().await;
                return;
            }
        };
        let Some(first) = first else {
            synced().await;
            let _ = writer.flush().await;
            return;
        };
        if writer.feed(first).is_err() {
            return;
        }
        while !writer.is_full() {
            let Ok(frame) = frames.try_recv() else { break };
            if writer.feed(frame).is_err() {
                return;
            }
        }
        synced().await;
        if writer.flush().await.is_err() {
            return;
        }
        idle.reset();
    }
}

/// Reads requests until the peer closes, goes silent, breaks the protocol or the
/// connection is severed. `Err` for a protocol error.
async fn read_loop(
    conn: &Arc<Conn>,
    reader: &mut Reader,
    heartbeat: Duration,
    permits: &Arc<Semaphore>,
    sever: &CancellationToken,
    shared: &Shared,
) -> Result<()> {
    // Made once, not per frame: each `cancelled()` polled registers with its token.
    let severed = sever.cancelled();
    let shutdown = shared.shutdown.cancelled();
    tokio::pin!(severed, shutdown);
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => tokio::select! {
                () = &mut severed => return drain_arrived(conn, reader, permits).await,
                () = &mut shutdown => return Ok(()),
                permit = permits.clone().acquire_owned() => permit.map_err(|_| Error::illegal_state("closed"))?,
            },
        };
        let next = tokio::select! {
            () = &mut severed => return drain_arrived(conn, reader, permits).await,
            () = &mut shutdown => return Ok(()),
            next = tokio::time::timeout(heartbeat * 3, reader.next()) => next,
        };
        let frame = match next {
            Err(_) => {
                tracing::warn!(peer = %conn.peer, user = %conn.user, "connection closed: peer silent past three heartbeats");
                return Ok(());
            }
            Ok(None) => return Ok(()),
            Ok(Some(Err(e))) => return Err(Error::protocol(e.to_string())),
            Ok(Some(Ok(frame))) => frame,
        };
        match frame.kind {
            Kind::Heartbeat => continue,
            Kind::Request => {}
            Kind::Error => return Ok(()),
            other => {
                return Err(Error::protocol(format!(
                    "unexpected {other:?} frame after the handshake"
                )))
            }
        }
        let request: Request = decode(&frame.payload, "request")?;
        let closing = matches!(request, Request::Close);
        dispatch(conn, frame.id, request, permit).await;
        if closing {
            return Ok(());
        }
    }
}

/// A severed connection takes the requests that reached the server before the cut (those
/// readable without waiting), as a network failing mid-stream leaves them, then ends.
async fn drain_arrived(
    conn: &Arc<Conn>,
    reader: &mut Reader,
    permits: &Arc<Semaphore>,
) -> Result<()> {
    use futures::FutureExt;
    while let Ok(permit) = permits.clone().try_acquire_owned() {
        let Some(Some(Ok(frame))) = reader.next().now_or_never() else {
            break;
        };
        if frame.kind != Kind::Request {
            continue;
        }
        let Ok(request) = decode::<Request>(&frame.payload, "request") else {
            break;
        };
        if matches!(request, Request::Close) {
            break;
        }
        dispatch(conn, frame.id, request, permit).await;
    }
    Ok(())
}

/// Sends the reply to request `id`.
async fn reply(conn: &Conn, id: u64, result: Result<Reply>) {
    let reply = match result {
        Ok(r) => r,
        Err(e) => {
            if matches!(e, Error::NotAuthorized(_)) {
                tracing::warn!(target: "courier::audit", peer = %conn.peer, user = %conn.user, error = %e, "operation refused");
            }
            Reply::Failed(WireError::from(&e))
        }
    };
    if !conn.discard.load(Ordering::Acquire) {
        let _ = conn
            .out
            .send(Frame::new(Kind::Reply, id, encode(&reply)))
            .await;
    }
}

fn closed(what: &str) -> Error {
    Error::illegal_state(format!("the {what} is closed"))
}

/// Routes one request: connection-level ones run here, in order; waiting ones (receives)
/// get a task; the rest go to their session's worker.
async fn dispatch(conn: &Arc<Conn>, id: u64, request: Request, permit: OwnedSemaphorePermit) {
    let session_of = |handles: &Handles, request: &Request| -> Option<u64> {
        Some(match request {
            Request::CloseSession(s)
            | Request::CreateProducer(s, _)
            | Request::Unsubscribe(s, _)
            | Request::CreateBrowser(s, _, _)
            | Request::CreateTemporary(s, _)
            | Request::DeleteTemporary(s, _)
            | Request::DeleteDestination(s, _)
            | Request::Commit(s)
            | Request::Rollback(s)
            | Request::Recover(s)
            | Request::Acknowledge(s)
            | Request::Sync(s) => *s,
            Request::CreateConsumer { session, .. } => *session,
            Request::CloseProducer(p) | Request::Send { producer: p, .. } => {
                handles.producers.get(p)?.0
            }
            Request::CloseConsumer(c) => handles.consumers.get(c)?.0,
            Request::CloseBrowser(b) => handles.browsers.get(b)?.0,
            _ => return None,
        })
    };
    match request {
        Request::SetClientId(client_id) => {
            let r = conn.connection.set_client_id(&client_id).await;
            reply(conn, id, r.map(|()| Reply::Done)).await;
        }
        Request::Start => {
            let r = conn.connection.start().await;
            reply(conn, id, r.map(|()| Reply::Done)).await;
        }
        Request::Stop => {
            let r = conn.connection.stop().await;
            reply(conn, id, r.map(|()| Reply::Done)).await;
        }
        Request::Close => {
            // Closing the connection ends pending receives (with none); their replies go
            // out before this one.
            let r = conn.connection.close().await;
            for (_, pump) in std::mem::take(&mut *conn.pumps.lock()) {
                pump.stop.cancel();
            }
            let sessions: Vec<_> = std::mem::take(&mut conn.handles.lock().sessions)
                .into_values()
                .collect();
            drop(sessions);
            conn.workers.close();
            conn.workers.wait().await;
            conn.tasks.close();
            conn.tasks.wait().await;
            reply(conn, id, r.map(|()| Reply::Done)).await;
        }
        Request::CreateSession(mode) => {
            let r = async {
                let mode = mode_from_u8(mode)?;
                if conn.handles.lock().count() >= conn.max_handles {
                    return Err(Error::ResourceLimit(format!(
                        "a connection holds at most {} sessions, producers, consumers and browsers",
                        conn.max_handles
                    )));
                }
                let session: Arc<dyn Session> =
                    Arc::from(conn.connection.create_session(mode).await?);
                let (tx, rx) = mpsc::channel(SESSION_QUEUE);
                let handle = {
                    let mut h = conn.handles.lock();
                    h.next += 1;
                    let handle = h.next;
                    h.sessions.insert(handle, SessionEntry { queue: tx });
                    handle
                };
                conn.workers
                    .spawn(session_worker(conn.clone(), handle, session, rx));
                Ok(Reply::Created(handle))
            }
            .await;
            reply(conn, id, r).await;
        }
        Request::Receive(consumer, _)
        | Request::ReceiveBody(consumer, _)
        | Request::ReceiveDelivery(consumer) => {
            let found = conn
                .handles
                .lock()
                .consumers
                .get(&consumer)
                .map(|c| c.1.clone());
            let Some(consumer) = found else {
                reply(conn, id, Err(closed("consumer"))).await;
                return;
            };
            let conn2 = conn.clone();
            let cancel = CancellationToken::new();
            conn.receiving.lock().insert(id, cancel.clone());
            conn.tasks.spawn(async move {
                // The embedded receive is cancel-safe: dropped while it waits, it takes no
                // message and passes its wakeup on to another waiting consumer.
                let r = tokio::select! {
                    r = receive(&conn2, consumer.as_ref(), request) => r,
                    () = cancel.cancelled() => Ok(Reply::Message(None)),
                };
                conn2.receiving.lock().remove(&id);
                reply(&conn2, id, r).await;
                drop(permit);
            });
        }
        Request::BrowseNext(browser) => {
            let found = conn
                .handles
                .lock()
                .browsers
                .get(&browser)
                .map(|c| c.1.clone());
            let r = match found {
                Some(b) => b.next().await.map(|m| Reply::Message(m.map(Delivered::of))),
                None => Err(closed("browser")),
            };
            reply(conn, id, r).await;
        }
        Request::Stats => reply(conn, id, conn.stats.read().map(Reply::Stats)).await,
        Request::Credit(consumer, n) => credit(conn, id, consumer, n, false, permit).await,
        Request::Stream(consumer, n) => credit(conn, id, consumer, n, true, permit).await,
        Request::Cancel(receive) => {
            if let Some(token) = conn.receiving.lock().get(&receive) {
                token.cancel();
            }
        }
        Request::Consumed(consumer, deliveries) => {
            consumed(conn, id, consumer, &deliveries, permit).await;
        }
        Request::Settle(delivery, ack) => {
            let held = conn.handles.lock().deliveries.remove(&delivery);
            let r = match held {
                Some(d) if ack => d.acknowledge().await.map(|()| Reply::Done),
                Some(d) => {
                    drop(d);
                    Ok(Reply::Done)
                }
                None => Err(Error::illegal_state("no such delivery (already settled)")),
            };
            reply(conn, id, r).await;
        }
        request => {
            let queue = {
                let h = conn.handles.lock();
                session_of(&h, &request)
                    .and_then(|s| h.sessions.get(&s))
                    .map(|e| e.queue.clone())
            };
            match queue {
                Some(queue) => {
                    if let Err(mpsc::error::SendError((id, _, _))) =
                        queue.send((id, request, permit)).await
                    {
                        reply(conn, id, Err(closed("session"))).await;
                    }
                }
                None => {
                    let what = match request {
                        Request::CloseProducer(_) | Request::Send { .. } => "producer",
                        Request::CloseConsumer(_) => "consumer",
                        Request::CloseBrowser(_) => "browser",
                        _ => "session",
                    };
                    let closing = matches!(
                        request,
                        Request::CloseSession(_)
                            | Request::CloseProducer(_)
                            | Request::CloseConsumer(_)
                            | Request::CloseBrowser(_)
                    );
                    // Closing what is already closed is fine.
                    let r = if closing {
                        Ok(Reply::Done)
                    } else {
                        Err(closed(what))
                    };
                    reply(conn, id, r).await;
                }
            }
        }
    }
}

/// Acknowledges the stream deliveries the client handed over and grants the stream a
/// credit for each ([`Request::Consumed`]); no reply, as the client fires it. A handle
/// already settled is skipped (its `Settle` would have failed unseen); its credit still
/// counts, as the client's hand-over freed a place in its prefetch.
async fn consumed(
    conn: &Arc<Conn>,
    id: u64,
    consumer: u64,
    deliveries: &[u64],
    permit: OwnedSemaphorePermit,
) {
    if deliveries.is_empty() {
        return;
    }
    let held: Vec<Delivery> = {
        let mut h = conn.handles.lock();
        deliveries
            .iter()
            .filter_map(|d| h.deliveries.remove(d))
            .collect()
    };
    for d in held {
        if let Err(e) = d.acknowledge().await {
            tracing::debug!(peer = %conn.peer, error = %e, "a consumed delivery's acknowledgement failed");
        }
    }
    let n = u32::try_from(deliveries.len()).unwrap_or(u32::MAX);
    credit(conn, id, consumer, n, false, permit).await;
}

/// Grants credit to (or, with 0, ends) `consumer`'s message stream, starting it on the
/// first grant: a task that takes a held delivery per credit and sends it under `id`.
async fn credit(
    conn: &Arc<Conn>,
    id: u64,
    consumer: u64,
    n: u32,
    open: bool,
    permit: OwnedSemaphorePermit,
) {
    drop(permit);
    if n == 0 && !open {
        let pump = conn.pumps.lock().remove(&consumer);
        match pump {
            Some(pump) => pump.stop.cancel(),
            None => reply(conn, id, Ok(Reply::Delivery(None))).await,
        }
        return;
    }
    let n = n.min(courier_api::options::MAX_PREFETCH) as usize;
    let found = conn
        .handles
        .lock()
        .consumers
        .get(&consumer)
        .map(|c| c.1.clone());
    let Some(target) = found else {
        reply(conn, id, Ok(Reply::Delivery(None))).await;
        return;
    };
    let (credit, stop) = {
        let mut pumps = conn.pumps.lock();
        if !open {
            // Bounded: a stream never holds more than the largest prefetch beyond its
            // receives, whatever a peer grants. Credit for an ended stream is ignored.
            if let Some(pump) = pumps.get(&consumer) {
                if pump.credit.available_permits() < courier_api::options::MAX_PREFETCH as usize {
                    pump.credit.add_permits(n);
                }
            }
            return;
        }
        if let Some(old) = pumps.remove(&consumer) {
            old.stop.cancel();
        }
        let pump = Pump {
            credit: Arc::new(Semaphore::new(n)),
            stop: CancellationToken::new(),
        };
        let handles = (pump.credit.clone(), pump.stop.clone());
        pumps.insert(consumer, pump);
        handles
    };
    let conn2 = conn.clone();
    conn.tasks.spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                permit = credit.acquire() => match permit {
                    Ok(p) => p.forget(),
                    Err(_) => break,
                },
            }
            // The embedded receive is cancel-safe: stopped while waiting, it takes nothing.
            let delivery = tokio::select! {
                () = stop.cancelled() => break,
                d = target.receive_delivery() => d,
            };
            match delivery {
                Ok(Some(d)) => {
                    let message = Delivered::of(d.message().clone());
                    let handle = {
                        let mut h = conn2.handles.lock();
                        h.next += 1;
                        let handle = h.next;
                        h.deliveries.insert(handle, d);
                        handle
                    };
                    reply(&conn2, id, Ok(Reply::Delivery(Some((handle, message))))).await;
                }
                Ok(None) => break,
                Err(e) => {
                    reply(&conn2, id, Err(e)).await;
                    break;
                }
            }
        }
        {
            let mut pumps = conn2.pumps.lock();
            if pumps
                .get(&consumer)
                .is_some_and(|p| p.stop.is_cancelled() || Arc::ptr_eq(&p.credit, &credit))
            {
                pumps.remove(&consumer);
            }
        }
        reply(&conn2, id, Ok(Reply::Delivery(None))).await;
    });
}

/// A receive of any kind on `consumer`.
async fn receive(conn: &Conn, consumer: &dyn Consumer, request: Request) -> Result<Reply> {
    match request {
        Request::Receive(_, wait) => {
            let m = match wait {
                Wait::NoWait => consumer.receive_no_wait().await?,
                Wait::Timeout(ns) => consumer.receive_timeout(Duration::from_nanos(ns)).await?,
                Wait::Forever => consumer.receive().await?,
            };
            Ok(Reply::Message(m.map(Delivered::of)))
        }
        Request::ReceiveBody(_, timeout) => {
            let body = consumer
                .receive_body(timeout.map(Duration::from_nanos))
                .await?;
            Ok(Reply::Body(body))
        }
        _ => {
            let Some(delivery) = consumer.receive_delivery().await? else {
                return Ok(Reply::Delivery(None));
            };
            let message = Delivered::of(delivery.message().clone());
            let handle = {
                let mut h = conn.handles.lock();
                h.next += 1;
                let handle = h.next;
                h.deliveries.insert(handle, delivery);
                handle
            };
            Ok(Reply::Delivery(Some((handle, message))))
        }
    }
}

/// Runs one session's requests in order; their replies go out in the same order.
async fn session_worker(
    conn: Arc<Conn>,
    handle: u64,
    session: Arc<dyn Session>,
    mut queue: mpsc::Receiver<(u64, Request, OwnedSemaphorePermit)>,
) {
    let mut replies = Replies::new(conn.clone());
    while let Some((id, request, permit)) = queue.recv().await {
        let closing = matches!(request, Request::CloseSession(_));
        let answer = match request {
            Request::Send {
                producer,
                destination,
                message,
                options,
            } => send(&conn, producer, destination, message, options.into()).await,
            request => Answer::Now(session_op(&conn, handle, session.as_ref(), request).await),
        };
        replies.answer(id, answer, permit).await;
        if closing {
            break;
        }
    }
}

/// Stores one send of `producer` without waiting for its durability: the answer is its
/// receipt, which resolves once the message is durable (at once when nothing is to wait for:
/// a non-persistent or transacted send, an in-memory broker, or a failed send).
async fn send(
    conn: &Conn,
    producer: u64,
    destination: Option<Destination>,
    message: Message,
    options: SendOptions,
) -> Answer {
    let found = conn
        .handles
        .lock()
        .producers
        .get(&producer)
        .map(|p| p.1.clone());
    let Some(producer) = found else {
        return Answer::Now(Err(closed("producer")));
    };
    // The embedded producer's pipelined send: stored (visible, in order) when it returns, its
    // receipt confirmed by the journal's ticket in send order, at most its window waiting.
    match producer
        .send_async_with(destination.as_ref(), message, &options)
        .await
    {
        Ok(receipt) => Answer::Later(receipt),
        Err(e) => Answer::Now(Err(e)),
    }
}

/// A session request's outcome: known now, or a send's once it is durable.
enum Answer {
    Now(Result<Reply>),
    Later(SendReceipt),
}

/// The reply of a send's outcome: the stamped header.
fn sent(outcome: Result<Message>) -> Result<Reply> {
    outcome.map(|m| Reply::Sent(m.header().clone()))
}

/// A reply waiting for its turn: the request's id, its answer, and its in-flight permit.
type Queued = (u64, Answer, OwnedSemaphorePermit);

/// One session's replies, in the order of its requests. A reply with nothing before it is
/// sent by the worker at once; one behind a send still waiting for durability goes (with its
/// permit) to the session's replying task, which sends each once its send is confirmed. The
/// queue needs no bound of its own: every entry holds an in-flight permit of the connection.
struct Replies {
    conn: Arc<Conn>,
    /// Replies handed to the replying task and not yet passed to the writer.
    waiting: Arc<AtomicUsize>,
    /// The replying task's queue, made on the first reply that has to wait.
    later: Option<mpsc::UnboundedSender<Queued>>,
}

impl Replies {
    fn new(conn: Arc<Conn>) -> Self {
        Replies {
            conn,
            waiting: Arc::new(AtomicUsize::new(0)),
            later: None,
        }
    }

    /// Sends the reply to request `id` now if nothing earlier waits and its outcome is
    /// known, else queues it behind the earlier ones.
    async fn answer(&mut self, id: u64, answer: Answer, permit: OwnedSemaphorePermit) {
        let answer = if self.waiting.load(Ordering::Acquire) == 0 {
            let now = match answer {
                Answer::Now(r) => Ok(r),
                Answer::Later(mut receipt) => match (&mut receipt).now_or_never() {
                    Some(outcome) => Ok(sent(outcome)),
                    None => Err(Answer::Later(receipt)),
                },
            };
            match now {
                Ok(r) => {
                    reply(&self.conn, id, r).await;
                    drop(permit);
                    return;
                }
                Err(answer) => answer,
            }
        } else {
            answer
        };
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let later = self.later.get_or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let task = reply_in_order(self.conn.clone(), self.waiting.clone(), rx);
            self.conn.workers.spawn(task);
            tx
        });
        // The task ends only once this sender is dropped, so it takes the reply; were it
        // gone, the reply is sent here, after its send's outcome.
        if let Err(mpsc::error::SendError((id, answer, permit))) = later.send((id, answer, permit))
        {
            let r = match answer {
                Answer::Now(r) => r,
                Answer::Later(receipt) => sent(receipt.await),
            };
            reply(&self.conn, id, r).await;
            drop(permit);
            self.waiting.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A session's replying task: each queued reply once its send's outcome is known, in order.
/// A receipt always resolves: with the journal's outcome, or in doubt when the store stopped.
async fn reply_in_order(
    conn: Arc<Conn>,
    waiting: Arc<AtomicUsize>,
    mut queue: mpsc::UnboundedReceiver<Queued>,
) {
    while let Some((id, answer, permit)) = queue.recv().await {
        let r = match answer {
            Answer::Now(r) => r,
            Answer::Later(receipt) => sent(receipt.await),
        };
        reply(&conn, id, r).await;
        drop(permit);
        waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

fn new_handle(conn: &Conn) -> Result<u64> {
    let mut h = conn.handles.lock();
    if h.count() >= conn.max_handles {
        return Err(Error::ResourceLimit(format!(
            "a connection holds at most {} sessions, producers, consumers and browsers",
            conn.max_handles
        )));
    }
    h.next += 1;
    Ok(h.next)
}

async fn session_op(
    conn: &Conn,
    handle: u64,
    session: &dyn Session,
    request: Request,
) -> Result<Reply> {
    match request {
        Request::CloseSession(_) => {
            let r = session.close().await;
            let mut h = conn.handles.lock();
            h.sessions.remove(&handle);
            h.producers.retain(|_, p| p.0 != handle);
            let mut pumps = conn.pumps.lock();
            h.consumers.retain(|id, c| {
                if c.0 == handle {
                    if let Some(pump) = pumps.remove(id) {
                        pump.stop.cancel();
                    }
                }
                c.0 != handle
            });
            drop(pumps);
            h.browsers.retain(|_, b| b.0 != handle);
            r.map(|()| Reply::Done)
        }
        Request::CreateProducer(_, destination) => {
            let id = new_handle(conn)?;
            let producer: Arc<dyn Producer> =
                Arc::from(session.create_producer(destination.as_ref()).await?);
            conn.handles.lock().producers.insert(id, (handle, producer));
            Ok(Reply::Created(id))
        }
        Request::CloseProducer(p) => {
            let producer = conn.handles.lock().producers.remove(&p);
            if let Some((_, producer)) = producer {
                producer.close().await?;
            }
            Ok(Reply::Done)
        }
        Request::CreateConsumer {
            kind,
            destination,
            name,
            selector,
            no_local,
            prefetch,
            ..
        } => {
            let id = new_handle(conn)?;
            let options = ConsumerOptions {
                selector,
                no_local,
                prefetch,
            };
            let name = name.unwrap_or_default();
            let consumer = match kind {
                ConsumerKind::Plain => session.create_consumer(&destination, options).await?,
                ConsumerKind::Durable => {
                    session
                        .create_durable_consumer(&destination, &name, options)
                        .await?
                }
                ConsumerKind::Shared => {
                    session
                        .create_shared_consumer(&destination, &name, options)
                        .await?
                }
                ConsumerKind::SharedDurable => {
                    session
                        .create_shared_durable_consumer(&destination, &name, options)
                        .await?
                }
            };
            conn.handles
                .lock()
                .consumers
                .insert(id, (handle, Arc::from(consumer)));
            Ok(Reply::Created(id))
        }
        Request::CloseConsumer(c) => {
            if let Some(pump) = conn.pumps.lock().remove(&c) {
                pump.stop.cancel();
            }
            let consumer = conn.handles.lock().consumers.remove(&c);
            if let Some((_, consumer)) = consumer {
                consumer.close().await?;
            }
            Ok(Reply::Done)
        }
        Request::Unsubscribe(_, name) => session.unsubscribe(&name).await.map(|()| Reply::Done),
        Request::CreateBrowser(_, queue, selector) => {
            let id = new_handle(conn)?;
            let browser = session.create_browser(&queue, selector.as_deref()).await?;
            conn.handles
                .lock()
                .browsers
                .insert(id, (handle, Arc::from(browser)));
            Ok(Reply::Created(id))
        }
        Request::CloseBrowser(b) => {
            let browser = conn.handles.lock().browsers.remove(&b);
            if let Some((_, browser)) = browser {
                browser.close().await?;
            }
            Ok(Reply::Done)
        }
        Request::CreateTemporary(_, topic) => {
            let d = if topic {
                session.create_temporary_topic().await?
            } else {
                session.create_temporary_queue().await?
            };
            Ok(Reply::Destination(d))
        }
        Request::DeleteTemporary(_, d) => session.delete_temporary(&d).await.map(|()| Reply::Done),
        Request::DeleteDestination(_, d) => {
            session.delete_destination(&d).await.map(|()| Reply::Done)
        }
        Request::Commit(_) => session.commit().await.map(|()| Reply::Done),
        Request::Rollback(_) => session.rollback().await.map(|()| Reply::Done),
        Request::Recover(_) => session.recover().await.map(|()| Reply::Done),
        Request::Acknowledge(_) => session.acknowledge().await.map(|()| Reply::Done),
        Request::Sync(_) => Ok(Reply::Done),
        other => Err(Error::protocol(format!(
            "request {other:?} is not a session's"
        ))),
    }
}
