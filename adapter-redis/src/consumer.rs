//! [`RedisConsumer`] and [`RedisBrowser`].
//!
//! A consumer without a prefetch holds nothing ahead of its receives: each receive runs the
//! take script, which marks the message in flight for this connection. With nothing to take
//! it waits for the destination's notification, the due time of its next delayed message,
//! the end of the connection, or its own timeout, whichever comes first, and takes again.
//!
//! A consumer with a prefetch `n` (its own, or the URL's `prefetch`) takes up to `n`
//! messages per script call (at most [`MAX_TAKE`]) and hands them over from a buffer, so a
//! busy consumer pays one round trip per batch. Buffered messages are held in Redis by this
//! connection like received ones, but not yet delivered: closing the consumer, and the
//! session's `recover`, `rollback` and `close`, and the connection's `stop`, give them back
//! uncounted (the next delivery is a first one, in order); a lost connection's go back as
//! everything it held does (its lease lapses, or the loss is seen and they are returned).
//! A buffered message that expires before it is handed over is dropped then.
//!
//! A consumer with a selector reads its destination's ready index in order, a page at a time,
//! evaluates the selector with the api's evaluator on each message, and takes the first
//! match by id (the take script takes it only if it is still ready, so two consumers never
//! take one message). On a subscription, a message its selector does not match is dropped
//! (the subscription exists only for that selector); on a queue it stays for others.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use courier_api::listener::{Delivery, Settle};
use courier_api::{
    spi, Browser, Consumer, ConsumerOptions, Destination, Error, InDoubtOperation, Message, Result,
    Selector, SessionMode,
};
use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::args::{self, Args};
use crate::connection::{Joined, Shared};
use crate::keys;
use crate::session::{Held, SessionShared};

/// How many ready messages a selector consumer or a browser reads per round trip.
const PAGE: usize = 100;

/// How many ready messages one call of the `index` operation indexes (see `equality_index`).
pub(crate) const INDEX_CHUNK: usize = 10_000;

/// Most messages one take brings into a consumer's buffer, whatever its prefetch: one
/// script call should not hold Redis for long.
pub const MAX_TAKE: usize = 1000;

/// One buffered take: a message and what its acknowledgement names, or the error of an
/// entry that could not be decoded (already removed), handed over in its place.
type Buffered = Result<(Message, Held)>;

/// The messages a consumer took ahead of its receives, in delivery order; the session
/// reaches it to give them back.
#[derive(Default)]
pub(crate) struct Prefetched {
    items: Mutex<VecDeque<Buffered>>,
}

impl Prefetched {
    /// Removes every buffered message, returning what to give back.
    pub fn drain(&self) -> Vec<Held> {
        self.items
            .lock()
            .drain(..)
            .filter_map(|item| item.ok().map(|(_, held)| held))
            .collect()
    }
}

/// The topic subscription a consumer reads.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub sub: String,
    pub owner: String,
    pub exclusive: bool,
    pub destroy: bool,
}

/// Leaves a subscription (destroying a non-durable one with no consumer left), or a queue
/// (`sub` empty).
pub(crate) async fn leave(conn: &Shared, joined: &Joined) -> Result<()> {
    conn.eval(
        &joined.root,
        Args::op("leave")
            .add(&joined.sub)
            .add(&joined.token)
            .add(if joined.destroy { 1 } else { 0 })
            .0,
        None,
    )
    .await
    .map(|_| ())
}

/// The first equality the selector requires of a property (`key = 'a'`, `key IN (…)`), as
/// typed index values; the destination then indexes that property (once, backfilled).
async fn equality_index(
    conn: &Shared,
    root: &str,
    base: &str,
    selector: &Selector,
) -> Result<Option<(String, Vec<String>)>> {
    let found = selector
        .required_equalities()
        .into_iter()
        .find_map(|(name, values)| {
            if name.starts_with("JMSPriority") || name == "JMSXDeliveryCount" {
                return None;
            }
            let typed: Option<Vec<String>> =
                values.iter().map(crate::fields::typed_value).collect();
            typed.map(|t| (name, t))
        });
    let Some((name, values)) = found else {
        return Ok(None);
    };
    // The messages already there are indexed INDEX_CHUNK per call, so that a deep queue's
    // backfill does not hold Redis (every client of it) for seconds in one script.
    loop {
        let done = conn
            .eval(
                root,
                Args::op("index").add(base).add(&name).add(INDEX_CHUNK).0,
                None,
            )
            .await?;
        if args::int(&done)? == 1 {
            return Ok(Some((name, values)));
        }
    }
}

