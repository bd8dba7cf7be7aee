//! The flow driver of the raw-client baselines: the same schedules, stamps, delivery check,
//! latency histograms and stall watch as the api runner (`flow.rs`), with producers and
//! consumers that speak a broker's own client library instead of the Courier api.
//!
//! A raw client only has to move bodies: [`RawSender::publish`] one stamped body (pipelined
//! or awaited as it was opened), [`RawReceiver::next`] the next body and
//! [`RawReceiver::acknowledge`] it. Everything measured around that is this file's, shared by
//! every raw client, so their rows compare with the api runner's.

use async_trait::async_trait;
use bytes::Bytes;
use courier_api::Result;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::check::DeliveryLog;
use crate::flow::{watch, Progress};
use crate::latency::{Clock, LatencyKind, LatencyRecorder};
use crate::measurement::Measurement;
use crate::payload::Stamp;
use crate::schedule::{stamp_bounds, Schedule};
use crate::spec::{AckMode, FlowSpec};
use crate::task::{join_all, spawn_guarded, Abort, ConsumerOutcome, Tally};

/// A body as a raw consumer received it.
#[derive(Debug)]
pub(crate) struct RawDelivery {
    /// The body bytes.
    pub body: Vec<u8>,
    /// Whether the broker says the message is persistent, when it carries that at all.
    pub persistent: Option<bool>,
}

/// One producer of a raw client, on its own connection.
#[async_trait]
pub(crate) trait RawSender: Send {
    /// Publishes one body; with a send window it returns before the broker confirmed it, but
    /// never with more than the window unconfirmed.
    async fn publish(&mut self, body: Bytes) -> Result<()>;
    /// Waits for every publish to be confirmed, then closes the connection.
    async fn finish(&mut self) -> Result<()>;
}

/// One consumer of a raw client, on its own connection.
#[async_trait]
pub(crate) trait RawReceiver: Send {
    /// The next delivery (waits for one; cancel-safe enough to stop a finished run).
    async fn next(&mut self) -> Result<RawDelivery>;
    /// Acknowledges what `next` returned last, as the run's acknowledgement mode says.
    async fn acknowledge(&mut self) -> Result<()>;
    /// Whatever is already at hand after the run got all it expected: duplicates or strays.
    async fn leftovers(&mut self) -> Result<Vec<RawDelivery>>;
    /// Acknowledges anything still unacknowledged and closes the connection.
    async fn finish(&mut self) -> Result<()>;
}

/// Counts acknowledgements for the modes that acknowledge in batches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AckPolicy {
    every: u32,
    pending: u32,
}

/// Messages per acknowledgement in `DUPS_OK_ACKNOWLEDGE`: lazily, in batches.
const DUPS_OK_BATCH: u32 = 100;

impl AckPolicy {
    /// The policy of `mode`: every message for auto-ack, else every batch.
    pub fn new(mode: AckMode) -> Self {
        let every = match mode {
            AckMode::Auto => 1,
            AckMode::Client { batch } => batch.max(1),
            AckMode::DupsOk => DUPS_OK_BATCH,
        };
        AckPolicy { every, pending: 0 }
    }

    /// Counts one delivery; true when it is time to acknowledge what is pending.
    pub fn due(&mut self) -> bool {
        self.pending += 1;
        if self.pending >= self.every {
            self.pending = 0;
            return true;
        }
        false
    }

    /// True when acknowledgements are pending (for the end of a run); resets.
    pub fn take_pending(&mut self) -> bool {
        std::mem::take(&mut self.pending) > 0
    }
}

