//! The journal's records: what the broker core reports as durable events, and their bytes.
//!
//! A frame on disk is `len: u32 LE | crc32c: u32 LE | payload (len bytes)`; the checksum covers
//! the length field and the payload, so a flipped bit in either is caught. The payload's first
//! byte is the record kind; the rest is fixed-width little-endian fields, strings and bodies
//! prefixed by a `u32` length. Kind 0 is the writer's batch header (one per `fdatasync`), which
//! lets replay tell a torn last batch from corruption in the middle of a file.

use bytes::{BufMut, Bytes};
use std::ops::Range;
use std::sync::Arc;

/// Bytes of a frame's header (length and checksum).
pub const FRAME_HEADER: usize = 8;

const KIND_BATCH: u8 = 0;
const KIND_SEND: u8 = 1;
const KIND_REMOVE: u8 = 2;
const KIND_COUNT: u8 = 3;
const KIND_COMMIT: u8 = 4;
const KIND_QUEUE_CREATED: u8 = 5;
const KIND_QUEUE_DELETED: u8 = 6;
const KIND_SUB_CREATED: u8 = 7;
const KIND_SUB_DELETED: u8 = 8;
const KIND_DEAD_LETTERED: u8 = 9;

/// Who holds a stored copy of a message: a queue, or a durable subscription (by the core's
/// stable subscription id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    /// A plain queue (the dead-letter queue included), by name.
    Queue(Arc<str>),
    /// A durable subscription, by its id ([`DurableSubscription::id`]).
    Subscription(u64),
}

/// A persistent message accepted by the core, as stored: one record for all its copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The core's stable id, shared by its copies; a copy is named by owner and id.
    pub id: u64,
    /// The queue, or the durable subscriptions of a topic, holding a copy.
    pub owners: Vec<Owner>,
    /// The message in the api's encoding; the journal does not look inside.
    pub body: Bytes,
}

/// A durable subscription as the core made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableSubscription {
    /// Its id, unique across restarts.
    pub id: u64,
    /// The topic's name.
    pub topic: Arc<str>,
    /// The client id it belongs to, if any.
    pub client_id: Option<Arc<str>>,
    /// Its name.
    pub name: Arc<str>,
    /// Its selector's text, if any.
    pub selector: Option<Arc<str>>,
    /// Whether it skips messages from connections with its client id.
    pub no_local: bool,
    /// Whether it is shared.
    pub shared: bool,
}

/// One durable event, as the core reports it through its storage hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A persistent message was accepted (outside a transaction).
    Send(StoredMessage),
    /// A copy left its owner: acknowledged, expired, or dropped.
    Remove {
        /// Where it was.
        owner: Owner,
        /// Its id.
        id: u64,
    },
    /// A copy moved to the dead-letter queue `to`, where it is message `new_id` with its
    /// delivery count reset. The writer stores it as a commit of the new copy (with the
    /// bytes it already holds) and the removal of the old, so every record stands alone.
    DeadLettered {
        /// Where it was.
        from: Owner,
        /// Its id there.
        id: u64,
        /// The dead-letter queue.
        to: Owner,
        /// Its id in the dead-letter queue.
        new_id: u64,
    },
    /// A delivered copy went back to its owner having been delivered `count` times.
    DeliveryCount {
        /// Where it is.
        owner: Owner,
        /// Its id.
        id: u64,
        /// Deliveries so far.
        count: u32,
    },
    /// A transaction committed: its sends and acknowledgements as one unit.
    Commit {
        /// Messages it sent.
        sends: Vec<StoredMessage>,
        /// Copies it acknowledged.
        acks: Vec<(Owner, u64)>,
    },
    /// A plain queue was made.
    QueueCreated(Arc<str>),
    /// A plain queue was deleted, and its messages with it.
    QueueDeleted(Arc<str>),
    /// A durable subscription was made.
    SubscriptionCreated(DurableSubscription),
    /// A durable subscription was deleted, and its messages with it.
    SubscriptionDeleted(u64),
}

/// Why bytes are not a valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

/// A frame that parsed: its payload and total size on disk.
pub(crate) struct Frame {
    pub payload: Bytes,
    pub len: usize,
}

