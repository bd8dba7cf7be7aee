//! [`RedisSession`]: acknowledgement and local transactions.
//!
//! A session keeps what it received but has not acknowledged (client-acknowledge and
//! transacted modes) and, in a transaction, the sends it buffered. `commit` runs them all in
//! one script (the sends and the acks together, or none: an ack of a message no longer held
//! fails the whole commit); `rollback`, `recover` and `close` give the held messages back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use courier_api::{
    Browser, Consumer, ConsumerOptions, Destination, DestinationKind, Error, InDoubtOperation,
    Producer, Result, Session, SessionMode,
};
use parking_lot::Mutex;

use crate::args::{self, Args};
use crate::connection::Shared;
use crate::consumer::{RedisBrowser, RedisConsumer, Subscription};
use crate::keys;
use crate::producer::RedisProducer;

/// A message received and not yet acknowledged.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub root: String,
    pub base: String,
    pub id: String,
}

/// A send waiting for its transaction (or going out now).
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub root: String,
    pub topic: bool,
    pub encoded: bytes::Bytes,
    pub priority: u8,
    pub expiration: u64,
    pub due: u64,
    /// The values selectors see (see `fields.rs`).
    pub fields: Vec<Vec<u8>>,
}

/// What a session's handles share.
pub(crate) struct SessionShared {
    pub conn: Arc<Shared>,
    pub mode: SessionMode,
    pub held: Mutex<Vec<Held>>,
    pub sends: Mutex<Vec<Outgoing>>,
    /// The automatic modes' deferred acknowledgement (see `auto_ack.rs`).
    pub pending: crate::auto_ack::PendingAck,
    /// The writer queues of this session's producers' pipelined sends (see `producer.rs`).
    pipelines: Mutex<Vec<tokio::sync::mpsc::WeakSender<crate::producer::Queued>>>,
    /// The buffers of this session's consumers with a prefetch (see `consumer.rs`).
    prefetched: Mutex<Vec<std::sync::Weak<crate::consumer::Prefetched>>>,
    closed: AtomicBool,
}

