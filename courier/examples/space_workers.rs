//! A bag of tasks on a tuple space: a master writes tasks, workers take them and write
//! results, and the master takes the results — the classic Linda / JavaSpaces pattern, with
//! nobody addressing anybody.
//!
//! Phase 1 measures throughput: the master writes every task as fast as it can while it
//! collects results. Phase 2 measures latency: one task at a time, the master waits for the
//! result of exactly that task with a template.
//!
//! `cargo run --release --example space_workers [-- TASKS WORKERS]` (default 20000 tasks,
//! 4 workers).

use courier::space::{Space, Template, FOREVER};
use courier::{Connection, Result};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a worker should do.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
enum Order {
    Work,
    Stop,
}

/// A task: compute the Collatz sequence length of `n`.
#[derive(Serialize, Deserialize, Debug)]
struct Task {
    id: u64,
    order: Order,
    n: u64,
    /// When the master wrote it, in microseconds since the run started.
    written_us: u64,
}

/// A worker's result for task `task`.
#[derive(Serialize, Deserialize, Debug)]
struct Done {
    task: u64,
    worker: u32,
    steps: u32,
    written_us: u64,
}

fn collatz_steps(mut n: u64) -> u32 {
    let mut steps = 0;
    while n > 1 {
        n = if n & 1 == 0 { n / 2 } else { 3 * n + 1 };
        steps += 1;
    }
    steps
}

/// Takes tasks until told to stop; returns how many it did.
async fn worker(space: Space, worker: u32) -> Result<u64> {
    let tasks = Template::<Task>::any()?;
    let mut done = 0;
    while let Some(task) = space.take(&tasks, FOREVER).await? {
        if task.order == Order::Stop {
            break;
        }
        let result = Done {
            task: task.id,
            worker,
            steps: collatz_steps(task.n),
            written_us: task.written_us,
        };
        space.write(&result, FOREVER).await?;
        done += 1;
    }
    Ok(done)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(mut latencies: Vec<Duration>) -> String {
    latencies.sort_unstable();
    format!(
        "p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.90),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    )
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let tasks: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let workers: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    let round_trips = 1_000.min(tasks);

    let factory = courier::connect("embedded:").await?;
    let connection: Arc<dyn Connection> = factory.create_connection().await?.into();
    let space = Space::open(&connection, "workers").await?;
    println!("space_workers: {tasks} tasks, {workers} workers, embedded broker");

    let pool: Vec<_> = (0..workers)
        .map(|w| tokio::spawn(worker(space.clone(), w)))
        .collect();

    // Phase 1: throughput. One task writes, the master collects.
    let started = Instant::now();
    let writer = {
        let space = space.clone();
        tokio::spawn(async move {
            for id in 0..tasks {
                let task = Task {
                    id,
                    order: Order::Work,
                    n: 1_000_000 + id,
                    written_us: started.elapsed().as_micros() as u64,
                };
                space.write(&task, FOREVER).await?;
            }
            Ok::<_, courier::Error>(started.elapsed())
        })
    };
    let results = Template::<Done>::any()?;
    let mut latencies = Vec::with_capacity(tasks as usize);
    let mut per_worker = vec![0_u64; workers as usize];
    let mut steps = 0_u64;
    while (latencies.len() as u64) < tasks {
        for done in space.take_many(&results, 1_000, FOREVER).await? {
            let now = started.elapsed().as_micros() as u64;
            latencies.push(Duration::from_micros(now.saturating_sub(done.written_us)));
            per_worker[done.worker as usize] += 1;
            steps += u64::from(done.steps);
        }
    }
    let elapsed = started.elapsed();
    let wrote = writer.await.expect("the writer panicked")?;
    println!("phase 1 — throughput");
    println!("  wrote {tasks} tasks in {wrote:.2?}");
    println!(
        "  took all {tasks} results after {elapsed:.2?}: {:.0} tasks/s, {:.0} space operations/s \
         (write, take, write result, take result)",
        tasks as f64 / elapsed.as_secs_f64(),
        4.0 * tasks as f64 / elapsed.as_secs_f64()
    );
    println!("  task written → result taken: {}", summary(latencies));
    println!("  tasks per worker: {per_worker:?} (Collatz steps in total: {steps})");

    // Phase 2: latency, one task at a time; the master waits for that task's result.
    let mut round_trip = Vec::with_capacity(round_trips as usize);
    for i in 0..round_trips {
        let id = tasks + i;
        let this_result = Template::<Done>::builder().eq("task", id).build()?;
        let sent = Instant::now();
        let task = Task {
            id,
            order: Order::Work,
            n: 27,
            written_us: 0,
        };
        space.write(&task, FOREVER).await?;
        let done = space.take(&this_result, Duration::from_secs(10)).await?;
        assert!(done.is_some_and(|d| d.task == id), "result of task {id}");
        round_trip.push(sent.elapsed());
    }
    println!("phase 2 — latency, {round_trips} tasks one at a time");
    println!("  write task → take its result: {}", summary(round_trip));

    for _ in 0..workers {
        let stop = Task {
            id: u64::MAX,
            order: Order::Stop,
            n: 0,
            written_us: 0,
        };
        space.write(&stop, FOREVER).await?;
    }
    let mut total = 0;
    for w in pool {
        total += w.await.expect("a worker panicked")?;
    }
    println!("done: the workers did {total} tasks; the space is empty again");
    connection.close().await
}
