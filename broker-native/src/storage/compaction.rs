//! Background maintenance: delete segments with nothing live, compact sparse old ones.
//!
//! Runs on its own thread, woken by the writer when a batch removed something or a segment
//! was sealed. Both steps change the segment list only through the manifest: the new list is
//! made durable first, files are unlinked after, so a crash between the two leaves unlisted
//! files that start-up removes.
//!
//! Compaction picks the longest prefix of sealed segments that is at most
//! [`JournalOptions::compact_ratio`](super::JournalOptions::compact_ratio) live, copies its
//! live items (in journal order) into one new segment written beside the journal, then swaps
//! the prefix for it in the manifest. The writer keeps appending the whole time; the only
//! shared step is the short index update at the swap (readers holding an old segment keep
//! reading it through their open handle).

use super::error::{JournalError, Result};
use super::faults;
use super::index::{CopyItem, Plan};
use super::record::{self, parse_frame, Record, StoredMessage, BATCH_HEADER_LEN};
use super::segment::{self, FLAG_COMPACTED, HEADER_LEN};
use super::Shared;
use bytes::Bytes;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The maintenance thread's loop.
pub(crate) fn run(shared: Arc<Shared>) {
    loop {
        {
            let mut m = shared.maintenance.lock();
            while !m.dirty && !m.closed {
                shared.maintenance_cv.wait(&mut m);
            }
            if m.closed {
                return;
            }
            m.dirty = false;
        }
        if let Err(e) = delete_dead(&shared) {
            tracing::warn!("journal: deleting dead segments failed, will retry: {e}");
            continue;
        }
        if shared.options.compaction {
            match compact(&shared) {
                Ok(true) => shared.poke_maintenance(),
                Ok(false) => {}
                Err(e) => tracing::warn!("journal: compaction failed, will retry later: {e}"),
            }
        }
    }
}

/// Deletes every segment with nothing live (repeatedly: a deletion can free tombstones).
pub(crate) fn delete_dead(shared: &Shared) -> Result<()> {
    loop {
        let dead = {
            let mut index = shared.index.lock();
            let dead = index.dead_segments();
            if dead.is_empty() {
                return Ok(());
            }
            let order: Vec<_> = index
                .order
                .iter()
                .copied()
                .filter(|s| !dead.contains(s))
                .collect();
            index
                .manifest_with(&order)
                .write(&shared.dir, shared.options.faults.as_deref())?;
            for id in &dead {
                index.remove_segment(*id);
            }
            dead
        };
        for id in &dead {
            let path = segment::path(&shared.dir, *id);
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(file = %path.display(), "journal: could not remove dead segment: {e}");
            }
        }
        shared
            .stats
            .segments_deleted
            .fetch_add(dead.len() as u64, Ordering::Relaxed);
    }
}

/// Compacts one sparse prefix if there is one; `Ok(true)` if it did.
pub(crate) fn compact(shared: &Shared) -> Result<bool> {
    let plan = {
        let mut index = shared.index.lock();
        index.plan_compaction(shared.options.compact_ratio, shared.options.segment_size)
    };
    let Some(plan) = plan else {
        return Ok(false);
    };
    let tmp = shared
        .dir
        .join(format!("{}.tmp", segment::file_name(plan.target)));
    let done = write_copy(shared, &plan, &tmp).and_then(|(file, len, placed)| {
        let path = segment::path(&shared.dir, plan.target);
        std::fs::rename(&tmp, &path).map_err(|e| JournalError::io("rename", &tmp, e))?;
        let swapped = segment::sync_dir(&shared.dir).and_then(|()| {
            let mut index = shared.index.lock();
            let order = index.order_after(&plan);
            index
                .manifest_with(&order)
                .write(&shared.dir, shared.options.faults.as_deref())?;
            index.install(&plan, Arc::new(file), len, &placed);
            Ok(())
        });
        if swapped.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        swapped
    });
    if let Err(e) = done {
        let _ = std::fs::remove_file(&tmp);
        shared.index.lock().abort_compaction(&plan);
        return Err(e);
    }
    for id in &plan.prefix {
        let path = segment::path(&shared.dir, *id);
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(file = %path.display(), "journal: could not remove compacted segment: {e}");
        }
    }
    shared.stats.compactions.fetch_add(1, Ordering::Relaxed);
    Ok(true)
}