/// Parses the frame at `offset` of `data` without looking further than `limit`.
pub(crate) fn parse_frame(data: &Bytes, offset: usize, limit: usize) -> Result<Frame, DecodeError> {
    let payload = check_frame(data, offset, limit)?;
    Ok(Frame {
        len: FRAME_HEADER + payload.len(),
        payload: data.slice(payload),
    })
}

/// Checks the frame at `offset` of `data` (length and checksum) without looking further than
/// `limit`, and returns where its payload is; the frame is `FRAME_HEADER` bytes longer.
pub(crate) fn check_frame(
    data: &[u8],
    offset: usize,
    limit: usize,
) -> Result<Range<usize>, DecodeError> {
    let limit = limit.min(data.len());
    if offset + FRAME_HEADER > limit {
        return Err(DecodeError("frame header cut off"));
    }
    let head = &data[offset..offset + FRAME_HEADER];
    let len = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
    if len == 0 {
        return Err(DecodeError("empty frame"));
    }
    if offset + FRAME_HEADER + len > limit {
        return Err(DecodeError("frame runs past the end"));
    }
    let payload = offset + FRAME_HEADER..offset + FRAME_HEADER + len;
    if frame_crc(len as u32, &data[payload.clone()]) != crc {
        return Err(DecodeError("checksum mismatch"));
    }
    Ok(payload)
}

/// The checksum of a frame: crc32c of its length field (little-endian) then its payload.
pub(crate) fn frame_crc(len: u32, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len.to_le_bytes()), payload)
}

/// An owner named in place, without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OwnerRef<'a> {
    /// A queue, by name (checked to be UTF-8).
    Queue(&'a [u8]),
    /// A durable subscription, by id.
    Subscription(u64),
}

/// A send of one message to one owner, read in place: by far the most common record, so
/// replay reads it without building a [`Record`] (no allocation, no reference counting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SendRef<'a> {
    /// The message id.
    pub id: u64,
    /// Its one owner.
    pub owner: OwnerRef<'a>,
    /// Where its body is in the payload.
    pub body: Range<usize>,
}