impl SessionShared {
    /// Fails when the session or its connection is closed.
    pub fn check(&self) -> Result<()> {
        self.conn.check()?;
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::illegal_state("the session is closed"));
        }
        Ok(())
    }

    /// True once closed (or its connection closed).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.conn.is_closed()
    }

    /// Runs sends and acks in one script, all or nothing: false (and nothing done) when an
    /// ack's message is no longer held.
    pub async fn commit_ops(
        &self,
        sends: &[Outgoing],
        acks: &[Held],
        in_doubt: InDoubtOperation,
    ) -> Result<bool> {
        self.run_ops(sends, acks, in_doubt, true).await
    }

    /// Runs sends and acks in one script; with `strict` false, acks of messages no longer held
    /// are skipped and the rest done.
    ///
    /// A queue send's body (`R:b:<id>`, its id made here, see
    /// [`Shared::message_id`](crate::connection::Shared::message_id)) is written by one
    /// `MSET` in the same `MULTI` as the script, which stores and indexes the rest (or
    /// deletes the body when a strict commit is refused): the body never passes through Lua.
    /// A topic's messages are copied per subscription by the script, so they go in as
    /// arguments.
    pub async fn run_ops(
        &self,
        sends: &[Outgoing],
        acks: &[Held],
        in_doubt: InDoubtOperation,
        strict: bool,
    ) -> Result<bool> {
        let conn = &self.conn;
        let root = sends
            .first()
            .map(|s| s.root.clone())
            .or_else(|| acks.first().map(|a| a.root.clone()))
            .unwrap_or_else(|| "courier:{none}".to_string());
        let mut a = Args::op("commit")
            .add(conn.now())
            .add(&conn.id)
            .add(&conn.id)
            .add(u8::from(strict))
            .add("")
            .add(sends.len());
        let mut bodies = redis::cmd("MSET");
        let mut stored = false;
        for s in sends {
            a.push(&s.root);
            if s.topic {
                a.push("t");
                a = a.bytes(&s.encoded);
            } else {
                let id = conn.message_id();
                bodies
                    .arg(format!("{}:b:{id}", s.root))
                    .arg(s.encoded.as_ref());
                stored = true;
                a.push("p");
                a.push(id);
            }
            a.push(s.priority);
            a.push(s.expiration);
            a.push(s.due);
            a.push(s.fields.len());
            for f in &s.fields {
                a = a.bytes(f);
            }
        }
        a.push(acks.len());
        for h in acks {
            a.push(&h.root);
            a.push(&h.base);
            a.push(&h.id);
        }
        let reply = if stored {
            conn.eval_atomic(&root, &[bodies], a.0, &[], Some(in_doubt))
                .await?
                .0
        } else {
            conn.eval(&root, a.0, Some(in_doubt)).await?
        };
        let reply = args::array(reply)?;
        Ok(reply.first().map(args::int).transpose()? == Some(1))
    }

    /// Gives messages back to their destinations (redelivered next time).
    pub async fn release(&self, held: Vec<Held>) -> Result<()> {
        self.give_back(held, false).await
    }

    /// Gives back messages a consumer took ahead of its receives and never handed over:
    /// their delivery is not counted, so they come again as first deliveries.
    pub async fn release_undelivered(&self, held: Vec<Held>) -> Result<()> {
        self.give_back(held, true).await
    }

    async fn give_back(&self, held: Vec<Held>, undelivered: bool) -> Result<()> {
        let mut groups: Vec<(String, String, Vec<String>)> = Vec::new();
        for h in held {
            match groups.iter_mut().find(|g| g.0 == h.root && g.1 == h.base) {
                Some(g) => g.2.push(h.id),
                None => groups.push((h.root, h.base, vec![h.id])),
            }
        }
        for (root, base, ids) in groups {
            let (max, dlq) = self.conn.dead_letter(&root);
            let mut a = Args::op("release")
                .add(&base)
                .add(&self.conn.id)
                .add(max)
                .add(&dlq)
                .add(u8::from(undelivered));
            for id in ids {
                a.push(id);
            }
            self.conn.eval(&root, a.0, None).await?;
        }
        Ok(())
    }

    /// Records a consumer's buffer, so that recover, rollback, close and stop empty it.
    pub fn add_prefetched(&self, buffer: std::sync::Weak<crate::consumer::Prefetched>) {
        let mut buffers = self.prefetched.lock();
        buffers.retain(|b| b.strong_count() > 0);
        buffers.push(buffer);
    }

    /// Gives back, uncounted, what this session's consumers took ahead of their receives.
    pub async fn return_prefetched(&self) -> Result<()> {
        let held: Vec<Held> = self
            .prefetched
            .lock()
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .flat_map(|b| b.drain())
            .collect();
        if held.is_empty() {
            return Ok(());
        }
        self.release_undelivered(held).await
    }

    /// Records a producer's writer queue, so that closing waits for its sends.
    pub fn add_pipeline(&self, pipeline: tokio::sync::mpsc::WeakSender<crate::producer::Queued>) {
        let mut pipelines = self.pipelines.lock();
        pipelines.retain(|p| p.strong_count() > 0);
        pipelines.push(pipeline);
    }

    /// Waits until every pipelined send of the session's producers has its outcome.
    pub async fn flush_pipelines(&self) {
        let live: Vec<_> = self
            .pipelines
            .lock()
            .iter()
            .filter_map(|p| p.upgrade())
            .collect();
        for pipeline in live {
            crate::producer::flush_pipeline(&pipeline).await;
        }
    }

    /// Waits for pipelined sends, gives back what is held and drops buffered sends.
    pub async fn close(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        self.flush_pipelines().await;
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.sends.lock().clear();
        if self.conn.check().is_err() {
            return Ok(());
        }
        self.flush_ack().await?;
        self.return_prefetched().await?;
        let held = std::mem::take(&mut *self.held.lock());
        if held.is_empty() {
            return Ok(());
        }
        self.release(held).await
    }
}

/// A session on a Redis connection.
pub struct RedisSession {
    shared: Arc<SessionShared>,
}

