//! The state one connection shares with its sessions: the lapin connection, whether it is
//! open, closed or lost, whether delivery is started, and the queues it declared.
//!
//! Every request to the broker goes through [`Link::call`], which bounds it: it returns when
//! the broker answers, when the connection ends (lost: [`Error::ConnectionLost`]; closed:
//! `IllegalState`), or after the request timeout. lapin's own futures may never resolve once
//! a channel or connection is gone (a confirm on a closed channel), so nothing awaits them
//! unguarded.

use courier_api::{Error, ExceptionListener, Result};
use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::watch;

use crate::codec::short;
use crate::delay::DelayQueues;
use crate::failure::{self, BACKEND};
use crate::reconnect::Reconnect;
use crate::session::SessionCore;
use crate::topology::{Topology, TOPICS};

tokio::task_local! {
    /// Set while a reconnect restores the topology (subscription queues) before it opens the
    /// link: that task's requests go through while the application's still wait or fail.
    static RESTORING: ();
}

/// Runs `restore` as the reconnect's own work: its requests pass while the link is still
/// reconnecting (see [`RESTORING`]).
pub(crate) async fn as_restorer<F: Future>(restore: F) -> F::Output {
    RESTORING.scope((), restore).await
}

/// Whether the current task is a reconnect restoring the topology.
fn restoring() -> bool {
    RESTORING.try_with(|_| ()).is_ok()
}

/// Whether a connection is usable.
#[derive(Debug, Clone)]
pub(crate) enum State {
    /// Usable.
    Open,
    /// Closed by the application.
    Closed,
    /// Lost: every call returns this error.
    Lost(Error),
    /// Lost, and being connected again (opt-in `reconnect`): calls fail with this error,
    /// receives wait.
    Reconnecting(Error),
}

/// What a connection's sessions, producers and consumers share.
pub(crate) struct Link {
    /// The lapin connection (replaced by a reconnect).
    connection: RwLock<Arc<Connection>>,
    /// Counts reconnects: channels, consumers and delivery tags of an older epoch are gone.
    epoch: AtomicU64,
    /// How to connect again after a loss, when the URL asked for it.
    pub reconnect: Option<Reconnect>,
    /// The URL's `prefetch`: the prefetch of consumers that do not set their own.
    pub default_prefetch: Option<u32>,
    /// The sessions of this connection, for a reconnect to give new channels.
    pub sessions: Mutex<Vec<Weak<SessionCore>>>,
    /// Open, closed or lost.
    pub state: watch::Sender<State>,
    /// Whether delivery to consumers is started.
    pub started: watch::Sender<bool>,
    /// This connection's tag, carried by every message it sends (no-local).
    pub tag: String,
    /// Called once when the connection is lost.
    pub listener: Mutex<Option<ExceptionListener>>,
    /// How long one request may take.
    pub request_timeout: Duration,
    /// Declarations and the factory's record of them.
    pub topology: Arc<Topology>,
    /// Queues this connection declared already (declared again only after a miss).
    pub declared: Mutex<HashSet<String>>,
    /// Temporary destinations of this connection (queue names), with how many consumers
    /// each has.
    pub temporaries: Mutex<HashMap<String, usize>>,
    /// Plain queues this connection has consumers open on, with how many: a queue consumer
    /// subscribes at RabbitMQ only while it waits in a receive, so RabbitMQ's count misses
    /// idle ones (`delete_destination` refuses a queue with any).
    pub queue_consumers: Mutex<HashMap<String, usize>>,
    /// Whether the topics exchange was declared on this connection.
    pub topics_declared: AtomicBool,
    /// The delay queues this connection declared.
    pub delays: DelayQueues,
    /// The client id, once set.
    pub client_id: Mutex<Option<String>>,
    /// Set once a session exists: the client id can no longer be set.
    pub used: AtomicBool,
    /// How often this connection gave each message back (by message id), so a classic
    /// queue's redelivery, which carries only a flag, still counts exactly as long as the
    /// same connection sees it again.
    redeliveries: Mutex<HashMap<Arc<str>, u32>>,
}

/// The most messages whose redeliveries a connection counts; past it the counts start over
/// (the flag stays exact).
const MAX_COUNTED: usize = 65_536;

impl Drop for Link {
    /// The last handle of a connection is gone: close it.
    fn drop(&mut self) {
        if !matches!(&*self.state.borrow(), State::Open) {
            return;
        }
        let connection = self.connection();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let closing = connection.close(200, "OK".into());
                let _ = tokio::time::timeout(Duration::from_secs(5), closing).await;
            });
        }
    }
}

