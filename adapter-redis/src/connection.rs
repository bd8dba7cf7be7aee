//! [`RedisConnection`]: one multiplexed RESP3 connection carrying commands, scripts and the
//! notifications that wake waiting consumers, and a second one, subscribed to nothing, for
//! the `MULTI` transactions of sends and takes ([`Shared::eval_atomic`]).
//!
//! Nothing blocks on the server: a consumer with nothing to take waits for a pub/sub
//! notification that the publishing script sends on its destination's channel (or for the
//! due time of its next delayed message), then takes again. So the connections serve every
//! command, and the redis-rs response timeout (the URL's `request_timeout`, default 10 s)
//! bounds each of them.
//!
//! A connection keeps a *lease* (`<root>:l:<id>`, three heartbeats long) in every destination
//! where it holds messages or subscriptions, renewed each heartbeat while it lives. When it
//! dies without closing, its leases lapse and the next script touching the destination gives
//! its messages back (flagged redelivered) and removes its non-durable subscriptions.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use courier_api::spi::MessageIds;
use courier_api::{
    Capabilities, Connection, ConnectionMetadata, Destination, Durability, Error,
    ExceptionListener, InDoubtOperation, Result, Session, SessionMode,
};
use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo, ProtocolVersion, PushKind, Value};
use tokio::sync::{mpsc, watch, Notify};

use crate::factory::{capabilities, Config};
use crate::keys;
use crate::session::{RedisSession, SessionShared};

/// The script: the selector runtime of the api (built on demand: `K = selector_runtime()`),
/// then Courier's operations.
pub(crate) static SCRIPT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "local K\nlocal function selector_runtime() return {} end\n{}",
        courier_api::selector::LUA_RUNTIME,
        include_str!("courier.lua")
    )
});

/// Where a connection is in its life.
#[derive(Debug, Clone)]
pub(crate) enum State {
    Open,
    Closed,
    Lost(Error),
}

/// A subscription a connection joined, left when it closes.
#[derive(Debug, Clone)]
pub(crate) struct Joined {
    pub root: String,
    pub sub: String,
    pub token: String,
    pub destroy: bool,
}

/// What the handles made from one connection share.
pub(crate) struct Shared {
    pub id: String,
    pub config: Config,
    pub caps: Capabilities,
    pub cmd: MultiplexedConnection,
    /// A second connection, subscribed to nothing, for [`Shared::eval_atomic`]'s
    /// transactions: Redis 7.0 writes a push (a notification the script publishes to a
    /// channel the same connection is subscribed to) inside the `EXEC` reply, which redis-rs
    /// then counts as one of its elements, and every later reply on that connection would
    /// be read as its predecessor's.
    tx: MultiplexedConnection,
    script: redis::Script,
    /// This connection's id at the server (`CLIENT ID`).
    pub redis_id: i64,
    /// The server process's `run_id`: client ids are unique only within one run.
    pub run_id: String,
    state: watch::Sender<State>,
    started: watch::Sender<bool>,
    /// Held for reading by each take, for writing by `stop` (which so waits for them).
    pub delivering: tokio::sync::RwLock<()>,
    roots: Mutex<HashSet<String>>,
    /// Held for writing by a heartbeat from the moment it reads [`Shared::roots`] until its
    /// renewals are answered, and for reading by whatever removes this connection's leases
    /// (a deletion until it has forgotten the root, the close until the connection is
    /// closed, the give-back after a loss): so a renewal read before a removal never
    /// reaches the server after it and brings a removed lease back.
    pub renewal: Arc<tokio::sync::RwLock<()>>,
    channels: Mutex<HashMap<String, Arc<Notify>>>,
    client_id: Mutex<Option<String>>,
    used: AtomicBool,
    listener: Mutex<Option<ExceptionListener>>,
    temps: Mutex<Vec<Destination>>,
    pub joined: Mutex<Vec<Joined>>,
    /// Open consumers per destination root.
    pub consumers: Mutex<HashMap<String, usize>>,
    sessions: Mutex<Vec<Weak<SessionShared>>>,
    offset_ms: i64,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The ids this connection gives the messages it sends to queues: a random prefix and a
    /// counter (see [`Shared::message_id`]).
    ids: MessageIds,
}

