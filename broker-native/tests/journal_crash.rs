//! Durability by SIGKILL: a child process (this test binary, re-run as `crash_child`) appends
//! from several producers with tickets, removes and recounts messages (so segments die and get
//! compacted in the background), and prints what was confirmed; the parent kills it at random
//! moments — mid-batch, mid-compaction — and after every restart checks that every confirmed
//! record is there, nothing replayed is damaged, and each producer's messages are in order.
//!
//! A few cycles run by default; `COURIER_CRASH_CYCLES=20` runs the long version.

use bytes::Bytes;
use courier_broker::storage::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PRODUCERS: u64 = 4;

fn options() -> JournalOptions {
    JournalOptions {
        segment_size: 16 << 10,
        ..JournalOptions::default()
    }
}

fn id(cycle: u64, producer: u64, seq: u64) -> u64 {
    (cycle << 40) | (producer << 32) | seq
}

fn body(id: u64) -> Bytes {
    let len = 50 + (id % 7) as usize * 40;
    Bytes::from(
        (0..len)
            .map(|i| (id.wrapping_mul(31).wrapping_add(i as u64) % 251) as u8)
            .collect::<Vec<_>>(),
    )
}

fn out(line: String) {
    let mut o = std::io::stdout().lock();
    // Marked: libtest's own "test crash_child ... " may start the same line.
    let _ = writeln!(o, "@{line}");
    let _ = o.flush();
}

