//! The one writer: group commit without timers.
//!
//! Appenders encode their record (on their own thread) and push it onto a shared queue; the
//! writer thread takes *everything* queued, writes it as one batch with one `pwrite`, calls
//! `fdatasync` once, applies the batch to the index and resolves every ticket in it. While it
//! waits on the disk, new appends pile up and become the next batch: a lone append waits one
//! `fdatasync`, and under load batches grow so throughput follows the disk's bandwidth instead
//! of its latency.
//!
//! A batch never spans two segments: when the next record does not fit, what is gathered so
//! far is written and synced first, then a new segment is created. A failed write or
//! `fdatasync` fails the tickets of that batch only: the segment is cut back to where the
//! batch started (shrinking a file needs no space), so the journal stays consistent and a full
//! disk (`ResourceLimit`) heals once space is freed. If the cut itself fails, the journal
//! refuses further appends rather than risk a hole in the middle of a segment.

use super::error::{JournalError, Result};
use super::faults;
use super::record::{self, Record, StoredMessage, BATCH_HEADER_LEN};
use super::segment::{self, SegmentId, HEADER_LEN};
use super::Shared;
use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Who hears how an append ended.
pub(crate) enum Done {
    /// A [`Ticket`](super::Ticket) waiting on a channel.
    Channel(oneshot::Sender<Result<()>>),
    /// A callback (the core's storage hook resolves its own ticket type with it).
    Callback(Box<dyn FnOnce(Result<()>) + Send>),
    /// Nobody: the appender needs no outcome ([`Journal::submit_unwatched`](super::Journal)).
    Nothing,
}

/// One queued append.
pub(crate) struct Pending {
    /// The length of its frame, the next bytes of the queue's shared frame buffer.
    pub frame_len: u32,
    pub record: Record,
    pub done: Done,
    pub permits: usize,
}

/// Where the writer finds an append's frame.
enum Frame {
    /// This range of the taken frame buffer.
    Queued(std::ops::Range<usize>),
    /// Bytes of its own (a dead-lettering, rewritten as the record it stands for).
    Own(Vec<u8>),
}

impl Frame {
    fn len(&self) -> usize {
        match self {
            Frame::Queued(range) => range.len(),
            Frame::Own(bytes) => bytes.len(),
        }
    }
}

/// A run of appends written as one batch, each with its frame.
type Chunk = Vec<(Pending, Frame)>;

/// Buffers kept between batches larger than this are given back to the allocator.
const KEEP_BYTES: usize = 8 << 20;

/// The writer thread's own state: the segment being written.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    active: SegmentId,
    file: Arc<File>,
    len: u64,
    batch: u64,
    buf: Vec<u8>,
    /// The previous batch's emptied item list and frame buffer, swapped into the queue at
    /// the next take so their capacity is reused.
    spare: (Vec<Pending>, Vec<u8>),
}

impl Writer {
    pub fn new(
        shared: Arc<Shared>,
        active: SegmentId,
        file: Arc<File>,
        len: u64,
        batch: u64,
    ) -> Self {
        Writer {
            shared,
            active,
            file,
            len,
            batch,
            buf: Vec::new(),
            spare: (Vec::new(), Vec::new()),
        }
    }

    /// Runs until the journal is closed and the queue drained.
    pub fn run(mut self) {
        loop {
            let (mut items, mut frames) = std::mem::take(&mut self.spare);
            let taken = {
                let mut q = self.shared.queue.lock();
                while q.items.is_empty() && !q.closed {
                    q.idle = true;
                    self.shared.queue_cv.wait(&mut q);
                }
                q.idle = false;
                if q.items.is_empty() {
                    self.shared.settled.send_replace(u64::MAX);
                    return;
                }
                std::mem::swap(&mut q.items, &mut items);
                std::mem::swap(&mut q.frames, &mut frames);
                q.submitted
            };
            self.process(&mut items, &frames);
            self.shared.settled.send_replace(taken);
            frames.clear();
            if frames.capacity() > KEEP_BYTES {
                frames = Vec::new();
            }
            if self.buf.capacity() > KEEP_BYTES {
                self.buf = Vec::new();
            }
            self.spare = (items, frames);
        }
    }

    fn path(&self) -> std::path::PathBuf {
        segment::path(&self.shared.dir, self.active)
    }

    /// Writes the taken `items` (their queued frames back to back in `frames`), leaving the
    /// list empty.
    fn process(&mut self, items: &mut Vec<Pending>, frames: &[u8]) {
        if let Some(e) = self.shared.failed.lock().clone() {
            return self.finish(items.drain(..), Err(e));
        }
        let room_total = self.shared.options.segment_size;
        let mut chunk: Chunk = Vec::new();
        let mut size = 0u64;
        let mut at = 0usize;
        for mut p in items.drain(..) {
            let mut frame = Frame::Queued(at..at + p.frame_len as usize);
            at += p.frame_len as usize;
            if matches!(p.record, Record::DeadLettered { .. }) {
                // The move needs the bytes of the copy, which may be in what is gathered.
                if !chunk.is_empty() {
                    self.write(std::mem::take(&mut chunk), size, frames);
                    size = 0;
                }
                match self.dead_letter(&mut p) {
                    Ok(own) => frame = own.unwrap_or(frame),
                    Err(e) => {
                        self.finish([p], Err(e));
                        continue;
                    }
                }
            }
            let need = frame.len() as u64;
            if self.len + BATCH_HEADER_LEN as u64 + size + need > room_total {
                if !chunk.is_empty() {
                    self.write(std::mem::take(&mut chunk), size, frames);
                    size = 0;
                }
                if self.len > HEADER_LEN as u64 {
                    if let Err(e) = self.roll() {
                        self.finish([p], Err(e));
                        continue;
                    }
                }
            }
            size += need;
            chunk.push((p, frame));
        }
        if !chunk.is_empty() {
            self.write(chunk, size, frames);
        }
    }