impl Link {
    /// A link over `connection`, watching it for loss (and connecting again after one, with
    /// `reconnect`).
    pub fn new(
        connection: Connection,
        request_timeout: Duration,
        topology: Arc<Topology>,
        reconnect: Option<Reconnect>,
        default_prefetch: Option<u32>,
    ) -> Arc<Link> {
        let events = connection.events_listener();
        let link = Arc::new(Link {
            connection: RwLock::new(Arc::new(connection)),
            epoch: AtomicU64::new(0),
            reconnect,
            default_prefetch,
            sessions: Mutex::new(Vec::new()),
            state: watch::channel(State::Open).0,
            started: watch::channel(false).0,
            tag: uuid::Uuid::new_v4().simple().to_string(),
            listener: Mutex::new(None),
            request_timeout,
            topology,
            declared: Mutex::new(HashSet::new()),
            temporaries: Mutex::new(HashMap::new()),
            queue_consumers: Mutex::new(HashMap::new()),
            topics_declared: AtomicBool::new(false),
            delays: DelayQueues::default(),
            client_id: Mutex::new(None),
            used: AtomicBool::new(false),
            redeliveries: Mutex::new(HashMap::new()),
        });
        crate::reconnect::watch(Arc::downgrade(&link), events);
        link
    }

    /// The current lapin connection.
    pub fn connection(&self) -> Arc<Connection> {
        self.connection.read().clone()
    }

    /// Puts `connection` in place of the lost one.
    pub(crate) fn replace_connection(&self, connection: Connection) {
        *self.connection.write() = Arc::new(connection);
    }

    /// The current epoch (see [`Link::epoch`]'s field).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Starts a new epoch and opens the link again after a reconnect.
    pub(crate) fn reopen(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.state.send_if_modified(|state| {
            let reconnecting = matches!(state, State::Reconnecting(_));
            if reconnecting {
                *state = State::Open;
            }
            reconnecting
        });
    }

    /// The live sessions of this connection.
    pub(crate) fn live_sessions(&self) -> Vec<Arc<SessionCore>> {
        let mut sessions = self.sessions.lock();
        sessions.retain(|s| s.strong_count() > 0);
        sessions.iter().filter_map(Weak::upgrade).collect()
    }

    /// Forgets what this connection declared (a reconnect declares it again on use); the
    /// temporary destinations (exclusive queues) went with the lost connection.
    pub(crate) fn forget_declarations(&self) {
        self.declared.lock().clear();
        self.topics_declared.store(false, Ordering::Release);
        self.delays.forget();
        self.temporaries.lock().clear();
    }

    /// Marks the connection lost (once; not after a close) and tells the listener; with
    /// `reconnect`, marks it reconnecting instead (the listener hears of it only if the
    /// reconnect gives up). Whether a reconnect is to follow.
    pub fn lose(&self, cause: lapin::Error) -> bool {
        let error = Error::connection_lost_from("the connection to RabbitMQ was lost", cause);
        if self.reconnect.is_some() {
            let mut changed = false;
            self.state.send_if_modified(|state| {
                if matches!(state, State::Open) {
                    *state = State::Reconnecting(Error::connection_lost(format!(
                        "{error}; reconnecting"
                    )));
                    changed = true;
                }
                changed
            });
            return matches!(&*self.state.borrow(), State::Reconnecting(_));
        }
        self.give_up(error);
        false
    }

    /// Marks the connection lost for good with `error` (unless closed) and tells the
    /// listener.
    pub fn give_up(&self, error: Error) {
        let mut changed = false;
        self.state.send_if_modified(|state| {
            if matches!(state, State::Open | State::Reconnecting(_)) {
                *state = State::Lost(error.clone());
                changed = true;
            }
            changed
        });
        if changed {
            let listener = self.listener.lock().clone();
            if let Some(listener) = listener {
                listener(&error);
            }
        }
    }

    /// `Ok` while open; the loss (or the reconnect under way), or `IllegalState` once
    /// closed.
    pub fn check(&self) -> Result<()> {
        if matches!(&*self.state.borrow(), State::Open) {
            let connection = self.connection();
            let status = connection.status();
            if !status.connected() && (status.errored() || status.closed()) {
                self.lose(
                    lapin::ErrorKind::InvalidConnectionState(lapin::ConnectionState::Error).into(),
                );
            }
        }
        match &*self.state.borrow() {
            State::Open => Ok(()),
            State::Reconnecting(_) if restoring() => Ok(()),
            State::Closed => Err(Error::illegal_state("the connection is closed")),
            State::Lost(e) | State::Reconnecting(e) => Err(e.clone()),
        }
    }

