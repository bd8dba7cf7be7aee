//! Running a workload: against a backend, against the raw-channel ceiling, or both.

use courier_api::{ConnectionFactory, Destination, Error, Result, SessionMode};

use super::measurement::Measurement;
use super::memory::MemoryGauge;
use super::report::Report;
use super::spec::{Scenario, Workload};
use super::{baseline, deep_queue, flow, memory};

/// Runs `workload` against the backend behind `factory`.
///
/// Every participant opens its own connection and session; destinations get names no other
/// run uses. The run fails with the backend's error if an operation fails; a delivery that
/// breaks exactly-once or order is not an error but is reported in
/// [`Measurement::check`](crate::Measurement::check). The memory workload wants a
/// fresh backend, as [`measure`] gives it.
///
/// Afterwards the run's destinations are deleted, with whatever they still hold, when the
/// backend can delete destinations ([`courier_api::Capabilities::delete_destinations`]), so
/// benchmarks leave nothing behind on a shared broker (topics only where the backend deletes
/// them: elsewhere a run's topic holds nothing once its non-durable subscriptions are gone).
/// A failed deletion fails a run that succeeded; after a failed run the run's own error is
/// reported.
///
/// Must be called within a multi-threaded tokio runtime: participants are tokio tasks.
pub async fn run(factory: &dyn ConnectionFactory, workload: &Workload) -> Result<Measurement> {
    run_gauged(factory, workload, &MemoryGauge::ThisProcess).await
}

/// Opens the backend at `url` (for `embedded:`, a new broker) and runs `workload` on it,
/// reading the memory workload's figures from the broker itself ([`MemoryGauge::for_url`]):
/// this process for `embedded:`, the server for a remote broker.
///
/// ```no_run
/// # #[tokio::main]
/// # async fn main() -> courier::Result<()> {
/// let workload = courier_bench::find("memory-1m-100b").expect("a standard workload");
/// let measured = courier_bench::run_at("courier://admin:secret@127.0.0.1:7672", &workload).await?;
/// println!("{:?}", measured.memory);
/// # Ok(()) }
/// ```
pub async fn run_at(url: &str, workload: &Workload) -> Result<Measurement> {
    let gauge = match workload.scenario {
        Scenario::Memory(_) => MemoryGauge::for_url(url)?,
        _ => MemoryGauge::ThisProcess,
    };
    let factory = courier::connect(url).await?;
    run_gauged(factory.as_ref(), workload, &gauge).await
}

/// [`run`], reading the memory workload's figures with `gauge`.
async fn run_gauged(
    factory: &dyn ConnectionFactory,
    workload: &Workload,
    gauge: &MemoryGauge,
) -> Result<Measurement> {
    workload.validate()?;
    let mut made = Vec::new();
    let measured = match &workload.scenario {
        Scenario::Flow(spec) => flow::run(factory, &workload.name, spec, &mut made).await,
        Scenario::DeepQueue(spec) => {
            deep_queue::run(factory, &workload.name, spec, &mut made).await
        }
        Scenario::Memory(spec) => {
            memory::run(factory, gauge, &workload.name, spec, &mut made).await
        }
    };
    let deleted = delete_all(factory, &made).await;
    let measured = measured?;
    deleted?;
    Ok(measured)
}

/// Deletes the destinations a run made, when the backend can; one it no longer has (never
/// made at the broker, or auto-deleted) is no error.
async fn delete_all(factory: &dyn ConnectionFactory, made: &[Destination]) -> Result<()> {
    if made.is_empty() || !factory.capabilities().delete_destinations {
        return Ok(());
    }
    let connection = factory.create_connection().await?;
    if !connection.capabilities().delete_destinations {
        return connection.close().await;
    }
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let topics = connection.capabilities().delete_topics;
    let mut outcome = Ok(());
    // A backend that cannot delete topics (RabbitMQ) keeps nothing of a run's topic: the
    // bench's subscriptions are non-durable and went with their connections.
    for destination in made.iter().filter(|d| topics || !d.is_topic()) {
        match session.delete_destination(destination).await {
            Ok(()) | Err(Error::InvalidDestination { .. }) => {}
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    let closed = connection.close().await;
    outcome.and(closed)
}

/// Runs `workload` over raw `tokio::sync::mpsc` channels carrying the same messages: the
/// in-process ceiling a backend is compared with.
pub async fn run_ceiling(workload: &Workload) -> Result<Measurement> {
    workload.validate()?;
    baseline::run(&workload.scenario).await
}

/// Runs `workload` against a fresh backend opened from `url` (for `embedded:`, a new broker),
/// then over raw channels, and reports both.
///
/// ```no_run
/// # #[tokio::main]
/// # async fn main() -> courier::Result<()> {
/// let workload = courier_bench::find("queue-1x1-100b-auto").expect("a standard workload");
/// let report = courier_bench::measure("embedded:", &workload).await?;
/// println!("{}", courier_bench::Table(&[report]));
/// # Ok(()) }
/// ```
pub async fn measure(url: &str, workload: &Workload) -> Result<Report> {
    measure_repeated(url, workload, 1).await
}

/// Like [`measure`], but runs the backend and the ceiling `runs` times each (each backend run
/// on a fresh backend) and reports the run with the median throughput of each side — unless a
/// run failed its delivery check: then that run is reported, so a failure is never averaged
/// away.
pub async fn measure_repeated(url: &str, workload: &Workload, runs: usize) -> Result<Report> {
    let mut measured = Vec::with_capacity(runs.max(1));
    let mut ceiling = Vec::with_capacity(runs.max(1));
    for _ in 0..runs.max(1) {
        measured.push(run_at(url, workload).await?);
        ceiling.push(run_ceiling(workload).await?);
    }
    Ok(Report {
        workload: workload.name.clone(),
        url: url.to_owned(),
        measured: representative(measured),
        ceiling: Some(representative(ceiling)),
    })
}

/// The first failed run if there is one, else the run of median throughput.
fn representative(mut runs: Vec<Measurement>) -> Measurement {
    if let Some(failed) = runs.iter().position(|m| !m.check.passed() || m.stalled) {
        return runs.swap_remove(failed);
    }
    runs.sort_by(|a, b| a.msgs_per_sec().total_cmp(&b.msgs_per_sec()));
    runs.swap_remove(runs.len() / 2)
}