/// Whether this connection has a consumer open on a destination root.
pub(crate) fn has_open_consumer(conn: &Shared, root: &str) -> bool {
    conn.consumers.lock().get(root).is_some_and(|n| *n > 0)
}

/// What one take found.
enum Taken {
    /// At least one message (or undecodable entry), in delivery order.
    Messages(VecDeque<Buffered>),
    /// Nothing now; the next delayed message is due then (ms), if any.
    Empty(Option<u64>),
}

/// A consumer on a Redis session.
pub struct RedisConsumer {
    session: Arc<SessionShared>,
    destination: Destination,
    selector_text: Option<String>,
    selector: Option<Selector>,
    /// The selector compiled to Lua, evaluated by the take script.
    lua: Option<String>,
    /// A property the selector requires equal to one of these typed values: the take script
    /// reads only that property's equality indexes.
    index: Option<(String, Vec<String>)>,
    root: String,
    base: String,
    /// The registration of this consumer on its queue or subscription, left when it closes.
    joined: Joined,
    /// Whether it reads a topic subscription (rather than a queue).
    subscribed: bool,
    notify: Arc<Notify>,
    closed: AtomicBool,
    wake: Notify,
    receiving: tokio::sync::Mutex<()>,
    /// How many messages a take may bring (1: no buffer).
    batch: usize,
    /// Messages taken ahead of receives.
    buffer: Arc<Prefetched>,
}

impl RedisConsumer {
    pub(crate) async fn open(
        session: Arc<SessionShared>,
        destination: &Destination,
        options: ConsumerOptions,
        subscription: Option<Subscription>,
    ) -> Result<RedisConsumer> {
        let conn = session.conn.clone();
        let selector_text = options.effective_selector().map(str::to_string);
        let selector = selector_text.as_deref().map(Selector::parse).transpose()?;
        if destination.is_temporary() && !conn.owns_temporary(destination) {
            return Err(Error::invalid_destination(
                destination.to_string(),
                "only the connection that created a temporary destination consumes from it",
            ));
        }
        let root = keys::root(destination);
        let notify = conn.watch(&root).await?;
        let token = format!("{}|{}", conn.id, uuid::Uuid::new_v4().simple());
        let subscribed = subscription.is_some();
        let (base, joined) = match subscription {
            None => {
                // The queue's consumers are registered there, so that a deletion (from any
                // connection) sees them.
                conn.eval(
                    &root,
                    Args::op("attach")
                        .add(&token)
                        .add(&conn.id)
                        .add(conn.lease_ms())
                        .0,
                    None,
                )
                .await?;
                let joined = Joined {
                    root: root.clone(),
                    sub: String::new(),
                    token,
                    destroy: false,
                };
                (root.clone(), joined)
            }
            Some(s) => {
                let nolocal = if options.no_local {
                    conn.id.clone()
                } else {
                    String::new()
                };
                let ok = conn
                    .eval(
                        &root,
                        Args::op("subscribe")
                            .add(&s.sub)
                            .add(&s.owner)
                            .add(&nolocal)
                            .add(&token)
                            .add(&conn.id)
                            .add(conn.lease_ms())
                            .add(if s.exclusive { 1 } else { 0 })
                            .0,
                        None,
                    )
                    .await?;
                if args::int(&ok)? != 1 {
                    return Err(Error::illegal_state(
                        "the durable subscription already has an active consumer",
                    ));
                }
                let joined = Joined {
                    root: root.clone(),
                    sub: s.sub.clone(),
                    token,
                    destroy: s.destroy,
                };
                (keys::subscription_base(&root, &s.sub), joined)
            }
        };
        conn.joined.lock().push(joined.clone());
        // Registered: a deletion of the destination from now on is refused, so its lease is
        // renewed again even if a deletion just before stopped that (`Shared::forget_root`).
        conn.lease_root(&root);
        let index = match &selector {
            Some(selector) => match equality_index(&conn, &root, &base, selector).await {
                Ok(index) => index,
                Err(e) => {
                    conn.joined.lock().retain(|j| j.token != joined.token);
                    let _ = leave(&conn, &joined).await;
                    return Err(e);
                }
            },
            None => None,
        };
        *conn.consumers.lock().entry(root.clone()).or_default() += 1;
        let prefetch = options.prefetch.or(conn.config.prefetch).unwrap_or(0) as usize;
        let batch = if selector.is_some() {
            1
        } else {
            prefetch.clamp(1, MAX_TAKE)
        };
        let buffer = Arc::new(Prefetched::default());
        if batch > 1 {
            session.add_prefetched(Arc::downgrade(&buffer));
        }
        Ok(RedisConsumer {
            session,
            destination: destination.clone(),
            selector_text,
            lua: selector.as_ref().map(Selector::to_lua),
            index,
            selector,
            root,
            base,
            joined,
            subscribed,
            notify,
            closed: AtomicBool::new(false),
            wake: Notify::new(),
            receiving: tokio::sync::Mutex::new(()),
            batch,
            buffer,
        })
    }