    fn write(&mut self, chunk: Chunk, size: u64, frames: &[u8]) {
        let faults = self.shared.options.faults.as_deref();
        self.buf.clear();
        record::encode_batch_header(&mut self.buf, self.batch + 1, size as u32);
        let mut offsets = Vec::with_capacity(chunk.len());
        for (_, frame) in &chunk {
            offsets.push(self.len + self.buf.len() as u64);
            match frame {
                Frame::Queued(range) => self.buf.extend_from_slice(&frames[range.clone()]),
                Frame::Own(bytes) => self.buf.extend_from_slice(bytes),
            }
        }
        let outcome = faults::write_at(faults, &self.file, &self.buf, self.len)
            .map_err(|e| JournalError::io("append to", self.path(), e))
            .and_then(|()| {
                let stats = &self.shared.stats;
                stats.syncs.fetch_add(1, Ordering::Relaxed);
                let started = std::time::Instant::now();
                let synced = faults::sync_data(faults, &self.file);
                let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                stats.sync_nanos.fetch_add(nanos, Ordering::Relaxed);
                stats.sync_max_nanos.fetch_max(nanos, Ordering::Relaxed);
                synced.map_err(|e| JournalError::io("fdatasync", self.path(), e))
            });
        if let Err(e) = outcome {
            self.cut_back();
            return self.finish(chunk.into_iter().map(|(p, _)| p), Err(e));
        }
        self.batch += 1;
        self.len += self.buf.len() as u64;
        let stats = &self.shared.stats;
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats
            .appends
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        stats
            .bytes
            .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        let mut removes = false;
        {
            let mut index = self.shared.index.lock();
            for ((p, frame), offset) in chunk.iter().zip(&offsets) {
                removes |= !matches!(
                    p.record,
                    Record::Send(_) | Record::QueueCreated(_) | Record::SubscriptionCreated(_)
                );
                index.apply(self.active, *offset, frame.len() as u32, &p.record);
            }
            if let Some(s) = index.segs.get_mut(&self.active) {
                s.file_len = self.len;
            }
        }
        if removes {
            self.shared.poke_maintenance();
        }
        self.finish(chunk.into_iter().map(|(p, _)| p), Ok(()));
    }

    /// Turns a dead-lettering into a record that stands alone: a commit adding the new copy
    /// (with the bytes of the old one) and removing the old copy. Returns its frame; `p`'s
    /// record becomes the commit. Any other record is left as it is (`None`).
    fn dead_letter(&self, p: &mut Pending) -> Result<Option<Frame>> {
        let Record::DeadLettered {
            from,
            id,
            to,
            new_id,
        } = &p.record
        else {
            return Ok(None);
        };
        let record = match self.shared.read(from, *id) {
            Ok(body) => Record::Commit {
                sends: vec![StoredMessage {
                    id: *new_id,
                    owners: vec![to.clone()],
                    body,
                }],
                acks: vec![(from.clone(), *id)],
            },
            // Nothing to move (never stored, or gone): the removal is all that is left.
            Err(JournalError::UnknownMessage(_)) => Record::Remove {
                owner: from.clone(),
                id: *id,
            },
            Err(e) => return Err(e),
        };
        let max = self.shared.options.segment_size as usize - HEADER_LEN - BATCH_HEADER_LEN;
        if record.frame_len() > max {
            return Err(JournalError::TooLarge {
                size: record.frame_len(),
                max,
            });
        }
        let mut frame = Vec::with_capacity(record.frame_len());
        record.encode_frame(&mut frame);
        p.record = record;
        Ok(Some(Frame::Own(frame)))
    }

    /// Cuts the segment back to its last synced length after a failed write or sync.
    fn cut_back(&mut self) {
        let faults = self.shared.options.faults.as_deref();
        let cut = self
            .file
            .set_len(self.len)
            .and_then(|()| faults::sync_data(faults, &self.file));
        if let Err(e) = cut {
            let reason = format!(
                "could not cut {} back to {} bytes after a failed write: {e}",
                self.path().display(),
                self.len
            );
            tracing::error!("journal: {reason}; refusing further appends");
            *self.shared.failed.lock() = Some(JournalError::Failed(reason));
        }
    }

    /// Starts a new segment after the current one (already synced).
    fn roll(&mut self) -> Result<()> {
        let dir = &self.shared.dir;
        let faults = self.shared.options.faults.as_deref();
        let id = {
            let mut index = self.shared.index.lock();
            let id = index.next_segment;
            index.next_segment += 1;
            id
        };
        let path = segment::path(dir, id);
        let file = Arc::new(segment::create(faults, &path, id, 0)?);
        let listed = segment::sync_dir(dir).and_then(|()| {
            let mut index = self.shared.index.lock();
            let mut order = index.order.clone();
            order.push(id);
            index.manifest_with(&order).write(dir, faults)?;
            index.push_segment(id, file.clone(), HEADER_LEN as u64, Vec::new());
            index.active = id;
            Ok(())
        });
        if let Err(e) = listed {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        self.active = id;
        self.file = file;
        self.len = HEADER_LEN as u64;
        self.batch = 0;
        self.shared.poke_maintenance();
        Ok(())
    }

    fn finish(&self, items: impl IntoIterator<Item = Pending>, outcome: Result<()>) {
        let mut permits = 0;
        for p in items {
            permits += p.permits;
            match p.done {
                Done::Channel(tx) => {
                    let _ = tx.send(outcome.clone());
                }
                Done::Callback(f) => f(outcome.clone()),
                Done::Nothing => {}
            }
        }
        self.shared.budget.add_permits(permits);
    }
}
