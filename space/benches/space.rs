//! Tuple-space figures on the embedded broker: write + take throughput, and the time of a
//! `take` by template as the space grows.
//!
//! `cargo bench -p courier-space` (add `-- quick` for a shorter run). Prints a table; the
//! README's tuple-space section quotes it.
//!
//! `cargo bench -p courier-space -- criterion [group]` runs the criterion benchmarks instead
//! (all, or the groups whose name contains `group`): a read or take repeated with one
//! template holding a long `one_of` list, and a transaction taking back its own writes.

use courier_api::{Connection, ConnectionFactory, Result};
use courier_broker::EmbeddedFactory;
use courier_space::{Space, Template, FOREVER};
use criterion::{BenchmarkId, Criterion};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A task entry, about the size of a typical coordination tuple.
#[derive(Serialize, Deserialize)]
struct Task {
    id: u64,
    kind: String,
    size: u32,
}

/// An entry with a key, for templated takes.
#[derive(Serialize, Deserialize)]
struct Keyed {
    key: String,
    seq: u64,
    payload: String,
}

/// Distinct keys in the templated-take measurement.
const KEYS: u64 = 1_000;

async fn fresh_space(name: &str) -> Result<(Arc<dyn Connection>, Space)> {
    let factory = EmbeddedFactory::default();
    let connection: Arc<dyn Connection> = factory.create_connection().await?.into();
    let space = Space::open(&connection, name).await?;
    Ok((connection, space))
}

fn task(id: u64) -> Task {
    Task {
        id,
        kind: "resize".into(),
        size: 640,
    }
}

/// One task alternately writes an entry and takes it back.
async fn write_take_sequential(pairs: u64) -> Result<f64> {
    let (connection, space) = fresh_space("bench-seq").await?;
    let any = Template::<Task>::any()?;
    let started = Instant::now();
    for id in 0..pairs {
        space.write(&task(id), FOREVER).await?;
        let taken = space.take_if_exists(&any).await?;
        assert!(taken.is_some_and(|t| t.id == id));
    }
    let ops = 2.0 * pairs as f64 / started.elapsed().as_secs_f64();
    connection.close().await?;
    Ok(ops)
}

/// `writers` tasks write `entries` entries between them while `takers` tasks take them.
async fn write_take_concurrent(entries: u64, writers: u64, takers: u64) -> Result<f64> {
    let (connection, space) = fresh_space("bench-conc").await?;
    let started = Instant::now();
    let mut handles = Vec::new();
    for w in 0..writers {
        let space = space.clone();
        handles.push(tokio::spawn(async move {
            for id in (w..entries).step_by(writers as usize) {
                space.write(&task(id), FOREVER).await?;
            }
            Ok::<u64, courier_api::Error>(0)
        }));
    }
    let share = entries / takers;
    for t in 0..takers {
        let space = space.clone();
        let quota = if t == takers - 1 {
            entries - share * (takers - 1)
        } else {
            share
        };
        handles.push(tokio::spawn(async move {
            let any = Template::<Task>::any()?;
            for _ in 0..quota {
                let taken = space.take(&any, Duration::from_secs(10)).await?;
                assert!(taken.is_some(), "a take timed out");
            }
            Ok(quota)
        }));
    }
    let mut taken = 0;
    for h in handles {
        taken += h.await.expect("bench task panicked")?;
    }
    assert_eq!(taken, entries);
    let ops = 2.0 * entries as f64 / started.elapsed().as_secs_f64();
    connection.close().await?;
    Ok(ops)
}

/// How the keys of a space's entries are laid out in write order.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// Key `i % 1000`: every key recurs every 1 000 entries.
    Interleaved,
    /// Key `i / (n / 1000)`: each key's entries are written together, so the entries of
    /// the last keys sit behind almost the whole space.
    Clustered,
}

/// A small deterministic generator, so runs are comparable.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