    /// Waits while a reconnect is under way, until `deadline` (`None`: as long as it takes):
    /// `Ok(true)` once open, `Ok(false)` at the deadline, the error once closed or lost.
    pub async fn usable(&self, deadline: Option<tokio::time::Instant>) -> Result<bool> {
        let mut state = self.state.subscribe();
        loop {
            self.check_quietly()?;
            if matches!(&*state.borrow_and_update(), State::Open) {
                return Ok(true);
            }
            let timer = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => futures::future::pending().await,
                }
            };
            tokio::select! {
                changed = state.changed() => if changed.is_err() {
                    return Err(Error::illegal_state("the connection is closed"));
                },
                () = timer => return Ok(false),
            }
        }
    }

    /// `check`, but a reconnect under way is no error.
    fn check_quietly(&self) -> Result<()> {
        match self.check() {
            Err(_) if matches!(&*self.state.borrow(), State::Reconnecting(_)) => Ok(()),
            other => other,
        }
    }

    /// The loss error, if the connection was lost (or is reconnecting).
    pub fn lost(&self) -> Option<Error> {
        match &*self.state.borrow() {
            State::Lost(e) | State::Reconnecting(e) => Some(e.clone()),
            _ => None,
        }
    }

    /// Resolves when the connection is no longer open, with why: closed, lost, or (with
    /// `reconnect`) interrupted — what was in flight on it is then cut off.
    pub async fn ended(&self) -> Error {
        let mut state = self.state.subscribe();
        loop {
            match &*state.borrow_and_update() {
                State::Open => {}
                State::Reconnecting(_) if restoring() => {}
                State::Closed => return Error::illegal_state("the connection is closed"),
                State::Lost(e) | State::Reconnecting(e) => return e.clone(),
            }
            if state.changed().await.is_err() {
                return Error::illegal_state("the connection is closed");
            }
        }
    }

    /// Resolves when epoch `epoch` ended: the connection is no longer open, or a reconnect
    /// opened a newer epoch (what was in flight on the old channels is cut off).
    pub async fn epoch_ended(&self, epoch: u64) -> Error {
        let mut state = self.state.subscribe();
        loop {
            if self.epoch() != epoch {
                return Error::connection_lost(
                    "the connection to RabbitMQ was lost and made again",
                );
            }
            match &*state.borrow_and_update() {
                State::Open => {}
                State::Closed => return Error::illegal_state("the connection is closed"),
                State::Lost(e) | State::Reconnecting(e) => return e.clone(),
            }
            if state.changed().await.is_err() {
                return Error::illegal_state("the connection is closed");
            }
        }
    }

    /// Resolves when the connection ended for good: closed, or lost with no reconnect (or
    /// one that gave up).
    pub async fn finished(&self) -> Error {
        let mut state = self.state.subscribe();
        loop {
            match &*state.borrow_and_update() {
                State::Open | State::Reconnecting(_) => {}
                State::Closed => return Error::illegal_state("the connection is closed"),
                State::Lost(e) => return e.clone(),
            }
            if state.changed().await.is_err() {
                return Error::illegal_state("the connection is closed");
            }
        }
    }

    /// Runs the request `what`, bounded by the connection's end and the request timeout.
    pub async fn call<T>(
        &self,
        what: &str,
        request: impl Future<Output = lapin::Result<T>>,
    ) -> Result<T> {
        self.check()?;
        tokio::select! {
            result = request => result.map_err(|e| self.lost().unwrap_or_else(|| failure::map(what, e))),
            error = self.ended() => Err(error),
            () = tokio::time::sleep(self.request_timeout) => Err(Error::Timeout(self.request_timeout)),
        }
    }

    /// A new channel.
    pub async fn channel(&self) -> Result<Channel> {
        let connection = self.connection();
        self.call("channel.open", connection.create_channel()).await
    }

    /// Runs `op` on a channel of its own, closed after: for requests whose failure closes
    /// the channel (a passive declare of a missing queue).
    pub async fn on_scratch<T, F, Fut>(&self, what: &str, op: F) -> Result<T>
    where
        F: FnOnce(Channel) -> Fut,
        Fut: Future<Output = lapin::Result<T>>,
    {
        let channel = self.channel().await?;
        let result = self.call(what, op(channel.clone())).await;
        if channel.status().connected() {
            let _ = self
                .call("channel.close", channel.close(200, "OK".into()))
                .await;
        }
        result
    }

    /// Declares the durable queue `name` (once per connection).
    pub async fn declare_queue(&self, channel: &Channel, name: &str) -> Result<()> {
        if self.declared.lock().contains(name) {
            return Ok(());
        }
        let queue = short("a queue name", name)?;
        let options = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        self.topology.record(name);
        self.call(
            "queue.declare",
            channel.queue_declare(queue, options, self.topology.queue_arguments()),
        )
        .await?;
        self.declared.lock().insert(name.to_owned());
        Ok(())
    }

    /// Forgets that this connection declared the queue `name` (it was deleted elsewhere), so
    /// the next send to it declares it again.
    pub fn forget_queue(&self, name: &str) {
        self.declared.lock().remove(name);
    }

    /// Whether the queue `name` exists (a passive declare on a scratch channel): `false` for
    /// 404, `true` for 405 (another connection's exclusive queue).
    pub async fn queue_exists(&self, name: &str) -> Result<bool> {
        let queue = short("a queue name", name)?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let outcome = self
            .on_scratch("queue.declare", |c| async move {
                c.queue_declare(queue, passive, FieldTable::default()).await
            })
            .await;
        match outcome {
            Ok(_) => Ok(true),
            Err(Error::InvalidDestination { .. }) => Ok(false),
            Err(Error::IllegalState(_)) if self.check().is_ok() => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Deletes the queue `name` on a scratch channel; `if_unused` refuses while it has
    /// consumers (checked with a passive declare first: quorum queues do not take
    /// `queue.delete` with `if-unused`, and refusing it closes the whole connection).
    pub async fn delete_queue(&self, name: &str, if_unused: bool) -> Result<()> {
        let queue = short("a queue name", name)?;
        if if_unused {
            let passive = QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            };
            let probe = queue.clone();
            let found = self
                .on_scratch("queue.declare", |c| async move {
                    c.queue_declare(probe, passive, FieldTable::default()).await
                })
                .await;
            match found {
                Ok(q) if q.consumer_count() > 0 => {
                    return Err(Error::illegal_state(format!(
                        "queue {name:?} has {} consumer(s)",
                        q.consumer_count()
                    )))
                }
                Ok(_) | Err(Error::InvalidDestination { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let options = QueueDeleteOptions::default();
        self.on_scratch("queue.delete", |c| async move {
            c.queue_delete(queue, options).await
        })
        .await?;
        self.declared.lock().remove(name);
        self.topology.forget(name);
        Ok(())
    }

    /// Notes that this connection gave the message `id` back for redelivery.
    pub fn count_redelivery(&self, id: Option<&Arc<str>>) {
        let Some(id) = id else { return };
        let mut counts = self.redeliveries.lock();
        if counts.len() >= MAX_COUNTED && !counts.contains_key(id) {
            counts.clear();
        }
        *counts.entry(id.clone()).or_insert(0) += 1;
    }

    /// `JMSXDeliveryCount` of a delivery of a queue that keeps only the redelivered flag.
    pub fn delivery_count(&self, id: Option<&str>, redelivered: bool) -> u32 {
        let mut counts = self.redeliveries.lock();
        match id {
            Some(id) if !redelivered => {
                counts.remove(id);
                1
            }
            Some(id) => counts.get(id).map_or(2, |n| n.saturating_add(1).max(2)),
            None if redelivered => 2,
            None => 1,
        }
    }

    /// Declares the topics exchange (once per connection).
    pub async fn declare_topics(&self, channel: &Channel) -> Result<()> {
        if self.topics_declared.load(Ordering::Acquire) {
            return Ok(());
        }
        let options = lapin::options::ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        self.call(
            "exchange.declare",
            channel.exchange_declare(
                TOPICS.into(),
                lapin::ExchangeKind::Direct,
                options,
                FieldTable::default(),
            ),
        )
        .await?;
        self.topics_declared.store(true, Ordering::Release);
        Ok(())
    }

    /// Waits while delivery is stopped; returns at once when started.
    pub async fn wait_started(&self) {
        let mut started = self.started.subscribe();
        let _ = started.wait_for(|s| *s).await;
    }

    /// The `Unsupported` error for `feature`.
    pub fn unsupported(feature: &str) -> Error {
        Error::unsupported(BACKEND, feature.to_owned())
    }
}
