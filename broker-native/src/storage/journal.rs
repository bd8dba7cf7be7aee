//! The [`Journal`] handle: open (replay), append (tickets), read (paging), stats, close.

use super::compaction;
use super::error::{JournalError, Result};
use super::faults::FaultInjector;
use super::index::Index;
use super::record::{parse_frame, DurableSubscription, Owner, Record, BATCH_HEADER_LEN};
use super::replay::{self, ReplayReport};
use super::segment::{self, HEADER_LEN};
use super::writer::{Done, Pending, Writer};
use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use std::future::Future;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use tokio::sync::{oneshot, Semaphore};

/// How a journal is laid out and behaves.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// Size at which a segment is sealed and a new one started (default 64 MiB; at least
    /// 4 KiB, at most 4 GiB). The largest record is this less a few dozen bytes.
    pub segment_size: u64,
    /// Skip damaged records before the journal's end instead of refusing to start; the replay
    /// report (and the log) names what was lost. Off by default: damage is the operator's call.
    pub skip_corrupt: bool,
    /// Bytes of appends waiting for the writer before [`Journal::append`] waits (default
    /// 64 MiB): producers faster than the disk are slowed, not buffered without bound.
    pub max_pending_bytes: usize,
    /// Compact a prefix of old segments once at most this fraction of its bytes is live
    /// (default 0.5).
    pub compact_ratio: f64,
    /// Run background compaction (default on; dead segments are deleted either way).
    pub compaction: bool,
    /// Message bodies to load at start-up, in bytes (default: all). Messages past this are
    /// left on disk and read back with [`Journal::read`] when their turn comes.
    pub memory_limit: Option<u64>,
    /// Write fault injection, for tests (see [`FaultInjector`]).
    pub faults: Option<Arc<FaultInjector>>,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            segment_size: 64 << 20,
            skip_corrupt: false,
            max_pending_bytes: 64 << 20,
            compact_ratio: 0.5,
            compaction: true,
            memory_limit: None,
            faults: None,
        }
    }
}

/// A live stored copy found at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredMessage {
    /// Its queue or durable subscription.
    pub owner: Owner,
    /// The core's id.
    pub id: u64,
    /// How often it was delivered before (non-zero: it comes back redelivered).
    pub delivery_count: u32,
    /// Its bytes, or `None` when it was left on disk (past [`JournalOptions::memory_limit`]):
    /// read it with [`Journal::read`].
    pub body: Option<Bytes>,
}

/// The live state found at start-up, for the core to rebuild from.
#[derive(Debug, Clone, Default)]
pub struct Recovered {
    /// Live plain queues, in creation order.
    pub queues: Vec<Arc<str>>,
    /// Live durable subscriptions, in creation order.
    pub subscriptions: Vec<DurableSubscription>,
    /// Live messages in the order they were stored (per owner: arrival order).
    pub messages: Vec<RecoveredMessage>,
    /// The highest message id ever stored: new ids must be above it.
    pub max_message_id: u64,
    /// The highest durable subscription id ever stored: new ids must be above it.
    pub max_subscription_id: u64,
    /// What replay cut, skipped or cleaned up.
    pub report: ReplayReport,
}

/// Counters of a running journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JournalStats {
    /// Records appended and confirmed.
    pub appends: u64,
    /// Batches written.
    pub batches: u64,
    /// `fdatasync` calls made for batches.
    pub syncs: u64,
    /// Their total time in nanoseconds (with `syncs`, the mean fsync latency).
    pub sync_nanos: u64,
    /// The longest one, in nanoseconds.
    pub sync_max_nanos: u64,
    /// Bytes written by the writer.
    pub bytes: u64,
    /// Segments deleted because nothing in them was live.
    pub segments_deleted: u64,
    /// Compactions done.
    pub compactions: u64,
    /// Segments making up the journal now.
    pub segments: u64,
    /// Live messages now.
    pub live_messages: u64,
    /// Bytes the segment files take now (their lengths; the active one as written so far).
    pub disk_bytes: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub appends: AtomicU64,
    pub batches: AtomicU64,
    pub syncs: AtomicU64,
    pub sync_nanos: AtomicU64,
    pub sync_max_nanos: AtomicU64,
    pub bytes: AtomicU64,
    pub segments_deleted: AtomicU64,
    pub compactions: AtomicU64,
}

