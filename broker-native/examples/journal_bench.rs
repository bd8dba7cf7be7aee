//! The journal against the disk it runs on, in one run: the disk's own `fdatasync` latency and
//! sequential write bandwidth first (the baseline), then the journal's pipelined appends
//! (100 B and 1 KiB records, many outstanding tickets), one-at-a-time awaited appends, and
//! replay of a 1 GiB journal. Ratios are against the same run's baseline.
//!
//! ```text
//! cargo run --release -p courier-broker --example journal_bench -- [dir] [append | replay [MiB]]
//! cargo run --release -p courier-broker --example journal_bench -- dir fill SIZE MiB  # then:
//! cargo run --release -p courier-broker --example journal_bench -- dir open
//! ```
//! `dir` (default: a temporary directory under /var/tmp) must be on the disk to measure.

use bytes::Bytes;
use courier_broker::storage::*;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Awaited `write 4 KiB + fdatasync` pairs per second, appending to one file.
fn raw_fsync_rate(dir: &Path) -> f64 {
    let path = dir.join("raw-fsync");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![7u8; 4096];
    let n = 2000;
    let start = Instant::now();
    for _ in 0..n {
        f.write_all(&block).unwrap();
        f.sync_data().unwrap();
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    std::fs::remove_file(path).unwrap();
    rate
}

/// Sequential write bandwidth in MB/s: 4 MiB writes, one `fdatasync` per 4 MiB (like a full
/// batch), 512 MiB in all.
fn raw_write_bandwidth(dir: &Path) -> f64 {
    let path = dir.join("raw-seq");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![9u8; 4 << 20];
    let total = 512u64 << 20;
    let start = Instant::now();
    let mut written = 0;
    while written < total {
        f.write_all(&chunk).unwrap();
        f.sync_data().unwrap();
        written += chunk.len() as u64;
    }
    let mbps = written as f64 / 1e6 / start.elapsed().as_secs_f64();
    std::fs::remove_file(path).unwrap();
    mbps
}

/// Sequential read bandwidth of the journal's files in MB/s (the replay baseline).
fn raw_read_bandwidth(dir: &Path) -> f64 {
    let start = Instant::now();
    let mut bytes = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "seg") {
            bytes += std::fs::read(p).unwrap().len();
        }
    }
    bytes as f64 / 1e6 / start.elapsed().as_secs_f64()
}

fn message(id: u64, size: usize) -> Record {
    Record::Send(StoredMessage {
        id,
        owners: vec![Owner::Queue("bench".into())],
        body: Bytes::from(vec![(id % 251) as u8; size]),
    })
}