struct Timings {
    /// The first sample: for a take, it includes the broker building its index.
    first: Duration,
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

fn timings(mut samples: Vec<Duration>) -> Timings {
    let first = samples[0];
    samples.sort_unstable();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    Timings {
        first,
        p50: at(0.5),
        p99: at(0.99),
        mean: samples.iter().sum::<Duration>() / samples.len() as u32,
    }
}

/// Fills a space with `entries` keyed entries, then times `samples` takes, then `samples`
/// reads, each by the template of a random key (a new template, so a new consumer or
/// browser, each time).
async fn templated_take(
    entries: u64,
    layout: Layout,
    samples: usize,
) -> Result<(Timings, Timings)> {
    let (connection, space) = fresh_space("bench-keyed").await?;
    let per_key = (entries / KEYS).max(1);
    for seq in 0..entries {
        let key = match layout {
            Layout::Interleaved => seq % KEYS,
            Layout::Clustered => seq / per_key,
        };
        let entry = Keyed {
            key: format!("k{key}"),
            seq,
            payload: "x".repeat(32),
        };
        space.write(&entry, FOREVER).await?;
    }
    let mut rng = Lcg(42);
    let mut takes = Vec::with_capacity(samples);
    for _ in 0..samples {
        let template = Template::<Keyed>::builder()
            .eq("key", format!("k{}", rng.below(KEYS)))
            .build()?;
        let started = Instant::now();
        let taken = space.take_if_exists(&template).await?;
        takes.push(started.elapsed());
        assert!(
            taken.is_some() || layout_runs_dry(entries),
            "every key has entries"
        );
    }
    let mut reads = Vec::with_capacity(samples);
    for _ in 0..samples {
        let template = Template::<Keyed>::builder()
            .eq("key", format!("k{}", rng.below(KEYS)))
            .build()?;
        let started = Instant::now();
        space.read_if_exists(&template).await?;
        reads.push(started.elapsed());
    }
    connection.close().await?;
    Ok((timings(takes), timings(reads)))
}

/// Fills a space with `entries` tasks and times cancelling `samples` of their leases.
async fn lease_cancel(entries: u64, samples: usize) -> Result<Timings> {
    let (connection, space) = fresh_space("bench-lease").await?;
    let mut leases = Vec::new();
    let every = (entries / samples as u64).max(1);
    for id in 0..entries {
        let lease = space.write(&task(id), FOREVER).await?;
        if id % every == 0 {
            leases.push(lease);
        }
    }
    let mut times = Vec::with_capacity(leases.len());
    for lease in leases {
        let started = Instant::now();
        assert!(lease.cancel().await?, "the entry was there");
        times.push(started.elapsed());
    }
    connection.close().await?;
    Ok(timings(times))
}

/// With one entry per key, random takes find some keys already taken.
fn layout_runs_dry(entries: u64) -> bool {
    entries <= KEYS
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// Entries in the space of the `one_of` benchmarks.
const LISTED_ENTRIES: u64 = 100;

/// A template over `key` listing `values` keys, one of which (`k7`) is in the space.
fn long_one_of(values: usize) -> Result<Template<Keyed>> {
    let listed = std::iter::once("k7".to_owned()).chain((1..values).map(|i| format!("absent-{i}")));
    Template::<Keyed>::builder().one_of("key", listed).build()
}

/// Reads and takes repeated with one template listing many values (issue 12.9): the work a
/// template does once must not be redone per operation.
fn one_of_templates(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    let (connection, space) = runtime
        .block_on(async {
            let (connection, space) = fresh_space("bench-one-of").await?;
            for seq in 0..LISTED_ENTRIES {
                let entry = Keyed {
                    key: format!("k{seq}"),
                    seq,
                    payload: "x".repeat(32),
                };
                space.write(&entry, FOREVER).await?;
            }
            Ok::<_, courier_api::Error>((connection, space))
        })
        .expect("a space with entries");
    let mut group = c.benchmark_group("one_of");
    group.sample_size(10);
    for values in [1_000, 20_000] {
        let template = long_one_of(values).expect("a valid template");
        group.bench_with_input(
            BenchmarkId::new("read_if_exists", values),
            &template,
            |b, template| {
                b.iter(|| {
                    let read = runtime.block_on(space.read_if_exists(template));
                    assert!(read.expect("a read").is_some_and(|e| e.key == "k7"));
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("take_if_exists_and_write_back", values),
            &template,
            |b, template| {
                b.iter(|| {
                    runtime
                        .block_on(async {
                            let taken = space.take_if_exists(template).await?.expect("k7 is there");
                            space.write(&taken, FOREVER).await?;
                            Ok::<_, courier_api::Error>(())
                        })
                        .expect("a take and a write")
                })
            },
        );
    }
    group.finish();
    runtime
        .block_on(connection.close())
        .expect("the connection closes");
}

/// A transaction writes `writes` entries and takes them all back with one `take_many`: the
/// take must cost in proportion to the writes, not their square.
fn transaction_own_writes(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    let (connection, space) = runtime
        .block_on(fresh_space("bench-own-writes"))
        .expect("a space");
    let any = Template::<Task>::any().expect("a valid template");
    let mut group = c.benchmark_group("transaction_own_writes");
    group.sample_size(10);
    for writes in [2_000_u64, 16_000] {
        group.bench_with_input(
            BenchmarkId::new("write_then_take_many", writes),
            &writes,
            |b, &writes| {
                b.iter(|| {
                    runtime
                        .block_on(async {
                            let mut tx = space.transaction().await?;
                            for id in 0..writes {
                                tx.write(&task(id), FOREVER).await?;
                            }
                            let taken = tx.take_many(&any, usize::MAX, Duration::ZERO).await?;
                            assert_eq!(taken.len() as u64, writes);
                            tx.abort().await
                        })
                        .expect("a transaction")
                })
            },
        );
    }
    group.finish();
    runtime
        .block_on(connection.close())
        .expect("the connection closes");
}

fn main() -> Result<()> {
    if std::env::args().any(|a| a == "criterion") {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let mut criterion = Criterion::default();
        let only = std::env::args().skip_while(|a| a != "criterion").nth(1);
        let wanted = |group: &str| only.as_deref().is_none_or(|o| group.contains(o));
        if wanted("one_of") {
            one_of_templates(&mut criterion, &runtime);
        }
        if wanted("transaction_own_writes") {
            transaction_own_writes(&mut criterion, &runtime);
        }
        criterion.final_summary();
        return Ok(());
    }
    let quick = std::env::args().any(|a| a == "quick");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let pairs = if quick { 20_000 } else { 100_000 };
        let entries = if quick { 40_000 } else { 200_000 };
        let samples = if quick { 200 } else { 1_000 };
        println!(
            "courier-space on the embedded broker ({} cores)",
            num_cpus()
        );
        println!();
        println!("write + take throughput (each write and each take is one operation)");
        let seq = write_take_sequential(pairs).await?;
        println!("  1 task, write then take, {pairs} pairs: {seq:>10.0} ops/s");
        let conc = write_take_concurrent(entries, 4, 4).await?;
        println!("  4 writers + 4 takers, {entries} entries: {conc:>10.0} ops/s");
        println!();
        println!("take / read by template `key = 'k…'` (random key of {KEYS}), {samples} samples");
        println!(
            "  {:>8} {:>12} | {:>10} {:>10} {:>10} {:>10} | {:>10} {:>10}",
            "entries",
            "layout",
            "1st take",
            "take p50",
            "take p99",
            "take mean",
            "read p50",
            "read p99"
        );
        for size in [1_000, 10_000, 100_000] {
            for layout in [Layout::Interleaved, Layout::Clustered] {
                let (take, read) = templated_take(size, layout, samples).await?;
                println!(
                    "  {size:>8} {:>12} | {:>10} {:>10} {:>10} {:>10} | {:>10} {:>10}",
                    format!("{layout:?}").to_lowercase(),
                    micros(take.first),
                    micros(take.p50),
                    micros(take.p99),
                    micros(take.mean),
                    micros(read.p50),
                    micros(read.p99),
                );
            }
        }
        println!();
        println!("lease cancel (takes the entry by its id property)");
        for size in [1_000, 10_000, 100_000] {
            let t = lease_cancel(size, 100).await?;
            println!(
                "  {size:>8} entries: p50 {}, p99 {}, mean {}",
                micros(t.p50),
                micros(t.p99),
                micros(t.mean)
            );
        }
        Ok(())
    })
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
