//! Segment files: `<id as 16 hex digits>.seg`, each starting with a 24-byte header —
//! magic `CJNL`, format version, flags (bit 0: written by compaction), the segment id (checked
//! against the file name) and a crc32c of the header — followed by batches of record frames.
//!
//! A new segment is created complete (header written and `fdatasync`ed, directory synced)
//! before the manifest lists it, so a listed segment always has a whole header.

use super::error::{JournalError, Result};
use super::faults::{self, FaultInjector};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// The magic number opening every segment.
pub const SEGMENT_MAGIC: [u8; 4] = *b"CJNL";
/// The segment format version this build reads and writes.
pub const FORMAT_VERSION: u16 = 1;
/// Size of the segment header.
pub const HEADER_LEN: usize = 24;
/// Header flag: the segment was written by compaction.
pub const FLAG_COMPACTED: u16 = 1;

/// A segment's id; the manifest gives the order, ids only name files.
pub type SegmentId = u64;

/// The file name of segment `id`.
pub fn file_name(id: SegmentId) -> String {
    format!("{id:016x}.seg")
}

/// The segment id a file name stands for, if it is a segment's name.
pub fn parse_file_name(name: &str) -> Option<SegmentId> {
    let hex = name.strip_suffix(".seg")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The header bytes of segment `id`.
pub fn header(id: SegmentId, flags: u16) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&SEGMENT_MAGIC);
    h[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[6..8].copy_from_slice(&flags.to_le_bytes());
    h[8..16].copy_from_slice(&id.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks the header of segment `id` read from `path`.
pub fn check_header(path: &Path, id: SegmentId, data: &[u8]) -> Result<()> {
    let corrupt = |reason: &str| JournalError::Corrupt {
        file: path.to_owned(),
        offset: 0,
        reason: reason.to_owned(),
    };
    if data.len() < HEADER_LEN {
        return Err(corrupt("segment header cut off"));
    }
    if data[0..4] != SEGMENT_MAGIC {
        return Err(corrupt("not a journal segment (bad magic number)"));
    }
    let crc = u32::from_le_bytes(data[20..24].try_into().expect("4 bytes"));
    if crc32c::crc32c(&data[0..20]) != crc {
        return Err(corrupt("segment header checksum mismatch"));
    }
    let version = u16::from_le_bytes(data[4..6].try_into().expect("2 bytes"));
    if version != FORMAT_VERSION {
        return Err(JournalError::Version {
            file: path.to_owned(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let found = u64::from_le_bytes(data[8..16].try_into().expect("8 bytes"));
    if found != id {
        return Err(corrupt(&format!(
            "segment header names segment {found:016x}, not the file's"
        )));
    }
    Ok(())
}

/// Creates segment `path` (or a temporary file to be renamed into place) holding only its
/// header, made durable; the caller syncs the directory.
pub fn create(
    faults: Option<&FaultInjector>,
    path: &Path,
    id: SegmentId,
    flags: u16,
) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| JournalError::io("create", path, e))?;
    let written = faults::write_at(faults, &file, &header(id, flags), 0)
        .and_then(|()| faults::sync_data(faults, &file));
    if let Err(e) = written {
        let _ = std::fs::remove_file(path);
        return Err(JournalError::io("write header of", path, e));
    }
    Ok(file)
}

/// Opens an existing segment for reading and appending.
pub fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| JournalError::io("open", path, e))
}

/// `fsync`s directory `dir`, making creations, renames and removals in it durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| JournalError::io("sync directory", dir, e))
}

/// The path of segment `id` in `dir`.
pub fn path(dir: &Path, id: SegmentId) -> PathBuf {
    dir.join(file_name(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_refused() {
        assert_eq!(parse_file_name(&file_name(0xab)), Some(0xab));
        for bad in [
            "x.seg",
            "00000000000000ab.tmp",
            "0000000000000g00.seg",
            "ab.seg",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn header_checks_catch_every_damage() {
        let p = Path::new("/x/seg");
        let h = header(7, 0);
        check_header(p, 7, &h).unwrap();
        assert!(check_header(p, 8, &h).is_err());
        assert!(check_header(p, 7, &h[..10]).is_err());
        for byte in 0..HEADER_LEN {
            let mut bad = h;
            bad[byte] ^= 0x10;
            assert!(check_header(p, 7, &bad).is_err(), "byte {byte}");
        }
    }
}