#[derive(Default)]
pub(crate) struct Queue {
    pub items: Vec<Pending>,
    /// The frames of `items`, encoded back to back as they are queued:
    /// one growing buffer instead of an allocation per record, and one copy into the batch.
    pub frames: Vec<u8>,
    pub closed: bool,
    /// The writer is waiting for work (appenders wake it only then).
    pub idle: bool,
    /// Appends ever queued: the writer publishes how many it has settled in
    /// [`Shared::settled`], which is what [`Journal::synced`] waits on.
    pub submitted: u64,
}

#[derive(Default)]
pub(crate) struct Maintenance {
    pub dirty: bool,
    pub closed: bool,
}

/// The bodies of one commit record's sends, by id, with the record's segment and offset.
pub(crate) type CommitBodies = (u64, u64, Arc<std::collections::HashMap<u64, Bytes>>);

/// What the journal's handle, writer and maintenance threads share.
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub options: JournalOptions,
    pub queue: Mutex<Queue>,
    pub queue_cv: Condvar,
    pub index: Mutex<Index>,
    pub maintenance: Mutex<Maintenance>,
    pub maintenance_cv: Condvar,
    pub budget: Semaphore,
    pub stats: Counters,
    pub failed: Mutex<Option<JournalError>>,
    /// The directory's lock file, locked exclusively while open; `None` once closed.
    pub lock: Mutex<Option<std::fs::File>>,
    /// The bodies of the last transaction commit read back, by the commit's place (segment,
    /// offset — never reused: compaction writes new segments): a paged backlog sent in
    /// transactions is read in order, so one decode of a commit serves all its sends.
    pub last_commit: Mutex<Option<CommitBodies>>,
    /// How many of the appends ever queued ([`Queue::submitted`]) the writer has settled
    /// (written and synced, or failed); `u64::MAX` once it stopped.
    pub settled: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    /// The body of a live copy, read from its segment.
    pub fn read(&self, owner: &Owner, id: u64) -> Result<Bytes> {
        let (file, offset, frame_len, seg) = {
            let index = self.index.lock();
            let e = index
                .owner_id(owner)
                .and_then(|o| index.msgs.get(&(o, id)))
                .ok_or(JournalError::UnknownMessage(id))?;
            let s = &index.segs[&e.seg];
            (s.file.clone(), e.offset, e.frame_len, e.seg)
        };
        if let Some((s, o, bodies)) = &*self.last_commit.lock() {
            if (*s, *o) == (seg, offset) {
                if let Some(body) = bodies.get(&id) {
                    return Ok(body.clone());
                }
            }
        }
        let path = segment::path(&self.dir, seg);
        let corrupt = || JournalError::Corrupt {
            file: path.clone(),
            offset,
            reason: format!("message {id} does not read back"),
        };
        let mut buf = vec![0u8; frame_len as usize];
        file.read_exact_at(&mut buf, offset)
            .map_err(|e| JournalError::io("read", &path, e))?;
        let data = Bytes::from(buf);
        let frame = parse_frame(&data, 0, frame_len as usize).map_err(|_| corrupt())?;
        match Record::decode(&frame.payload).map_err(|_| corrupt())? {
            Record::Send(m) if m.id == id => Ok(m.body),
            Record::Commit { sends, .. } => {
                let bodies: std::collections::HashMap<u64, Bytes> =
                    sends.into_iter().map(|m| (m.id, m.body)).collect();
                let body = bodies.get(&id).cloned().ok_or_else(corrupt)?;
                *self.last_commit.lock() = Some((seg, offset, Arc::new(bodies)));
                Ok(body)
            }
            _ => Err(corrupt()),
        }
    }

    pub fn poke_maintenance(&self) {
        self.maintenance.lock().dirty = true;
        self.maintenance_cv.notify_one();
    }
}

/// Resolves once the record's batch is on disk (`Ok`), or with why it is not.
///
/// Dropping a ticket does not cancel the append.
#[must_use = "a ticket tells whether the record is durable"]
pub struct Ticket(oneshot::Receiver<Result<()>>);

