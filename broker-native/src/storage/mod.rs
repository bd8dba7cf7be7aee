//! Durable storage: the broker's journal.
//!
//! One journal per broker, in one directory: segmented, append-only files of checksummed
//! records (`record.rs`), a manifest listing the segments in order (`manifest.rs`), one writer
//! thread batching every producer's records with one `fdatasync` per batch (`writer.rs`: group
//! commit, no timer), live-record accounting so segments with nothing live are deleted and
//! sparse old ones compacted in the background (`index.rs`, `compaction.rs`), and start-up
//! replay that cuts a torn tail and refuses damage before it unless told to skip
//! (`replay.rs`).
//!
//! The journal knows nothing of the broker core: the core reports durable events as
//! [`Record`]s with stable ids — a persistent send (one record for all the copies a topic
//! fans out to durable subscriptions), a removal, a move to the dead-letter queue, a delivery
//! count, a transaction commit as one record, queue and durable subscription creation and
//! deletion — and rebuilds itself from [`Recovered`] at start-up. Non-persistent messages
//! never reach it.
//!
//! ```text
//! dir/MANIFEST                    segment order, max message id, skipped ranges
//! dir/0000000000000001.seg        header (magic CJNL, version, id) | batch | batch | …
//!   batch = header frame (number, length) | record frame | record frame | …
//!   frame = len u32 | crc32c u32 | kind u8 | fields
//! ```
//!
//! Only `hook.rs` knows the core: [`JournalStore`] implements its storage hook
//! ([`crate::store::Store`]) over a journal, and [`open_broker`] builds a durable broker from a
//! directory (what `embedded:/dir` opens).
//!
//! Paging: [`Journal::read`] reads one live copy back by owner and id, from the index's
//! location (kept valid by compaction). The core pages past its paging threshold (see
//! `core/paging.rs`): its stubs are read back through [`JournalStore`]'s
//! [`crate::store::Store::read`]. [`JournalOptions::memory_limit`] leaves bodies past it on disk
//! at start-up, for users of the journal alone; the durable broker loads all and makes stubs.
//!
//! A full disk fails the appends of the batch that hit it with
//! [`JournalError::ResourceLimit`]; the segment is cut back to its last good batch, so
//! nothing is half-written, and appends succeed again once space is freed. Removals need
//! space too (no space is held in reserve for them): until some is freed, acknowledgements
//! are not recorded and those messages come back after a restart. Reads of the journal
//! (replay, [`Journal::read`] for paged messages) are independent of the writer.
//!
//! One process per directory: `embedded:/dir` shares one broker per directory within a
//! process, and [`Journal::open`] takes an exclusive lock on the file `lock` in the directory,
//! so a second process (or a second journal in one process) is refused with
//! [`JournalError::Locked`] naming the directory. The lock is the operating system's (`flock`):
//! released when the journal closes or is dropped, and by the kernel when the process dies,
//! even by SIGKILL, so a crash never leaves a stale lock behind.

mod compaction;
mod error;
mod faults;
mod hook;
mod index;
mod journal;
mod manifest;
mod record;
mod replay;
mod segment;
mod writer;

pub use error::{JournalError, Result};
pub use faults::FaultInjector;
pub use hook::{open_broker, JournalStore};
pub use journal::{Journal, JournalOptions, JournalStats, Recovered, RecoveredMessage, Ticket};
pub use record::{DurableSubscription, Owner, Record, StoredMessage};
pub use replay::{ReplayReport, Skipped, TornTail};
pub use segment::{FORMAT_VERSION, SEGMENT_MAGIC};

pub(crate) use journal::Shared;
