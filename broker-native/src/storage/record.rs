//! The journal's records: what the broker core reports as durable events, and their bytes.
//!
//! A frame on disk is `len: u32 LE | crc32c: u32 LE | payload (len bytes)`; the checksum covers
//! the length field and the payload, so a flipped bit in either is caught. The payload's first
//! byte is the record kind; the rest is fixed-width little-endian fields, strings and bodies
//! prefixed by a `u32` length. Kind 0 is the writer's batch header (one per `fdatasync`), which
//! lets replay tell a torn last batch from corruption in the middle of a file.

use bytes::{BufMut, Bytes};
use std::sync::Arc;

/// Bytes of a frame's header (length and checksum).
pub const FRAME_HEADER: usize = 8;

const KIND_BATCH: u8 = 0;
const KIND_SEND: u8 = 1;
const KIND_REMOVE: u8 = 2;
const KIND_COUNT: u8 = 3;
const KIND_COMMIT: u8 = 4;
const KIND_DEST_CREATED: u8 = 5;
const KIND_DEST_DELETED: u8 = 6;
const KIND_SUB_CREATED: u8 = 7;
const KIND_SUB_DELETED: u8 = 8;

/// Who holds a stored message: a queue, or a durable subscription (by the core's key).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    /// A queue, by name.
    Queue(Arc<str>),
    /// A durable subscription, by the key the core gave it in [`DurableSubscription::key`].
    Subscription(Arc<str>),
}

/// Whether a destination is a queue or a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DestinationKind {
    /// A point-to-point queue.
    Queue,
    /// A publish-subscribe topic.
    Topic,
}

/// A persistent message accepted by the core, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The core's stable id; unique among live messages.
    pub id: u64,
    /// The queue or durable subscription holding it.
    pub owner: Owner,
    /// Scheduled delivery time (milliseconds since the Unix epoch), if delayed.
    pub deliver_at: Option<u64>,
    /// The message in the api's encoding; the journal does not look inside.
    pub body: Bytes,
}

/// A durable subscription as the core created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableSubscription {
    /// The core's key for it (unique among live subscriptions).
    pub key: Arc<str>,
    /// The topic it subscribes to.
    pub topic: Arc<str>,
    /// Its message selector, if any.
    pub selector: Option<Arc<str>>,
    /// Whether messages published on the subscriber's own connection are skipped.
    pub no_local: bool,
    /// Whether it is a shared subscription.
    pub shared: bool,
}

/// One durable event, as the core reports it through its storage hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A persistent message was accepted.
    Send(StoredMessage),
    /// A message was acknowledged, expired, or otherwise removed.
    Remove(u64),
    /// A message's delivery count changed (it was handed to a consumer).
    DeliveryCount {
        /// The message.
        id: u64,
        /// Its new delivery count.
        count: u32,
    },
    /// A transaction committed: its sends and acknowledgements as one unit.
    Commit {
        /// Messages the transaction sent.
        sends: Vec<StoredMessage>,
        /// Messages the transaction acknowledged.
        acks: Vec<u64>,
    },
    /// A destination was created.
    DestinationCreated {
        /// Queue or topic.
        kind: DestinationKind,
        /// Its name.
        name: Arc<str>,
    },
    /// A destination was deleted; a deleted queue's messages go with it.
    DestinationDeleted {
        /// Queue or topic.
        kind: DestinationKind,
        /// Its name.
        name: Arc<str>,
    },
    /// A durable subscription was created.
    SubscriptionCreated(DurableSubscription),
    /// A durable subscription was deleted, and its messages with it.
    SubscriptionDeleted {
        /// The core's key for it.
        key: Arc<str>,
    },
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
    let payload = &data[offset + FRAME_HEADER..offset + FRAME_HEADER + len];
    if crc32c::crc32c_append(crc32c::crc32c(&head[0..4]), payload) != crc {
        return Err(DecodeError("checksum mismatch"));
    }
    Ok(Frame {
        payload: data.slice(offset + FRAME_HEADER..offset + FRAME_HEADER + len),
        len: FRAME_HEADER + len,
    })
}