/// A connection to Redis.
pub struct RedisConnection {
    pub(crate) shared: Arc<Shared>,
}

/// A multiplexed connection of `client` within the configured timeouts; `pushes` hears its
/// notifications.
async fn connect(
    client: &redis::Client,
    config: &Config,
    pushes: Option<mpsc::UnboundedSender<redis::PushInfo>>,
) -> Result<MultiplexedConnection> {
    let mut options = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(config.request_timeout));
    if let Some(pushes) = pushes {
        options = options.set_push_sender(pushes);
    }
    let connecting = client.get_multiplexed_async_connection_with_config(&options);
    tokio::time::timeout(config.connect_timeout, connecting)
        .await
        .map_err(|_| Error::connection_lost("connecting to Redis timed out"))?
        .map_err(redis_error)
}

/// 64 random bits.
fn rand_u64() -> u64 {
    let (hi, lo) = uuid::Uuid::new_v4().as_u64_pair();
    hi ^ lo
}

fn redis_error(e: redis::RedisError) -> Error {
    if e.is_connection_refusal() || e.is_io_error() || e.is_timeout() {
        Error::connection_lost_from("cannot reach the Redis server", e)
    } else {
        Error::backend("redis", e)
    }
}

impl RedisConnection {
    /// Connects, reads the server's persistence and time, and starts the heartbeat.
    pub(crate) async fn open(config: &Config) -> Result<RedisConnection> {
        let info = config
            .redis_url
            .as_str()
            .into_connection_info()
            .map_err(|e| Error::invalid_argument(format!("not a Redis URL: {e}")))?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let info = info.set_redis_settings(settings);
        let client = redis::Client::open(info).map_err(redis_error)?;
        let (push_tx, push_rx) = mpsc::unbounded_channel();
        let mut cmd = connect(&client, config, Some(push_tx)).await?;
        let tx = connect(&client, config, None).await?;
        let redis_id: i64 = redis::cmd("CLIENT")
            .arg("ID")
            .query_async(&mut cmd)
            .await
            .map_err(redis_error)?;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut cmd)
            .await
            .map_err(redis_error)?;
        let run_id = info
            .lines()
            .find_map(|l| l.strip_prefix("run_id:"))
            .unwrap_or_default()
            .trim()
            .to_string();
        let durability = server_durability(&mut cmd).await?;
        if durability.0 < config.required {
            return Err(Error::illegal_state(format!(
                "the Redis server persists with {}, weaker than the URL's durability requires",
                durability.1
            )));
        }
        let before = courier_api::spi::now_millis() as i64;
        let (secs, micros): (i64, i64) = redis::cmd("TIME")
            .query_async(&mut cmd)
            .await
            .map_err(redis_error)?;
        let after = courier_api::spi::now_millis() as i64;
        let server_ms = secs * 1000 + micros / 1000;
        // An offset within the round trip's uncertainty is no offset (a server on this host).
        let offset_ms = match server_ms - (before + after) / 2 {
            small if small.abs() <= (after - before) / 2 + 5 => 0,
            offset => offset,
        };
        let caps = capabilities(
            config,
            if durability.0 == 2 {
                Durability::Disk
            } else {
                Durability::None
            },
        );
        let shared = Arc::new(Shared {
            id: uuid::Uuid::new_v4().simple().to_string(),
            config: config.clone(),
            caps,
            cmd,
            tx,
            script: redis::Script::new(&SCRIPT),
            redis_id,
            run_id,
            state: watch::channel(State::Open).0,
            started: watch::channel(false).0,
            delivering: tokio::sync::RwLock::new(()),
            roots: Mutex::new(HashSet::new()),
            renewal: Arc::new(tokio::sync::RwLock::new(())),
            channels: Mutex::new(HashMap::new()),
            client_id: Mutex::new(None),
            used: AtomicBool::new(false),
            listener: Mutex::new(None),
            temps: Mutex::new(Vec::new()),
            joined: Mutex::new(Vec::new()),
            consumers: Mutex::new(HashMap::new()),
            sessions: Mutex::new(Vec::new()),
            offset_ms,
            tasks: Mutex::new(Vec::new()),
            ids: MessageIds::new(format!("k{:016x}.", rand_u64())),
        });
        let pushes = tokio::spawn(dispatch(Arc::downgrade(&shared), push_rx));
        let beats = tokio::spawn(heartbeat(Arc::downgrade(&shared)));
        shared.tasks.lock().extend([pushes, beats]);
        if let Some(id) = &config.client_id {
            shared.claim_client_id(id).await?;
        }
        Ok(RedisConnection { shared })
    }
}

