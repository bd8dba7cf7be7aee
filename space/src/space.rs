//! [`Space`]: a named tuple space on a Courier connection, and its operations.

use courier_api::{
    Capabilities, Connection, ConsumerOptions, DeliveryMode, Destination, Error, Message, Result,
    SendOptions,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::contents::Contents;
use crate::duration::{expiration, is_forever};
use crate::entry::{self, ENTRY_ID};
use crate::lane::{receive, LaneGuard, Lanes, Wait};
use crate::lease::Lease;
use crate::notify::Notifications;
use crate::returned::{writes_only, Unsettled};
use crate::template::Template;
use crate::transaction::Transaction;

/// A lease or timeout that never ends: entries written with it never expire, operations
/// waiting with it wait until a match comes (JavaSpaces' `Lease.FOREVER`).
pub const FOREVER: Duration = Duration::MAX;

/// How a space stores its entries.
///
/// ```
/// use courier_space::SpaceOptions;
/// use courier_api::DeliveryMode;
/// let scratch = SpaceOptions::default()
///     .with_delivery_mode(DeliveryMode::NonPersistent)
///     .with_max_entry_size(64 * 1024);
/// assert_eq!(scratch.max_entry_size, 64 * 1024);
/// assert_eq!(scratch.max_decode_failures, 3);
/// assert_eq!(scratch.dead_letter_queue.as_deref(), Some("DLQ"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpaceOptions {
    /// Persistent entries (the default) survive a restart of a durable backend, like
    /// persistent messages; non-persistent ones are cheaper and may be lost.
    pub delivery_mode: DeliveryMode,
    /// The largest entry accepted, in bytes of properties and body (default 1 MiB). A
    /// larger write fails with [`Error::ResourceLimit`] before anything is sent. Tuple spaces
    /// coordinate; bulk data belongs in a store the entries point to.
    pub max_entry_size: usize,
    /// How many takes may fail to decode an entry before the space moves it to
    /// [`SpaceOptions::dead_letter_queue`] (default 3; 0 counts as 1). Only failed decodes
    /// count: aborted, timed-out or dropped transactions and cancelled takes never do.
    pub max_decode_failures: u32,
    /// The backend's dead-letter queue, where entries that no take could decode go
    /// (default `"DLQ"`, the embedded broker's). `None`: such an entry stays in the space
    /// and every take that reaches it keeps failing. [`SpaceOptions::for_backend`] takes
    /// both settings from what the backend reports.
    pub dead_letter_queue: Option<String>,
}

/// The decode-failure limit used when the backend reports no delivery-attempt limit.
const DEFAULT_MAX_DECODE_FAILURES: u32 = 3;

impl Default for SpaceOptions {
    fn default() -> Self {
        SpaceOptions {
            delivery_mode: DeliveryMode::Persistent,
            max_entry_size: 1024 * 1024,
            max_decode_failures: DEFAULT_MAX_DECODE_FAILURES,
            dead_letter_queue: Some("DLQ".to_owned()),
        }
    }
}

impl SpaceOptions {
    /// Sets whether entries are persistent.
    pub fn with_delivery_mode(mut self, mode: DeliveryMode) -> Self {
        self.delivery_mode = mode;
        self
    }

    /// Sets the largest entry accepted, in bytes.
    pub fn with_max_entry_size(mut self, bytes: usize) -> Self {
        self.max_entry_size = bytes;
        self
    }

    /// The default options, with the dead-letter queue and decode-failure limit of the
    /// backend that reports `capabilities` (its `max_delivery_attempts`, or 3 when it has
    /// none). A backend without a dead-letter queue gets `None`: undecodable entries stay.
    pub fn for_backend(capabilities: &Capabilities) -> Self {
        SpaceOptions {
            max_decode_failures: capabilities
                .max_delivery_attempts
                .unwrap_or(DEFAULT_MAX_DECODE_FAILURES),
            dead_letter_queue: capabilities.dead_letter_queue.clone(),
            ..SpaceOptions::default()
        }
    }

