//! The journal's errors: typed, cloneable (one failed batch fails many tickets), and naming the
//! file and offset whenever a file is at fault.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// What went wrong in the journal.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    /// The disk (or the quota, or the file size limit) is full: the records were not stored.
    /// The journal stays consistent and takes appends again once space is freed.
    #[error("journal storage full: {0}")]
    ResourceLimit(String),
    /// A record or header before the end of the journal is damaged; start-up stops here unless
    /// [`JournalOptions::skip_corrupt`](super::JournalOptions::skip_corrupt) is set.
    #[error("corrupt journal: {file}: offset {offset}: {reason}")]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Where in it the damage starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A segment the manifest lists is not on disk.
    #[error("journal segment missing: {file} (listed in the manifest, not on disk)")]
    MissingSegment {
        /// The file that should be there.
        file: PathBuf,
    },
    /// A file is of a format version this build does not read.
    #[error("{file}: journal format version {found}, this build reads version {supported}")]
    Version {
        /// The file.
        file: PathBuf,
        /// Its version.
        found: u16,
        /// The version this build reads and writes.
        supported: u16,
    },
    /// A record larger than a segment can hold.
    #[error("journal record of {size} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The record's size.
        size: usize,
        /// The largest record accepted (segment size less its header).
        max: usize,
    },
    /// An I/O error other than a full disk.
    #[error("journal I/O error: {op} {path}: {source}")]
    Io {
        /// What the journal was doing.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: Arc<io::Error>,
    },
    /// The journal failed in a way it could not undo (an `fdatasync` failed and the batch could
    /// not be cut back); it takes no more appends until reopened.
    #[error("journal failed: {0}")]
    Failed(String),
    /// No live message has this id (it was removed, or never stored).
    #[error("journal holds no live message {0}")]
    UnknownMessage(u64),
    /// The options make no sense.
    #[error("invalid journal options: {0}")]
    InvalidOptions(String),
    /// The journal is closed.
    #[error("journal closed")]
    Closed,
}

/// Result alias of the storage module.
pub type Result<T> = std::result::Result<T, JournalError>;

impl JournalError {
    /// Classifies an I/O error: out-of-space kinds become [`JournalError::ResourceLimit`].
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        if is_space_error(&source) {
            return JournalError::ResourceLimit(format!("{op} {}: {source}", path.display()));
        }
        JournalError::Io {
            op,
            path,
            source: Arc::new(source),
        }
    }
}

/// Whether an I/O error means "no space": a full disk, an exhausted quota, a file size limit.
pub(crate) fn is_space_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG)
    )
}

impl From<JournalError> for courier_api::Error {
    fn from(e: JournalError) -> Self {
        match e {
            JournalError::ResourceLimit(reason) => courier_api::Error::ResourceLimit(reason),
            JournalError::TooLarge { .. } => courier_api::Error::ResourceLimit(e.to_string()),
            other => courier_api::Error::backend("embedded", other),
        }
    }
}