    fn conn(&self) -> &Shared {
        &self.session.conn
    }

    /// One attempt to take a message for this consumer.
    async fn take(&self) -> Result<Taken> {
        let conn = self.conn();
        let (max, dlq) = conn.dead_letter(&self.root);
        let (Some(selector), Some(source)) = (&self.selector, &self.lua) else {
            let acks = self.session.pending_for(&self.root).await?;
            return self.take_id(max, &dlq, "", acks, self.batch).await;
        };
        self.session.flush_ack().await?;
        let mut after = "-inf".to_string();
        loop {
            let reply = args::array(
                conn.eval(
                    &self.root,
                    Args::op("take_matching")
                        .add(&self.base)
                        .add(&conn.id)
                        .add(conn.now())
                        .add(conn.lease_ms())
                        .add(max)
                        .add(&dlq)
                        .add(source)
                        .add(&after)
                        .add(if self.subscribed { 1 } else { 0 })
                        .add(self.index.as_ref().map_or("", |(name, _)| name.as_str()))
                        .extend(self.index.iter().flat_map(|(_, values)| values.iter()))
                        .0,
                    None,
                )
                .await?,
            )?;
            if reply.first().map(args::int).transpose()? != Some(2) {
                return self.taken(reply).await;
            }
            // Lua could not decide (64-bit arithmetic beyond 2^53): the api's evaluator does.
            let (Some(id), Some(score), Some(encoded)) = (reply.get(1), reply.get(2), reply.get(3))
            else {
                return Err(Error::protocol("an undecided reply without its message"));
            };
            let id = args::text(id)?;
            after = args::text(score)?;
            let message = Message::decode(args::bytes(encoded)?)?;
            if selector.matches(&message) {
                if let taken @ Taken::Messages(_) =
                    self.take_id(max, &dlq, &id, Vec::new(), 1).await?
                {
                    return Ok(taken);
                }
            } else if self.subscribed {
                conn.eval(
                    &self.root,
                    Args::op("drop").add(&self.base).add(&id).0,
                    None,
                )
                .await?;
            }
        }
    }