    /// Sets how many failed decodes move an entry to the dead-letter queue.
    pub fn with_max_decode_failures(mut self, failures: u32) -> Self {
        self.max_decode_failures = failures;
        self
    }

    /// Sets the dead-letter queue for undecodable entries (`None`: keep them).
    pub fn with_dead_letter_queue(mut self, queue: Option<String>) -> Self {
        self.dead_letter_queue = queue;
        self
    }
}

/// A tuple space (Linda, JavaSpaces): processes `write` entries into it and `read` or
/// `take` them by template instead of by address.
///
/// A space lives in the backend, so it outlives the processes using it and is shared by
/// every connection that opens the same name. Each entry type has a queue of its own
/// (`space.<name>.<type>`); an entry is a message whose matchable fields are typed
/// properties and whose value is the body; a template is a selector; `take` is a receive
/// with it, `read` a browse, `notify` a subscription to the space's write events, a lease a
/// time to live, and a [`Transaction`] a transacted session. Waiting operations are woken by
/// the backend when a matching entry is written; they never poll.
///
/// `Space` is cheap to clone; clones share one pool of sessions, and operations from many
/// tasks run concurrently, each on a session of its own.
///
/// ```no_run
/// use courier_space::{Space, Template, FOREVER};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// #[derive(serde::Serialize, serde::Deserialize, Debug)]
/// struct Task { id: u64, kind: String }
///
/// # async fn demo(factory: &dyn courier_api::ConnectionFactory) -> courier_api::Result<()> {
/// let connection: Arc<dyn courier_api::Connection> = factory.create_connection().await?.into();
/// let space = Space::open(&connection, "render-farm").await?;
/// space.write(&Task { id: 1, kind: "resize".into() }, FOREVER).await?;
///
/// let resizes = Template::<Task>::builder().eq("kind", "resize").build()?;
/// let task = space.take(&resizes, Duration::from_secs(5)).await?;
/// println!("got {task:?}");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Space {
    pub(crate) inner: Arc<SpaceInner>,
}

pub(crate) struct SpaceInner {
    name: String,
    pub options: SpaceOptions,
    pub lanes: Arc<Lanes>,
    id_prefix: String,
    next_id: AtomicU64,
}

/// An entry encoded for sending.
pub(crate) struct Prepared {
    pub type_name: String,
    pub entry_id: String,
    pub message: Message,
}

impl fmt::Debug for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Space")
            .field("name", &self.inner.name)
            .field("options", &self.inner.options)
            .finish()
    }
}

impl Space {
    /// Opens the space `name` on `connection` with default options, starting the connection
    /// (a space cannot receive on a stopped one).
    ///
    /// Names are 1–128 letters, digits, `_` or `-`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the backend cannot evaluate selectors on queues or browse
    /// them — tuple spaces need both; [`Error::InvalidArgument`] for a bad name; the
    /// connection's errors.
    pub async fn open(connection: &Arc<dyn Connection>, name: &str) -> Result<Space> {
        Self::open_with(connection, name, SpaceOptions::default()).await
    }

    /// Opens the space `name` with the given options; see [`Space::open`].
    pub async fn open_with(
        connection: &Arc<dyn Connection>,
        name: &str,
        options: SpaceOptions,
    ) -> Result<Space> {
        check_space_name(name)?;
        connection.start().await?;
        let lanes = Lanes::new(connection.clone());
        let mut guard = lanes.checkout().await?;
        probe_support(&mut guard, name).await?;
        guard.release();
        Ok(Space {
            inner: Arc::new(SpaceInner {
                name: name.to_owned(),
                options,
                lanes,
                id_prefix: uuid::Uuid::new_v4().simple().to_string(),
                next_id: AtomicU64::new(1),
            }),
        })
    }

    /// The space's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The space's options.
    pub fn options(&self) -> &SpaceOptions {
        &self.inner.options
    }