impl Future for Ticket {
    type Output = Result<()>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(JournalError::Closed)))
    }
}

impl Ticket {
    /// Waits for the outcome on a thread that is not running async tasks.
    pub fn wait(self) -> Result<()> {
        self.0.blocking_recv().unwrap_or(Err(JournalError::Closed))
    }
}

/// A durable, segmented, append-only journal; see the [module docs](super).
pub struct Journal {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.shared.dir)
            .finish()
    }
}

impl Journal {
    /// Opens (creating if needed) the journal in `dir`, replays it, and starts its writer.
    pub fn open(dir: impl AsRef<Path>, options: JournalOptions) -> Result<(Journal, Recovered)> {
        let dir = dir.as_ref().to_owned();
        if !(4096..=u32::MAX as u64).contains(&options.segment_size) {
            return Err(JournalError::InvalidOptions(format!(
                "segment_size {} is outside 4 KiB ..= 4 GiB",
                options.segment_size
            )));
        }
        if !(options.compact_ratio > 0.0 && options.compact_ratio < 1.0) {
            return Err(JournalError::InvalidOptions(format!(
                "compact_ratio {} is outside (0, 1)",
                options.compact_ratio
            )));
        }
        let lock = lock_dir(&dir)?;
        let replayed = replay::replay(&dir, &options)?;
        let mut index = replayed.index;
        let recovered = recovered(&mut index, replayed.report, options.memory_limit);
        let active = index.active;
        let file = index.segs[&active].file.clone();
        let budget = options.max_pending_bytes.clamp(1, Semaphore::MAX_PERMITS);
        let shared = Arc::new(Shared {
            dir,
            options,
            queue: Mutex::default(),
            queue_cv: Condvar::new(),
            index: Mutex::new(index),
            maintenance: Mutex::new(Maintenance {
                dirty: true,
                closed: false,
            }),
            maintenance_cv: Condvar::new(),
            budget: Semaphore::new(budget),
            stats: Counters::default(),
            failed: Mutex::new(None),
            lock: Mutex::new(Some(lock)),
            last_commit: Mutex::new(None),
            settled: tokio::sync::watch::Sender::new(0),
        });
        let writer = Writer::new(
            shared.clone(),
            active,
            file,
            replayed.active_len,
            replayed.active_batch,
        );
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| JournalError::io("start thread for", &shared.dir, e))
        };
        let w = spawn("journal-writer", Box::new(move || writer.run()))?;
        let s2 = shared.clone();
        let m = spawn("journal-maintenance", Box::new(move || compaction::run(s2)))?;
        Ok((
            Journal {
                shared,
                threads: Mutex::new(vec![w, m]),
            },
            recovered,
        ))
    }

    /// The largest record this journal accepts, in encoded bytes.
    pub fn max_record_size(&self) -> usize {
        (self.shared.options.segment_size as usize) - HEADER_LEN - BATCH_HEADER_LEN
    }

    /// Queues `record` for the next batch; the returned [`Ticket`] resolves once it is on
    /// disk. Waits only when [`JournalOptions::max_pending_bytes`] of appends are already
    /// queued. Records are written in the order their appends return.
    pub async fn append(&self, record: Record) -> Result<Ticket> {
        let size = self.admit(&record)?;
        let permits = size.clamp(1, self.shared.options.max_pending_bytes.max(1));
        let permits = permits.min(u32::MAX as usize);
        self.shared
            .budget
            .acquire_many(permits as u32)
            .await
            .map_err(|_| JournalError::Closed)?
            .forget();
        let (done, rx) = oneshot::channel();
        self.queue(record, Done::Channel(done), permits)?;
        Ok(Ticket(rx))
    }

    /// Queues `record` without ever waiting, for callers that must not block (the core's
    /// storage hook calls it under queue locks); `done` hears the outcome once the record's
    /// batch is on disk or failed. Past [`JournalOptions::max_pending_bytes`] the record is
    /// taken anyway: such callers await their outcomes, which bounds what they queue.
    pub fn submit(&self, record: Record, done: Box<dyn FnOnce(Result<()>) + Send>) -> Result<()> {
        self.submit_done(record, Done::Callback(done))
    }

    /// Queues `record` like [`Journal::submit`], for a caller that needs no outcome (its
    /// ticket would be dropped): no callback is made or called. A failure still fails the
    /// record's batch, and [`Journal::synced`] still waits for it.
    pub fn submit_unwatched(&self, record: Record) -> Result<()> {
        self.submit_done(record, Done::Nothing)
    }

    fn submit_done(&self, record: Record, done: Done) -> Result<()> {
        let size = self.admit(&record)?;
        let wanted = size.clamp(1, self.shared.options.max_pending_bytes.max(1));
        let permits = match self
            .shared
            .budget
            .try_acquire_many(wanted.min(u32::MAX as usize) as u32)
        {
            Ok(p) => {
                p.forget();
                wanted
            }
            Err(_) => 0,
        };
        self.queue(record, done, permits)
    }

    /// The size of `record`'s frame, if the journal takes it: not too large, and the
    /// journal not failed.
    fn admit(&self, record: &Record) -> Result<usize> {
        let size = record.frame_len();
        if size > self.max_record_size() {
            return Err(JournalError::TooLarge {
                size,
                max: self.max_record_size(),
            });
        }
        match self.shared.failed.lock().clone() {
            Some(e) => Err(e),
            None => Ok(size),
        }
    }

    /// Encodes `record` into the queue for the writer (waking it if idle); on refusal gives its
    /// `permits` of the budget back.
    fn queue(&self, record: Record, done: Done, permits: usize) -> Result<()> {
        let wake = {
            let mut q = self.shared.queue.lock();
            if q.closed {
                drop(q);
                self.shared.budget.add_permits(permits);
                return Err(JournalError::Closed);
            }
            // Encoded under the lock, straight into the shared buffer: the frames stay in
            // queue order, and no record needs an allocation of its own.
            let start = q.frames.len();
            record.encode_frame(&mut q.frames);
            let frame_len = (q.frames.len() - start) as u32;
            q.submitted += 1;
            q.items.push(Pending {
                frame_len,
                record,
                done,
                permits,
            });
            std::mem::take(&mut q.idle)
        };
        if wake {
            self.shared.queue_cv.notify_one();
        }
        Ok(())
    }

    /// A future that resolves once every record queued before this call has been settled:
    /// on disk, or failed (a failure is reported to that record's own waiter, not here). It
    /// costs no record and no `fdatasync` of its own, so it can follow records whose tickets
    /// were dropped — the TCP server holds back a delivery's frame with it until the
    /// delivery's count is durable, and many deliveries share one wait.
    pub fn synced(&self) -> impl Future<Output = ()> + Send + 'static {
        let target = self.shared.queue.lock().submitted;
        let mut settled = self.shared.settled.subscribe();
        async move {
            // An error means the journal is gone: nothing is left to wait for.
            let _ = settled.wait_for(|n| *n >= target).await;
        }
    }

    /// Stops at once, as if the process were killed: records queued and not yet being
    /// written are dropped (their tickets fail), the batch being written finishes, nothing
    /// else is flushed. For crash tests of what is built on the journal.
    pub fn halt(&self) {
        let dropped = {
            let mut q = self.shared.queue.lock();
            q.closed = true;
            q.frames.clear();
            std::mem::take(&mut q.items)
        };
        drop(dropped);
        self.close();
    }

    /// Reads back the body of the live copy of message `id` held by `owner` (for messages
    /// kept on disk only).
    pub fn read(&self, owner: &Owner, id: u64) -> Result<Bytes> {
        self.shared.read(owner, id)
    }

    /// Current counters.
    pub fn stats(&self) -> JournalStats {
        let s = &self.shared.stats;
        let (segments, live_messages, files) = {
            let index = self.shared.index.lock();
            let files: Vec<_> = index
                .segs
                .values()
                .map(|seg| (seg.file.clone(), seg.file_len))
                .collect();
            (index.order.len() as u64, index.msgs.len() as u64, files)
        };
        // The files' sizes are read after the index lock is released: appends wait on it.
        let disk_bytes = files
            .iter()
            .map(|(file, len)| file.metadata().map_or(*len, |m| m.len()))
            .sum();
        JournalStats {
            appends: s.appends.load(Ordering::Relaxed),
            batches: s.batches.load(Ordering::Relaxed),
            syncs: s.syncs.load(Ordering::Relaxed),
            sync_nanos: s.sync_nanos.load(Ordering::Relaxed),
            sync_max_nanos: s.sync_max_nanos.load(Ordering::Relaxed),
            bytes: s.bytes.load(Ordering::Relaxed),
            segments_deleted: s.segments_deleted.load(Ordering::Relaxed),
            compactions: s.compactions.load(Ordering::Relaxed),
            segments,
            live_messages,
            disk_bytes,
        }
    }

    /// The directory holding the journal.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Runs maintenance now, on the caller's thread: deletes dead segments and compacts while
    /// there is a sparse prefix. Returns the number of compactions done.
    pub fn maintain(&self) -> Result<u64> {
        compaction::delete_dead(&self.shared)?;
        let mut n = 0;
        if self.shared.options.compaction {
            while compaction::compact(&self.shared)? {
                n += 1;
                compaction::delete_dead(&self.shared)?;
            }
        }
        Ok(n)
    }

    /// Writes what is queued, stops the writer and maintenance threads, and waits for them.
    pub fn close(&self) {
        self.shared.queue.lock().closed = true;
        self.shared.queue_cv.notify_all();
        self.shared.budget.close();
        {
            let mut m = self.shared.maintenance.lock();
            m.closed = true;
        }
        self.shared.maintenance_cv.notify_all();
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
        // Released only once nothing writes any more: the next opener may start at once.
        drop(self.shared.lock.lock().take());
    }
}