/// The server's persistence: (0 none, 1 AOF everysec, 2 AOF always), and its description.
async fn server_durability(cmd: &mut MultiplexedConnection) -> Result<(u8, String)> {
    let read = |name: &'static str| {
        let mut cmd = cmd.clone();
        async move {
            let pair: HashMap<String, String> = redis::cmd("CONFIG")
                .arg("GET")
                .arg(name)
                .query_async(&mut cmd)
                .await
                .map_err(redis_error)?;
            Ok::<_, Error>(pair.get(name).cloned().unwrap_or_default())
        }
    };
    let aof = read("appendonly").await?;
    let fsync = read("appendfsync").await?;
    Ok(match (aof.as_str(), fsync.as_str()) {
        ("yes", "always") => (2, "AOF appendfsync always".into()),
        ("yes", "everysec") => (1, "AOF appendfsync everysec".into()),
        ("yes", other) => (0, format!("AOF appendfsync {other}")),
        _ => (0, "no AOF".into()),
    })
}

/// Wakes the consumers waiting on a channel; a disconnection loses the connection.
async fn dispatch(shared: Weak<Shared>, mut pushes: mpsc::UnboundedReceiver<redis::PushInfo>) {
    while let Some(push) = pushes.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match push.kind {
            PushKind::Message => {
                if let Some(Value::BulkString(channel)) = push.data.first() {
                    let channel = String::from_utf8_lossy(channel);
                    let notify = shared.channels.lock().get(channel.as_ref()).cloned();
                    if let Some(notify) = notify {
                        notify.notify_waiters();
                    }
                }
            }
            PushKind::Disconnection => {
                shared.lose(Error::connection_lost(
                    "the Redis server closed the connection",
                ));
                return;
            }
            _ => {}
        }
    }
}

/// Renews the connection's leases and client id every heartbeat while it lives; never one
/// that a deletion, the close or the give-back after a loss is removing (`Shared::renewal`).
async fn heartbeat(shared: Weak<Shared>) {
    loop {
        let Some(interval) = shared.upgrade().map(|s| s.config.heartbeat) else {
            return;
        };
        tokio::time::sleep(interval).await;
        let Some(s) = shared.upgrade() else {
            return;
        };
        // No lease is removed while this renewal is read and sent (see `Shared::renewal`).
        let renewing = s.renewal.write().await;
        if !matches!(*s.state.borrow(), State::Open) {
            return;
        }
        let lease = s.config.lease().as_millis() as u64;
        let mut pipe = redis::pipe();
        for root in s.roots.lock().iter() {
            pipe.cmd("SET")
                .arg(format!("{root}:l:{}", s.id))
                .arg(1)
                .arg("PX")
                .arg(lease)
                .ignore();
        }
        if let Some(id) = s.client_id.lock().as_ref() {
            pipe.cmd("PEXPIRE")
                .arg(keys::client_id(id))
                .arg(lease)
                .ignore();
        }
        pipe.cmd("PING");
        let mut cmd = s.cmd.clone();
        if let Err(e) = pipe.query_async::<Value>(&mut cmd).await {
            s.lose(Error::connection_lost_from("the Redis heartbeat failed", e));
            return;
        }
        drop(renewing);
        crate::sweep::sweep_temporaries(&s).await;
    }
}