/// `payload` read as a send to exactly one owner, if it is a well-formed one; anything else
/// (other kinds, several owners, damage) is `None` and goes through [`Record::decode_with`],
/// which accepts exactly the same sends and names what is wrong with the rest. `known` is a
/// name already checked to be UTF-8 (the previous record's queue, mostly): a queue named the
/// same is not checked again.
pub(crate) fn peek_send<'a>(payload: &'a [u8], known: &[u8]) -> Option<SendRef<'a>> {
    let le32 = |at: usize| -> Option<usize> {
        Some(u32::from_le_bytes(payload.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    if *payload.first()? != KIND_SEND || le32(9)? != 1 {
        return None;
    }
    let id = u64::from_le_bytes(payload.get(1..9)?.try_into().ok()?);
    let (owner, at) = match *payload.get(13)? {
        0 => {
            let n = le32(14)?;
            let name = payload.get(18..18usize.checked_add(n)?)?;
            if name != known {
                std::str::from_utf8(name).ok()?;
            }
            (OwnerRef::Queue(name), 18 + n)
        }
        1 => (
            OwnerRef::Subscription(u64::from_le_bytes(payload.get(14..22)?.try_into().ok()?)),
            22,
        ),
        _ => return None,
    };
    let n = le32(at)?;
    let body = at + 4..(at + 4).checked_add(n)?;
    (body.end == payload.len()).then_some(SendRef { id, owner, body })
}

/// Fills in the header of the frame starting at `start`, whose payload runs to the end.
fn seal_frame(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start - FRAME_HEADER) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    let crc = frame_crc(len, &buf[start + FRAME_HEADER..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Appends the batch header frame: batch number within the segment and bytes that follow.
pub(crate) fn encode_batch_header(buf: &mut Vec<u8>, seq: u64, body_len: u32) {
    let start = buf.len();
    buf.extend_from_slice(&[0; FRAME_HEADER]);
    buf.put_u8(KIND_BATCH);
    buf.put_u64_le(seq);
    buf.put_u32_le(body_len);
    seal_frame(buf, start);
}

/// Size of a batch header frame.
pub(crate) const BATCH_HEADER_LEN: usize = FRAME_HEADER + 1 + 8 + 4;

/// A batch header: its number and the bytes of records following it.
pub(crate) fn decode_batch_header(payload: &[u8]) -> Option<(u64, u32)> {
    if payload.len() != 13 || payload[0] != KIND_BATCH {
        return None;
    }
    Some((
        u64::from_le_bytes(payload[1..9].try_into().ok()?),
        u32::from_le_bytes(payload[9..13].try_into().ok()?),
    ))
}

impl Record {
    /// Appends this record as one frame to `buf`.
    pub fn encode_frame(&self, buf: &mut Vec<u8>) {
        let start = buf.len();
        buf.extend_from_slice(&[0; FRAME_HEADER]);
        self.encode_payload(buf);
        seal_frame(buf, start);
    }

    /// The size of this record's frame, without encoding it.
    pub fn frame_len(&self) -> usize {
        FRAME_HEADER
            + 1
            + match self {
                Record::Send(m) => message_len(m),
                Record::Remove { owner, .. } => owner_len(owner) + 8,
                Record::DeadLettered { from, to, .. } => owner_len(from) + owner_len(to) + 16,
                Record::DeliveryCount { owner, .. } => owner_len(owner) + 12,
                Record::Commit { sends, acks } => {
                    8 + sends.iter().map(message_len).sum::<usize>()
                        + acks.iter().map(|(o, _)| owner_len(o) + 8).sum::<usize>()
                }
                Record::QueueCreated(name) | Record::QueueDeleted(name) => 4 + name.len(),
                Record::SubscriptionCreated(s) => {
                    8 + 4
                        + s.topic.len()
                        + opt_len(&s.client_id)
                        + 4
                        + s.name.len()
                        + opt_len(&s.selector)
                        + 2
                }
                Record::SubscriptionDeleted(_) => 8,
            }
    }

    fn encode_payload(&self, buf: &mut Vec<u8>) {
        match self {
            Record::Send(m) => {
                buf.put_u8(KIND_SEND);
                put_message(buf, m);
            }
            Record::Remove { owner, id } => {
                buf.put_u8(KIND_REMOVE);
                put_owner(buf, owner);
                buf.put_u64_le(*id);
            }
            Record::DeadLettered {
                from,
                id,
                to,
                new_id,
            } => {
                buf.put_u8(KIND_DEAD_LETTERED);
                put_owner(buf, from);
                buf.put_u64_le(*id);
                put_owner(buf, to);
                buf.put_u64_le(*new_id);
            }
            Record::DeliveryCount { owner, id, count } => {
                buf.put_u8(KIND_COUNT);
                put_owner(buf, owner);
                buf.put_u64_le(*id);
                buf.put_u32_le(*count);
            }
            Record::Commit { sends, acks } => {
                buf.put_u8(KIND_COMMIT);
                buf.put_u32_le(sends.len() as u32);
                for m in sends {
                    put_message(buf, m);
                }
                buf.put_u32_le(acks.len() as u32);
                for (owner, id) in acks {
                    put_owner(buf, owner);
                    buf.put_u64_le(*id);
                }
            }
            Record::QueueCreated(name) => {
                buf.put_u8(KIND_QUEUE_CREATED);
                put_str(buf, name);
            }
            Record::QueueDeleted(name) => {
                buf.put_u8(KIND_QUEUE_DELETED);
                put_str(buf, name);
            }
            Record::SubscriptionCreated(s) => {
                buf.put_u8(KIND_SUB_CREATED);
                buf.put_u64_le(s.id);
                put_str(buf, &s.topic);
                put_opt(buf, &s.client_id);
                put_str(buf, &s.name);
                put_opt(buf, &s.selector);
                buf.put_u8(s.no_local as u8);
                buf.put_u8(s.shared as u8);
            }
            Record::SubscriptionDeleted(id) => {
                buf.put_u8(KIND_SUB_DELETED);
                buf.put_u64_le(*id);
            }
        }
    }

    /// Decodes a frame's payload; bodies are slices of `payload`, not copies.
    pub fn decode(payload: &Bytes) -> Result<Record, DecodeError> {
        Record::decode_with(payload, &mut None)
    }

    /// [`Record::decode`], sharing the owner name with the previous record when it is the
    /// same (replay decodes millions of records naming a handful of queues).
    pub(crate) fn decode_with(
        payload: &Bytes,
        last_owner: &mut Option<Owner>,
    ) -> Result<Record, DecodeError> {
        let mut r = Reader {
            data: payload,
            pos: 0,
            last_owner,
        };
        let kind = r.u8()?;
        let record = match kind {
            KIND_SEND => Record::Send(r.message()?),
            KIND_REMOVE => Record::Remove {
                owner: r.owner()?,
                id: r.u64()?,
            },
            KIND_DEAD_LETTERED => Record::DeadLettered {
                from: r.owner()?,
                id: r.u64()?,
                to: r.owner()?,
                new_id: r.u64()?,
            },
            KIND_COUNT => Record::DeliveryCount {
                owner: r.owner()?,
                id: r.u64()?,
                count: r.u32()?,
            },
            KIND_COMMIT => {
                let n = r.count(8 + 4 + 4)?;
                let mut sends = Vec::with_capacity(n);
                for _ in 0..n {
                    sends.push(r.message()?);
                }
                let n = r.count(1 + 8)?;
                let mut acks = Vec::with_capacity(n);
                for _ in 0..n {
                    acks.push((r.owner()?, r.u64()?));
                }
                Record::Commit { sends, acks }
            }
            KIND_QUEUE_CREATED => Record::QueueCreated(r.str()?),
            KIND_QUEUE_DELETED => Record::QueueDeleted(r.str()?),
            KIND_SUB_CREATED => Record::SubscriptionCreated(DurableSubscription {
                id: r.u64()?,
                topic: r.str()?,
                client_id: r.opt()?,
                name: r.str()?,
                selector: r.opt()?,
                no_local: r.bool()?,
                shared: r.bool()?,
            }),
            KIND_SUB_DELETED => Record::SubscriptionDeleted(r.u64()?),
            _ => return Err(DecodeError("unknown record kind")),
        };
        if r.pos != payload.len() {
            return Err(DecodeError("trailing bytes after record"));
        }
        Ok(record)
    }

    /// A short description for logs and reports (kind and ids, never bodies).
    pub fn describe(&self) -> String {
        match self {
            Record::Send(m) => format!(
                "send of message {} to {}",
                m.id,
                m.owners
                    .iter()
                    .map(owner_name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Record::Remove { owner, id } => {
                format!("removal of message {id} from {}", owner_name(owner))
            }
            Record::DeadLettered { from, id, .. } => {
                format!("dead-lettering of message {id} from {}", owner_name(from))
            }
            Record::DeliveryCount { owner, id, count } => {
                format!(
                    "delivery count {count} of message {id} in {}",
                    owner_name(owner)
                )
            }
            Record::Commit { sends, acks } => format!(
                "transaction commit sending {:?} and acknowledging {:?}",
                sends.iter().map(|m| m.id).collect::<Vec<_>>(),
                acks.iter().map(|(_, id)| id).collect::<Vec<_>>()
            ),
            Record::QueueCreated(name) => format!("creation of queue {name}"),
            Record::QueueDeleted(name) => format!("deletion of queue {name}"),
            Record::SubscriptionCreated(s) => format!("creation of subscription {}", s.id),
            Record::SubscriptionDeleted(id) => format!("deletion of subscription {id}"),
        }
    }
}

/// `queue:NAME` or `subscription:KEY`, for messages and reports.
pub fn owner_name(owner: &Owner) -> String {
    match owner {
        Owner::Queue(n) => format!("queue:{n}"),
        Owner::Subscription(id) => format!("subscription:{id}"),
    }
}

fn owner_len(o: &Owner) -> usize {
    1 + match o {
        Owner::Queue(n) => 4 + n.len(),
        Owner::Subscription(_) => 8,
    }
}

fn opt_len(s: &Option<Arc<str>>) -> usize {
    1 + s.as_ref().map_or(0, |x| 4 + x.len())
}

fn message_len(m: &StoredMessage) -> usize {
    8 + 4 + m.owners.iter().map(owner_len).sum::<usize>() + 4 + m.body.len()
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.put_u32_le(s.len() as u32);
    buf.extend_from_slice(s.as_bytes());
}

fn put_opt(buf: &mut Vec<u8>, s: &Option<Arc<str>>) {
    match s {
        Some(s) => {
            buf.put_u8(1);
            put_str(buf, s);
        }
        None => buf.put_u8(0),
    }
}

fn put_owner(buf: &mut Vec<u8>, owner: &Owner) {
    match owner {
        Owner::Queue(n) => {
            buf.put_u8(0);
            put_str(buf, n);
        }
        Owner::Subscription(id) => {
            buf.put_u8(1);
            buf.put_u64_le(*id);
        }
    }
}

fn put_message(buf: &mut Vec<u8>, m: &StoredMessage) {
    buf.put_u64_le(m.id);
    buf.put_u32_le(m.owners.len() as u32);
    for o in &m.owners {
        put_owner(buf, o);
    }
    buf.put_u32_le(m.body.len() as u32);
    buf.extend_from_slice(&m.body);
}

struct Reader<'a> {
    data: &'a Bytes,
    pos: usize,
    last_owner: &'a mut Option<Owner>,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if self.data.len() - self.pos < n {
            return Err(DecodeError("record cut short"));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError("bad boolean")),
        }
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
    /// A count of items of at least `min_size` bytes each, checked against what is left.
    fn count(&mut self, min_size: usize) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size) > self.data.len() - self.pos {
            return Err(DecodeError("item count larger than the record"));
        }
        Ok(n)
    }
    fn str(&mut self) -> Result<Arc<str>, DecodeError> {
        let n = self.u32()? as usize;
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes)
            .map(Arc::from)
            .map_err(|_| DecodeError("name is not UTF-8"))
    }
    fn opt(&mut self) -> Result<Option<Arc<str>>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.str()?)),
            _ => Err(DecodeError("bad option flag")),
        }
    }
    fn owner(&mut self) -> Result<Owner, DecodeError> {
        match self.u8()? {
            0 => {
                let n = self.u32()? as usize;
                let data = self.data;
                if data.len() - self.pos < n {
                    return Err(DecodeError("record cut short"));
                }
                let name = &data[self.pos..self.pos + n];
                self.pos += n;
                if let Some(Owner::Queue(q)) = &*self.last_owner {
                    if q.as_bytes() == name {
                        return Ok(Owner::Queue(q.clone()));
                    }
                }
                let name: Arc<str> = std::str::from_utf8(name)
                    .map(Arc::from)
                    .map_err(|_| DecodeError("name is not UTF-8"))?;
                let owner = Owner::Queue(name);
                *self.last_owner = Some(owner.clone());
                Ok(owner)
            }
            1 => Ok(Owner::Subscription(self.u64()?)),
            _ => Err(DecodeError("bad owner tag")),
        }
    }
    fn message(&mut self) -> Result<StoredMessage, DecodeError> {
        let id = self.u64()?;
        let n = self.count(1 + 8)?;
        let mut owners = Vec::with_capacity(n);
        for _ in 0..n {
            owners.push(self.owner()?);
        }
        let n = self.u32()? as usize;
        if self.data.len() - self.pos < n {
            return Err(DecodeError("body runs past the record"));
        }
        let body = self.data.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(StoredMessage { id, owners, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Record> {
        let q = || Owner::Queue("q".into());
        let m = |id| StoredMessage {
            id,
            owners: if id % 2 == 0 {
                vec![q()]
            } else {
                vec![Owner::Subscription(4), Owner::Subscription(5)]
            },
            body: Bytes::from(vec![id as u8; id as usize]),
        };
        vec![
            Record::Send(m(3)),
            Record::Remove { owner: q(), id: 9 },
            Record::DeadLettered {
                from: Owner::Subscription(2),
                id: 7,
                to: Owner::Queue("dlq".into()),
                new_id: 8,
            },
            Record::DeliveryCount {
                owner: q(),
                id: 4,
                count: 2,
            },
            Record::Commit {
                sends: vec![m(1), m(2)],
                acks: vec![(q(), 5), (Owner::Subscription(1), 6)],
            },
            Record::QueueCreated("q".into()),
            Record::QueueDeleted("q".into()),
            Record::SubscriptionCreated(DurableSubscription {
                id: 3,
                topic: "t".into(),
                client_id: Some("c".into()),
                name: "s".into(),
                selector: Some("a = 1".into()),
                no_local: true,
                shared: false,
            }),
            Record::SubscriptionDeleted(3),
        ]
    }

    #[test]
    fn every_record_round_trips_and_knows_its_size() {
        for record in samples() {
            let mut buf = Vec::new();
            record.encode_frame(&mut buf);
            assert_eq!(buf.len(), record.frame_len(), "{record:?}");
            let data = Bytes::from(buf);
            let frame = parse_frame(&data, 0, data.len()).unwrap();
            assert_eq!(frame.len, data.len());
            assert_eq!(Record::decode(&frame.payload).unwrap(), record);
        }
    }

    #[test]
    fn peek_send_reads_exactly_the_single_owner_sends_decode_reads() {
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for record in samples() {
            let mut buf = Vec::new();
            record.encode_frame(&mut buf);
            cases.push(buf[FRAME_HEADER..].to_vec());
        }
        for owner in [Owner::Queue("queue".into()), Owner::Subscription(7)] {
            let mut buf = Vec::new();
            Record::Send(StoredMessage {
                id: 42,
                owners: vec![owner],
                body: Bytes::from_static(b"body"),
            })
            .encode_frame(&mut buf);
            let payload = buf[FRAME_HEADER..].to_vec();
            // Every truncation, every extension and every single-byte change of a send too.
            for cut in 0..payload.len() {
                cases.push(payload[..cut].to_vec());
            }
            let mut longer = payload.clone();
            longer.push(0);
            cases.push(longer);
            for i in 0..payload.len() {
                for x in [0x01, 0x80, 0xff] {
                    let mut bad = payload.clone();
                    bad[i] ^= x;
                    cases.push(bad);
                }
            }
            cases.push(payload);
        }
        let mut peeked = 0;
        for payload in cases {
            let data = Bytes::from(payload.clone());
            let full = Record::decode(&data);
            let peek = peek_send(&payload, b"");
            assert_eq!(peek, peek_send(&payload, b"queue"), "{payload:?}");
            match peek {
                Some(s) => {
                    peeked += 1;
                    let owner = match s.owner {
                        OwnerRef::Queue(n) => Owner::Queue(std::str::from_utf8(n).unwrap().into()),
                        OwnerRef::Subscription(id) => Owner::Subscription(id),
                    };
                    let expected = Record::Send(StoredMessage {
                        id: s.id,
                        owners: vec![owner],
                        body: data.slice(s.body),
                    });
                    assert_eq!(full, Ok(expected), "{payload:?}");
                }
                None => assert!(
                    !matches!(&full, Ok(Record::Send(m)) if m.owners.len() == 1),
                    "{payload:?} is a single-owner send"
                ),
            }
        }
        assert!(peeked > 2, "only {peeked} sends peeked");
    }

    #[test]
    fn frame_crc_is_crc32c_of_length_then_payload_at_every_size_and_alignment() {
        let data: Vec<u8> = (0..2000u32).map(|i| (i * 7919 % 251) as u8).collect();
        for start in 0..9 {
            for len in (0..300).chain([511, 512, 1024, 1500]) {
                let payload = &data[start..start + len];
                let mut whole = (len as u32).to_le_bytes().to_vec();
                whole.extend_from_slice(payload);
                assert_eq!(
                    frame_crc(len as u32, payload),
                    crc32c::crc32c(&whole),
                    "start {start} len {len}"
                );
            }
        }
    }

    #[test]
    fn any_flipped_bit_is_caught() {
        for record in samples() {
            let mut buf = Vec::new();
            record.encode_frame(&mut buf);
            for bit in 0..buf.len() * 8 {
                let mut bad = buf.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                let data = Bytes::from(bad);
                assert!(parse_frame(&data, 0, data.len()).is_err(), "bit {bit}");
            }
        }
    }

    #[test]
    fn hostile_payloads_are_errors_not_panics() {
        for payload in [
            vec![],
            vec![KIND_COMMIT, 255, 255, 255, 255],
            vec![KIND_SEND, 1, 2, 3],
            vec![KIND_QUEUE_CREATED, 255, 255, 255, 255],
            vec![KIND_QUEUE_CREATED, 1, 0, 0, 0, 0xff],
            vec![KIND_SEND, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255],
            vec![99],
            vec![KIND_REMOVE, 2, 0, 0, 0, 0, 0, 0, 0, 0],
        ] {
            assert!(Record::decode(&Bytes::from(payload)).is_err());
        }
    }
}