/// Pipelined appends from `producers` tasks, each keeping `window` tickets outstanding.
/// Returns (records/s, MB/s of records, records per fdatasync).
async fn pipelined(dir: &Path, size: usize, total: u64, producers: u64) -> (f64, f64, f64) {
    let (j, _) = Journal::open(dir, JournalOptions::default()).unwrap();
    let j = Arc::new(j);
    let window = 4096;
    let per = total / producers;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..producers {
        let j = j.clone();
        tasks.push(tokio::spawn(async move {
            let mut tickets = std::collections::VecDeque::with_capacity(window);
            for i in 0..per {
                tickets.push_back(j.append(message(p * per + i + 1, size)).await.unwrap());
                if tickets.len() == window {
                    tickets.pop_front().unwrap().await.unwrap();
                }
            }
            for t in tickets {
                t.await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let stats = j.stats();
    let n = per * producers;
    (
        n as f64 / secs,
        stats.bytes as f64 / 1e6 / secs,
        n as f64 / stats.syncs as f64,
    )
}

/// One producer, each append awaited before the next. Returns records/s.
async fn awaited(dir: &Path, n: u64) -> f64 {
    let (j, _) = Journal::open(dir, JournalOptions::default()).unwrap();
    let start = Instant::now();
    for i in 0..n {
        j.append(message(i + 1, 1024)).await.unwrap().await.unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Fills a journal in `dir` with `bytes` of `size`-byte records. Returns the record count.
async fn fill(dir: &Path, size: usize, bytes: u64) -> u64 {
    let n = bytes / size as u64;
    let (j, _) = Journal::open(dir, JournalOptions::default()).unwrap();
    let mut last = None;
    for i in 0..n {
        let t = j.append(message(i + 1, size)).await.unwrap();
        last = Some(t);
        if i % 100_000 == 0 {
            last.take().unwrap().await.unwrap();
        }
    }
    if let Some(t) = last {
        t.await.unwrap();
    }
    n
}

/// CPU time this thread has used, in seconds (user and system).
fn thread_cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// Times the replay (open) of the journal in `dir`, which runs on the calling thread.
/// Returns (records, MB, records/s of wall time, records/s of the thread's CPU time): on a
/// machine loaded by other work the second is what the replay itself costs.
fn open_timed(dir: &Path) -> (u64, f64, f64, f64) {
    let start = Instant::now();
    let cpu = thread_cpu_secs();
    let (j, r) = Journal::open(dir, JournalOptions::default()).unwrap();
    let cpu = thread_cpu_secs() - cpu;
    let secs = start.elapsed().as_secs_f64();
    let n = r.report.records;
    assert_eq!(r.messages.len() as u64, n);
    let mb = r.report.bytes as f64 / 1e6;
    drop(j);
    (n, mb, n as f64 / secs, n as f64 / cpu)
}

/// Fills a journal with `bytes` of `size`-byte records, then times its replay.
/// Returns (records, MB, records/s, records per CPU second, raw read MB/s of the same files).
async fn replay(dir: &Path, size: usize, bytes: u64) -> (u64, f64, f64, f64, f64) {
    let n = fill(dir, size, bytes).await;
    let raw = raw_read_bandwidth(dir);
    let (replayed, mb, rps, cpu_rps) = open_timed(dir);
    assert_eq!(replayed, n);
    (n, mb, rps, cpu_rps, raw)
}

/// Lets the previous phase's dirty pages reach the disk before the next phase starts.
fn settle() {
    let _ = std::process::Command::new("sync").status();
}

fn fresh(base: &Path, name: &str) -> std::path::PathBuf {
    let d = base.join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::main]
async fn main() {
    let arg = std::env::args().nth(1);
    let tmp;
    let base: &Path = match &arg {
        Some(d) => Path::new(d),
        None => {
            tmp = tempfile::Builder::new()
                .prefix("journal-bench")
                .tempdir_in("/var/tmp")
                .unwrap();
            tmp.path()
        }
    };
    println!("journal bench in {}", base.display());
    // `journal_bench DIR replay [MiB]` (or `append`) runs that part only; `fill SIZE MiB`
    // and `open` fill `DIR/r` and time its replay separately, for profiling replay alone.
    let part = std::env::args().nth(2);
    let mib = |at: usize, default: u64| {
        std::env::args()
            .nth(at)
            .map_or(default, |a| a.parse::<u64>().expect("a number"))
    };
    match part.as_deref() {
        Some("append") => return appends(base).await,
        Some("fill") => {
            let size = mib(3, 100) as usize;
            let n = fill(&fresh(base, "r"), size, mib(4, 1024) << 20).await;
            return println!(
                "filled {} with {n} records of {size} B",
                base.join("r").display()
            );
        }
        Some("open") => {
            let (n, mb, rps, cpu_rps) = open_timed(&base.join("r"));
            return println!(
                "replay    {n} records ({mb:.0} MB): {rps:>10.0} records/s, {cpu_rps:.0} per CPU second"
            );
        }
        Some("replay") => {}
        _ => appends(base).await,
    }
    let replay_mib = if part.as_deref() == Some("replay") {
        mib(3, 1024)
    } else {
        1024
    };
    for size in [1024usize, 100] {
        settle();
        let (n, mb, rps, cpu_rps, raw) = replay(&fresh(base, "r"), size, replay_mib << 20).await;
        let mbps = rps * mb / n as f64;
        println!(
            "replay    {n} records of {size} B ({mb:.0} MB): {rps:>10.0} records/s ({cpu_rps:.0} per CPU second), {mbps:.0} MB/s = {:.2} of raw read ({raw:.0} MB/s, page cache warm)",
            mbps / raw
        );
    }
    let _ = std::fs::remove_dir_all(base.join("r"));
}

async fn appends(base: &Path) {
    let fsyncs = raw_fsync_rate(base);
    println!(
        "baseline  raw write+fdatasync      {:>10.0} /s  ({:.0} us each)",
        fsyncs,
        1e6 / fsyncs
    );
    let bandwidth = raw_write_bandwidth(base);
    println!(
        "baseline  raw sequential write     {bandwidth:>10.0} MB/s (4 MiB writes, fdatasync each)"
    );

    let one = awaited(&fresh(base, "a"), 2000).await;
    println!(
        "journal   awaited one at a time    {one:>10.0} /s  = {:.2} of the raw fdatasync rate",
        one / fsyncs
    );
    for (size, total) in [(100usize, 1_000_000u64), (1024, 1_000_000)] {
        settle();
        let (rate, mbps, per_sync) = pipelined(&fresh(base, "p"), size, total, 4).await;
        println!(
            "journal   pipelined {size:>5} B x4     {rate:>10.0} /s   {mbps:>6.0} MB/s = {:.2} of raw bandwidth, {per_sync:.0} records per fdatasync",
            mbps / bandwidth
        );
    }
}