    /// Takes up to `n` ready messages (or the one `want` names), first acknowledging `acks`
    /// (held messages of this destination) in the same script.
    ///
    /// The bodies do not pass through Lua: the script (`take_ids`) takes and counts the
    /// messages and leaves their ids in `R:t`, and a `SORT R:t BY nosort GET R:b:*` in the
    /// same `MULTI` reads their encoded messages (`R:b:<id>`). (A root with a `*` cannot be a
    /// `SORT` pattern: its takes read the bodies in the script.)
    async fn take_id(
        &self,
        max: u32,
        dlq: &str,
        want: &str,
        acks: Vec<Held>,
        n: usize,
    ) -> Result<Taken> {
        let conn = self.conn();
        let direct = want.is_empty() && !self.root.contains('*');
        let args = Args::op(if direct { "take_ids" } else { "take" })
            .add(&self.base)
            .add(&conn.id)
            .add(conn.now())
            .add(conn.lease_ms())
            .add(max)
            .add(dlq)
            .add(want)
            .add(n)
            .extend(acks.into_iter().flat_map(|h| [h.base, h.id]))
            .0;
        if !direct {
            let reply = args::array(conn.eval(&self.root, args, None).await?)?;
            return self.taken(reply).await;
        }
        let taken = format!("{}:t", self.root);
        let mut sort = redis::cmd("SORT");
        sort.arg(&taken)
            .arg("BY")
            .arg("nosort")
            .arg("GET")
            .arg(format!("{}:b:*", self.root));
        let mut clear = redis::cmd("DEL");
        clear.arg(&taken);
        let (reply, mut after) = conn
            .eval_atomic(&self.root, &[], args, &[sort, clear], None)
            .await?;
        let reply = args::array(reply)?;
        if reply.first().map(args::int).transpose()? != Some(1) {
            return self.taken(reply).await;
        }
        let mut bodies = args::array(after.swap_remove(0))?;
        let pairs = &reply[1..];
        if pairs.len() != 2 * bodies.len() {
            return Err(Error::protocol("a take's ids and bodies do not match"));
        }
        // A message stored by a build before the bodies left the hashes has no body key
        // (SORT's GET answers nil): its body is its hash's field `e`, read for those ids
        // only. They are held by this connection now, so nothing removes them meanwhile.
        let old: Vec<usize> = (0..bodies.len())
            .filter(|&k| matches!(bodies[k], redis::Value::Nil))
            .collect();
        if !old.is_empty() {
            let mut pipe = redis::pipe();
            for &k in &old {
                let id = args::text(&pairs[2 * k])?;
                pipe.cmd("HGET")
                    .arg(format!("{}:m:{id}", self.root))
                    .arg("e");
            }
            let mut cmd = conn.cmd.clone();
            let found: Vec<redis::Value> = pipe
                .query_async(&mut cmd)
                .await
                .map_err(|e| conn.fail(e, None))?;
            for (k, body) in old.into_iter().zip(found) {
                bodies[k] = body;
            }
        }
        // As the script with bodies answers: {1, id, encoded, count, ...}.
        let mut whole = Vec::with_capacity(1 + 3 * bodies.len());
        whole.push(redis::Value::Int(1));
        for (pair, body) in pairs.chunks(2).zip(bodies) {
            whole.push(pair[0].clone());
            whole.push(body);
            whole.push(pair[1].clone());
        }
        self.taken(whole).await
    }

    /// Reads a take reply: {1, [id, encoded, count]+} or {0, next due}.
    async fn taken(&self, reply: Vec<redis::Value>) -> Result<Taken> {
        if reply.first().map(args::int).transpose()? != Some(1) {
            let due = reply.get(1).map(args::int).transpose()?.unwrap_or(-1);
            return Ok(Taken::Empty(u64::try_from(due).ok()));
        }
        let entries = &reply[1..];
        if entries.is_empty() || !entries.len().is_multiple_of(3) {
            return Err(Error::protocol("a take reply without its messages"));
        }
        let mut out = VecDeque::with_capacity(entries.len() / 3);
        let mut undecodable = Vec::new();
        for entry in entries.chunks(3) {
            let [id, encoded, count] = entry else {
                return Err(Error::protocol("a take reply of the wrong length"));
            };
            let held = Held {
                root: self.root.clone(),
                base: self.base.clone(),
                id: args::text(id)?,
            };
            let count = args::int(count)?;
            match Message::decode(args::bytes(encoded)?) {
                Ok(mut message) => {
                    let header = spi::header_mut(&mut message);
                    header.delivery_count = u32::try_from(count).unwrap_or(u32::MAX).max(1);
                    header.redelivered = count > 1;
                    spi::mark_received(&mut message);
                    out.push_back(Ok((message, held)));
                }
                Err(e) => {
                    // An undecodable entry is removed rather than blocking the destination;
                    // its receive reports why.
                    undecodable.push(held);
                    out.push_back(Err(e));
                }
            }
        }
        if !undecodable.is_empty() {
            if let Err(e) = self
                .session
                .commit_ops(&[], &undecodable, InDoubtOperation::Acknowledge)
                .await
            {
                let good: Vec<Held> = out
                    .into_iter()
                    .filter_map(|i| i.ok().map(|(_, h)| h))
                    .collect();
                let _ = self.session.release_undelivered(good).await;
                return Err(e);
            }
        }
        Ok(Taken::Messages(out))
    }

