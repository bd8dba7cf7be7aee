//! Start-up: read the manifest, remove leftovers of interrupted steps, replay every listed
//! segment in order into the [`Index`], and hand the live state to the caller.
//!
//! Inside a segment, records come in batches, each opened by a batch header frame giving its
//! number and length: a batch is what one `fdatasync` covered. A damaged record or header in
//! the *last batch of the last segment* is a torn write of a batch that was never confirmed:
//! the whole batch is cut (truncated away, one log line saying how much). Damage anywhere else
//! sits in data that was confirmed: start-up stops with [`JournalError::Corrupt`] naming the
//! file and offset, unless [`JournalOptions::skip_corrupt`] is set, in which case the damaged
//! bytes are skipped (remembered in the manifest, so the next start-up does not stop again)
//! and the report says what was lost. A batch's records are applied only once the whole batch
//! has been read, so a cut batch leaves no trace.

use super::error::{JournalError, Result};
use super::index::Index;
use super::manifest::{Manifest, Skip, MANIFEST};
use super::record::{self, parse_frame, OwnerRef, Record, BATCH_HEADER_LEN};
use super::segment::{self, SegmentId, HEADER_LEN};
use super::JournalOptions;
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What start-up found and did beyond replaying clean records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Segments replayed.
    pub segments: usize,
    /// Records replayed.
    pub records: u64,
    /// Bytes of segment files read.
    pub bytes: u64,
    /// The torn last batch that was cut, if any.
    pub torn_tail: Option<TornTail>,
    /// Damaged ranges skipped because [`JournalOptions::skip_corrupt`] was set.
    pub skipped: Vec<Skipped>,
    /// Files removed as leftovers of interrupted steps (unlisted segments, temporary files).
    pub removed_leftovers: Vec<PathBuf>,
}

/// A torn last batch, cut at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment.
    pub file: PathBuf,
    /// Where the cut batch started (the file's new length).
    pub offset: u64,
    /// Bytes cut.
    pub bytes_cut: u64,
}

/// A damaged range skipped at the operator's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The segment.
    pub file: PathBuf,
    /// Where the damage starts.
    pub offset: u64,
    /// Bytes skipped.
    pub len: u64,
    /// What was wrong.
    pub reason: String,
    /// What the damaged record seemed to be, when its bytes still decode despite the checksum.
    pub looked_like: Option<String>,
}

/// What replay hands to the journal.
pub(crate) struct Replayed {
    pub index: Index,
    pub report: ReplayReport,
    pub active_len: u64,
    pub active_batch: u64,
}