    /// Writes `entry` into the space for `lease` (use [`FOREVER`] for no expiry) and returns
    /// its lease. Subscribers of [`Space::notify`] whose template matches are told.
    ///
    /// Entries are structs (their serde name is the type name; scalar fields are matchable)
    /// or tuples (`("task", 7_i64)`, positions `_0`, `_1`, … are the fields).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a zero lease, a value that is not a struct or tuple,
    /// or one nested more than 127 levels deep (it could not be read back); [`Error::ResourceLimit`] for an entry larger than
    /// [`SpaceOptions::max_entry_size`]; the backend's send errors, after which the write is
    /// in doubt, as a failed send is.
    pub async fn write<E: Serialize + ?Sized>(&self, entry: &E, lease: Duration) -> Result<Lease> {
        let ttl = lease_ttl(lease)?;
        let mut prepared = self.inner.prepare(entry)?;
        let mut guard = self.inner.lanes.checkout().await?;
        let lane = guard.lane();
        let queue = self.inner.queue(&prepared.type_name);
        lane.producer
            .send_with(
                Some(&queue),
                &mut prepared.message,
                &self.inner.entry_options(ttl),
            )
            .await?;
        let topic = self.inner.topic(&prepared.type_name);
        lane.producer
            .send_with(Some(&topic), &mut prepared.message, &event_options(ttl))
            .await?;
        guard.release();
        Ok(Lease::new(
            self.clone(),
            prepared.type_name,
            prepared.entry_id,
            expiration(ttl),
        ))
    }

    /// Returns a copy of an entry matching `template`, waiting up to `timeout` for one to be
    /// written (zero: do not wait; [`FOREVER`]: wait until one comes). The entry stays.
    ///
    /// While it waits, the read listens to the space's write events with the template as
    /// selector, so the backend wakes it for a matching write and it uses no CPU meanwhile.
    /// An entry that comes back — taken by a transaction that aborts, times out or is
    /// dropped, or by a take that fails or is cancelled — wakes it too.
    ///
    /// # Errors
    ///
    /// [`Error::MessageFormat`] when the first matching entry cannot be decoded as `T`. A
    /// read leaves the space as it is, so it does not count a failed decode: only takes
    /// move such an entry to the dead-letter queue (see [`Space::take`]).
    pub async fn read<T: DeserializeOwned>(
        &self,
        template: &Template<T>,
        timeout: Duration,
    ) -> Result<Option<T>> {
        let wait = Wait::from_timeout(timeout);
        if wait == Wait::No {
            return self.read_if_exists(template).await;
        }
        let mut guard = self.inner.lanes.checkout().await?;
        let found = self
            .inner
            .read_waiting(&mut guard, template, wait, None)
            .await?;
        guard.release();
        found.map(|m| entry::decode(&m)).transpose()
    }

    /// Returns a copy of an entry matching `template` if one is in the space now.
    pub async fn read_if_exists<T: DeserializeOwned>(
        &self,
        template: &Template<T>,
    ) -> Result<Option<T>> {
        let mut guard = self.inner.lanes.checkout().await?;
        let found = self
            .inner
            .browse_first(&*guard.lane().session, template)
            .await?;
        guard.release();
        found.map(|m| entry::decode(&m)).transpose()
    }

    /// Removes and returns an entry matching `template`, waiting up to `timeout` for one to
    /// be written (zero: do not wait; [`FOREVER`]: wait until one comes).
    ///
    /// Each entry is taken once: however many processes take concurrently, on any backend
    /// that passes the conformance suite, no two get the same entry. A waiting take is a
    /// receive with the template as selector; the backend wakes it for a matching write.
    ///
    /// # Errors
    ///
    /// [`Error::MessageFormat`] when the matching entry cannot be decoded as `T` (another
    /// type with the same serde name, or an older shape of `T`). The space counts the
    /// failure on the entry: it replaces it, atomically, with a copy whose
    /// `$decode_failures` property is one higher — same entry id (its [`Lease`] still
    /// renews and cancels it), value, priority and expiration, but last in the space's
    /// order for its priority, and without a write event for [`Space::notify`]. The take
    /// that reaches [`SpaceOptions::max_decode_failures`] moves the entry to
    /// [`SpaceOptions::dead_letter_queue`] instead, so an unusable entry cannot block the
    /// space; later takes with the template no longer see it. Until then a take of a type
    /// that can decode it still gets it. Without a dead-letter queue (`None`) the entry
    /// stays and every take that reaches it fails. Only failed decodes count: an aborted,
    /// timed-out or dropped transaction's take, or a cancelled take, never moves an entry.
    pub async fn take<T: DeserializeOwned>(
        &self,
        template: &Template<T>,
        timeout: Duration,
    ) -> Result<Option<T>> {
        let taken = self
            .take_up_to(template, 1, Wait::from_timeout(timeout))
            .await?;
        Ok(taken.into_iter().next())
    }