impl RedisSession {
    pub(crate) fn new(conn: Arc<Shared>, mode: SessionMode) -> RedisSession {
        let shared = Arc::new(SessionShared {
            conn,
            mode,
            held: Mutex::new(Vec::new()),
            sends: Mutex::new(Vec::new()),
            pending: Default::default(),
            pipelines: Mutex::new(Vec::new()),
            prefetched: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        });
        shared.conn.add_session(&shared);
        RedisSession { shared }
    }

    fn checked_topic(&self, topic: &Destination) -> Result<()> {
        topic.validate()?;
        if !topic.is_topic() {
            return Err(Error::invalid_destination(
                topic.to_string(),
                "a subscription needs a topic",
            ));
        }
        Ok(())
    }

    fn scoped(&self, name: &str) -> Result<String> {
        if name.is_empty() || name.len() > 255 || name.chars().any(|c| c.is_control()) {
            return Err(Error::invalid_argument(
                "a subscription name is 1 to 255 bytes without control characters",
            ));
        }
        Ok(format!(
            "{}:{name}",
            self.shared.conn.client_id().unwrap_or_default()
        ))
    }

    async fn consumer(
        &self,
        destination: &Destination,
        options: ConsumerOptions,
        subscription: Option<Subscription>,
    ) -> Result<Box<dyn Consumer>> {
        Ok(Box::new(
            RedisConsumer::open(self.shared.clone(), destination, options, subscription).await?,
        ))
    }

    async fn durable(
        &self,
        topic: &Destination,
        name: &str,
        options: ConsumerOptions,
        shared: bool,
    ) -> Result<Box<dyn Consumer>> {
        self.shared.check()?;
        self.checked_topic(topic)?;
        if !shared && self.shared.conn.client_id().is_none() {
            return Err(Error::illegal_state(
                "an unshared durable subscription needs a client id",
            ));
        }
        let scoped = self.scoped(name)?;
        let sub = format!("{}:{scoped}", if shared { "sd" } else { "d" });
        let root = keys::root(topic);
        let selector = options.effective_selector().unwrap_or("").to_string();
        if !selector.is_empty() {
            courier_api::Selector::parse(&selector)?;
        }
        let record = format!("{root}\t{sub}\t{}\t{selector}", options.no_local as u8);
        let registry = keys::durable(&self.shared.conn.client_id().unwrap_or_default(), name);
        let mut cmd = self.shared.conn.cmd.clone();
        let old: Option<String> = redis::cmd("GET")
            .arg(&registry)
            .query_async(&mut cmd)
            .await
            .map_err(|e| self.shared.conn.fail(e, None))?;
        if let Some(old) = old.filter(|old| *old != record) {
            let mut parts = old.splitn(3, '\t');
            let (old_root, old_sub) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if old_sub != sub && !old_sub.is_empty() {
                // A record whose subscription went with its deleted topic names none.
                let exists = self
                    .shared
                    .conn
                    .eval(old_root, Args::op("subscribed").add(old_sub).0, None)
                    .await?;
                if args::int(&exists)? == 1 {
                    return Err(Error::illegal_state(format!(
                        "subscription {name:?} exists with another sharing"
                    )));
                }
            } else {
                let gone = self
                    .shared
                    .conn
                    .eval(old_root, Args::op("unsubscribe").add(old_sub).0, None)
                    .await?;
                if args::int(&gone)? == 0 {
                    return Err(Error::illegal_state(format!(
                        "durable subscription {name:?} has an active consumer; it cannot change"
                    )));
                }
            }
        }
        let _: () = redis::cmd("SET")
            .arg(&registry)
            .arg(&record)
            .query_async(&mut cmd)
            .await
            .map_err(|e| self.shared.conn.fail(e, None))?;
        let subscription = Subscription {
            sub,
            owner: String::new(),
            exclusive: !shared,
            destroy: false,
        };
        self.consumer(topic, options, Some(subscription)).await
    }
}

#[async_trait]
impl Session for RedisSession {
    fn mode(&self) -> SessionMode {
        self.shared.mode
    }

