//! Selectors on a deep queue, through the api: fill a queue, then let consumers with
//! `key = 'k…'` selectors take their own messages from it.

use courier_api::{ConnectionFactory, Consumer, Destination, Result, SessionMode};
use std::time::{Duration, Instant};

use super::bounds::StampBounds;
use super::check::{DeliveryLog, Expectation};
use super::endpoint::{drain_leftovers, fill, unique_name, Endpoint};
use super::latency::{Clock, LatencyKind, LatencyRecorder};
use super::measurement::Measurement;
use super::payload::{key_selector, MessageMaker};
use super::spec::DeepQueueSpec;
use super::task::{join_all, spawn_guarded, Abort, ConsumerOutcome, Tally};

/// The key consumer `c` of `consumers` selects: spread evenly over the `keys` values.
pub(crate) fn consumer_key(c: usize, consumers: usize, keys: u32) -> u32 {
    (c as u64 * u64::from(keys) / consumers.max(1) as u64) as u32
}

/// What consumer `c` should receive: every message of its key.
pub(crate) fn expectation(spec: &DeepQueueSpec, c: usize) -> Expectation {
    Expectation::keyed(
        vec![spec.depth],
        spec.keys,
        [consumer_key(c, spec.consumers, spec.keys)],
    )
}

/// Runs a deep-queue selector workload against `factory`.
pub(crate) async fn run(
    factory: &dyn ConnectionFactory,
    name: &str,
    spec: &DeepQueueSpec,
    made: &mut Vec<Destination>,
) -> Result<Measurement> {
    let clock = Clock::start();
    let queue = Destination::queue(unique_name(name, "queue"));
    made.push(queue.clone());
    let maker = MessageMaker::new(spec.message_size, Some(spec.keys))?;
    let fill_time = fill(
        factory,
        &queue,
        spec.depth,
        &maker,
        spec.delivery_mode,
        clock,
    )
    .await?;

    let mut ends = Vec::with_capacity(spec.consumers);
    for c in 0..spec.consumers {
        let endpoint = Endpoint::open(factory, SessionMode::AutoAcknowledge).await?;
        let selector = key_selector(consumer_key(c, spec.consumers, spec.keys));
        let consumer = endpoint.consumer(&queue, Some(selector), None).await?;
        ends.push((endpoint, consumer));
    }
    let abort = Abort::new();
    let start = Instant::now();
    let tasks: Vec<_> = ends
        .into_iter()
        .enumerate()
        .map(|(c, (endpoint, consumer))| {
            let wanted = expectation(spec, c).count();
            let log = DeliveryLog::new(StampBounds::fixed(&[spec.depth]))
                .expecting_headers(consumer.destination().clone(), spec.delivery_mode);
            spawn_guarded(
                &abort,
                take_own(
                    endpoint,
                    consumer,
                    c,
                    wanted,
                    log,
                    spec.stall_timeout,
                    abort.clone(),
                ),
            )
        })
        .collect();
    let outcomes = join_all(tasks).await?;
    let stalled = outcomes.iter().any(|(_, stalled)| *stalled);
    let outcomes: Vec<ConsumerOutcome> = outcomes.into_iter().map(|(o, _)| o).collect();
    let expectations: Vec<_> = (0..spec.consumers).map(|c| expectation(spec, c)).collect();
    let tally = Tally::of(&outcomes, &expectations);
    Ok(Measurement {
        messages: tally.messages,
        elapsed: tally.last_receive.unwrap_or(start) - start,
        sent: spec.depth,
        send_elapsed: fill_time,
        latency_kind: LatencyKind::ReceiveCall,
        latency: tally.latency.summary(),
        check: tally.check,
        stalled,
        memory: None,
    })
}

/// Receives `wanted` messages into `log`, timing each receive call; then checks nothing else is
/// there.
async fn take_own(
    endpoint: Endpoint,
    consumer: Box<dyn Consumer>,
    group: usize,
    wanted: u64,
    mut log: DeliveryLog,
    stall_timeout: Duration,
    abort: Abort,
) -> Result<(ConsumerOutcome, bool)> {
    let mut latency = LatencyRecorder::new();
    let mut last_receive = None;
    let mut stalled = false;
    for _ in 0..wanted {
        if abort.is_aborted() {
            break;
        }
        let asked = Instant::now();
        let Some(message) = consumer.receive_timeout(stall_timeout).await? else {
            stalled = true;
            break;
        };
        let now = Instant::now();
        latency.record_ns(u64::try_from((now - asked).as_nanos()).unwrap_or(u64::MAX));
        log.observe_message(&message);
        last_receive = Some(now);
    }
    if !abort.is_aborted() {
        drain_leftovers(consumer.as_ref(), &mut log).await?;
    }
    endpoint.close().await?;
    let outcome = ConsumerOutcome {
        group,
        log,
        latency,
        last_receive,
    };
    Ok((outcome, stalled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumers_spread_over_the_keys() {
        let keys: Vec<u32> = (0..4).map(|c| consumer_key(c, 4, 1_000)).collect();
        assert_eq!(keys, [0, 250, 500, 750]);
        assert_eq!(consumer_key(0, 1, 1), 0);
    }
}