    /// Removes and returns an entry matching `template` if one is in the space now.
    pub async fn take_if_exists<T: DeserializeOwned>(
        &self,
        template: &Template<T>,
    ) -> Result<Option<T>> {
        self.take(template, Duration::ZERO).await
    }

    /// Removes and returns up to `max` entries matching `template`: waits up to `timeout`
    /// for the first, then takes what else is there without waiting. Empty when nothing
    /// matched in time.
    ///
    /// The batch is acknowledged as one: if any entry cannot be decoded, none is taken, the
    /// call fails with [`Error::MessageFormat`], and each undecodable entry of the batch
    /// counts one failed decode as in [`Space::take`]; the others keep their places.
    pub async fn take_many<T: DeserializeOwned>(
        &self,
        template: &Template<T>,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<T>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        self.take_up_to(template, max, Wait::from_timeout(timeout))
            .await
    }

    /// The entries matching `template`, without removing them, as a stream. It walks the
    /// space as it is while being read: entries written meanwhile may or may not appear.
    pub async fn contents<T: DeserializeOwned + 'static>(
        &self,
        template: &Template<T>,
    ) -> Result<Contents<T>> {
        let mut guard = self.inner.lanes.checkout().await?;
        let queue = self.inner.queue(template.type_name());
        let browser = guard
            .lane()
            .session
            .create_browser(&queue, template.selector())
            .await?;
        Ok(Contents::new(Vec::new(), browser, Some(guard)))
    }

    /// A stream of the entries matching `template` written from now on (JavaSpaces
    /// `notify`): each item is a copy of a written entry; entries written in a transaction
    /// are reported when it commits. An entry that comes back to the space (its taking
    /// transaction aborted, or a take could not decode it) is not a write and is not
    /// reported again. Dropping the stream
    /// ends the registration.
    ///
    /// The backend filters the events with the template, so non-matching writes cost the
    /// listener nothing.
    pub async fn notify<T: DeserializeOwned + 'static>(
        &self,
        template: &Template<T>,
    ) -> Result<Notifications<T>> {
        let session = self
            .inner
            .lanes
            .connection()
            .create_session(courier_api::SessionMode::AutoAcknowledge)
            .await?;
        let topic = self.inner.topic(template.type_name());
        let options = ConsumerOptions::selector(writes_only(template.selector()));
        let consumer = session.create_consumer(&topic, options).await?;
        Ok(Notifications::new(session, consumer))
    }

    /// Starts a transaction with no time limit. See [`Transaction`].
    pub async fn transaction(&self) -> Result<Transaction> {
        Transaction::begin(self.clone(), None).await
    }

    /// Starts a transaction that aborts by itself after `timeout` unless committed first:
    /// its takes go back to the space even if its owner hangs. [`FOREVER`] (or any timeout
    /// from a century up) sets no limit.
    pub async fn transaction_with_timeout(&self, timeout: Duration) -> Result<Transaction> {
        Transaction::begin(self.clone(), Some(timeout)).await
    }

    async fn take_up_to<T: DeserializeOwned>(
        &self,
        template: &Template<T>,
        max: usize,
        wait: Wait,
    ) -> Result<Vec<T>> {
        let mut guard = self.inner.lanes.checkout().await?;
        let lane = guard.lane();
        let queue = self.inner.queue(template.type_name());
        let consumer = lane
            .consumers
            .get(&*lane.session, &queue, template.selector())
            .await?;
        // Dropped before settling (an error, a cancelled take), the lane's session closes
        // and gives the entries back; `received` then announces them to waiting reads.
        let mut received = Unsettled::new(self.inner.clone());
        if let Some(first) = receive(consumer, wait).await? {
            received.push(first);
            while received.entries().len() < max {
                match consumer.receive_no_wait().await? {
                    Some(m) => received.push(m),
                    None => break,
                }
            }
        }
        if received.entries().is_empty() {
            guard.release();
            return Ok(Vec::new());
        }
        let mut entries = Vec::with_capacity(received.entries().len());
        let mut undecodable = Vec::new();
        let mut back = Vec::new();
        let mut first_error = None;
        for message in received.entries() {
            match entry::decode(message) {
                Ok(entry) => {
                    entries.push(entry);
                    back.push(message.clone());
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                    undecodable.push(message.clone());
                }
            }
        }
        let Some(error) = first_error else {
            lane.session.acknowledge().await?;
            received.settle();
            guard.release();
            return Ok(entries);
        };
        lane.session.recover().await?;
        guard.release();
        // The batch is back in the space; each undecodable entry now counts a failure.
        // `received` still announces the originals if this is cancelled midway.
        match self.inner.record_decode_failures(undecodable).await {
            Ok(kept) => {
                received.settle();
                let _ = self.inner.announce_returned([back, kept].concat()).await;
            }
            Err(_) => {
                let _ = received.returned().await;
            }
        }
        Err(error)
    }
}

