//! [`Transaction`]: writes and takes that take effect together, or not at all.

use courier_api::{Error, Message, Producer, Result, Session, SessionMode};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::contents::Contents;
use crate::duration::{deadline_after, expiration};
use crate::entry;
use crate::lane::{receive, ConsumerCache, Wait};
use crate::lease::Lease;
use crate::space::{lease_ttl, Space, SpaceInner};
use crate::template::Template;

const OPEN: u8 = 0;
const FINISHING: u8 = 1;
const TIMED_OUT: u8 = 2;

/// A space transaction (JavaSpaces `Transaction`, on a Courier transacted session).
///
/// * Nothing written in it is visible to others — not to reads, takes or notifications —
///   before [`Transaction::commit`]; its writes wait on the client until then.
/// * What it takes is gone for everyone else at once, and comes back if the transaction
///   aborts: by [`Transaction::abort`], by being dropped uncommitted, or by outliving the
///   timeout of [`Space::transaction_with_timeout`].
/// * Its own operations see its own writes: a read or take in the transaction finds the
///   entries it wrote (a take of one simply cancels the write).
///
/// A transaction is used by one task at a time (`&mut self`), like the session under it.
/// Entries read in a transaction are not locked against other takers. After an operation
/// fails (an entry that cannot be decoded, a lost connection), abort: what the transaction
/// received stays taken in it until it ends. Aborts never move an entry to a dead-letter
/// queue: the embedded broker's default configuration exempts the space's queues (`space.#`,
/// `BrokerConfig::space_rule`) from dead-lettering; a backend configured by hand must keep
/// that rule, or an entry could leave the space after its transactions' rollbacks. A take
/// that fails to decode an entry counts one failed decode on it when the transaction ends,
/// however it ends (commit included: the commit puts the entry back, or at the limit on
/// the dead-letter queue, instead of consuming it), as [`Space::take`] describes.
///
/// ```no_run
/// # use courier_space::{Space, Template, FOREVER};
/// # async fn demo(space: Space) -> courier_api::Result<()> {
/// use std::time::Duration;
/// let mut tx = space.transaction().await?;
/// let job = tx
///     .take(&Template::<(String, i64)>::builder().eq(0, "job").build()?, Duration::from_secs(1))
///     .await?;
/// if let Some((_, n)) = job {
///     tx.write(&("done", n), FOREVER).await?;
/// }
/// tx.commit().await?; // the job is gone and its result there, or neither
/// # Ok(()) }
/// ```
pub struct Transaction {
    space: Space,
    core: Arc<TxCore>,
    producer: Box<dyn Producer>,
    consumers: ConsumerCache,
    writes: Vec<PendingWrite>,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    timer: Option<JoinHandle<()>>,
    finished: bool,
}

/// What the timeout timer shares with the transaction.
struct TxCore {
    session: Box<dyn Session>,
    state: AtomicU8,
    space: Arc<SpaceInner>,
    /// Entries taken from the space: if the transaction does not commit they come back,
    /// and are announced to waiting reads.
    taken: Mutex<Vec<Message>>,
    /// Entries taken that could not be decoded: each counts one failed decode when the
    /// transaction ends, however it ends (see `crate::undecodable`).
    undecodable: Mutex<Vec<Message>>,
}

/// A write held on the client until commit.
struct PendingWrite {
    type_name: String,
    message: Message,
    /// `None`: never expires.
    expires_at: Option<Instant>,
}