/// Replays the journal in `dir`, creating an empty one if the directory holds none.
pub(crate) fn replay(dir: &Path, options: &JournalOptions) -> Result<Replayed> {
    std::fs::create_dir_all(dir).map_err(|e| JournalError::io("create directory", dir, e))?;
    let faults = options.faults.as_deref();
    let mut report = ReplayReport::default();
    let mut on_disk = Vec::new();
    let mut leftovers = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| JournalError::io("list", dir, e))? {
        let entry = entry.map_err(|e| JournalError::io("list", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(id) = segment::parse_file_name(&name) {
            on_disk.push(id);
        } else if name.ends_with(".tmp") {
            leftovers.push(entry.path());
        }
    }
    let manifest = match Manifest::read(dir)? {
        Some(m) => m,
        None if on_disk.is_empty() => {
            let m = Manifest {
                max_id: 0,
                max_subscription_id: 0,
                next_segment: 2,
                segments: vec![super::manifest::Entry {
                    id: 1,
                    skips: Vec::new(),
                }],
            };
            segment::create(faults, &segment::path(dir, 1), 1, 0)?;
            segment::sync_dir(dir)?;
            m.write(dir, faults)?;
            on_disk.push(1);
            m
        }
        None => {
            return Err(JournalError::Corrupt {
                file: dir.join(MANIFEST),
                offset: 0,
                reason: format!(
                    "manifest missing while {} segment files are present",
                    on_disk.len()
                ),
            })
        }
    };
    for id in &on_disk {
        if !manifest.segments.iter().any(|e| e.id == *id) {
            leftovers.push(segment::path(dir, *id));
        }
    }
    for entry in &manifest.segments {
        let path = segment::path(dir, entry.id);
        if !on_disk.contains(&entry.id) {
            return Err(JournalError::MissingSegment { file: path });
        }
    }
    if manifest.segments.is_empty() {
        return Err(JournalError::Corrupt {
            file: dir.join(MANIFEST),
            offset: 0,
            reason: "manifest lists no segment".into(),
        });
    }
    for path in leftovers {
        std::fs::remove_file(&path).map_err(|e| JournalError::io("remove leftover", &path, e))?;
        tracing::info!(file = %path.display(), "journal: removed leftover of an interrupted step");
        report.removed_leftovers.push(path);
    }

    let mut index = Index::default();
    index.max_id = manifest.max_id;
    index.max_subscription_id = manifest.max_subscription_id;
    index.next_segment = manifest.next_segment;
    index.replay_bodies = Some(Vec::new());
    let mut manifest_changed = false;
    let (mut active_len, mut active_batch) = (HEADER_LEN as u64, 0);
    let last = manifest.segments.len() - 1;
    for (i, entry) in manifest.segments.iter().enumerate() {
        let path = segment::path(dir, entry.id);
        let data =
            Bytes::from(std::fs::read(&path).map_err(|e| JournalError::io("read", &path, e))?);
        segment::check_header(&path, entry.id, &data)?;
        report.segments += 1;
        report.bytes += data.len() as u64;
        let file = Arc::new(segment::open(&path)?);
        index.push_segment(
            entry.id,
            file.clone(),
            data.len() as u64,
            entry.skips.clone(),
        );
        let mut scan = Scan {
            path: &path,
            id: entry.id,
            data: &data,
            skips: entry.skips.clone(),
            is_last: i == last,
            skip_corrupt: options.skip_corrupt,
            index: &mut index,
            last_owner: None,
            known_name: 0..0,
            records: Vec::new(),
            report: &mut report,
        };
        let end = scan.run()?;
        if scan.skips != entry.skips {
            manifest_changed = true;
            let skips = scan.skips.clone();
            if let Some(s) = index.segs.get_mut(&entry.id) {
                s.skips = skips;
            }
        }
        if end.len < data.len() as u64 {
            file.set_len(end.len)
                .and_then(|()| file.sync_data())
                .map_err(|e| JournalError::io("cut torn tail of", &path, e))?;
            if let Some(s) = index.segs.get_mut(&entry.id) {
                s.file_len = end.len;
            }
        }
        if i == last {
            active_len = end.len;
            active_batch = end.batch;
            index.active = entry.id;
        }
    }
    if manifest_changed {
        let order = index.order.clone();
        index.manifest_with(&order).write(dir, faults)?;
    }
    Ok(Replayed {
        index,
        report,
        active_len,
        active_batch,
    })
}

struct ScanEnd {
    len: u64,
    batch: u64,
}

/// A record read from a batch, applied once the whole batch has been read.
enum Item {
    /// A send to one owner, read in place ([`record::peek_send`]): the owner (a queue's name
    /// as a range of the segment, or a subscription id) and the body's range.
    Send {
        id: u64,
        owner: std::result::Result<u64, std::ops::Range<usize>>,
        body: std::ops::Range<usize>,
    },
    /// Any other record, decoded.
    Record(Record),
}

struct Scan<'a> {
    path: &'a Path,
    id: SegmentId,
    data: &'a Bytes,
    skips: Vec<Skip>,
    is_last: bool,
    skip_corrupt: bool,
    index: &'a mut Index,
    records: Vec<(usize, usize, Item)>,
    last_owner: Option<super::record::Owner>,
    /// Where the last queue name read in place is (checked to be UTF-8).
    known_name: std::ops::Range<usize>,
    report: &'a mut ReplayReport,
}