impl SpaceInner {
    /// The queue holding entries of `type_name`.
    pub fn queue(&self, type_name: &str) -> Destination {
        Destination::queue(format!("space.{}.{type_name}", self.name))
    }

    /// The topic announcing writes of entries of `type_name`.
    pub fn topic(&self, type_name: &str) -> Destination {
        Destination::topic(format!("space.{}.{type_name}", self.name))
    }

    /// Encodes `entry` with a fresh id and checks its size.
    pub fn prepare<E: Serialize + ?Sized>(&self, entry: &E) -> Result<Prepared> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let entry_id = format!("{}-{n}", self.id_prefix);
        let (type_name, message) = entry::to_message(entry, &entry_id)?;
        let size = message.size_hint();
        if size > self.options.max_entry_size {
            return Err(Error::ResourceLimit(format!(
                "entry of type {type_name} is about {size} bytes, over the limit of {} bytes \
                 of space {:?}",
                self.options.max_entry_size, self.name
            )));
        }
        Ok(Prepared {
            type_name,
            entry_id,
            message,
        })
    }

    /// Send options of an entry with time to live `ttl` (zero: never expires).
    pub fn entry_options(&self, ttl: Duration) -> SendOptions {
        SendOptions {
            delivery_mode: self.options.delivery_mode,
            time_to_live: ttl,
            ..SendOptions::default()
        }
    }

    /// The first entry matching `template` that `session` can browse.
    pub async fn browse_first<T>(
        &self,
        session: &dyn courier_api::Session,
        template: &Template<T>,
    ) -> Result<Option<Message>> {
        let queue = self.queue(template.type_name());
        let browser = session.create_browser(&queue, template.selector()).await?;
        let found = browser.next().await?;
        browser.close().await?;
        Ok(found)
    }

    /// A waiting read: listens for matching writes on the lane, then browses `session` (the
    /// lane's own, or a transaction's), and if nothing is there waits for the next event.
    /// Listening first means no write can slip between the browse and the wait.
    pub async fn read_waiting<T>(
        &self,
        guard: &mut LaneGuard,
        template: &Template<T>,
        wait: Wait,
        session: Option<&dyn courier_api::Session>,
    ) -> Result<Option<Message>> {
        let lane = guard.lane();
        let options = ConsumerOptions {
            selector: template.selector().map(str::to_owned),
            no_local: false,
            // No credit ahead: an entry is taken only by a waiting take, never stranded.
            prefetch: None,
        };
        let events = lane
            .session
            .create_consumer(&self.topic(template.type_name()), options)
            .await?;
        let browse_session = session.unwrap_or(&*lane.session);
        let outcome: courier_api::Result<Option<courier_api::Message>> = async {
            if let Some(found) = self.browse_first(browse_session, template).await? {
                return Ok(Some(found));
            }
            let event = receive(events.as_ref(), wait).await?;
            if event.is_some() {
                lane.session.acknowledge().await?;
            }
            Ok(event)
        }
        .await;
        let closed = events.close().await;
        let found = outcome?;
        closed?;
        Ok(found)
    }
}

