//! A seam for injecting write faults into the journal's files, so tests can run the disk out
//! of space (or fail an `fdatasync`) at an exact byte and check what the journal does.
//!
//! A [`FaultInjector`] set in [`JournalOptions::faults`](super::JournalOptions::faults) acts
//! like a disk with a byte budget: a write larger than what is left writes the part that fits
//! (as a real file system does) and fails with `ENOSPC`; raising the budget is "freeing space".
//! Without an injector the journal calls the file system directly.

use parking_lot::{Condvar, Mutex};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Injected write faults; see the module docs.
#[derive(Debug)]
pub struct FaultInjector {
    space: AtomicU64,
    fail_sync: AtomicBool,
    /// While true, every `fdatasync` waits (a disk that stalls).
    hold: Mutex<bool>,
    released: Condvar,
}

impl Default for FaultInjector {
    fn default() -> Self {
        FaultInjector {
            space: AtomicU64::new(u64::MAX),
            fail_sync: AtomicBool::new(false),
            hold: Mutex::new(false),
            released: Condvar::new(),
        }
    }
}

impl FaultInjector {
    /// Leaves `bytes` of space for the journal's writes from now on.
    pub fn set_space(&self, bytes: u64) {
        self.space.store(bytes, Ordering::SeqCst);
    }

    /// Makes space unlimited again.
    pub fn free_space(&self) {
        self.set_space(u64::MAX);
    }

    /// Makes the next `fdatasync` fail with `EIO`.
    pub fn fail_next_sync(&self) {
        self.fail_sync.store(true, Ordering::SeqCst);
    }

    /// Stalls every `fdatasync` from now on until [`Self::release_syncs`]: the writer's
    /// batch stays unconfirmed, as on a disk that stopped answering.
    pub fn hold_syncs(&self) {
        *self.hold.lock() = true;
    }

    /// Lets stalled and later `fdatasync`s go on.
    pub fn release_syncs(&self) {
        *self.hold.lock() = false;
        self.released.notify_all();
    }
}

/// Writes `buf` at `offset`, through the injector when there is one.
pub(crate) fn write_at(
    faults: Option<&FaultInjector>,
    file: &File,
    buf: &[u8],
    offset: u64,
) -> io::Result<()> {
    if let Some(f) = faults {
        let len = buf.len() as u64;
        let left = f
            .space
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| {
                Some(s.saturating_sub(len))
            })
            .expect("closure always returns Some");
        if left < len {
            f.space.store(0, Ordering::SeqCst);
            file.write_all_at(&buf[..left as usize], offset)?;
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
    }
    file.write_all_at(buf, offset)
}

/// `fdatasync`s `file`, through the injector when there is one.
pub(crate) fn sync_data(faults: Option<&FaultInjector>, file: &File) -> io::Result<()> {
    if let Some(f) = faults {
        let mut held = f.hold.lock();
        while *held {
            f.released.wait(&mut held);
        }
        drop(held);
        if f.fail_sync.swap(false, Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
    }
    file.sync_data()
}
