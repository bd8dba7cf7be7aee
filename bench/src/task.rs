//! Participants as tokio tasks: spawning them so one failure stops the rest, joining them, and
//! adding up what the consumers saw.

use courier_api::{Error, Result};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::check::{verify, CheckReport, DeliveryLog, Expectation};
use super::latency::LatencyRecorder;

/// What one consumer saw.
#[derive(Debug)]
pub(crate) struct ConsumerOutcome {
    /// Its delivery group.
    pub group: usize,
    /// What it received.
    pub log: DeliveryLog,
    /// Its latencies.
    pub latency: LatencyRecorder,
    /// When it received its last expected message.
    pub last_receive: Option<Instant>,
}

/// Stops every participant of a run once one fails. Checking it is one atomic load, cheap
/// enough for every message; [`Abort::child_token`] gives tokens to wait on.
#[derive(Debug, Clone, Default)]
pub(crate) struct Abort {
    inner: Arc<AbortInner>,
}

#[derive(Debug, Default)]
struct AbortInner {
    aborted: AtomicBool,
    token: CancellationToken,
}

impl Abort {
    /// A run that has not been aborted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Aborts the run.
    pub fn abort(&self) {
        self.inner.aborted.store(true, Ordering::Release);
        self.inner.token.cancel();
    }

    /// True once the run was aborted.
    pub fn is_aborted(&self) -> bool {
        self.inner.aborted.load(Ordering::Acquire)
    }

    /// A token cancelled when the run is aborted (and cancellable on its own).
    pub fn child_token(&self) -> CancellationToken {
        self.inner.token.child_token()
    }
}

/// Spawns a participant; if it fails, the run is aborted so the others stop too.
pub(crate) fn spawn_guarded<T, F>(abort: &Abort, participant: F) -> JoinHandle<Result<T>>
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    let abort = abort.clone();
    tokio::spawn(async move {
        let result = participant.await;
        if result.is_err() {
            abort.abort();
        }
        result
    })
}

/// Waits for a participant; a panic in it is resumed here.
pub(crate) async fn join<T>(task: JoinHandle<Result<T>>) -> Result<T> {
    match task.await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(Error::illegal_state(format!(
            "a workload task was cancelled: {e}"
        ))),
    }
}

/// Waits for every participant; returns their results, or the first error once all ended.
pub(crate) async fn join_all<T>(tasks: Vec<JoinHandle<Result<T>>>) -> Result<Vec<T>> {
    let mut results = Vec::with_capacity(tasks.len());
    let mut failure = None;
    for task in tasks {
        match join(task).await {
            Ok(value) => results.push(value),
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(results),
    }
}

/// The consumers' outcomes added up.
#[derive(Debug)]
pub(crate) struct Tally {
    /// Messages received.
    pub messages: u64,
    /// All latencies.
    pub latency: LatencyRecorder,
    /// The check of every delivery group, combined.
    pub check: CheckReport,
    /// The last receipt of any consumer.
    pub last_receive: Option<Instant>,
}

impl Tally {
    /// Checks each delivery group's consumers against `expectations[group]` and adds up.
    pub fn of(outcomes: &[ConsumerOutcome], expectations: &[Expectation]) -> Self {
        let mut latency = LatencyRecorder::new();
        let mut check = CheckReport::default();
        for outcome in outcomes {
            latency.merge(&outcome.latency);
        }
        for (group, expected) in expectations.iter().enumerate() {
            let logs = outcomes.iter().filter(|o| o.group == group).map(|o| &o.log);
            check.combine(verify(logs, expected));
        }
        Tally {
            messages: outcomes.iter().map(|o| o.log.received()).sum(),
            latency,
            check,
            last_receive: outcomes.iter().filter_map(|o| o.last_receive).max(),
        }
    }
}