impl PendingWrite {
    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

impl fmt::Debug for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("space", &self.space.name())
            .field("pending_writes", &self.writes.len())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Transaction {
    pub(crate) async fn begin(space: Space, timeout: Option<Duration>) -> Result<Transaction> {
        let session = space
            .inner
            .lanes
            .connection()
            .create_session(SessionMode::Transacted)
            .await?;
        let producer = session.create_producer(None).await?;
        let core = Arc::new(TxCore {
            session,
            state: AtomicU8::new(OPEN),
            space: space.inner.clone(),
            taken: Mutex::new(Vec::new()),
            undecodable: Mutex::new(Vec::new()),
        });
        let deadline = timeout.and_then(deadline_after);
        let timer = deadline.map(|at| {
            let core = Arc::downgrade(&core);
            tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                if let Some(core) = core.upgrade() {
                    core.expire().await;
                }
            })
        });
        Ok(Transaction {
            space,
            core,
            producer,
            consumers: ConsumerCache::default(),
            writes: Vec::new(),
            timeout,
            deadline,
            timer,
            finished: false,
        })
    }

    /// Writes `entry` in the transaction; it appears in the space at commit, with `lease`
    /// counted from the write. The lease's id is valid once committed.
    pub async fn write<E: Serialize + ?Sized>(
        &mut self,
        entry: &E,
        lease: Duration,
    ) -> Result<Lease> {
        self.check_open()?;
        let ttl = lease_ttl(lease)?;
        let prepared = self.space.inner.prepare(entry)?;
        self.writes.push(PendingWrite {
            type_name: prepared.type_name.clone(),
            message: prepared.message,
            expires_at: (!ttl.is_zero()).then(|| deadline_after(ttl)).flatten(),
        });
        Ok(Lease::new(
            self.space.clone(),
            prepared.type_name,
            prepared.entry_id,
            expiration(ttl),
        ))
    }

    /// Like [`Space::read`], within the transaction: its own writes first, then the space.
    pub async fn read<T: DeserializeOwned>(
        &mut self,
        template: &Template<T>,
        timeout: Duration,
    ) -> Result<Option<T>> {
        self.check_open()?;
        if let Some(i) = self.own_match(template) {
            return entry::decode(&self.writes[i].message).map(Some);
        }
        let wait = self.bound(Wait::from_timeout(timeout));
        let inner = &self.space.inner;
        let found = if wait == Wait::No {
            inner.browse_first(&*self.core.session, template).await?
        } else {
            let mut guard = inner.lanes.checkout().await?;
            let found = inner
                .read_waiting(&mut guard, template, wait, Some(&*self.core.session))
                .await?;
            guard.release();
            found
        };
        if found.is_none() {
            self.check_deadline().await?;
        }
        found.map(|m| entry::decode(&m)).transpose()
    }

    /// Like [`Space::read_if_exists`], within the transaction.
    pub async fn read_if_exists<T: DeserializeOwned>(
        &mut self,
        template: &Template<T>,
    ) -> Result<Option<T>> {
        self.read(template, Duration::ZERO).await
    }

    /// Like [`Space::take`], within the transaction: the entry is gone for others now, and
    /// for good at commit. An entry that cannot be decoded as `T` fails the take with
    /// [`Error::MessageFormat`]; it stays out of the space until the transaction ends, and
    /// then counts one failed decode (see the type's docs).
    pub async fn take<T: DeserializeOwned>(
        &mut self,
        template: &Template<T>,
        timeout: Duration,
    ) -> Result<Option<T>> {
        let taken = self
            .take_up_to(template, 1, Wait::from_timeout(timeout))
            .await?;
        Ok(taken.into_iter().next())
    }

    /// Like [`Space::take_if_exists`], within the transaction.
    pub async fn take_if_exists<T: DeserializeOwned>(
        &mut self,
        template: &Template<T>,
    ) -> Result<Option<T>> {
        self.take(template, Duration::ZERO).await
    }

    /// Like [`Space::take_many`], within the transaction.
    pub async fn take_many<T: DeserializeOwned>(
        &mut self,
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

    /// Like [`Space::contents`], within the transaction: its own writes, then the space's
    /// entries it has not taken.
    pub async fn contents<T: DeserializeOwned + 'static>(
        &mut self,
        template: &Template<T>,
    ) -> Result<Contents<T>> {
        self.check_open()?;
        let now = Instant::now();
        let own = self
            .writes
            .iter()
            .filter(|w| {
                w.type_name == template.type_name() && w.live(now) && template.matches(&w.message)
            })
            .map(|w| w.message.clone())
            .collect();
        let queue = self.space.inner.queue(template.type_name());
        let browser = self
            .core
            .session
            .create_browser(&queue, template.selector())
            .await?;
        Ok(Contents::new(own, browser, None))
    }

    /// Makes the transaction's writes visible and its takes final, as one unit.
    ///
    /// # Errors
    ///
    /// [`Error::TransactionRolledBack`] when the transaction timed out or the backend
    /// could not commit; then nothing of it took effect.
    pub async fn commit(mut self) -> Result<()> {
        self.finished = true;
        self.stop_timer();
        self.consumers.close_all();
        if !self.core.begin_finishing() {
            self.core.session.close().await?;
            return Err(self.timed_out());
        }
        let mut kept = Vec::new();
        let mut outcome = self.publish_writes().await;
        if outcome.is_ok() {
            outcome = match self.core.count_undecodable(&*self.producer).await {
                Ok(copies) => {
                    kept = copies;
                    Ok(())
                }
                Err(e) => Err(e),
            };
        }
        let outcome = match outcome {
            Ok(()) => self.core.session.commit().await,
            Err(e) => {
                let _ = self.core.session.rollback().await;
                Err(Error::TransactionRolledBack(format!(
                    "a write of the transaction could not be sent: {e}"
                )))
            }
        };
        if outcome.is_err() {
            self.core.announce_taken().await;
        } else {
            self.core.taken.lock().clear();
            self.core.undecodable.lock().clear();
            let _ = self.core.space.announce_returned(kept).await;
        }
        let closed = self.core.session.close().await;
        outcome.and(closed)
    }

    /// Abandons the transaction: its writes are dropped and its takes go back to the space.
    /// Aborting a transaction that already timed out is fine.
    pub async fn abort(mut self) -> Result<()> {
        self.finished = true;
        self.stop_timer();
        self.consumers.close_all();
        if self.core.begin_finishing() {
            self.core.rollback().await?;
        }
        self.core.session.close().await
    }

    async fn take_up_to<T: DeserializeOwned>(
        &mut self,
        template: &Template<T>,
        max: usize,
        wait: Wait,
    ) -> Result<Vec<T>> {
        self.check_open()?;
        let mut taken = self.take_own(template, max)?;
        let wait = if taken.is_empty() {
            self.bound(wait)
        } else {
            Wait::No
        };
        let queue = self.space.inner.queue(template.type_name());
        let consumer = self
            .consumers
            .get(&*self.core.session, &queue, template.selector())
            .await?;
        if taken.len() < max {
            if let Some(first) = receive(consumer, wait).await? {
                taken.push(self.core.decode_taken(first)?);
                while taken.len() < max {
                    match consumer.receive_no_wait().await? {
                        Some(m) => taken.push(self.core.decode_taken(m)?),
                        None => break,
                    }
                }
            }
        }
        if taken.is_empty() {
            self.check_deadline().await?;
        }
        Ok(taken)
    }

    /// Takes up to `max` of the transaction's own live writes that `template` matches, in
    /// write order, in one pass over them. If one cannot be decoded, none is taken.
    fn take_own<T: DeserializeOwned>(
        &mut self,
        template: &Template<T>,
        max: usize,
    ) -> Result<Vec<T>> {
        let now = Instant::now();
        let chosen: Vec<usize> = self
            .writes
            .iter()
            .enumerate()
            .filter(|(_, w)| {
                w.type_name == template.type_name() && w.live(now) && template.matches(&w.message)
            })
            .map(|(i, _)| i)
            .take(max)
            .collect();
        if chosen.is_empty() {
            return Ok(Vec::new());
        }
        let taken = chosen
            .iter()
            .map(|&i| entry::decode(&self.writes[i].message))
            .collect::<Result<Vec<T>>>()?;
        let mut chosen = chosen.into_iter().peekable();
        let mut index = 0;
        self.writes.retain(|_| {
            let is_taken = chosen.next_if_eq(&index).is_some();
            index += 1;
            !is_taken
        });
        Ok(taken)
    }

    /// The index of the first own write, still alive, that `template` matches.
    fn own_match<T>(&self, template: &Template<T>) -> Option<usize> {
        let now = Instant::now();
        self.writes.iter().position(|w| {
            w.type_name == template.type_name() && w.live(now) && template.matches(&w.message)
        })
    }

    /// Sends the pending writes (in the transacted session, so they appear at commit) and
    /// their write events.
    async fn publish_writes(&mut self) -> Result<()> {
        let now = Instant::now();
        let inner = &self.space.inner;
        for mut write in std::mem::take(&mut self.writes) {
            let ttl = match write.expires_at {
                None => Duration::ZERO,
                Some(at) if at <= now => continue,
                Some(at) => (at - now).max(Duration::from_millis(1)),
            };
            let queue = inner.queue(&write.type_name);
            self.producer
                .send_with(Some(&queue), &mut write.message, &inner.entry_options(ttl))
                .await?;
            let mut event = inner.entry_options(ttl);
            event.delivery_mode = courier_api::DeliveryMode::NonPersistent;
            self.producer
                .send_with(
                    Some(&inner.topic(&write.type_name)),
                    &mut write.message,
                    &event,
                )
                .await?;
        }
        Ok(())
    }

    fn check_open(&self) -> Result<()> {
        match self.core.state.load(Ordering::Acquire) {
            OPEN => Ok(()),
            TIMED_OUT => Err(self.timed_out()),
            _ => Err(Error::illegal_state("the transaction is finished")),
        }
    }

    /// After a wait came back empty: if the deadline has passed, the transaction is over
    /// (the timer may not have run yet; whoever comes first rolls back).
    async fn check_deadline(&self) -> Result<()> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.core.expire().await;
        }
        self.check_open()
    }

    /// `wait`, cut short at the transaction's deadline.
    fn bound(&self, wait: Wait) -> Wait {
        match self.deadline {
            Some(d) => wait.at_most(d.saturating_duration_since(Instant::now())),
            None => wait,
        }
    }

    fn timed_out(&self) -> Error {
        Error::TransactionRolledBack(format!(
            "the transaction outlived its timeout of {:?} and was rolled back",
            self.timeout.unwrap_or_default()
        ))
    }

    fn stop_timer(&mut self) {
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
    }
}

