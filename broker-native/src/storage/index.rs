//! Live-record accounting: which records still matter, and where.
//!
//! Every record is made of items (a send, an acknowledgement, a delivery count, a creation or
//! deletion). A segment counts its live items; when the count reaches zero and the segment is
//! not the one being written, it is deleted. What is live:
//!
//! * a send, until its message is removed (acknowledged, or its queue or subscription deleted);
//! * the latest delivery count of a live message;
//! * a destination or subscription creation, until its deletion;
//! * a removal or deletion (a tombstone) in segment T killing an item in another segment S,
//!   for as long as S exists — else replay would bring the killed item back. `refs[S][T]`
//!   counts those, and deleting S releases them.
//!
//! Replay, the writer and compaction all go through [`Index::apply`], so the accounting after
//! a restart is the one the running journal had. Compaction rewrites a sparse prefix of the
//! segment order into one new segment: tombstones inside the prefix only ever kill items in
//! the prefix (a removal comes after its send), so they can all be dropped; the [`Watch`]
//! notes removals that happen while the copy is being written, so their tombstones are moved
//! to the new segment instead of being released.

use super::manifest::{Entry, Manifest, Skip};
use super::record::{DurableSubscription, Owner, OwnerRef, Record, StoredMessage};
use super::segment::SegmentId;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// Hashes message ids with one multiply: they are the core's counters, not keys an outsider
/// chooses, and the default hasher costs more than the rest of replaying a small record.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        for b in chunks.remainder() {
            self.write_u64(*b as u64);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

/// A stored copy: its owner (interned, see [`Index::owner_names`]) and message id.
pub(crate) type CopyKey = (u32, u64);

/// A map keyed by stored copy.
pub(crate) type CopyMap<V> = HashMap<CopyKey, V, BuildHasherDefault<IdHasher>>;

/// Approximate bytes of a non-message item, for the sparseness estimate.
const ITEM_BYTES: u64 = 32;

/// One segment's accounting.
pub(crate) struct SegStats {
    pub file: Arc<File>,
    pub file_len: u64,
    pub live_items: u64,
    pub live_bytes: u64,
    pub compacting: bool,
    /// Copies stored here at some point (checked against `msgs` when used).
    pub msg_ids: Vec<CopyKey>,
    pub skips: Vec<Skip>,
}

/// Where a live message is, and what the journal knows of it.
pub(crate) struct MsgEntry {
    pub seq: u64,
    pub seg: SegmentId,
    pub offset: u64,
    pub frame_len: u32,
    pub body_len: u32,
    pub count: u32,
    pub count_seg: Option<SegmentId>,
    pub count_seq: u64,
}

/// Where a creation record is.
#[derive(Clone, Copy)]
pub(crate) struct Placed {
    pub seg: SegmentId,
    pub seq: u64,
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) enum ItemKey {
    Msg(CopyKey),
    Queue(Arc<str>),
    Sub(u64),
}

/// Removals of prefix items seen while a compaction of that prefix is in flight.
pub(crate) struct Watch {
    prefix: HashSet<SegmentId>,
    removed: Vec<(ItemKey, SegmentId, SegmentId)>,
}

/// One live item a compaction copies.
pub(crate) enum CopyItem {
    Msg {
        key: CopyKey,
        owner: Owner,
        from: SegmentId,
        offset: u64,
        frame_len: u32,
    },
    Count {
        key: CopyKey,
        owner: Owner,
        count: u32,
        from: SegmentId,
    },
    Queue {
        name: Arc<str>,
        from: SegmentId,
    },
    Sub {
        sub: DurableSubscription,
        from: SegmentId,
    },
}

/// A compaction chosen by [`Index::plan_compaction`].
pub(crate) struct Plan {
    pub prefix: Vec<SegmentId>,
    pub files: HashMap<SegmentId, (Arc<File>, u64)>,
    pub items: Vec<CopyItem>,
    pub target: SegmentId,
}