    /// The first of a take's messages; the rest go to the buffer.
    fn first_of(&self, mut taken: VecDeque<Buffered>) -> Option<Buffered> {
        let first = taken.pop_front();
        if !taken.is_empty() {
            self.buffer.items.lock().extend(taken);
        }
        first
    }

    /// The next buffered message still to hand over; expired ones are dropped on the way.
    async fn next_buffered(&self) -> Result<Option<Buffered>> {
        loop {
            let Some(item) = self.buffer.items.lock().pop_front() else {
                return Ok(None);
            };
            let expired = matches!(&item, Ok((m, _)) if {
                let expiration = m.header().expiration;
                expiration > 0 && expiration <= self.conn().now()
            });
            match item {
                Ok((_, held)) if expired => {
                    self.session
                        .commit_ops(&[], &[held], InDoubtOperation::Acknowledge)
                        .await?;
                }
                item => return Ok(Some(item)),
            }
        }
    }

    /// Gives back what the buffer holds.
    async fn return_buffer(&self) -> Result<()> {
        let held = self.buffer.drain();
        if held.is_empty() {
            return Ok(());
        }
        self.session.release_undelivered(held).await
    }

    /// Settles a message about to be handed to the application: acknowledged now in the
    /// automatic modes, kept for the session's acknowledge or commit otherwise. False when
    /// the message was no longer held (this connection's lease lapsed and it went to another
    /// consumer): it is then not handed over, so it is not delivered twice.
    async fn settle(&self, held: Held) -> Result<bool> {
        match self.session.mode {
            SessionMode::AutoAcknowledge | SessionMode::DupsOkAcknowledge => {
                self.session.defer_ack(held).await?;
                Ok(true)
            }
            SessionMode::ClientAcknowledge | SessionMode::Transacted => {
                self.session.held.lock().push(held);
                Ok(true)
            }
        }
    }

    /// Receives and settles.
    async fn receive_settled(
        &self,
        deadline: Option<Instant>,
        no_wait: bool,
    ) -> Result<Option<Message>> {
        loop {
            match self.receive_until(deadline, no_wait).await? {
                Some((message, held)) => {
                    if self.settle(held).await? {
                        return Ok(Some(message));
                    }
                }
                None => return Ok(None),
            }
        }
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.session.is_closed()
    }