/// Fills in the header of the frame starting at `start`, whose payload runs to the end.
fn seal_frame(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start - FRAME_HEADER) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    let crc = crc32c::crc32c_append(
        crc32c::crc32c(&len.to_le_bytes()),
        &buf[start + FRAME_HEADER..],
    );
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
                Record::Remove(_) => 8,
                Record::DeliveryCount { .. } => 12,
                Record::Commit { sends, acks } => {
                    8 + sends.iter().map(message_len).sum::<usize>() + 8 * acks.len()
                }
                Record::DestinationCreated { name, .. }
                | Record::DestinationDeleted { name, .. } => 1 + 4 + name.len(),
                Record::SubscriptionCreated(s) => {
                    4 + s.key.len()
                        + 4
                        + s.topic.len()
                        + 1
                        + s.selector.as_ref().map_or(0, |x| 4 + x.len())
                        + 2
                }
                Record::SubscriptionDeleted { key } => 4 + key.len(),
            }
    }

    fn encode_payload(&self, buf: &mut Vec<u8>) {
        match self {
            Record::Send(m) => {
                buf.put_u8(KIND_SEND);
                put_message(buf, m);
            }
            Record::Remove(id) => {
                buf.put_u8(KIND_REMOVE);
                buf.put_u64_le(*id);
            }
            Record::DeliveryCount { id, count } => {
                buf.put_u8(KIND_COUNT);
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
                for id in acks {
                    buf.put_u64_le(*id);
                }
            }
            Record::DestinationCreated { kind, name } => {
                buf.put_u8(KIND_DEST_CREATED);
                buf.put_u8(kind_byte(*kind));
                put_str(buf, name);
            }
            Record::DestinationDeleted { kind, name } => {
                buf.put_u8(KIND_DEST_DELETED);
                buf.put_u8(kind_byte(*kind));
                put_str(buf, name);
            }
            Record::SubscriptionCreated(s) => {
                buf.put_u8(KIND_SUB_CREATED);
                put_str(buf, &s.key);
                put_str(buf, &s.topic);
                match &s.selector {
                    Some(sel) => {
                        buf.put_u8(1);
                        put_str(buf, sel);
                    }
                    None => buf.put_u8(0),
                }
                buf.put_u8(s.no_local as u8);
                buf.put_u8(s.shared as u8);
            }
            Record::SubscriptionDeleted { key } => {
                buf.put_u8(KIND_SUB_DELETED);
                put_str(buf, key);
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
            KIND_REMOVE => Record::Remove(r.u64()?),
            KIND_COUNT => Record::DeliveryCount {
                id: r.u64()?,
                count: r.u32()?,
            },
            KIND_COMMIT => {
                let n = r.count(1 + 4 + 8 + 8 + 4)?;
                let mut sends = Vec::with_capacity(n);
                for _ in 0..n {
                    sends.push(r.message()?);
                }
                let n = r.count(8)?;
                let mut acks = Vec::with_capacity(n);
                for _ in 0..n {
                    acks.push(r.u64()?);
                }
                Record::Commit { sends, acks }
            }
            KIND_DEST_CREATED => Record::DestinationCreated {
                kind: r.kind()?,
                name: r.str()?,
            },
            KIND_DEST_DELETED => Record::DestinationDeleted {
                kind: r.kind()?,
                name: r.str()?,
            },
            KIND_SUB_CREATED => {
                let key = r.str()?;
                let topic = r.str()?;
                let selector = match r.u8()? {
                    0 => None,
                    1 => Some(r.str()?),
                    _ => return Err(DecodeError("bad selector flag")),
                };
                Record::SubscriptionCreated(DurableSubscription {
                    key,
                    topic,
                    selector,
                    no_local: r.bool()?,
                    shared: r.bool()?,
                })
            }
            KIND_SUB_DELETED => Record::SubscriptionDeleted { key: r.str()? },
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
            Record::Send(m) => format!("send of message {} to {}", m.id, owner_name(&m.owner)),
            Record::Remove(id) => format!("removal of message {id}"),
            Record::DeliveryCount { id, count } => {
                format!("delivery count {count} of message {id}")
            }
            Record::Commit { sends, acks } => format!(
                "transaction commit sending {:?} and acknowledging {:?}",
                sends.iter().map(|m| m.id).collect::<Vec<_>>(),
                acks
            ),
            Record::DestinationCreated { kind, name } => format!("creation of {kind:?} {name}"),
            Record::DestinationDeleted { kind, name } => format!("deletion of {kind:?} {name}"),
            Record::SubscriptionCreated(s) => format!("creation of subscription {}", s.key),
            Record::SubscriptionDeleted { key } => format!("deletion of subscription {key}"),
        }
    }
}