/// The journal's live state; see the module docs.
#[derive(Default)]
pub(crate) struct Index {
    pub order: Vec<SegmentId>,
    pub segs: HashMap<SegmentId, SegStats, BuildHasherDefault<IdHasher>>,
    pub msgs: CopyMap<MsgEntry>,
    pub queues: HashMap<Arc<str>, Placed>,
    pub subs: HashMap<u64, (DurableSubscription, Placed)>,
    refs: HashMap<SegmentId, HashMap<SegmentId, u64>>,
    next_seq: u64,
    pub max_id: u64,
    pub max_subscription_id: u64,
    pub next_segment: SegmentId,
    pub active: SegmentId,
    watch: Option<Watch>,
    /// While replaying: every message body read, in journal order, with its sequence number
    /// (the live ones are picked out at the end, already in order).
    pub replay_bodies: Option<Vec<(u64, CopyKey, bytes::Bytes)>>,
    /// Owners by interned number (a copy's key holds the number: cheaper to hash and copy).
    pub owner_names: Vec<Owner>,
    owner_ids: HashMap<Owner, u32>,
    /// Live copies per owner number: deleting an empty queue (auto-delete does it often)
    /// then costs nothing instead of a scan of every live copy.
    owner_live: Vec<u64>,
    /// The owner interned last (consecutive records mostly name the same one).
    last_owner: Option<(Owner, u32)>,
}

impl Index {
    /// Adds segment `id` at the end of the order.
    pub fn push_segment(
        &mut self,
        id: SegmentId,
        file: Arc<File>,
        file_len: u64,
        skips: Vec<Skip>,
    ) {
        self.order.push(id);
        self.segs.insert(
            id,
            SegStats {
                file,
                file_len,
                live_items: 0,
                live_bytes: 0,
                compacting: false,
                msg_ids: Vec::new(),
                skips,
            },
        );
    }

    /// The manifest describing this state, with `order` as the segment list.
    pub fn manifest_with(&self, order: &[SegmentId]) -> Manifest {
        Manifest {
            max_id: self.max_id,
            max_subscription_id: self.max_subscription_id,
            next_segment: self.next_segment,
            segments: order
                .iter()
                .map(|id| Entry {
                    id: *id,
                    skips: self
                        .segs
                        .get(id)
                        .map(|s| s.skips.clone())
                        .unwrap_or_default(),
                })
                .collect(),
        }
    }

    fn inc(&mut self, seg: SegmentId, items: u64, bytes: u64) {
        if let Some(s) = self.segs.get_mut(&seg) {
            s.live_items += items;
            s.live_bytes += bytes;
        }
    }

    fn dec(&mut self, seg: SegmentId, items: u64, bytes: u64) {
        if let Some(s) = self.segs.get_mut(&seg) {
            s.live_items = s.live_items.saturating_sub(items);
            s.live_bytes = s.live_bytes.saturating_sub(bytes);
        }
    }

    fn add_ref(&mut self, target: SegmentId, holder: SegmentId) {
        *self
            .refs
            .entry(target)
            .or_default()
            .entry(holder)
            .or_default() += 1;
        self.inc(holder, 1, ITEM_BYTES);
    }

    fn same_owner(a: &Owner, b: &Owner) -> bool {
        match (a, b) {
            (Owner::Queue(x), Owner::Queue(y)) => Arc::ptr_eq(x, y) || x == y,
            (Owner::Subscription(x), Owner::Subscription(y)) => x == y,
            _ => false,
        }
    }

    /// The number of `owner`, if it was ever seen.
    pub fn owner_id(&self, owner: &Owner) -> Option<u32> {
        if let Some((o, n)) = &self.last_owner {
            if Self::same_owner(o, owner) {
                return Some(*n);
            }
        }
        self.owner_ids.get(owner).copied()
    }