    /// Receives with an optional deadline; `no_wait` looks once.
    async fn receive_until(
        &self,
        deadline: Option<Instant>,
        no_wait: bool,
    ) -> Result<Option<(Message, Held)>> {
        self.session.check()?;
        if self.is_closed() {
            return Err(Error::illegal_state("the consumer is closed"));
        }
        let _one = self.receiving.lock().await;
        loop {
            if self.is_closed() {
                return Ok(None);
            }
            self.session.check()?;
            let conn = self.conn();
            let wake = self.wake.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let mut next_due = None;
            if conn.started() {
                let guard = conn.delivering.read().await;
                if conn.started() && !self.is_closed() {
                    if let Some(item) = self.next_buffered().await? {
                        return item.map(Some);
                    }
                    match self.take().await? {
                        Taken::Messages(taken) => {
                            if let Some(item) = self.first_of(taken) {
                                return item.map(Some);
                            }
                        }
                        Taken::Empty(due) => next_due = due,
                    }
                }
                drop(guard);
            }
            if no_wait {
                return Ok(None);
            }
            let now_ms = conn.now();
            let due_in = next_due.map(|d| Duration::from_millis(d.saturating_sub(now_ms) + 1));
            let wait_until = match (deadline, due_in) {
                (Some(d), Some(due)) => Some(d.min(Instant::now() + due)),
                (Some(d), None) => Some(d),
                (None, Some(due)) => Some(Instant::now() + due),
                (None, None) => None,
            };
            let sleep = async {
                match wait_until {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut notified => {}
                _ = &mut wake => {}
                _ = sleep => {}
                e = conn.ended() => {
                    if conn.is_closed() {
                        return Ok(None);
                    }
                    return Err(e);
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                // One last look, as a receive that timed out at the moment a message came.
                if conn.started() && !self.is_closed() {
                    let _guard = conn.delivering.read().await;
                    if let Taken::Messages(taken) = self.take().await? {
                        if let Some(item) = self.first_of(taken) {
                            return item.map(Some);
                        }
                    }
                }
                return Ok(None);
            }
        }
    }

    async fn close_inner(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.wake.notify_waiters();
        if self.session.conn.check().is_ok() {
            self.session.flush_ack().await?;
            self.return_buffer().await?;
        }
        let conn = self.session.conn.clone();
        if let Some(n) = conn.consumers.lock().get_mut(&self.root) {
            *n = n.saturating_sub(1);
        }
        conn.joined.lock().retain(|j| j.token != self.joined.token);
        if conn.check().is_ok() {
            leave(&conn, &self.joined).await?;
        }
        Ok(())
    }
}

/// Reads a page of a destination's ready index: (score, id, message unless expired).
pub(crate) async fn browse_page(
    conn: &Shared,
    root: &str,
    base: &str,
    after: &str,
) -> Result<Vec<(String, String, Option<Message>)>> {
    let reply = args::array(
        conn.eval(
            root,
            Args::op("browse")
                .add(base)
                .add(conn.now())
                .add(after)
                .add(PAGE)
                .0,
            None,
        )
        .await?,
    )?;
    let mut out = Vec::with_capacity(reply.len() / 3);
    for triple in reply.chunks(3) {
        let [score, id, encoded] = triple else {
            return Err(Error::protocol("a browse reply of the wrong length"));
        };
        let encoded = args::bytes(encoded)?;
        let message = if encoded.is_empty() {
            None
        } else {
            Some(Message::decode(encoded)?)
        };
        out.push((args::text(score)?, args::text(id)?, message));
    }
    Ok(out)
}

fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

#[async_trait]
impl Consumer for RedisConsumer {
    fn destination(&self) -> &Destination {
        &self.destination
    }

    fn selector(&self) -> Option<&str> {
        self.selector_text.as_deref()
    }

    async fn receive(&self) -> Result<Option<Message>> {
        self.receive_settled(None, false).await
    }

    async fn receive_timeout(&self, timeout: Duration) -> Result<Option<Message>> {
        if timeout.is_zero() {
            return self.receive_settled(None, false).await;
        }
        self.receive_settled(deadline(timeout), false).await
    }

    async fn receive_no_wait(&self) -> Result<Option<Message>> {
        self.receive_settled(None, true).await
    }

    /// A message whose body cannot be returned whole stays: it goes back, redelivered.
    async fn receive_body(&self, timeout: Option<Duration>) -> Result<Option<courier_api::Body>> {
        let deadline = match timeout {
            None | Some(Duration::ZERO) => None,
            Some(t) => deadline(t),
        };
        let Some((message, held)) = self.receive_until(deadline, false).await? else {
            return Ok(None);
        };
        match spi::body_for_receive_body(&message) {
            Ok(body) => {
                if !self.settle(held).await? {
                    return Err(Error::illegal_state(
                        "the message went to another consumer (this connection's lease lapsed)",
                    ));
                }
                Ok(Some(body))
            }
            Err(e) => {
                // It comes next: what the buffer holds after it goes back too.
                self.return_buffer().await?;
                self.session.release(vec![held]).await?;
                Err(e)
            }
        }
    }

    /// A closed consumer ends its listener: `None`, not an error.
    async fn receive_delivery(&self) -> Result<Option<Delivery>> {
        if self.is_closed() {
            self.session.conn.check()?;
            return Ok(None);
        }
        let Some((message, held)) = self.receive_until(None, false).await? else {
            return Ok(None);
        };
        Ok(Some(Delivery::new(
            message,
            Box::new(Settlement {
                session: self.session.clone(),
                held: Some(held),
                buffer: self.buffer.clone(),
            }),
        )))
    }

    async fn close(&self) -> Result<()> {
        if self.session.conn.check().is_err() {
            self.closed.store(true, Ordering::Release);
            self.wake.notify_waiters();
            return Ok(());
        }
        self.close_inner().await
    }
}

impl Drop for RedisConsumer {
    fn drop(&mut self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let conn = self.session.conn.clone();
        if let Some(n) = conn.consumers.lock().get_mut(&self.root) {
            *n = n.saturating_sub(1);
        }
        let buffered = self.buffer.drain();
        if !buffered.is_empty() {
            let session = self.session.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    if session.conn.check().is_ok() {
                        let _ = session.release_undelivered(buffered).await;
                    }
                });
            }
        }
        let joined = self.joined.clone();
        conn.joined.lock().retain(|j| j.token != joined.token);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if conn.check().is_ok() {
                    let _ = leave(&conn, &joined).await;
                }
            });
        }
    }
}