/// The name of the lock file in a journal directory.
pub(crate) const LOCK_FILE: &str = "lock";

/// Creates `dir` if needed and locks its lock file exclusively, without waiting: a directory
/// another journal holds is [`JournalError::Locked`]. The lock lives as long as the file.
fn lock_dir(dir: &Path) -> Result<std::fs::File> {
    std::fs::create_dir_all(dir).map_err(|e| JournalError::io("create directory", dir, e))?;
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| JournalError::io("open", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(JournalError::Locked {
            dir: dir.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(JournalError::io("lock", &path, e)),
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.close();
    }
}

/// The live state of a freshly replayed index, bodies loaded up to `memory_limit`.
fn recovered(index: &mut Index, report: ReplayReport, memory_limit: Option<u64>) -> Recovered {
    let bodies = index.replay_bodies.take().unwrap_or_default();
    let mut budget = memory_limit.unwrap_or(u64::MAX);
    let mut dense = (u64::MAX, false);
    let mut messages = Vec::with_capacity(index.msgs.len());
    // Bodies come in journal order; the live ones are those the index still holds with the
    // same sequence number.
    for (seq, key, b) in bodies {
        let Some(e) = index.msgs.get(&key).filter(|e| e.seq == seq) else {
            continue;
        };
        let len = b.len() as u64;
        let body = if len > budget {
            budget = 0;
            None
        } else {
            budget -= len;
            // A slice keeps its whole segment in memory: only worth it if the segment is
            // mostly live. (Bodies come segment by segment: decide once per segment.)
            if dense.0 != e.seg {
                let seg = &index.segs[&e.seg];
                dense = (e.seg, seg.live_bytes * 2 >= seg.file_len);
            }
            Some(if dense.1 {
                b
            } else {
                Bytes::copy_from_slice(&b)
            })
        };
        messages.push(RecoveredMessage {
            owner: index.owner_names[key.0 as usize].clone(),
            id: key.1,
            delivery_count: e.count,
            body,
        });
    }
    let mut queues: Vec<_> = index.queues.iter().collect();
    queues.sort_by_key(|(_, p)| p.seq);
    let mut subs: Vec<_> = index.subs.values().collect();
    subs.sort_by_key(|(_, p)| p.seq);
    Recovered {
        queues: queues.into_iter().map(|(k, _)| k.clone()).collect(),
        subscriptions: subs.into_iter().map(|(s, _)| s.clone()).collect(),
        messages,
        max_message_id: index.max_id,
        max_subscription_id: index.max_subscription_id,
        report,
    }
}