impl Shared {
    /// After a loss, what the connection held goes back at once when the server can still be
    /// reached (the server dropped the connection, say): over a fresh connection, its held
    /// messages are given back and its leases and client id released, as a broker does when
    /// it sees a connection close. Where the server cannot be reached, the leases lapse.
    fn abandon(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let roots: Vec<String> = self.roots.lock().iter().cloned().collect();
        let config = self.config.clone();
        let id = self.id.clone();
        let client_id = self.client_id.lock().clone();
        let me = format!("{}:{}", self.run_id, self.redis_id);
        let dead_letters: Vec<(u32, String)> = roots.iter().map(|r| self.dead_letter(r)).collect();
        let script = self.script.clone();
        let renewal = self.renewal.clone();
        runtime.spawn(async move {
            // After a heartbeat still in flight, which would bring the leases back.
            let _renewal = renewal.read_owned().await;
            let Ok(client) = redis::Client::open(config.redis_url.as_str()) else {
                return;
            };
            let connecting = client.get_multiplexed_async_connection();
            let Ok(Ok(mut cmd)) = tokio::time::timeout(config.connect_timeout, connecting).await
            else {
                return;
            };
            for (root, (max, dlq)) in roots.iter().zip(dead_letters) {
                let mut invocation = script.prepare_invoke();
                invocation
                    .key(root)
                    .arg("abandon")
                    .arg(&id)
                    .arg(max)
                    .arg(dlq);
                let run = invocation.invoke_async::<Value>(&mut cmd);
                if !matches!(
                    tokio::time::timeout(config.request_timeout, run).await,
                    Ok(Ok(_))
                ) {
                    return;
                }
            }
            if let Some(client_id) = client_id {
                let release = redis::Script::new(
                    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end",
                );
                let mut invocation = release.prepare_invoke();
                invocation.key(keys::client_id(&client_id)).arg(&me);
                let _ = tokio::time::timeout(
                    config.request_timeout,
                    invocation.invoke_async::<Value>(&mut cmd),
                )
                .await;
            }
        });
    }

    /// Fails when the connection is closed or lost.
    pub fn check(&self) -> Result<()> {
        match &*self.state.borrow() {
            State::Open => Ok(()),
            State::Closed => Err(Error::illegal_state("the connection is closed")),
            State::Lost(e) => Err(e.clone()),
        }
    }

    /// The broker's clock in milliseconds (Redis `TIME`, read at connect, kept by the offset).
    pub fn now(&self) -> u64 {
        (courier_api::spi::now_millis() as i64 + self.offset_ms).max(0) as u64
    }

    /// Marks the connection lost (once), tells the exception listener, and returns the error.
    pub fn lose(&self, error: Error) -> Error {
        let mut first = false;
        self.state.send_if_modified(|state| {
            if matches!(state, State::Open) {
                *state = State::Lost(error.clone());
                first = true;
                true
            } else {
                false
            }
        });
        if first {
            for notify in self.channels.lock().values() {
                notify.notify_waiters();
            }
            self.abandon();
            let listener = self.listener.lock().clone();
            if let Some(listener) = listener {
                listener(&error);
            }
        }
        match &*self.state.borrow() {
            State::Lost(e) => e.clone(),
            _ => error,
        }
    }

    /// Resolves when the connection is no longer open.
    pub async fn ended(&self) -> Error {
        let mut rx = self.state.subscribe();
        loop {
            match &*rx.borrow_and_update() {
                State::Open => {}
                State::Closed => return Error::illegal_state("closed"),
                State::Lost(e) => return e.clone(),
            }
            if rx.changed().await.is_err() {
                return Error::illegal_state("closed");
            }
        }
    }

    /// True once closed normally.
    pub fn is_closed(&self) -> bool {
        matches!(*self.state.borrow(), State::Closed)
    }

    /// Whether deliveries are on.
    pub fn started(&self) -> bool {
        *self.started.borrow()
    }