/// A compaction's output: the file, its length, and where each item went (offset, length).
type Copy = (std::fs::File, u64, Vec<(u64, u32)>);

/// Writes the plan's items into a new segment file at `tmp`.
fn write_copy(shared: &Shared, plan: &Plan, tmp: &std::path::Path) -> Result<Copy> {
    let faults = shared.options.faults.as_deref();
    let _ = std::fs::remove_file(tmp);
    let file = segment::create(faults, tmp, plan.target, FLAG_COMPACTED)?;
    let mut body = Vec::new();
    let mut placed = Vec::with_capacity(plan.items.len());
    let base = (HEADER_LEN + BATCH_HEADER_LEN) as u64;
    // A segment whose live frames are a small part of it is read frame by frame; a dense
    // one in one read.
    let mut live_in: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
    for item in &plan.items {
        if let CopyItem::Msg {
            from, frame_len, ..
        } = item
        {
            *live_in.entry(*from).or_default() += u64::from(*frame_len);
        }
    }
    let mut loaded: Option<(u64, Bytes)> = None;
    for item in &plan.items {
        let record = match item {
            CopyItem::Msg {
                key: (_, id),
                owner,
                from,
                offset,
                frame_len,
            } => {
                let (f, len) = &plan.files[from];
                let sparse = live_in.get(from).copied().unwrap_or(0) * 8 < *len;
                let read = |at: u64, n: u64| {
                    let mut data = vec![0u8; n as usize];
                    f.read_exact_at(&mut data, at)
                        .map_err(|e| JournalError::io("read", segment::path(&shared.dir, *from), e))
                        .map(|()| Bytes::from(data))
                };
                let found = if sparse {
                    message_at(&read(*offset, u64::from(*frame_len))?, 0, *frame_len, *id)
                } else {
                    if loaded.as_ref().map(|(s, _)| *s) != Some(*from) {
                        loaded = Some((*from, read(0, *len)?));
                    }
                    match &loaded {
                        Some((_, data)) => message_at(data, *offset, *frame_len, *id),
                        None => None,
                    }
                };
                let m = found.ok_or_else(|| JournalError::Corrupt {
                    file: segment::path(&shared.dir, *from),
                    offset: *offset,
                    reason: format!("message {id} unreadable during compaction"),
                })?;
                Record::Send(StoredMessage {
                    id: *id,
                    owners: vec![owner.clone()],
                    body: m.body,
                })
            }
            CopyItem::Count {
                key: (_, id),
                owner,
                count,
                ..
            } => Record::DeliveryCount {
                owner: owner.clone(),
                id: *id,
                count: *count,
            },
            CopyItem::Queue { name, .. } => Record::QueueCreated(name.clone()),
            CopyItem::Sub { sub, .. } => Record::SubscriptionCreated(sub.clone()),
        };
        let at = body.len();
        record.encode_frame(&mut body);
        placed.push((base + at as u64, (body.len() - at) as u32));
    }
    let mut out = Vec::with_capacity(BATCH_HEADER_LEN + body.len());
    record::encode_batch_header(&mut out, 1, body.len() as u32);
    out.extend_from_slice(&body);
    faults::write_at(faults, &file, &out, HEADER_LEN as u64)
        .and_then(|()| faults::sync_data(faults, &file))
        .map_err(|e| JournalError::io("write compacted segment", tmp, e))?;
    Ok((file, HEADER_LEN as u64 + out.len() as u64, placed))
}

/// The message `id` in the frame at `offset` of a segment's bytes (any of its copies).
pub(crate) fn message_at(
    data: &Bytes,
    offset: u64,
    frame_len: u32,
    id: u64,
) -> Option<StoredMessage> {
    let offset = offset as usize;
    let frame = parse_frame(data, offset, offset + frame_len as usize).ok()?;
    match Record::decode(&frame.payload).ok()? {
        Record::Send(m) if m.id == id => Some(m),
        Record::Commit { sends, .. } => sends.into_iter().find(|m| m.id == id),
        _ => None,
    }
}