impl Scan<'_> {
    fn skip_at(&self, offset: usize) -> Option<usize> {
        self.skips
            .iter()
            .find(|s| s.offset == offset as u64)
            .map(|s| s.len as usize)
    }

    /// The batch header at `offset`, if one is there: (frame length, batch number, body length).
    fn batch_header(&self, offset: usize) -> Option<(usize, u64, usize)> {
        let f = parse_frame(self.data, offset, self.data.len()).ok()?;
        let (seq, len) = record::decode_batch_header(&f.payload)?;
        Some((f.len, seq, len as usize))
    }

    /// Where the next valid batch header numbered above `after` is, scanning from `from`.
    fn next_batch_header(&self, from: usize, after: u64) -> Option<(usize, u64)> {
        let end = self.data.len().checked_sub(BATCH_HEADER_LEN)?;
        (from..=end).find_map(|q| match self.batch_header(q) {
            Some((_, seq, _)) if seq > after => Some((q, seq)),
            _ => None,
        })
    }

    fn corrupt(&self, offset: usize, reason: &str) -> JournalError {
        JournalError::Corrupt {
            file: self.path.to_owned(),
            offset: offset as u64,
            reason: reason.to_owned(),
        }
    }

    fn skip(&mut self, offset: usize, len: usize, reason: &str) {
        let looked_like = self.looked_like(offset, len);
        tracing::error!(
            file = %self.path.display(),
            offset,
            len,
            reason,
            looked_like = looked_like.as_deref().unwrap_or("unreadable"),
            "journal: skipped a damaged range (skip_corrupt is set); its records are lost"
        );
        self.report.skipped.push(Skipped {
            file: self.path.to_owned(),
            offset: offset as u64,
            len: len as u64,
            reason: reason.to_owned(),
            looked_like,
        });
        self.skips.push(Skip {
            offset: offset as u64,
            len: len as u64,
        });
    }

    /// What a damaged frame seemed to be, decoding its bytes without trusting its checksum.
    fn looked_like(&self, offset: usize, len: usize) -> Option<String> {
        let start = offset + record::FRAME_HEADER;
        if len <= record::FRAME_HEADER {
            return None;
        }
        let payload = self.data.slice(start..offset + len);
        Record::decode(&payload).ok().map(|r| r.describe())
    }

    fn run(&mut self) -> Result<ScanEnd> {
        let data_len = self.data.len();
        let mut off = HEADER_LEN;
        let mut batch = 0u64;
        // After a skipped range, batch numbers resume wherever the next good batch is.
        let mut resync = false;
        while off < data_len {
            if let Some(n) = self.skip_at(off) {
                off += n;
                resync = true;
                continue;
            }
            let header = self
                .batch_header(off)
                .filter(|(_, seq, _)| *seq == batch + 1 || (resync && *seq > batch));
            resync = false;
            let Some((hlen, seq, body_len)) = header else {
                // A damaged batch header: torn if no later batch follows it.
                let next = self.next_batch_header(off + 1, batch);
                if self.is_last && next.is_none() {
                    return Ok(self.cut(off, batch));
                }
                if !self.skip_corrupt {
                    return Err(
                        self.corrupt(off, "damaged batch header before the end of the journal")
                    );
                }
                let to = next.map_or(data_len, |(q, _)| q);
                self.skip(off, to - off, "damaged batch header");
                resync = true;
                off = to;
                continue;
            };
            let end = off + hlen + body_len;
            let mut p = off + hlen;
            let mut records = std::mem::take(&mut self.records);
            records.clear();
            while p < end {
                if let Some(n) = self.skip_at(p) {
                    p += n;
                    continue;
                }
                let parsed = record::check_frame(self.data, p, end).and_then(|payload| {
                    let flen = record::FRAME_HEADER + payload.len();
                    let known = &self.data[self.known_name.clone()];
                    if let Some(s) = record::peek_send(&self.data[payload.clone()], known) {
                        let owner = match s.owner {
                            OwnerRef::Queue(name) => {
                                let at = name.as_ptr() as usize - self.data.as_ptr() as usize;
                                self.known_name = at..at + name.len();
                                Err(at..at + name.len())
                            }
                            OwnerRef::Subscription(id) => Ok(id),
                        };
                        let body = payload.start + s.body.start..payload.start + s.body.end;
                        return Ok((
                            flen,
                            Item::Send {
                                id: s.id,
                                owner,
                                body,
                            },
                        ));
                    }
                    Record::decode_with(&self.data.slice(payload), &mut self.last_owner)
                        .map(|r| (flen, Item::Record(r)))
                });
                match parsed {
                    Ok((flen, item)) => {
                        records.push((p, flen, item));
                        p += flen;
                    }
                    Err(e) => {
                        let followed = end < data_len && self.batch_header(end).is_some();
                        if self.is_last && !followed {
                            return Ok(self.cut(off, batch));
                        }
                        if !self.skip_corrupt {
                            return Err(self.corrupt(p, &format!("damaged record ({})", e.0)));
                        }
                        // Skip to the next record that reads, or to the batch's end.
                        let to = (p + 1..end.min(data_len))
                            .find(|q| {
                                parse_frame(self.data, *q, end)
                                    .and_then(|f| Record::decode(&f.payload))
                                    .is_ok()
                            })
                            .unwrap_or(end.min(data_len));
                        let claimed = self
                            .data
                            .get(p..p + 4)
                            .map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4")) as usize);
                        // Name what the damaged frame seemed to be if its length still fits.
                        let guess_len = claimed + record::FRAME_HEADER;
                        let len = if p + guess_len == to {
                            guess_len
                        } else {
                            to - p
                        };
                        self.skip(p, len, &format!("damaged record ({})", e.0));
                        p = to;
                    }
                }
            }
            for (p, flen, rec) in records.drain(..) {
                self.apply(p, flen, rec);
            }
            self.records = records;
            batch = seq;
            off = end;
        }
        Ok(ScanEnd {
            len: data_len as u64,
            batch,
        })
    }

    fn apply(&mut self, offset: usize, frame_len: usize, item: Item) {
        self.report.records += 1;
        let (offset, frame_len) = (offset as u64, frame_len as u32);
        match item {
            Item::Record(record) => self.index.apply(self.id, offset, frame_len, &record),
            Item::Send { id, owner, body } => {
                let owner = match owner {
                    // Checked as UTF-8 when the frame was read.
                    Err(name) => OwnerRef::Queue(&self.data[name]),
                    Ok(sub) => OwnerRef::Subscription(sub),
                };
                let body = self.data.slice(body);
                self.index
                    .apply_send(self.id, offset, frame_len, id, owner, &body);
            }
        }
    }

    fn cut(&mut self, offset: usize, batch: u64) -> ScanEnd {
        let cut = (self.data.len() - offset) as u64;
        tracing::warn!(
            file = %self.path.display(),
            offset,
            bytes_cut = cut,
            "journal: cut a torn last batch (written, never confirmed)"
        );
        self.report.torn_tail = Some(TornTail {
            file: self.path.to_owned(),
            offset: offset as u64,
            bytes_cut: cut,
        });
        ScanEnd {
            len: offset as u64,
            batch,
        }
    }
}
