//! The manifest: the one file saying which segments make up the journal and in what order,
//! the highest message and subscription ids ever stored, the next segment id, and byte ranges an operator chose
//! to skip.
//!
//! It is replaced atomically (write `MANIFEST.tmp`, `fdatasync`, rename, sync the directory)
//! whenever segments are added or removed, so a segment file that is not listed is a leftover
//! of an interrupted step (a compaction's output, a segment being created or deleted) and is
//! removed at start-up, while a listed one that is missing is an error: the manifest is how a
//! missing segment is noticed at all.
//!
//! Layout: magic `CJMF`, version u16, reserved u16, max message id u64, max subscription id
//! u64, next segment id u64,
//! segment count u32, per segment (id u64, skip count u32, per skip (offset u64, len u64)),
//! then a crc32c of everything before it.

use super::error::{JournalError, Result};
use super::faults::{self, FaultInjector};
use super::segment::{self, SegmentId, FORMAT_VERSION};
use bytes::BufMut;
use std::fs::OpenOptions;
use std::path::Path;

/// The manifest's file name.
pub const MANIFEST: &str = "MANIFEST";
const MAGIC: [u8; 4] = *b"CJMF";

/// A byte range of a segment that replay passes over (damage the operator chose to skip).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skip {
    /// Where the range starts.
    pub offset: u64,
    /// Its length.
    pub len: u64,
}

/// One segment as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The segment.
    pub id: SegmentId,
    /// Ranges to skip in it.
    pub skips: Vec<Skip>,
}

/// The manifest's content.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// The highest message id ever stored (ids are never handed out twice).
    pub max_id: u64,
    /// The highest durable subscription id ever stored.
    pub max_subscription_id: u64,
    /// The id the next new segment gets.
    pub next_segment: SegmentId,
    /// The segments in replay order.
    pub segments: Vec<Entry>,
}

impl Manifest {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(32 + self.segments.len() * 12);
        b.extend_from_slice(&MAGIC);
        b.put_u16_le(FORMAT_VERSION);
        b.put_u16_le(0);
        b.put_u64_le(self.max_id);
        b.put_u64_le(self.max_subscription_id);
        b.put_u64_le(self.next_segment);
        b.put_u32_le(self.segments.len() as u32);
        for e in &self.segments {
            b.put_u64_le(e.id);
            b.put_u32_le(e.skips.len() as u32);
            for s in &e.skips {
                b.put_u64_le(s.offset);
                b.put_u64_le(s.len);
            }
        }
        let crc = crc32c::crc32c(&b);
        b.put_u32_le(crc);
        b
    }

    fn decode(path: &Path, data: &[u8]) -> Result<Manifest> {
        let corrupt = |offset: usize, reason: &str| JournalError::Corrupt {
            file: path.to_owned(),
            offset: offset as u64,
            reason: reason.to_owned(),
        };
        if data.len() < 32 || data[0..4] != MAGIC {
            return Err(corrupt(0, "not a journal manifest"));
        }
        let body = &data[..data.len() - 4];
        let crc = u32::from_le_bytes(data[data.len() - 4..].try_into().expect("4"));
        if crc32c::crc32c(body) != crc {
            return Err(corrupt(0, "manifest checksum mismatch"));
        }
        let version = u16::from_le_bytes(body[4..6].try_into().expect("2"));
        if version != FORMAT_VERSION {
            return Err(JournalError::Version {
                file: path.to_owned(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let mut pos = 8;
        let mut next = |n: usize| -> Result<&[u8]> {
            if body.len() - pos < n {
                return Err(corrupt(pos, "manifest cut short"));
            }
            pos += n;
            Ok(&body[pos - n..pos])
        };
        let u64_at = |s: &[u8]| u64::from_le_bytes(s.try_into().expect("8"));
        let u32_at = |s: &[u8]| u32::from_le_bytes(s.try_into().expect("4"));
        let max_id = u64_at(next(8)?);
        let max_subscription_id = u64_at(next(8)?);
        let next_segment = u64_at(next(8)?);
        let count = u32_at(next(4)?) as usize;
        let mut segments = Vec::new();
        for _ in 0..count {
            let id = u64_at(next(8)?);
            let skips_n = u32_at(next(4)?) as usize;
            let mut skips = Vec::new();
            for _ in 0..skips_n {
                let offset = u64_at(next(8)?);
                let len = u64_at(next(8)?);
                skips.push(Skip { offset, len });
            }
            if id >= next_segment || segments.iter().any(|e: &Entry| e.id == id) {
                return Err(corrupt(0, "manifest lists an impossible segment id"));
            }
            segments.push(Entry { id, skips });
        }
        if next(1).is_ok() {
            return Err(corrupt(0, "trailing bytes in manifest"));
        }
        Ok(Manifest {
            max_id,
            max_subscription_id,
            next_segment,
            segments,
        })
    }

    /// Reads the manifest in `dir`, `None` when there is none.
    pub fn read(dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join(MANIFEST);
        match std::fs::read(&path) {
            Ok(data) => Manifest::decode(&path, &data).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(JournalError::io("read", path, e)),
        }
    }

    /// Replaces the manifest in `dir` with this one, atomically and durably.
    pub fn write(&self, dir: &Path, faults: Option<&FaultInjector>) -> Result<()> {
        let tmp = dir.join("MANIFEST.tmp");
        let _ = std::fs::remove_file(&tmp);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| JournalError::io("create", &tmp, e))?;
        let written = faults::write_at(faults, &file, &self.encode(), 0)
            .and_then(|()| faults::sync_data(faults, &file));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(JournalError::io("write", &tmp, e));
        }
        std::fs::rename(&tmp, dir.join(MANIFEST))
            .map_err(|e| JournalError::io("rename", &tmp, e))?;
        segment::sync_dir(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let m = Manifest {
            max_id: 42,
            max_subscription_id: 3,
            next_segment: 9,
            segments: vec![
                Entry {
                    id: 3,
                    skips: vec![Skip {
                        offset: 100,
                        len: 7,
                    }],
                },
                Entry {
                    id: 8,
                    skips: vec![],
                },
            ],
        };
        let p = Path::new("/x/MANIFEST");
        let bytes = m.encode();
        assert_eq!(Manifest::decode(p, &bytes).unwrap(), m);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 4;
            assert!(Manifest::decode(p, &bad).is_err(), "byte {i}");
        }
        for cut in 0..bytes.len() {
            assert!(Manifest::decode(p, &bytes[..cut]).is_err(), "cut {cut}");
        }
    }
}
