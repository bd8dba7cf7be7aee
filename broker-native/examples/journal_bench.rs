//! The journal against the disk it runs on, in one run: the disk's own `fdatasync` latency and
//! sequential write bandwidth first (the baseline), then the journal's pipelined appends
//! (100 B and 1 KiB records, many outstanding tickets), one-at-a-time awaited appends, and
//! replay of a journal of at least 256 MiB. Ratios are against the same run's baseline.
//!
//! ```text
//! cargo run --release -p courier-broker --example journal_bench -- [dir]
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

/// Fills a journal with `bytes` of `size`-byte records, then times its replay.
/// Returns (records, MB, records/s, MB/s, raw read MB/s of the same files).
async fn replay(dir: &Path, size: usize, bytes: u64) -> (u64, f64, f64, f64, f64) {
    let n = bytes / size as u64;
    {
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
    }
    let raw = raw_read_bandwidth(dir);
    let start = Instant::now();
    let (j, r) = Journal::open(dir, JournalOptions::default()).unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(r.messages.len() as u64, n);
    let mb = r.report.bytes as f64 / 1e6;
    drop(j);
    (n, mb, n as f64 / secs, mb / secs, raw)
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
    // `journal_bench DIR replay` (or `append`) runs that part only, for profiling.
    let part = std::env::args().nth(2);
    let only_replay = part.as_deref() == Some("replay");
    if part.as_deref() == Some("append") {
        return appends(base).await;
    }
    if !only_replay {
        appends(base).await;
    }
    for (size, bytes) in [(1024usize, 256u64 << 20), (100, 256 << 20)] {
        settle();
        let (n, mb, rps, mbps, raw) = replay(&fresh(base, "r"), size, bytes).await;
        println!(
            "replay    {n} records of {size} B ({mb:.0} MB): {rps:>10.0} records/s, {mbps:.0} MB/s = {:.2} of raw read ({raw:.0} MB/s, page cache warm)",
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