    async fn create_producer(
        &self,
        destination: Option<&Destination>,
    ) -> Result<Box<dyn Producer>> {
        self.shared.check()?;
        if let Some(d) = destination {
            d.validate()?;
        }
        Ok(Box::new(RedisProducer::new(
            self.shared.clone(),
            destination.cloned(),
        )))
    }

    async fn create_consumer(
        &self,
        destination: &Destination,
        options: ConsumerOptions,
    ) -> Result<Box<dyn Consumer>> {
        self.shared.check()?;
        destination.validate()?;
        let subscription = destination.is_topic().then(|| Subscription {
            sub: format!("n:{}", uuid::Uuid::new_v4().simple()),
            owner: self.shared.conn.id.clone(),
            exclusive: false,
            destroy: true,
        });
        self.consumer(destination, options, subscription).await
    }

    async fn create_durable_consumer(
        &self,
        topic: &Destination,
        name: &str,
        options: ConsumerOptions,
    ) -> Result<Box<dyn Consumer>> {
        self.durable(topic, name, options, false).await
    }

    async fn create_shared_consumer(
        &self,
        topic: &Destination,
        name: &str,
        options: ConsumerOptions,
    ) -> Result<Box<dyn Consumer>> {
        self.shared.check()?;
        self.checked_topic(topic)?;
        let scoped = self.scoped(name)?;
        let subscription = Subscription {
            sub: format!("sn:{scoped}"),
            owner: "*".to_string(),
            exclusive: false,
            destroy: true,
        };
        self.consumer(topic, options, Some(subscription)).await
    }

    async fn create_shared_durable_consumer(
        &self,
        topic: &Destination,
        name: &str,
        options: ConsumerOptions,
    ) -> Result<Box<dyn Consumer>> {
        self.durable(topic, name, options, true).await
    }

    async fn unsubscribe(&self, name: &str) -> Result<()> {
        self.shared.check()?;
        self.scoped(name)?;
        let registry = keys::durable(&self.shared.conn.client_id().unwrap_or_default(), name);
        let mut cmd = self.shared.conn.cmd.clone();
        let record: Option<String> = redis::cmd("GET")
            .arg(&registry)
            .query_async(&mut cmd)
            .await
            .map_err(|e| self.shared.conn.fail(e, None))?;
        let Some(record) = record else {
            return Err(Error::invalid_destination(
                name,
                "no durable subscription of this name",
            ));
        };
        let mut parts = record.splitn(3, '\t');
        let (root, sub) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let gone = self
            .shared
            .conn
            .eval(root, Args::op("unsubscribe").add(sub).0, None)
            .await?;
        match args::int(&gone)? {
            0 => {
                return Err(Error::illegal_state(format!(
                    "durable subscription {name:?} has an active consumer"
                )))
            }
            2 => {
                // Its topic was deleted (and this record outlived it, the deleting client
                // stopped before it got here): no subscription.
                forget_durable(&self.shared.conn, &registry, root, sub).await?;
                return Err(Error::invalid_destination(
                    name,
                    "no durable subscription of this name (its topic was deleted)",
                ));
            }
            _ => {}
        }
        let _: () = redis::cmd("DEL")
            .arg(&registry)
            .query_async(&mut cmd)
            .await
            .map_err(|e| self.shared.conn.fail(e, None))?;
        Ok(())
    }

    async fn create_browser(
        &self,
        queue: &Destination,
        selector: Option<&str>,
    ) -> Result<Box<dyn Browser>> {
        self.shared.check()?;
        queue.validate()?;
        if !queue.is_queue() {
            return Err(Error::invalid_destination(
                queue.to_string(),
                "only queues can be browsed",
            ));
        }
        Ok(Box::new(RedisBrowser::new(
            self.shared.clone(),
            queue,
            selector,
        )?))
    }

    async fn create_temporary_queue(&self) -> Result<Destination> {
        self.temporary(DestinationKind::TemporaryQueue).await
    }

    async fn create_temporary_topic(&self) -> Result<Destination> {
        self.temporary(DestinationKind::TemporaryTopic).await
    }