    /// Runs one operation of the script; a failure of the link loses the connection, and is
    /// in doubt for `in_doubt` operations.
    pub async fn eval(
        &self,
        root: &str,
        args: Vec<Vec<u8>>,
        in_doubt: Option<InDoubtOperation>,
    ) -> Result<Value> {
        self.check()?;
        self.used.store(true, Ordering::Relaxed);
        let mut invocation = self.script.prepare_invoke();
        invocation.key(root);
        for arg in args {
            invocation.arg(arg);
        }
        let mut cmd = self.cmd.clone();
        match invocation.invoke_async::<Value>(&mut cmd).await {
            Ok(v) => Ok(v),
            Err(e) => Err(self.fail(e, in_doubt)),
        }
    }

    /// A new id for a message this connection stores itself (a queue send, see
    /// [`Shared::eval_atomic`]): a random prefix fixed for the connection (64 bits, a letter
    /// first, so never an id the script counts out of `R:seq`, which are digits) and a
    /// counter.
    pub fn message_id(&self) -> Arc<str> {
        self.ids.next()
    }

    /// Runs `before`, one operation of the script on `root`, then `after`, as one
    /// `MULTI`/`EXEC` (atomic in Redis, and one entry of its append-only file), and returns
    /// the script's reply and `after`'s replies. So data the script does not need to read
    /// (a message body) goes in and out with plain commands, not through Lua. They go over
    /// the connection's second Redis connection, which subscribes to nothing (see `tx`).
    ///
    /// A server that lost the script (`SCRIPT FLUSH`) answers `NOSCRIPT` for it inside the
    /// transaction, after running `before`: the script is loaded and the whole transaction
    /// runs again, so `before` must be safe to repeat.
    pub async fn eval_atomic(
        &self,
        root: &str,
        before: &[redis::Cmd],
        args: Vec<Vec<u8>>,
        after: &[redis::Cmd],
        in_doubt: Option<InDoubtOperation>,
    ) -> Result<(Value, Vec<Value>)> {
        self.check()?;
        self.used.store(true, Ordering::Relaxed);
        let mut pipe = redis::pipe();
        pipe.atomic().ignore_errors();
        for c in before {
            pipe.add_command(c.clone());
        }
        pipe.cmd("EVALSHA")
            .arg(self.script.get_hash())
            .arg(1)
            .arg(root)
            .arg(args);
        for c in after {
            pipe.add_command(c.clone());
        }
        let mut cmd = self.tx.clone();
        for attempt in 0..2 {
            let mut replies: Vec<Value> = pipe
                .query_async(&mut cmd)
                .await
                .map_err(|e| self.fail(e, in_doubt))?;
            if replies.len() != before.len() + 1 + after.len() {
                return Err(Error::protocol("a transaction's reply of the wrong length"));
            }
            let mut rest = replies.split_off(before.len());
            let reply = rest.remove(0);
            if let Value::ServerError(e) = &reply {
                let e: redis::RedisError = e.clone().into();
                let lost = e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript);
                if attempt == 0 && lost {
                    self.script
                        .load_async(&mut cmd)
                        .await
                        .map_err(|e| self.fail(e, in_doubt))?;
                    continue;
                }
                return Err(self.fail(e, in_doubt));
            }
            // `before` and `after` are plain commands on keys of known types: an error there
            // is reported as the script's would be.
            if let Some(Value::ServerError(e)) = replies
                .iter()
                .chain(&rest)
                .find(|r| matches!(r, Value::ServerError(_)))
            {
                return Err(self.fail(e.clone().into(), in_doubt));
            }
            let replies = rest;
            return Ok((reply, replies));
        }
        Err(Error::protocol("the server kept losing the Courier script"))
    }

    /// Runs one operation of the script for the connection's own upkeep: neither marks the
    /// connection used nor loses it on failure.
    pub async fn upkeep(&self, root: &str, args: Vec<Vec<u8>>) -> redis::RedisResult<Value> {
        let mut invocation = self.script.prepare_invoke();
        invocation.key(root);
        for arg in args {
            invocation.arg(arg);
        }
        let mut cmd = self.cmd.clone();
        invocation.invoke_async::<Value>(&mut cmd).await
    }

    /// Turns a Redis error into Courier's, losing the connection when the link failed.
    pub fn fail(&self, e: redis::RedisError, in_doubt: Option<InDoubtOperation>) -> Error {
        let link = e.is_io_error()
            || e.is_connection_dropped()
            || e.is_timeout()
            || e.is_unrecoverable_error();
        if !link {
            return Error::backend("redis", e);
        }
        let lost = self.lose(Error::connection_lost_from(
            "the Redis connection failed",
            e,
        ));
        match in_doubt {
            Some(op) => Error::in_doubt(op, format!("the connection failed mid-request: {lost}")),
            None => lost,
        }
    }

    /// Subscribes to a destination's notifications and keeps a lease there.
    pub async fn watch(&self, root: &str) -> Result<Arc<Notify>> {
        self.check()?;
        self.roots.lock().insert(root.to_string());
        let channel = format!("{root}:n");
        if let Some(n) = self.channels.lock().get(&channel) {
            return Ok(n.clone());
        }
        let mut cmd = self.cmd.clone();
        cmd.subscribe(&channel)
            .await
            .map_err(|e| self.fail(e, None))?;
        let notify = self
            .channels
            .lock()
            .entry(channel)
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone();
        Ok(notify)
    }

    /// Stops renewing the lease in a destination just deleted, unless a consumer opened on
    /// it since (a consumer opening re-adds its root after registering, see `consumer.rs`).
    pub fn forget_root(&self, root: &str) {
        let joined = self.joined.lock();
        if !joined.iter().any(|j| j.root == root) {
            self.roots.lock().remove(root);
        }
    }

    /// Keeps a lease in a destination without listening to it.
    pub fn lease_root(&self, root: &str) {
        self.roots.lock().insert(root.to_string());
    }

    /// The lease length, in milliseconds, as script arguments want it.
    pub fn lease_ms(&self) -> u64 {
        self.config.lease().as_millis() as u64
    }

    /// The dead-letter settings of a destination as script arguments: attempts (0 = never)
    /// and the queue root. Tuple spaces (`courier-space` queues `space.*`) never dead-letter:
    /// an aborted transaction's take is not a failed delivery.
    pub fn dead_letter(&self, root: &str) -> (u32, String) {
        if root.starts_with("courier:{q:space.") {
            return (0, String::new());
        }
        match &self.config.dead_letter_queue {
            Some(q) => (self.config.max_attempts, keys::root(&Destination::queue(q))),
            None => (0, String::new()),
        }
    }

    /// Registers a session so closing the connection closes it.
    pub fn add_session(&self, session: &Arc<SessionShared>) {
        let mut sessions = self.sessions.lock();
        sessions.retain(|w| w.strong_count() > 0);
        sessions.push(Arc::downgrade(session));
    }

    /// The sessions of this connection still open, taken out of the lock so they can be
    /// awaited.
    fn live_sessions(&self) -> Vec<Arc<SessionShared>> {
        self.sessions
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// Acknowledges now what every session of this connection received in an automatic mode
    /// and has not acknowledged yet (see `auto_ack.rs`): those messages are no longer held.
    pub async fn flush_acks(&self) -> Result<()> {
        for session in self.live_sessions() {
            session.flush_ack().await?;
        }
        Ok(())
    }

    /// Records a temporary destination this connection owns.
    pub fn add_temporary(&self, destination: Destination) {
        self.temps.lock().push(destination);
    }

    /// Whether this connection created the temporary destination (and has not deleted it).
    pub fn owns_temporary(&self, destination: &Destination) -> bool {
        self.temps.lock().contains(destination)
    }

    /// Forgets a temporary destination; true if it was this connection's.
    pub fn remove_temporary(&self, destination: &Destination) -> bool {
        let mut temps = self.temps.lock();
        let before = temps.len();
        temps.retain(|d| d != destination);
        before != temps.len()
    }

    /// Deletes every key of a destination root (a temporary destination going away).
    pub async fn purge(&self, root: &str) -> Result<()> {
        purge_keys(&self.cmd, root)
            .await
            .map_err(|e| self.fail(e, None))?;
        let mut cmd = self.cmd.clone();
        let _: Value = redis::cmd("HDEL")
            .arg(keys::TEMPORARIES)
            .arg(root)
            .query_async(&mut cmd)
            .await
            .map_err(|e| self.fail(e, None))?;
        Ok(())
    }

    /// Whether the connection that `owner` (`run_id:client_id`) names is connected to this
    /// server now: the server's own client list decides, not a lease.
    pub async fn owner_alive(&self, owner: &str) -> Result<bool> {
        let Some((run, id)) = owner.split_once(':') else {
            return Ok(false);
        };
        if run != self.run_id {
            return Ok(false);
        }
        let Ok(id) = id.parse::<i64>() else {
            return Ok(false);
        };
        let mut cmd = self.cmd.clone();
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .arg("ID")
            .arg(id)
            .query_async(&mut cmd)
            .await
            .map_err(|e| self.fail(e, None))?;
        Ok(!list.trim().is_empty())
    }

    /// Takes the client id for this connection, refusing one held elsewhere.
    async fn claim_client_id(&self, id: &str) -> Result<()> {
        let name_ok = !id.is_empty() && id.len() <= 256 && !id.chars().any(char::is_control);
        if !name_ok {
            return Err(Error::invalid_argument(
                "a client id is 1 to 256 bytes without control characters",
            ));
        }
        let mut cmd = self.cmd.clone();
        let key = keys::client_id(id);
        let me = format!("{}:{}", self.run_id, self.redis_id);
        for attempt in 0..2 {
            let set: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&me)
                .arg("NX")
                .arg("PX")
                .arg(self.lease_ms())
                .query_async(&mut cmd)
                .await
                .map_err(|e| self.fail(e, None))?;
            if set.is_some() {
                break;
            }
            // Held: by a live connection, or by one the server already dropped (its lease
            // not yet lapsed)? The server's client list tells.
            let holder: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut cmd)
                .await
                .map_err(|e| self.fail(e, None))?;
            let alive = match holder.as_deref() {
                Some(holder) => self.owner_alive(holder).await?,
                None => false,
            };
            if alive || attempt == 1 {
                return Err(Error::InvalidClientId(id.to_string()));
            }
            let release = redis::Script::new(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end",
            );
            let _: Value = release
                .key(&key)
                .arg(holder.unwrap_or_default())
                .invoke_async(&mut cmd)
                .await
                .map_err(|e| self.fail(e, None))?;
        }
        *self.client_id.lock() = Some(id.to_string());
        Ok(())
    }

    /// The client id, if set.
    pub fn client_id(&self) -> Option<String> {
        self.client_id.lock().clone()
    }

    /// Cuts this connection at the server, as a network failure would.
    pub async fn sever(&self) -> Result<()> {
        if !matches!(*self.state.borrow(), State::Open) {
            return Ok(());
        }
        let client = redis::Client::open(self.config.redis_url.as_str()).map_err(redis_error)?;
        let mut admin = client
            .get_multiplexed_async_connection()
            .await
            .map_err(redis_error)?;
        let _: Value = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(self.redis_id)
            .query_async(&mut admin)
            .await
            .map_err(redis_error)?;
        // The loss is seen by the dispatcher; wait for it, bounded.
        let _ = tokio::time::timeout(self.config.request_timeout, self.ended()).await;
        Ok(())
    }

    /// Closes everything: sessions give back what they hold, subscriptions are left,
    /// temporary destinations deleted, leases and the client id released.
    pub async fn close(&self) -> Result<()> {
        if !matches!(*self.state.borrow(), State::Open) {
            return Ok(());
        }
        let sessions: Vec<_> = self
            .sessions
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for session in sessions {
            let _ = session.close().await;
        }
        let joined: Vec<Joined> = std::mem::take(&mut *self.joined.lock());
        for j in joined {
            let _ = crate::consumer::leave(self, &j).await;
        }
        let temps: Vec<Destination> = std::mem::take(&mut *self.temps.lock());
        for t in temps {
            let _ = self.purge(&keys::root(&t)).await;
        }
        // Until the connection is closed, no heartbeat renews what this removes.
        let renewal = self.renewal.read().await;
        let mut pipe = redis::pipe();
        for root in self.roots.lock().iter() {
            pipe.cmd("DEL")
                .arg(format!("{root}:l:{}", self.id))
                .ignore();
        }
        if let Some(id) = self.client_id.lock().as_ref() {
            pipe.cmd("DEL").arg(keys::client_id(id)).ignore();
        }
        let mut cmd = self.cmd.clone();
        let _ = pipe.query_async::<Value>(&mut cmd).await;
        self.state.send_if_modified(|state| {
            if matches!(state, State::Open) {
                *state = State::Closed;
                true
            } else {
                false
            }
        });
        drop(renewal);
        for notify in self.channels.lock().values() {
            notify.notify_waiters();
        }
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
        Ok(())
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
    }
}