/// The child: runs until killed.
#[test]
#[ignore = "the crash test's child process, started by `confirmed_records_survive_sigkill`"]
fn crash_child() {
    let Ok(dir) = std::env::var("COURIER_CRASH_DIR") else {
        return;
    };
    let cycle: u64 = std::env::var("COURIER_CRASH_CYCLE")
        .unwrap()
        .parse()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let (j, recovered) = Journal::open(&dir, options()).unwrap();
        let j = Arc::new(j);
        // Keep every third survivor of earlier runs; remove the rest (concurrently with new
        // sends, so old segments die and get compacted while the child may be killed).
        let old: Vec<(Owner, u64)> = recovered
            .messages
            .iter()
            .map(|m| (m.owner.clone(), m.id))
            .collect();
        let remover = {
            let j = j.clone();
            tokio::spawn(async move {
                for (i, (owner, id)) in old.into_iter().enumerate() {
                    if i % 3 != 0 {
                        out(format!("X {id}"));
                        let remove = Record::Remove { owner, id };
                        if j.append(remove).await.unwrap().await.is_ok() {
                            out(format!("R {id}"));
                        }
                    }
                }
            })
        };
        let stats = {
            let j = j.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let s = j.stats();
                    out(format!("S {} {}", s.compactions, s.segments_deleted));
                }
            })
        };
        let mut tasks = vec![remover, stats];
        for p in 0..PRODUCERS {
            let j = j.clone();
            tasks.push(tokio::spawn(async move {
                let mut window = std::collections::VecDeque::new();
                for seq in 1.. {
                    let id = id(cycle, p, seq);
                    out(format!("A {id}"));
                    let t = j
                        .append(Record::Send(StoredMessage {
                            id,
                            owners: vec![Owner::Queue(format!("q{p}").into())],
                            body: body(id),
                        }))
                        .await
                        .unwrap();
                    window.push_back((id, t));
                    // Pipelined: up to 8 outstanding tickets per producer.
                    if window.len() >= 8 {
                        let (id, t) = window.pop_front().unwrap();
                        t.await.unwrap();
                        out(format!("C {id}"));
                        // Most messages are consumed soon; some get a delivery count first.
                        if id % 5 == 0 {
                            let owner = Owner::Queue(format!("q{p}").into());
                            j.append(Record::DeliveryCount {
                                owner,
                                id,
                                count: 1,
                            })
                            .await
                            .unwrap()
                            .await
                            .unwrap();
                            out(format!("D {id} 1"));
                        } else if id % 5 != 1 {
                            out(format!("X {id}"));
                            let owner = Owner::Queue(format!("q{p}").into());
                            j.append(Record::Remove { owner, id })
                                .await
                                .unwrap()
                                .await
                                .unwrap();
                            out(format!("R {id}"));
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[derive(Default)]
struct Model {
    attempted: BTreeSet<u64>,
    confirmed: BTreeSet<u64>,
    removed: BTreeSet<u64>,
    /// Removals asked for (maybe done, maybe not).
    removing: BTreeSet<u64>,
    counts: BTreeMap<u64, u32>,
}

/// xorshift, seeded from the clock: kill moments differ from run to run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn check(dir: &Path, model: &mut Model, cycle: u64) {
    let (j, r) = Journal::open(dir, options()).unwrap_or_else(|e| panic!("cycle {cycle}: {e}"));
    assert!(r.report.skipped.is_empty(), "cycle {cycle}: {:?}", r.report);
    let mut last_seq: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    let present: BTreeSet<u64> = r.messages.iter().map(|m| m.id).collect();
    for m in &r.messages {
        assert!(
            model.attempted.contains(&m.id) && !model.removed.contains(&m.id),
            "cycle {cycle}: message {:#x} should not be there",
            m.id
        );
        assert_eq!(m.body.as_ref().unwrap(), &body(m.id), "cycle {cycle}");
        if let Some(c) = model.counts.get(&m.id) {
            assert!(
                m.delivery_count >= *c,
                "cycle {cycle}: count of {:#x}",
                m.id
            );
        }
        // Per producer (and run), arrival order holds.
        let key = (m.id >> 40, (m.id >> 32) & 0xff);
        let seq = m.id & 0xffff_ffff;
        let prev = last_seq.insert(key, seq).unwrap_or(0);
        assert!(seq > prev, "cycle {cycle}: {:#x} out of order", m.id);
    }
    for id in &model.confirmed {
        if !model.removing.contains(id) {
            assert!(
                present.contains(id),
                "cycle {cycle}: confirmed {id:#x} lost; replay report {:?}",
                r.report,
            );
        }
    }
    // What replay found is the truth from here on.
    model.attempted = present.clone();
    model.confirmed = present;
    model.removed.clear();
    model.removing.clear();
    model.counts.clear();
    j.close();
}

#[test]
fn confirmed_records_survive_sigkill() {
    let cycles: u64 = std::env::var("COURIER_CRASH_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(4);
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::default();
    let mut rng = Rng(Instant::now().elapsed().as_nanos() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
        | 1);
    let exe = std::env::current_exe().unwrap();
    // Sums of the child's periodic counters: enough to know maintenance ran under the kills.
    let (mut compactions, mut deleted) = (0u64, 0u64);
    for cycle in 1..=cycles {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("COURIER_CRASH_DIR", dir.path())
            .env("COURIER_CRASH_CYCLE", cycle.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(|l| l.ok())
                .collect::<Vec<String>>()
        });
        std::thread::sleep(Duration::from_millis(200 + rng.next() % 600));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        let mut confirmed_now = 0;
        for line in lines {
            let Some(at) = line.find('@') else { continue };
            let mut parts = line[at + 1..].split(' ');
            let (Some(tag), Some(id)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Ok(id) = id.parse::<u64>() else { continue };
            match tag {
                "A" => {
                    model.attempted.insert(id);
                }
                "C" => {
                    model.confirmed.insert(id);
                    confirmed_now += 1;
                }
                "X" => {
                    model.removing.insert(id);
                }
                "R" => {
                    model.removed.insert(id);
                }
                "S" => {
                    compactions += id;
                    if let Some(Ok(d)) = parts.next().map(str::parse::<u64>) {
                        deleted += d;
                    }
                }
                "D" => {
                    if let Some(Ok(c)) = parts.next().map(str::parse) {
                        model.counts.insert(id, c);
                    }
                }
                _ => {}
            }
        }
        assert!(
            confirmed_now > 0,
            "cycle {cycle}: the child confirmed nothing"
        );
        check(dir.path(), &mut model, cycle);
    }
    assert!(
        compactions + deleted > 0,
        "no compaction ({compactions}) or deletion ({deleted}) happened while being killed"
    );
}
