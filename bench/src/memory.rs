//! Memory per queued message: the resident memory a process gains while a queue fills.
//!
//! Readings come from `/proc/self/status`, so this workload runs on Linux only. Before each
//! reading the allocator is asked to return free memory to the system (`malloc_trim` on
//! glibc), so memory freed by earlier workloads and reused by this one does not hide its cost.

use courier_api::{ConnectionFactory, Destination, Error, Result, SessionMode};
use std::time::Duration;

use super::bounds::StampBounds;
use super::check::{verify, DeliveryLog, Expectation};
use super::endpoint::{drain_leftovers, fill, unique_name, Endpoint};
use super::latency::{Clock, LatencyKind};
use super::measurement::{Measurement, MemoryFigure};
use super::payload::MessageMaker;
use super::spec::MemorySpec;

/// How long the check drain waits for a message before calling the rest missing.
const DRAIN_STALL: Duration = Duration::from_secs(10);

/// The resident set size of this process, in bytes (`VmRSS` of `/proc/self/status`).
///
/// ```
/// # #[cfg(target_os = "linux")]
/// assert!(courier_bench::resident_bytes().unwrap() > 0);
/// ```
pub fn resident_bytes() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| {
        Error::unsupported(
            "workload",
            format!("reading resident memory needs /proc/self/status: {e}"),
        )
    })?;
    vm_rss_bytes(&status)
        .ok_or_else(|| Error::illegal_state("/proc/self/status has no readable VmRSS line"))
}

/// The `VmRSS:   1234 kB` line of a `/proc/<pid>/status` text, in bytes.
fn vm_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// Returns the allocator's free memory to the system where the allocator allows it.
///
/// The crate's one `unsafe` block: glibc offers `malloc_trim` only through FFI.
#[allow(unsafe_code)]
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages; it has no preconditions and does not
    // touch memory in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Reads resident memory after releasing free memory.
pub(crate) fn settled_resident_bytes() -> Result<u64> {
    release_free_memory();
    resident_bytes()
}

/// Runs a memory workload against `factory`, which should be a fresh backend.
pub(crate) async fn run(
    factory: &dyn ConnectionFactory,
    name: &str,
    spec: &MemorySpec,
    made: &mut Vec<Destination>,
) -> Result<Measurement> {
    let clock = Clock::start();
    let queue = Destination::queue(unique_name(name, "queue"));
    made.push(queue.clone());
    let maker = MessageMaker::new(spec.message_size, None)?;
    let rss_before = settled_resident_bytes()?;
    let fill_time = fill(
        factory,
        &queue,
        spec.depth,
        &maker,
        spec.delivery_mode,
        clock,
    )
    .await?;
    let rss_after = settled_resident_bytes()?;

    let endpoint = Endpoint::open(factory, SessionMode::AutoAcknowledge).await?;
    let consumer = endpoint.consumer(&queue, None).await?;
    let mut log = DeliveryLog::new(StampBounds::fixed(&[spec.depth]));
    let mut stalled = false;
    for _ in 0..spec.depth {
        match consumer.receive_timeout(DRAIN_STALL).await? {
            Some(message) => {
                log.observe_message(&message);
            }
            None => {
                stalled = true;
                break;
            }
        }
    }
    drain_leftovers(consumer.as_ref(), &mut log).await?;
    endpoint.close().await?;
    Ok(Measurement {
        messages: spec.depth,
        elapsed: fill_time,
        sent: spec.depth,
        send_elapsed: fill_time,
        latency_kind: LatencyKind::None,
        latency: None,
        check: verify([&log], &Expectation::all(vec![spec.depth])),
        stalled,
        memory: Some(MemoryFigure {
            queued: spec.depth,
            rss_before,
            rss_after,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\tbench\nVmPeak:\t  9000 kB\nVmRSS:\t  1234 kB\nThreads:\t3\n";
        assert_eq!(vm_rss_bytes(status), Some(1234 * 1024));
        assert_eq!(vm_rss_bytes("VmRSS: lots"), None);
        assert_eq!(vm_rss_bytes("Name: x"), None);
        assert_eq!(vm_rss_bytes("VmRSS: 18446744073709551615 kB"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn resident_memory_grows_with_touched_pages() {
        let before = resident_bytes().unwrap();
        let block = vec![1u8; 64 << 20];
        std::hint::black_box(&block);
        let after = resident_bytes().unwrap();
        assert!(after >= before + (32 << 20), "{before} -> {after}");
        drop(block);
    }
}