/// Deletes every key under a root (SCAN, then DEL in batches).
pub(crate) async fn purge_keys(cmd: &MultiplexedConnection, root: &str) -> redis::RedisResult<()> {
    let mut cmd = cmd.clone();
    let pattern = format!("{}*", glob_escape(root));
    let mut cursor: u64 = 0;
    loop {
        let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut cmd)
            .await?;
        if !found.is_empty() {
            let _: Value = redis::cmd("DEL").arg(&found).query_async(&mut cmd).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// Escapes the glob characters of a SCAN pattern.
pub(crate) fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[async_trait]
impl Connection for RedisConnection {
    async fn set_client_id(&self, client_id: &str) -> Result<()> {
        self.shared.check()?;
        if self.shared.client_id().is_some() {
            return Err(Error::illegal_state("the client id is already set"));
        }
        if self.shared.used.load(Ordering::Relaxed) {
            return Err(Error::illegal_state(
                "the client id must be set before the connection is used",
            ));
        }
        self.shared.claim_client_id(client_id).await
    }

    fn client_id(&self) -> Option<String> {
        self.shared.client_id()
    }

    async fn start(&self) -> Result<()> {
        self.shared.check()?;
        self.shared.used.store(true, Ordering::Relaxed);
        self.shared.started.send_replace(true);
        for notify in self.shared.channels.lock().values() {
            notify.notify_waiters();
        }
        Ok(())
    }

    async fn stop(&self) -> Result<()> {
        self.shared.check()?;
        self.shared.used.store(true, Ordering::Relaxed);
        self.shared.started.send_replace(false);
        for notify in self.shared.channels.lock().values() {
            notify.notify_waiters();
        }
        let _wait = self.shared.delivering.write().await;
        // What consumers took ahead of their receives goes back while deliveries are off.
        for session in self.shared.live_sessions() {
            session.return_prefetched().await?;
        }
        Ok(())
    }

    async fn create_session(&self, mode: SessionMode) -> Result<Box<dyn Session>> {
        self.shared.check()?;
        self.shared.used.store(true, Ordering::Relaxed);
        Ok(Box::new(RedisSession::new(self.shared.clone(), mode)))
    }

    fn set_exception_listener(&self, listener: Option<ExceptionListener>) {
        *self.shared.listener.lock() = listener;
    }

    fn capabilities(&self) -> Capabilities {
        self.shared.caps.clone()
    }

    fn metadata(&self) -> ConnectionMetadata {
        ConnectionMetadata::new(
            "Courier redis",
            env!("CARGO_PKG_VERSION"),
            vec!["JMSXDeliveryCount"],
        )
    }

    async fn closed(&self) -> Error {
        self.shared.ended().await
    }

    async fn close(&self) -> Result<()> {
        self.shared.close().await
    }
}

impl Drop for RedisConnection {
    fn drop(&mut self) {
        let shared = self.shared.clone();
        // Sessions made from it keep it open; the last handle going closes it.
        if Arc::strong_count(&shared) == 2 && matches!(*shared.state.borrow(), State::Open) {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = shared.close().await;
                });
            }
        }
    }
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnection")
            .field("id", &self.shared.id)
            .finish_non_exhaustive()
    }
}