impl TxCore {
    /// Claims the right to end the transaction; false when the timeout claimed it first.
    fn begin_finishing(&self) -> bool {
        self.state
            .compare_exchange(OPEN, FINISHING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Rolls the transaction back for its timeout, unless it is already ending.
    async fn expire(&self) {
        if self
            .state
            .compare_exchange(OPEN, TIMED_OUT, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let _ = self.rollback().await;
        }
    }

    /// Rolls back; the entries taken go back to the space and are announced.
    async fn rollback(&self) -> Result<()> {
        self.session.rollback().await?;
        self.announce_taken().await;
        Ok(())
    }

    /// Tells waiting reads about the entries taken, which are back in the space, after
    /// counting a failed decode on each undecodable one. Best effort: when it fails (a
    /// closed connection) the reads fail or time out anyway.
    async fn announce_taken(&self) {
        let mut back = std::mem::take(&mut *self.taken.lock());
        let undecodable = std::mem::take(&mut *self.undecodable.lock());
        match self.space.record_decode_failures(undecodable.clone()).await {
            Ok(kept) => back.extend(kept),
            Err(_) => back.extend(undecodable),
        }
        let _ = self.space.announce_returned(back).await;
    }

    /// Records `message` as taken and decodes it; one that cannot be decoded is kept
    /// apart, to count its failure when the transaction ends.
    fn decode_taken<T: DeserializeOwned>(&self, message: Message) -> Result<T> {
        match entry::decode(&message) {
            Ok(entry) => {
                self.taken.lock().push(message);
                Ok(entry)
            }
            Err(e) => {
                self.undecodable.lock().push(message);
                Err(e)
            }
        }
    }

    /// Before commit: sends in the transaction, for each undecodable entry it took, the
    /// copy counting one more failed decode, so the commit that consumes the entry puts
    /// it back (or at the limit on the dead-letter queue) instead of losing it. Returns the
    /// copies put back, to announce after the commit.
    async fn count_undecodable(&self, producer: &dyn Producer) -> Result<Vec<Message>> {
        let undecodable = self.undecodable.lock().clone();
        let mut kept = Vec::with_capacity(undecodable.len());
        for current in &undecodable {
            if let Some(copy) = self.space.send_failure_copy(producer, current).await? {
                kept.push(copy);
            }
        }
        Ok(kept)
    }
}

/// A transaction dropped without commit or abort aborts: its takes go back to the space.
impl Drop for Transaction {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        self.stop_timer();
        self.consumers.close_all();
        let rollback = self.core.begin_finishing();
        let core = self.core.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if rollback {
                        let _ = core.rollback().await;
                    }
                    let _ = core.session.close().await;
                });
            }
            // Without a runtime the session can only be dropped, which backends treat as
            // a close (and a close rolls back).
            Err(_) => drop(core),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::FOREVER_FROM;
    use crate::{Template, FOREVER};
    use courier_api::{Connection, ConnectionFactory};
    use courier_broker::EmbeddedFactory;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    #[serde(rename = "Versioned")]
    struct Current {
        id: i64,
        extra: String,
    }

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    #[serde(rename = "Versioned")]
    struct Older {
        id: i64,
    }

    /// A take of the transaction's own writes that meets one it cannot decode takes none:
    /// the writes it could decode stay, and are published at commit.
    #[tokio::test]
    async fn failed_take_of_own_writes_loses_none() -> Result<()> {
        let connection: Arc<dyn Connection> =
            EmbeddedFactory::default().create_connection().await?.into();
        let space = Space::open(&connection, "own-writes").await?;
        let mut tx = space.transaction().await?;
        tx.write(
            &Current {
                id: 1,
                extra: "x".into(),
            },
            FOREVER,
        )
        .await?;
        tx.write(&Older { id: 2 }, FOREVER).await?;
        let current = Template::<Current>::any()?;
        let failed = tx.take_many(&current, 10, Duration::ZERO).await;
        assert!(matches!(failed, Err(Error::MessageFormat(_))), "{failed:?}");
        tx.commit().await?;
        let older = Template::<Older>::any()?;
        let mut ids: Vec<i64> = space
            .take_many(&older, 10, Duration::ZERO)
            .await?
            .iter()
            .map(|e| e.id)
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, vec![1, 2], "both writes were published");
        connection.close().await
    }

    /// Every duration the space accepts saturates: the crate's own `FOREVER`, `Duration::MAX`
    /// and their neighbours work as timeouts, leases and waits without panicking.
    #[tokio::test]
    async fn huge_durations_never_overflow() -> Result<()> {
        let connection: Arc<dyn Connection> =
            EmbeddedFactory::default().create_connection().await?.into();
        let space = Space::open(&connection, "huge-durations").await?;
        let any = Template::<(String, i64)>::any()?;
        let huge = [
            FOREVER,
            Duration::MAX - Duration::from_nanos(1),
            Duration::from_secs(u64::MAX / 2),
            FOREVER_FROM,
            FOREVER_FROM - Duration::from_nanos(1),
        ];
        for (n, duration) in (0_i64..).zip(huge) {
            let mut tx = space.transaction_with_timeout(duration).await?;
            tx.write(&("entry", n), duration).await?;
            assert!(tx.read(&any, duration).await?.is_some(), "its own write");
            tx.commit().await?;
            let mut lease = space.write(&("leased", n), duration).await?;
            lease.renew(duration).await?;
            assert!(space.read(&any, duration).await?.is_some());
            assert_eq!(space.take_many(&any, usize::MAX, duration).await?.len(), 2);
        }
        connection.close().await
    }
}