    fn intern(&mut self, owner: &Owner) -> u32 {
        if let Some(n) = self.owner_id(owner) {
            self.last_owner = Some((owner.clone(), n));
            return n;
        }
        let n = self.owner_names.len() as u32;
        self.owner_names.push(owner.clone());
        self.owner_live.push(0);
        self.owner_ids.insert(owner.clone(), n);
        self.last_owner = Some((owner.clone(), n));
        n
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Accounts for `record`, stored as a frame of `frame_len` bytes at `offset` of `seg`.
    pub fn apply(&mut self, seg: SegmentId, offset: u64, frame_len: u32, record: &Record) {
        match record {
            Record::Send(m) => self.add_msg(seg, offset, frame_len, m),
            Record::Remove { owner, id } => self.kill_copy(owner, *id, seg),
            // The writer stores a dead-lettering as a commit; a bare one (never written by
            // this build) can only remove the old copy.
            Record::DeadLettered { from, id, .. } => self.kill_copy(from, *id, seg),
            Record::DeliveryCount { owner, id, count } => {
                let seq = self.seq();
                let Some(oid) = self.owner_id(owner) else {
                    return;
                };
                let Some(e) = self.msgs.get_mut(&(oid, *id)) else {
                    return;
                };
                let previous = e.count_seg.replace(seg);
                e.count = *count;
                e.count_seq = seq;
                if let Some(p) = previous {
                    self.dec(p, 1, ITEM_BYTES);
                }
                self.inc(seg, 1, ITEM_BYTES);
            }
            Record::Commit { sends, acks } => {
                for m in sends {
                    self.add_msg(seg, offset, frame_len, m);
                }
                for (owner, id) in acks {
                    self.kill_copy(owner, *id, seg);
                }
            }
            Record::QueueCreated(name) => {
                if let Some(old) = self.queues.remove(name) {
                    self.kill_placed(ItemKey::Queue(name.clone()), old, seg);
                }
                let seq = self.seq();
                self.queues.insert(name.clone(), Placed { seg, seq });
                self.inc(seg, 1, ITEM_BYTES);
            }
            Record::QueueDeleted(name) => {
                if let Some(old) = self.queues.remove(name) {
                    self.kill_placed(ItemKey::Queue(name.clone()), old, seg);
                }
                self.kill_owned(&Owner::Queue(name.clone()), seg);
            }
            Record::SubscriptionCreated(sub) => {
                self.max_subscription_id = self.max_subscription_id.max(sub.id);
                if let Some((_, old)) = self.subs.remove(&sub.id) {
                    self.kill_placed(ItemKey::Sub(sub.id), old, seg);
                }
                let seq = self.seq();
                self.subs.insert(sub.id, (sub.clone(), Placed { seg, seq }));
                self.inc(seg, 1, ITEM_BYTES);
            }
            Record::SubscriptionDeleted(id) => {
                if let Some((_, old)) = self.subs.remove(id) {
                    self.kill_placed(ItemKey::Sub(*id), old, seg);
                }
                self.kill_owned(&Owner::Subscription(*id), seg);
            }
        }
    }

    fn add_msg(&mut self, seg: SegmentId, offset: u64, frame_len: u32, m: &StoredMessage) {
        self.max_id = self.max_id.max(m.id);
        for owner in &m.owners {
            let oid = self.intern(owner);
            self.add_copy(seg, offset, frame_len, (oid, m.id), &m.body);
        }
    }

    /// [`Index::apply`] for a send to one owner read in place ([`super::record::peek_send`]): the
    /// same accounting as for the [`Record::Send`] it stands for, without building it.
    pub fn apply_send(
        &mut self,
        seg: SegmentId,
        offset: u64,
        frame_len: u32,
        id: u64,
        owner: OwnerRef<'_>,
        body: &bytes::Bytes,
    ) {
        self.max_id = self.max_id.max(id);
        let oid = match owner {
            OwnerRef::Queue(name) => match &self.last_owner {
                Some((Owner::Queue(q), n)) if q.as_bytes() == name => *n,
                // `peek_send` checked the name: lossless.
                _ => self.intern(&Owner::Queue(String::from_utf8_lossy(name).into())),
            },
            OwnerRef::Subscription(s) => self.intern(&Owner::Subscription(s)),
        };
        self.add_copy(seg, offset, frame_len, (oid, id), body);
    }

    fn add_copy(
        &mut self,
        seg: SegmentId,
        offset: u64,
        frame_len: u32,
        key: CopyKey,
        body: &bytes::Bytes,
    ) {
        let bytes = body.len() as u64 + ITEM_BYTES;
        let seq = self.seq();
        if let Some(bodies) = &mut self.replay_bodies {
            bodies.push((seq, key, body.clone()));
        }
        let previous = self.msgs.insert(
            key,
            MsgEntry {
                seq,
                seg,
                offset,
                frame_len,
                body_len: body.len() as u32,
                count: 0,
                count_seg: None,
                count_seq: 0,
            },
        );
        // A second send of a live copy replaces the first; its record then acts as the
        // first one's tombstone.
        if let Some(e) = previous {
            self.kill_entry(key, e, seg);
        }
        self.owner_live[key.0 as usize] += 1;
        if let Some(s) = self.segs.get_mut(&seg) {
            s.live_items += 1;
            s.live_bytes += bytes;
            s.msg_ids.push(key);
        }
    }

    fn kill_copy(&mut self, owner: &Owner, id: u64, holder: SegmentId) {
        if let Some(oid) = self.owner_id(owner) {
            self.kill_msg(&(oid, id), holder);
        }
    }

    fn kill_msg(&mut self, key: &CopyKey, holder: SegmentId) {
        if let Some(e) = self.msgs.remove(key) {
            self.kill_entry(*key, e, holder);
        }
    }

    fn kill_entry(&mut self, key: CopyKey, e: MsgEntry, holder: SegmentId) {
        if let Some(n) = self.owner_live.get_mut(key.0 as usize) {
            *n = n.saturating_sub(1);
        }
        self.dec(e.seg, 1, e.body_len as u64 + ITEM_BYTES);
        if let Some(c) = e.count_seg {
            self.dec(c, 1, ITEM_BYTES);
        }
        self.note_kill(ItemKey::Msg(key), e.seg, holder);
    }

    fn kill_placed(&mut self, key: ItemKey, old: Placed, holder: SegmentId) {
        self.dec(old.seg, 1, ITEM_BYTES);
        self.note_kill(key, old.seg, holder);
    }

    fn note_kill(&mut self, key: ItemKey, target: SegmentId, holder: SegmentId) {
        if target != holder {
            self.add_ref(target, holder);
            if let Some(w) = &mut self.watch {
                if w.prefix.contains(&target) {
                    w.removed.push((key, target, holder));
                }
            }
        }
    }

    fn kill_owned(&mut self, owner: &Owner, holder: SegmentId) {
        let Some(oid) = self.owner_id(owner) else {
            return;
        };
        if self.owner_live.get(oid as usize).copied().unwrap_or(0) == 0 {
            return;
        }
        let keys: Vec<CopyKey> = self
            .msgs
            .keys()
            .filter(|(o, _)| *o == oid)
            .copied()
            .collect();
        for key in keys {
            self.kill_msg(&key, holder);
        }
    }

    /// Segments with nothing live in them, other than the one being written.
    pub fn dead_segments(&self) -> Vec<SegmentId> {
        self.order
            .iter()
            .copied()
            .filter(|id| {
                *id != self.active
                    && self
                        .segs
                        .get(id)
                        .is_some_and(|s| s.live_items == 0 && !s.compacting)
            })
            .collect()
    }

    /// Forgets segment `id` (deleted or compacted away), releasing the tombstones it held up.
    pub fn remove_segment(&mut self, id: SegmentId) {
        self.segs.remove(&id);
        self.order.retain(|s| *s != id);
        if let Some(holders) = self.refs.remove(&id) {
            for (holder, n) in holders {
                self.dec(holder, n, n * ITEM_BYTES);
            }
        }
    }

    /// Chooses the longest prefix of sealed segments whose live bytes are at most `ratio` of
    /// their size, fit in `max_bytes` and leave at least a quarter of that dead, and the items
    /// to copy out of it (in journal order).
    pub fn plan_compaction(&mut self, ratio: f64, max_bytes: u64) -> Option<Plan> {
        if self.watch.is_some() {
            return None;
        }
        let (mut live, mut size, mut best) = (0u64, 0u64, 0usize);
        // The newest sealed segment is left alone: what is live in it is mostly the backlog a
        // consumer is about to take, which would be copied only to die in the copy. Once the
        // next segment is sealed, it is usually dead and deleted without a copy.
        let newest_sealed = self.order.iter().rev().find(|id| **id != self.active);
        for (i, id) in self.order.iter().enumerate() {
            let s = &self.segs[id];
            if *id == self.active || s.compacting || Some(id) == newest_sealed {
                break;
            }
            live += s.live_bytes;
            size += s.file_len;
            if live > max_bytes {
                break;
            }
            // Worth it only if it frees a good part of a segment: small files are mostly
            // headers, and rewriting them again and again would free nothing.
            if (live as f64) <= ratio * size as f64 && size - live.min(size) >= max_bytes / 4 {
                best = i + 1;
            }
        }
        if best == 0 {
            return None;
        }
        let prefix: Vec<SegmentId> = self.order[..best].to_vec();
        let set: HashSet<SegmentId> = prefix.iter().copied().collect();
        let mut items: Vec<(u64, CopyItem)> = Vec::new();
        let mut seen = HashSet::new();
        let mut files = HashMap::new();
        for id in &prefix {
            let s = &self.segs[id];
            files.insert(*id, (s.file.clone(), s.file_len));
            for key in &s.msg_ids {
                let Some(e) = self.msgs.get(key) else {
                    continue;
                };
                if e.seg != *id || !seen.insert(*key) {
                    continue;
                }
                items.push((
                    e.seq,
                    CopyItem::Msg {
                        key: *key,
                        owner: self.owner_names[key.0 as usize].clone(),
                        from: *id,
                        offset: e.offset,
                        frame_len: e.frame_len,
                    },
                ));
                if let Some(c) = e.count_seg.filter(|c| set.contains(c)) {
                    items.push((
                        e.count_seq,
                        CopyItem::Count {
                            key: *key,
                            owner: self.owner_names[key.0 as usize].clone(),
                            count: e.count,
                            from: c,
                        },
                    ));
                }
            }
        }
        for (name, p) in &self.queues {
            if set.contains(&p.seg) {
                items.push((
                    p.seq,
                    CopyItem::Queue {
                        name: name.clone(),
                        from: p.seg,
                    },
                ));
            }
        }
        for (sub, p) in self.subs.values() {
            if set.contains(&p.seg) {
                items.push((
                    p.seq,
                    CopyItem::Sub {
                        sub: sub.clone(),
                        from: p.seg,
                    },
                ));
            }
        }
        items.sort_by_key(|(seq, _)| *seq);
        for id in &prefix {
            if let Some(s) = self.segs.get_mut(id) {
                s.compacting = true;
            }
        }
        self.watch = Some(Watch {
            prefix: set,
            removed: Vec::new(),
        });
        let target = self.next_segment;
        self.next_segment += 1;
        Some(Plan {
            prefix,
            files,
            items: items.into_iter().map(|(_, i)| i).collect(),
            target,
        })
    }

    /// Gives up a planned compaction.
    pub fn abort_compaction(&mut self, plan: &Plan) {
        self.watch = None;
        for id in &plan.prefix {
            if let Some(s) = self.segs.get_mut(id) {
                s.compacting = false;
            }
        }
    }

    /// The segment order once `plan` is installed.
    pub fn order_after(&self, plan: &Plan) -> Vec<SegmentId> {
        let mut order = vec![plan.target];
        order.extend(self.order.iter().filter(|s| !plan.prefix.contains(s)));
        order
    }

    /// Replaces the plan's prefix with its compacted copy `file`, where item `i` of the plan
    /// was written as a frame at `placed[i]` (offset, length).
    pub fn install(&mut self, plan: &Plan, file: Arc<File>, file_len: u64, placed: &[(u64, u32)]) {
        let c = plan.target;
        let watch = self.watch.take();
        let new_order = self.order_after(plan);
        self.segs.insert(
            c,
            SegStats {
                file,
                file_len,
                live_items: 0,
                live_bytes: 0,
                compacting: false,
                msg_ids: Vec::new(),
                skips: Vec::new(),
            },
        );
        let mut copied = HashSet::new();
        for (item, (offset, frame_len)) in plan.items.iter().zip(placed) {
            match item {
                CopyItem::Msg { key, from, .. } => {
                    copied.insert(ItemKey::Msg(*key));
                    let Some(e) = self.msgs.get_mut(key).filter(|e| e.seg == *from) else {
                        continue;
                    };
                    e.seg = c;
                    e.offset = *offset;
                    e.frame_len = *frame_len;
                    let bytes = e.body_len as u64 + ITEM_BYTES;
                    self.inc(c, 1, bytes);
                    if let Some(s) = self.segs.get_mut(&c) {
                        s.msg_ids.push(*key);
                    }
                }
                CopyItem::Count { key, from, .. } => {
                    let Some(e) = self
                        .msgs
                        .get_mut(key)
                        .filter(|e| e.count_seg == Some(*from))
                    else {
                        continue;
                    };
                    e.count_seg = Some(c);
                    self.inc(c, 1, ITEM_BYTES);
                }
                CopyItem::Queue { name, from } => {
                    copied.insert(ItemKey::Queue(name.clone()));
                    let Some(p) = self.queues.get_mut(name).filter(|p| p.seg == *from) else {
                        continue;
                    };
                    p.seg = c;
                    self.inc(c, 1, ITEM_BYTES);
                }
                CopyItem::Sub { sub, from } => {
                    copied.insert(ItemKey::Sub(sub.id));
                    let Some((_, p)) = self.subs.get_mut(&sub.id).filter(|(_, p)| p.seg == *from)
                    else {
                        continue;
                    };
                    p.seg = c;
                    self.inc(c, 1, ITEM_BYTES);
                }
            }
        }
        // Items removed while the copy was written are in the copy: their tombstones now
        // guard the copy instead of the old segment.
        for (key, target, holder) in watch.map(|w| w.removed).unwrap_or_default() {
            if copied.contains(&key) {
                if let Some(n) = self.refs.get_mut(&target).and_then(|h| h.get_mut(&holder)) {
                    *n = n.saturating_sub(1);
                }
                *self.refs.entry(c).or_default().entry(holder).or_default() += 1;
            }
        }
        for id in &plan.prefix {
            self.remove_segment(*id);
        }
        self.order = new_order;
    }
}