/// Runs a queue flow (`producers` → one queue → `consumers` competing) with the senders and
/// receivers a raw client opened. Receivers must already consume when this is called.
pub(crate) async fn run(
    spec: &FlowSpec,
    senders: Vec<Box<dyn RawSender>>,
    receivers: Vec<Box<dyn RawReceiver>>,
    clock: Clock,
) -> Result<Measurement> {
    let persistent = spec.delivery_mode == courier_api::DeliveryMode::Persistent;
    let producers = senders.len();
    let abort = Abort::new();
    let progress = Progress::new(abort.child_token());
    let start = Instant::now();
    let schedules: Vec<_> = (0..producers)
        .map(|p| Schedule::new(spec.limit, spec.rate, producers, p, start))
        .collect();
    let bounds = stamp_bounds(&schedules);
    if let Some(planned) = schedules
        .iter()
        .map(Schedule::planned)
        .collect::<Option<Vec<u64>>>()
    {
        progress.set_target(planned.iter().sum());
    }

    let consumer_tasks: Vec<_> = receivers
        .into_iter()
        .map(|mut receiver| {
            let (progress, abort_signal, bounds) =
                (progress.clone(), abort.clone(), bounds.clone());
            spawn_guarded(&abort, async move {
                let mut log = DeliveryLog::new(bounds);
                let mut latency = LatencyRecorder::new();
                let mut last_receive = None;
                loop {
                    let delivery = tokio::select! {
                        biased;
                        delivery = receiver.next() => delivery?,
                        () = progress.done.cancelled() => break,
                    };
                    let now = Instant::now();
                    if let Some(stamp) = observe(&mut log, &delivery, persistent) {
                        latency.record_ns(clock.ns_at(now).saturating_sub(stamp.sent_at_ns));
                    }
                    last_receive = Some(now);
                    receiver.acknowledge().await?;
                    if progress.record() {
                        break;
                    }
                    tokio::task::coop::consume_budget().await;
                }
                if !abort_signal.is_aborted() {
                    for delivery in receiver.leftovers().await? {
                        observe(&mut log, &delivery, persistent);
                    }
                }
                receiver.finish().await?;
                Ok(ConsumerOutcome {
                    group: 0,
                    log,
                    latency,
                    last_receive,
                })
            })
        })
        .collect();

    let producer_tasks: Vec<_> = senders
        .into_iter()
        .zip(schedules)
        .enumerate()
        .map(|(p, (mut sender, schedule))| {
            let (abort_signal, bounds) = (abort.clone(), bounds.clone());
            let size = spec.message_size;
            spawn_guarded(&abort, async move {
                let mut sent = 0;
                let mut last_send = start;
                while let Some(at) = schedule.next(sent).await {
                    if abort_signal.is_aborted() {
                        break;
                    }
                    bounds.announce(p as u32, sent);
                    let body = Stamp {
                        producer: p as u32,
                        sequence: sent,
                        sent_at_ns: clock.ns_at(at),
                    }
                    .payload(size);
                    sender.publish(body).await?;
                    sent += 1;
                    last_send = at;
                    tokio::task::coop::consume_budget().await;
                }
                sender.finish().await?;
                Ok((sent, last_send))
            })
        })
        .collect();

    let produced = join_all(producer_tasks).await;
    let stalled = Arc::new(AtomicBool::new(false));
    match &produced {
        Ok(produced) => progress.set_target(produced.iter().map(|(n, _)| n).sum()),
        Err(_) => abort.abort(),
    }
    let watchdog = tokio::spawn(watch(
        vec![progress.clone()],
        spec.stall_timeout,
        stalled.clone(),
    ));
    let received = join_all(consumer_tasks).await;
    watchdog.abort();
    let produced = produced?;
    let outcomes = received?;

    let sent: Vec<u64> = produced.iter().map(|(n, _)| *n).collect();
    let last_send = produced.iter().map(|(_, at)| *at).max().unwrap_or(start);
    let expectation = crate::check::Expectation::all(sent.clone());
    let tally = Tally::of(&outcomes, &[expectation]);
    Ok(Measurement {
        messages: tally.messages,
        elapsed: tally.last_receive.unwrap_or(start) - start,
        sent: sent.iter().sum(),
        send_elapsed: last_send - start,
        latency_kind: LatencyKind::SendToReceive,
        latency: tally.latency.summary(),
        check: tally.check,
        stalled: stalled.load(Ordering::SeqCst),
        memory: None,
    })
}

/// Records a delivery in `log`: its stamp, or malformed when the body is damaged or the
/// broker reports the wrong delivery mode.
fn observe(log: &mut DeliveryLog, delivery: &RawDelivery, persistent: bool) -> Option<Stamp> {
    let mode_ok = delivery.persistent.is_none_or(|p| p == persistent);
    match Stamp::of_body(&delivery.body).filter(|_| mode_ok) {
        Some(stamp) => {
            log.observe(stamp.producer, stamp.sequence);
            Some(stamp)
        }
        None => {
            log.observe_malformed();
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgement_batches() {
        let mut auto = AckPolicy::new(AckMode::Auto);
        assert!(auto.due() && auto.due());
        assert!(!auto.take_pending());
        let mut client = AckPolicy::new(AckMode::Client { batch: 3 });
        assert_eq!(
            [client.due(), client.due(), client.due(), client.due()],
            [false, false, true, false]
        );
        assert!(client.take_pending());
        assert!(!client.take_pending());
    }

    #[test]
    fn damaged_bodies_and_wrong_modes_are_malformed() {
        let bounds = crate::StampBounds::fixed(&[2]);
        let mut log = DeliveryLog::new(bounds);
        let body = |seq| {
            Stamp {
                producer: 0,
                sequence: seq,
                sent_at_ns: 0,
            }
            .payload(64)
            .to_vec()
        };
        let good = RawDelivery {
            body: body(0),
            persistent: Some(true),
        };
        assert!(observe(&mut log, &good, true).is_some());
        let wrong_mode = RawDelivery {
            body: body(1),
            persistent: Some(false),
        };
        assert!(observe(&mut log, &wrong_mode, true).is_none());
        let mut damaged = body(1);
        damaged[30] ^= 1;
        let damaged = RawDelivery {
            body: damaged,
            persistent: None,
        };
        assert!(observe(&mut log, &damaged, true).is_none());
        let report = crate::verify([&log], &crate::Expectation::all(vec![2]));
        assert_eq!((report.malformed, report.missing), (2, 1));
    }
}