/// `queue:NAME` or `subscription:KEY`, for messages and reports.
pub fn owner_name(owner: &Owner) -> String {
    match owner {
        Owner::Queue(n) => format!("queue:{n}"),
        Owner::Subscription(k) => format!("subscription:{k}"),
    }
}

fn kind_byte(kind: DestinationKind) -> u8 {
    match kind {
        DestinationKind::Queue => 0,
        DestinationKind::Topic => 1,
    }
}

fn message_len(m: &StoredMessage) -> usize {
    8 + 1 + 4 + owner_str(&m.owner).len() + 8 + 4 + m.body.len()
}

fn owner_str(o: &Owner) -> &str {
    match o {
        Owner::Queue(n) | Owner::Subscription(n) => n,
    }
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.put_u32_le(s.len() as u32);
    buf.extend_from_slice(s.as_bytes());
}

fn put_message(buf: &mut Vec<u8>, m: &StoredMessage) {
    buf.put_u64_le(m.id);
    match &m.owner {
        Owner::Queue(n) => {
            buf.put_u8(0);
            put_str(buf, n);
        }
        Owner::Subscription(k) => {
            buf.put_u8(1);
            put_str(buf, k);
        }
    }
    // u64::MAX means "not scheduled": a real schedule that far out is not representable anyway.
    buf.put_u64_le(m.deliver_at.unwrap_or(u64::MAX));
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
    fn kind(&mut self) -> Result<DestinationKind, DecodeError> {
        match self.u8()? {
            0 => Ok(DestinationKind::Queue),
            1 => Ok(DestinationKind::Topic),
            _ => Err(DecodeError("bad destination kind")),
        }
    }
    fn message(&mut self) -> Result<StoredMessage, DecodeError> {
        let id = self.u64()?;
        let tag = self.u8()?;
        let n = self.u32()? as usize;
        let data = self.data;
        if data.len() - self.pos < n {
            return Err(DecodeError("record cut short"));
        }
        let name = &data[self.pos..self.pos + n];
        self.pos += n;
        let same = match (&*self.last_owner, tag) {
            (Some(Owner::Queue(q)), 0) | (Some(Owner::Subscription(q)), 1) => q.as_bytes() == name,
            _ => false,
        };
        let owner = if same {
            self.last_owner.clone().expect("checked above")
        } else {
            let name: Arc<str> = std::str::from_utf8(name)
                .map(Arc::from)
                .map_err(|_| DecodeError("name is not UTF-8"))?;
            let owner = match tag {
                0 => Owner::Queue(name),
                1 => Owner::Subscription(name),
                _ => return Err(DecodeError("bad owner tag")),
            };
            *self.last_owner = Some(owner.clone());
            owner
        };
        let deliver_at = match self.u64()? {
            u64::MAX => None,
            t => Some(t),
        };
        let n = self.u32()? as usize;
        if self.data.len() - self.pos < n {
            return Err(DecodeError("body runs past the record"));
        }
        let body = self.data.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(StoredMessage {
            id,
            owner,
            deliver_at,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Record> {
        let m = |id| StoredMessage {
            id,
            owner: Owner::Queue("q".into()),
            deliver_at: if id % 2 == 0 { Some(77) } else { None },
            body: Bytes::from(vec![id as u8; id as usize]),
        };
        vec![
            Record::Send(m(3)),
            Record::Remove(9),
            Record::DeliveryCount { id: 4, count: 2 },
            Record::Commit {
                sends: vec![m(1), m(2)],
                acks: vec![5, 6],
            },
            Record::DestinationCreated {
                kind: DestinationKind::Topic,
                name: "t".into(),
            },
            Record::DestinationDeleted {
                kind: DestinationKind::Queue,
                name: "q".into(),
            },
            Record::SubscriptionCreated(DurableSubscription {
                key: "c:s".into(),
                topic: "t".into(),
                selector: Some("a = 1".into()),
                no_local: true,
                shared: false,
            }),
            Record::SubscriptionDeleted { key: "c:s".into() },
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
            vec![KIND_DEST_CREATED, 0, 255, 255, 255, 255],
            vec![KIND_DEST_CREATED, 0, 1, 0, 0, 0, 0xff],
            vec![99],
            vec![KIND_REMOVE, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ] {
            assert!(Record::decode(&Bytes::from(payload)).is_err());
        }
    }
}