/// Event messages are notifications, not state: never persisted, gone with the entry.
fn event_options(ttl: Duration) -> SendOptions {
    SendOptions {
        delivery_mode: DeliveryMode::NonPersistent,
        time_to_live: ttl,
        ..SendOptions::default()
    }
}

/// The time to live of a lease: zero for [`FOREVER`], at least a millisecond otherwise.
pub(crate) fn lease_ttl(lease: Duration) -> Result<Duration> {
    if lease.is_zero() {
        return Err(Error::invalid_argument(
            "a lease must be longer than zero (use FOREVER for entries that never expire)",
        ));
    }
    Ok(if is_forever(lease) {
        Duration::ZERO
    } else {
        lease.max(Duration::from_millis(1))
    })
}

fn check_space_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_argument(format!(
            "space name {name:?} must be 1-128 ASCII letters, digits, '_' or '-'"
        )))
    }
}

/// Checks that the backend can select on and browse queues, on the space's root queue.
async fn probe_support(guard: &mut LaneGuard, name: &str) -> Result<()> {
    let session = &guard.lane().session;
    let root = Destination::queue(format!("space.{name}"));
    let selector = format!("{ENTRY_ID} IS NULL");
    let needs = |e: Error| match e {
        Error::Unsupported { backend, feature } => Error::Unsupported {
            backend,
            feature: format!(
                "tuple spaces (they need selectors on queues and browsing): {feature}"
            ),
        },
        other => other,
    };
    let consumer = session
        .create_consumer(&root, ConsumerOptions::selector(selector.clone()))
        .await
        .map_err(needs)?;
    consumer.close().await?;
    let browser = session
        .create_browser(&root, Some(&selector))
        .await
        .map_err(needs)?;
    browser.close().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_map_to_times_to_live() {
        assert!(lease_ttl(Duration::ZERO).is_err());
        assert_eq!(lease_ttl(FOREVER).unwrap(), Duration::ZERO);
        assert_eq!(
            lease_ttl(Duration::from_micros(10)).unwrap(),
            Duration::from_millis(1)
        );
        assert_eq!(
            lease_ttl(Duration::from_secs(60)).unwrap(),
            Duration::from_secs(60)
        );
        assert!(expiration(Duration::ZERO).is_none());
    }

    #[test]
    fn options_for_backend_take_its_dead_letter_settings() {
        let mut caps = Capabilities::full("test");
        let none = SpaceOptions::for_backend(&caps);
        assert_eq!(none.dead_letter_queue, None);
        assert_eq!(none.max_decode_failures, DEFAULT_MAX_DECODE_FAILURES);
        caps.max_delivery_attempts = Some(7);
        caps.dead_letter_queue = Some("dead".into());
        let some = SpaceOptions::for_backend(&caps);
        assert_eq!(some.dead_letter_queue.as_deref(), Some("dead"));
        assert_eq!(some.max_decode_failures, 7);
    }

    #[test]
    fn space_names_are_checked() {
        assert!(check_space_name("tasks-1_a").is_ok());
        for bad in ["", "a.b", "a b", "ü", &"x".repeat(129)] {
            assert!(check_space_name(bad).is_err(), "{bad:?}");
        }
    }
}
