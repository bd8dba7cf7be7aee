//! Memory per queued message: the memory the broker gains while a queue fills.
//!
//! The figure comes from the broker, never from the client ([`MemoryGauge`]):
//! - in process (`embedded:`), this process's resident memory from `/proc/self/status`
//!   (Linux only); before each reading the allocator is asked to return free memory to the
//!   system (`malloc_trim` on glibc), so memory freed by earlier workloads and reused by this
//!   one does not hide its cost;
//! - a Courier server (`courier://`), its process's resident memory from its statistics
//!   (the protocol's `Stats` op, which needs ADMIN on `#`);
//! - Redis, `used_memory` from `INFO memory`: what its allocator holds;
//! - RabbitMQ tells memory only through its management plugin, which is no part of AMQP: the
//!   workload is `Unsupported` there.

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

/// Where the memory workload reads the broker's memory.
#[derive(Clone)]
pub enum MemoryGauge {
    /// This process's resident memory, settled: the broker runs in this process.
    ThisProcess,
    /// A Courier server's process, through its statistics.
    #[cfg(any(feature = "native", feature = "tcp"))]
    CourierServer(courier::broker::client::TcpFactory),
    /// A Redis server's `used_memory`.
    #[cfg(feature = "redis")]
    Redis(redis::Client),
}

impl std::fmt::Debug for MemoryGauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.source().describe())
    }
}

impl MemoryGauge {
    /// The gauge of the broker behind `url`: `embedded:` reads this process, `courier://`
    /// the server's statistics, `redis://` Redis's own accounting; other backends are
    /// `Unsupported` (their clients cannot read the broker's memory).
    ///
    /// ```
    /// use courier_bench::{MemoryGauge, MemorySource};
    /// assert_eq!(MemoryGauge::for_url("embedded:").unwrap().source(), MemorySource::ProcessResident);
    /// let refused = MemoryGauge::for_url("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap_err();
    /// assert!(refused.to_string().contains("unsupported by the amqp backend"), "{refused}");
    /// ```
    pub fn for_url(url: &str) -> Result<MemoryGauge> {
        let scheme = url
            .split_once(':')
            .map_or("", |(s, _)| s)
            .to_ascii_lowercase();
        match scheme.as_str() {
            "embedded" => Ok(MemoryGauge::ThisProcess),
            #[cfg(any(feature = "native", feature = "tcp"))]
            "courier" | "courier+tls" => Ok(MemoryGauge::CourierServer(
                courier::broker::client::TcpFactory::from_url(url)?,
            )),
            #[cfg(feature = "redis")]
            "redis" => {
                // The adapter's own options (after `?`) are no business of redis-rs.
                let base = url.split_once('?').map_or(url, |(b, _)| b);
                let client = redis::Client::open(base).map_err(|e| {
                    Error::invalid_argument(format!("redis memory gauge: bad URL: {e}"))
                })?;
                Ok(MemoryGauge::Redis(client))
            }
            "amqp" | "amqps" => Err(Error::unsupported(
                "amqp",
                "RabbitMQ tells its memory only through the management plugin, not over AMQP",
            )),
            _ => Err(Error::unsupported(
                "workload",
                format!("no way to read the memory of a `{scheme}:` broker"),
            )),
        }
    }

    /// What the gauge reads.
    pub fn source(&self) -> MemorySource {
        match self {
            MemoryGauge::ThisProcess => MemorySource::ProcessResident,
            #[cfg(any(feature = "native", feature = "tcp"))]
            MemoryGauge::CourierServer(_) => MemorySource::ServerResident,
            #[cfg(feature = "redis")]
            MemoryGauge::Redis(_) => MemorySource::RedisUsedMemory,
        }
    }

    /// One reading, in bytes.
    pub async fn read(&self) -> Result<u64> {
        match self {
            MemoryGauge::ThisProcess => settled_resident_bytes(),
            #[cfg(any(feature = "native", feature = "tcp"))]
            MemoryGauge::CourierServer(factory) => {
                factory.broker_stats().await?.resident_bytes.ok_or_else(|| {
                    Error::unsupported("courier", "the server does not report its memory")
                })
            }
            #[cfg(feature = "redis")]
            MemoryGauge::Redis(client) => {
                let mut connection = client
                    .get_multiplexed_async_connection()
                    .await
                    .map_err(|e| Error::connection_lost(format!("redis memory gauge: {e}")))?;
                let info: String = redis::cmd("INFO")
                    .arg("memory")
                    .query_async(&mut connection)
                    .await
                    .map_err(|e| Error::connection_lost(format!("redis memory gauge: {e}")))?;
                used_memory(&info).ok_or_else(|| {
                    Error::illegal_state("redis INFO memory has no readable used_memory line")
                })
            }
        }
    }
}

/// What a [`MemoryFigure`](crate::MemoryFigure) measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemorySource {
    /// This process's resident memory (the broker in process).
    ProcessResident,
    /// A Courier server process's resident memory.
    ServerResident,
    /// Redis's `used_memory`.
    RedisUsedMemory,
}

impl MemorySource {
    /// A few words for reports: `resident`, `server resident`, `redis used_memory`.
    pub fn describe(self) -> &'static str {
        match self {
            MemorySource::ProcessResident => "resident",
            MemorySource::ServerResident => "server resident",
            MemorySource::RedisUsedMemory => "redis used_memory",
        }
    }
}

/// The `used_memory:1234` line of an `INFO memory` reply.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
fn used_memory(info: &str) -> Option<u64> {
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))?
        .trim()
        .parse()
        .ok()
}

/// Runs a memory workload against `factory`, which should be a fresh backend, reading the
/// broker's memory with `gauge`.
pub(crate) async fn run(
    factory: &dyn ConnectionFactory,
    gauge: &MemoryGauge,
    name: &str,
    spec: &MemorySpec,
    made: &mut Vec<Destination>,
) -> Result<Measurement> {
    let clock = Clock::start();
    let queue = Destination::queue(unique_name(name, "queue"));
    made.push(queue.clone());
    let maker = MessageMaker::new(spec.message_size, None)?;
    let rss_before = gauge.read().await?;
    let fill_time = fill(
        factory,
        &queue,
        spec.depth,
        &maker,
        spec.delivery_mode,
        clock,
    )
    .await?;
    let rss_after = gauge.read().await?;

    let endpoint = Endpoint::open(factory, SessionMode::AutoAcknowledge).await?;
    let consumer = endpoint.consumer(&queue, None, None).await?;
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
            source: gauge.source(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_memory_is_read_from_info() {
        let info = "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n";
        assert_eq!(used_memory(info), Some(1 << 20));
        assert_eq!(used_memory("used_memory_rss:5\r\n"), None);
        assert_eq!(used_memory("used_memory:lots\r\n"), None);
    }

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