    /// Deletes a plain queue or topic in one script (`delete` in `courier.lua`), which checks
    /// and deletes atomically: every message (ready, delayed, held), index, equality index,
    /// counter, subscription and consumer registration of the destination, and the leases of
    /// the connections it names. Then the durable-subscription records (`courier:dur:…`, in
    /// other slots) of the topic's durable subscriptions go, each only if it still names that
    /// subscription. Stopped between the two, a record names a subscription that is gone,
    /// which `unsubscribe` and the durable consumers read as no subscription.
    ///
    /// A destination exists while it has its id counter (made by the first message stored,
    /// queue consumer opened or subscription made, since it was made or last deleted), a
    /// subscription, or a stored message. So a topic that was only sent to while it had no
    /// subscription (nothing stored) is missing; a queue that only had a consumer exists.
    ///
    /// In use: a consumer open on the queue or on one of the topic's subscriptions (any
    /// connection's: queue consumers register in `R:a` as subscription consumers do in
    /// `B:a`), or messages a live connection holds delivered and not acknowledged, on the
    /// queue or on a subscription (as `unsubscribe` refuses). This connection's pending
    /// automatic acknowledgements are done first, so they do not count.
    ///
    /// The deleting connection stops keeping a lease in the destination. Another live
    /// connection that consumed from it before keeps renewing its own lease key there
    /// (`R:l:<connection>`, no data, only that connection's liveness) until it closes.
    async fn delete_destination(&self, destination: &Destination) -> Result<()> {
        self.shared.check()?;
        destination.validate()?;
        if destination.is_temporary() {
            return Err(Error::invalid_destination(
                destination.to_string(),
                "a temporary destination is deleted with delete_temporary",
            ));
        }
        let conn = &self.shared.conn;
        conn.flush_acks().await?;
        let root = keys::root(destination);
        // No heartbeat renews the lease here between the script removing it and the root
        // being forgotten below (see `Shared::renewal`).
        let renewal = conn.renewal.read().await;
        let reply = args::array(
            conn.eval(&root, Args::op("delete").add(&conn.id).0, None)
                .await?,
        )?;
        match reply.first().map(args::int).transpose()? {
            Some(1) => {}
            Some(0) => {
                return Err(Error::invalid_destination(
                    destination.to_string(),
                    "no such destination",
                ))
            }
            Some(-1) => {
                let why = reply
                    .get(1)
                    .map(args::text)
                    .transpose()?
                    .unwrap_or_default();
                return Err(Error::illegal_state(if why == "held" {
                    format!("{destination} has messages delivered and not acknowledged")
                } else {
                    format!("{destination} has an open consumer")
                }));
            }
            _ => return Err(Error::protocol("an unexpected reply to a deletion")),
        }
        // Its lease there went with it: the heartbeat no longer renews it.
        conn.forget_root(&root);
        drop(renewal);
        for sub in &reply[1..] {
            let sub = args::text(sub)?;
            if let Some(record) = keys::durable_of_subscription(&sub) {
                forget_durable(conn, &record, &root, &sub).await?;
            }
        }
        Ok(())
    }

    async fn delete_temporary(&self, destination: &Destination) -> Result<()> {
        self.shared.check()?;
        if !destination.is_temporary() || !self.shared.conn.owns_temporary(destination) {
            return Err(Error::invalid_destination(
                destination.to_string(),
                "not a temporary destination of this connection",
            ));
        }
        let root = keys::root(destination);
        let in_use = self
            .shared
            .conn
            .joined
            .lock()
            .iter()
            .any(|j| j.root == root)
            || crate::consumer::has_open_consumer(&self.shared.conn, &root);
        if in_use {
            return Err(Error::illegal_state(
                "the temporary destination still has consumers",
            ));
        }
        let conn = &self.shared.conn;
        // Its lease goes with its keys, and the heartbeat stops renewing it (no renewal read
        // before comes after: see `Shared::renewal`).
        let renewal = conn.renewal.read().await;
        conn.remove_temporary(destination);
        let purged = conn.purge(&root).await;
        conn.forget_root(&root);
        drop(renewal);
        purged
    }