/// How a listener's delivery is settled: acknowledged after its handler succeeded, given
/// back (redelivered) when the handler failed or the delivery was dropped.
struct Settlement {
    session: Arc<SessionShared>,
    held: Option<Held>,
    /// The consumer's buffer: a redelivered message comes next, so what the buffer holds
    /// goes back with it.
    buffer: Arc<Prefetched>,
}

impl Settle for Settlement {
    fn acknowledge(mut self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        let held = self.held.take();
        let session = self.session.clone();
        Box::pin(async move {
            let Some(held) = held else { return Ok(()) };
            match session.mode {
                SessionMode::AutoAcknowledge | SessionMode::DupsOkAcknowledge => {
                    session
                        .commit_ops(&[], &[held], InDoubtOperation::Acknowledge)
                        .await?;
                }
                SessionMode::ClientAcknowledge | SessionMode::Transacted => {
                    session.held.lock().push(held);
                }
            }
            Ok(())
        })
    }

    fn redeliver(mut self: Box<Self>) {
        let Some(held) = self.held.take() else { return };
        let session = self.session.clone();
        let buffered = self.buffer.drain();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if !buffered.is_empty() {
                    let _ = session.release_undelivered(buffered).await;
                }
                let _ = session.release(vec![held]).await;
            });
        }
    }
}

/// A browser: reads a queue's ready index in delivery order without taking.
pub struct RedisBrowser {
    session: Arc<SessionShared>,
    queue: Destination,
    selector_text: Option<String>,
    selector: Option<Selector>,
    root: String,
    state: tokio::sync::Mutex<(String, VecDeque<Message>, bool)>,
    closed: AtomicBool,
    _guard: Mutex<()>,
}

impl RedisBrowser {
    pub(crate) fn new(
        session: Arc<SessionShared>,
        queue: &Destination,
        selector: Option<&str>,
    ) -> Result<RedisBrowser> {
        let selector_text = selector
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string);
        let parsed = selector_text.as_deref().map(Selector::parse).transpose()?;
        Ok(RedisBrowser {
            session,
            queue: queue.clone(),
            selector_text,
            selector: parsed,
            root: keys::root(queue),
            state: tokio::sync::Mutex::new(("-inf".to_string(), VecDeque::new(), false)),
            closed: AtomicBool::new(false),
            _guard: Mutex::new(()),
        })
    }
}

#[async_trait]
impl Browser for RedisBrowser {
    fn queue(&self) -> &Destination {
        &self.queue
    }

    fn selector(&self) -> Option<&str> {
        self.selector_text.as_deref()
    }

    async fn next(&self) -> Result<Option<Message>> {
        self.session.check()?;
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::illegal_state("the browser is closed"));
        }
        let mut state = self.state.lock().await;
        loop {
            if let Some(m) = state.1.pop_front() {
                return Ok(Some(m));
            }
            if state.2 {
                return Ok(None);
            }
            let page = browse_page(&self.session.conn, &self.root, &self.root, &state.0).await?;
            if page.len() < PAGE {
                state.2 = true;
            }
            if let Some(last) = page.last() {
                state.0 = last.0.clone();
            }
            for (_, _, message) in page {
                let Some(mut message) = message else { continue };
                if self.selector.as_ref().is_none_or(|s| s.matches(&message)) {
                    spi::mark_received(&mut message);
                    state.1.push_back(message);
                }
            }
        }
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}