    async fn commit(&self) -> Result<()> {
        self.shared.check()?;
        if self.shared.mode != SessionMode::Transacted {
            return Err(Error::illegal_state("commit needs a transacted session"));
        }
        let sends = std::mem::take(&mut *self.shared.sends.lock());
        let held = std::mem::take(&mut *self.shared.held.lock());
        if sends.is_empty() && held.is_empty() {
            return Ok(());
        }
        if self
            .shared
            .commit_ops(&sends, &held, InDoubtOperation::Commit)
            .await?
        {
            Ok(())
        } else {
            self.shared.release(held).await?;
            Err(Error::TransactionRolledBack(
                "a received message was given back (its lease lapsed) before the commit".into(),
            ))
        }
    }

    async fn rollback(&self) -> Result<()> {
        self.shared.check()?;
        if self.shared.mode != SessionMode::Transacted {
            return Err(Error::illegal_state("rollback needs a transacted session"));
        }
        self.shared.sends.lock().clear();
        self.shared.return_prefetched().await?;
        let held = std::mem::take(&mut *self.shared.held.lock());
        self.shared.release(held).await
    }

    async fn recover(&self) -> Result<()> {
        self.shared.check()?;
        if self.shared.mode == SessionMode::Transacted {
            return Err(Error::illegal_state(
                "recover is for non-transacted sessions",
            ));
        }
        self.shared.flush_ack().await?;
        self.shared.return_prefetched().await?;
        let held = std::mem::take(&mut *self.shared.held.lock());
        self.shared.release(held).await
    }

    async fn acknowledge(&self) -> Result<()> {
        self.shared.check()?;
        if self.shared.mode != SessionMode::ClientAcknowledge {
            return self.shared.flush_ack().await;
        }
        let held = std::mem::take(&mut *self.shared.held.lock());
        if held.is_empty() {
            return Ok(());
        }
        // A message whose lease lapsed went to another consumer; the rest are acknowledged.
        self.shared
            .run_ops(&[], &held, InDoubtOperation::Acknowledge, false)
            .await?;
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        if self.shared.conn.check().is_err() {
            return Ok(());
        }
        self.shared.close().await
    }
}

/// Deletes the durable-subscription record `registry` if it still names subscription `sub` of
/// the topic `root` (one made again since, for another topic, stays).
async fn forget_durable(conn: &Shared, registry: &str, root: &str, sub: &str) -> Result<()> {
    static FORGET: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
        redis::Script::new(
            "local v = redis.call('GET', KEYS[1]) \
             if v and string.sub(v, 1, #ARGV[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end \
             return 1",
        )
    });
    let mut cmd = conn.cmd.clone();
    let _: redis::Value = FORGET
        .key(registry)
        .arg(format!("{root}\t{sub}\t"))
        .invoke_async(&mut cmd)
        .await
        .map_err(|e| conn.fail(e, None))?;
    Ok(())
}

impl RedisSession {
    async fn temporary(&self, kind: DestinationKind) -> Result<Destination> {
        self.shared.check()?;
        let conn = &self.shared.conn;
        let destination = Destination::new(
            kind,
            format!("tmp-{}-{}", conn.id, uuid::Uuid::new_v4().simple()),
        );
        let root = keys::root(&destination);
        let mut cmd = conn.cmd.clone();
        let _: () = redis::pipe()
            .cmd("SET")
            .arg(format!("{root}:l:{}", conn.id))
            .arg(1)
            .arg("PX")
            .arg(conn.lease_ms())
            .ignore()
            .cmd("SET")
            .arg(format!("{root}:owner"))
            .arg(format!("{}:{}", conn.run_id, conn.redis_id))
            .ignore()
            .cmd("HSET")
            .arg(keys::TEMPORARIES)
            .arg(&root)
            .arg(format!("{}:{}", conn.run_id, conn.redis_id))
            .ignore()
            .query_async(&mut cmd)
            .await
            .map_err(|e| conn.fail(e, None))?;
        conn.add_temporary(destination.clone());
        conn.lease_root(&root);
        Ok(destination)
    }
}

impl Drop for RedisSession {
    fn drop(&mut self) {
        let shared = self.shared.clone();
        // Producers and consumers made from it keep it open.
        if shared.is_closed() || Arc::strong_count(&shared) > 2 {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = shared.close().await;
            });
        }
    }
}
