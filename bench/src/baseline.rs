//! The in-process ceiling: every workload again, over raw `tokio::sync::mpsc` channels carrying
//! the same [`Message`] values, in the same process and run.
//!
//! A channel is no broker, so each scenario maps onto channels the way an ideal broker would
//! behave: a queue's competing consumers get one channel each and producers deal messages out
//! round-robin (per key, when consumers select keys); a topic's subscriptions get one channel
//! each and a copy of every message they select; a forwarding stage is a task between two
//! channels; a deep queue with selectors is one channel per key — a perfect index. Channels
//! have no acknowledgements or transactions, so those cost nothing here. Channels are
//! unbounded, like the broker's queues.

use courier_api::{Error, Message, Result};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::bounds::StampBounds;
use super::check::{verify, DeliveryLog, Expectation};
use super::deep_queue::{consumer_key, expectation as deep_expectation};
use super::flow::Groups;
use super::latency::{Clock, LatencyKind, LatencyRecorder};
use super::measurement::{Measurement, MemoryFigure};
use super::memory::settled_resident_bytes;
use super::payload::{key_of, MessageMaker, Stamp};
use super::schedule::{stamp_bounds, Schedule};
use super::spec::{DeepQueueSpec, FlowSpec, MemorySpec, Scenario, Topology};
use super::task::{join, join_all, spawn_guarded, Abort, ConsumerOutcome, Tally};

/// Runs `scenario` over raw channels.
pub(crate) async fn run(scenario: &Scenario) -> Result<Measurement> {
    match scenario {
        Scenario::Flow(spec) => flow(spec).await,
        Scenario::DeepQueue(spec) => deep_queue(spec).await,
        Scenario::Memory(spec) => memory(spec).await,
    }
}

fn closed() -> Error {
    Error::illegal_state("a raw channel closed early (its receiver failed)")
}

/// Where a message goes: which consumer channels, as a broker would choose.
struct Router {
    senders: Vec<UnboundedSender<Message>>,
    topic: bool,
    keys: Option<u32>,
    /// Key (or 0 without keys) → consumers of the queue group selecting it.
    members: Vec<Vec<usize>>,
    /// Consumer → key it selects, `None` for all.
    selects: Vec<Option<u32>>,
}

impl Router {
    fn new(
        senders: Vec<UnboundedSender<Message>>,
        groups: &Groups,
        topic: bool,
        keys: Option<u32>,
    ) -> Self {
        let selects: Vec<Option<u32>> = groups.member_of.iter().map(|&g| groups.keys[g]).collect();
        let mut members = vec![Vec::new(); keys.unwrap_or(1) as usize];
        for (c, key) in selects.iter().enumerate() {
            members[key.unwrap_or(0) as usize].push(c);
        }
        Router {
            senders,
            topic,
            keys,
            members,
            selects,
        }
    }

    /// Everything to one channel.
    fn single(sender: UnboundedSender<Message>) -> Self {
        Router {
            senders: vec![sender],
            topic: false,
            keys: None,
            members: vec![vec![0]],
            selects: vec![None],
        }
    }

    fn send(&self, producer: u32, sequence: u64, message: Message) -> Result<()> {
        let key = self.keys.map(|k| key_of(sequence, k));
        if self.topic {
            for (c, selects) in self.selects.iter().enumerate() {
                if selects.is_none() || *selects == key {
                    self.senders[c]
                        .send(message.clone())
                        .map_err(|_| closed())?;
                }
            }
            return Ok(());
        }
        let members = &self.members[key.unwrap_or(0) as usize];
        if members.is_empty() {
            // Nobody selects this key: on a queue it would stay there.
            return Ok(());
        }
        let turn = sequence / u64::from(self.keys.unwrap_or(1)) + u64::from(producer);
        let c = members[(turn % members.len() as u64) as usize];
        self.senders[c].send(message).map_err(|_| closed())
    }
}

fn channels(
    n: usize,
) -> (
    Vec<UnboundedSender<Message>>,
    Vec<UnboundedReceiver<Message>>,
) {
    (0..n).map(|_| unbounded_channel()).unzip()
}

async fn flow(spec: &FlowSpec) -> Result<Measurement> {
    let clock = Clock::start();
    let (producers, consumers) = spec.topology.participants();
    let groups = Groups::plan(&spec.topology, spec.selector_keys);
    let maker = Arc::new(MessageMaker::new(spec.message_size, spec.selector_keys)?);
    let abort = Abort::new();
    let (final_senders, final_receivers) = channels(consumers);
    let topic = matches!(spec.topology, Topology::Topic { .. });
    let final_router = Router::new(final_senders, &groups, topic, spec.selector_keys);

    let start = Instant::now();
    let schedules: Vec<_> = (0..producers)
        .map(|p| Schedule::new(spec.limit, spec.rate, producers, p, start))
        .collect();
    let bounds = stamp_bounds(&schedules);
    let consumer_tasks: Vec<_> = final_receivers
        .into_iter()
        .enumerate()
        .map(|(c, receiver)| {
            let log = DeliveryLog::new(bounds.clone());
            spawn_guarded(&abort, receive(receiver, log, groups.member_of[c], clock))
        })
        .collect();
    let (entry, forward_task) = match spec.topology {
        Topology::Forward { .. } => {
            let (sender, mut receiver) = unbounded_channel::<Message>();
            let task = spawn_guarded(&abort, async move {
                // The forwarder hands each message on in arrival order, so the final router sees
                // each producer's messages in order and may deal them out by sequence.
                while let Some(message) = receiver.recv().await {
                    let stamp = Stamp::of(&message).unwrap_or(Stamp {
                        producer: u32::MAX,
                        sequence: 0,
                        sent_at_ns: 0,
                    });
                    final_router.send(stamp.producer, stamp.sequence, message)?;
                }
                Ok(())
            });
            let entry = Router::single(sender);
            (Arc::new(entry), Some(task))
        }
        Topology::Queue { .. } | Topology::Topic { .. } => (Arc::new(final_router), None),
    };
    let producer_tasks: Vec<_> = schedules
        .into_iter()
        .enumerate()
        .map(|(p, schedule)| {
            let (entry, maker, abort_signal) = (entry.clone(), maker.clone(), abort.clone());
            let bounds = bounds.clone();
            spawn_guarded(&abort, async move {
                let mut sent = 0;
                let mut last_send = start;
                while let Some(at) = schedule.next(sent).await {
                    if abort_signal.is_aborted() {
                        break;
                    }
                    bounds.announce(p as u32, sent);
                    let message = maker.make(Stamp {
                        producer: p as u32,
                        sequence: sent,
                        sent_at_ns: clock.ns_at(at),
                    });
                    entry.send(p as u32, sent, message)?;
                    sent += 1;
                    last_send = at;
                    tokio::task::coop::consume_budget().await;
                }
                Ok((sent, last_send))
            })
        })
        .collect();
    drop(entry);
    let produced = join_all(producer_tasks).await;
    let forwarded = match forward_task {
        Some(task) => join(task).await,
        None => Ok(()),
    };
    let received = join_all(consumer_tasks).await;
    let produced = produced?;
    forwarded?;
    let outcomes = received?;

    let sent: Vec<u64> = produced.iter().map(|(n, _)| *n).collect();
    let last_send = produced.iter().map(|(_, at)| *at).max().unwrap_or(start);
    let tally = Tally::of(&outcomes, &groups.expectations(&sent));
    Ok(Measurement {
        messages: tally.messages,
        elapsed: tally.last_receive.unwrap_or(start) - start,
        sent: sent.iter().sum(),
        send_elapsed: last_send - start,
        latency_kind: LatencyKind::SendToReceive,
        latency: tally.latency.summary(),
        check: tally.check,
        stalled: false,
        memory: None,
    })
}

/// A final consumer: receives into `log` until every sender is gone.
async fn receive(
    mut receiver: UnboundedReceiver<Message>,
    mut log: DeliveryLog,
    group: usize,
    clock: Clock,
) -> Result<ConsumerOutcome> {
    let mut latency = LatencyRecorder::new();
    let mut last_receive = None;
    while let Some(message) = receiver.recv().await {
        let now = Instant::now();
        if let Some(stamp) = log.observe_message(&message) {
            latency.record_ns(clock.ns_at(now).saturating_sub(stamp.sent_at_ns));
        }
        last_receive = Some(now);
    }
    Ok(ConsumerOutcome {
        group,
        log,
        latency,
        last_receive,
    })
}

async fn deep_queue(spec: &DeepQueueSpec) -> Result<Measurement> {
    let clock = Clock::start();
    let maker = MessageMaker::new(spec.message_size, Some(spec.keys))?;
    let (senders, receivers) = channels(spec.keys as usize);
    let filling = Instant::now();
    for sequence in 0..spec.depth {
        let message = maker.make(Stamp {
            producer: 0,
            sequence,
            sent_at_ns: clock.now_ns(),
        });
        senders[key_of(sequence, spec.keys) as usize]
            .send(message)
            .map_err(|_| closed())?;
    }
    let fill_time = filling.elapsed();
    drop(senders);

    let mut receivers: Vec<Option<UnboundedReceiver<Message>>> =
        receivers.into_iter().map(Some).collect();
    let abort = Abort::new();
    let start = Instant::now();
    let tasks: Vec<_> = (0..spec.consumers)
        .map(|c| {
            let key = consumer_key(c, spec.consumers, spec.keys) as usize;
            let mut receiver = receivers[key]
                .take()
                .expect("consumers of a deep queue select distinct keys");
            let wanted = deep_expectation(spec, c).count();
            let mut log = DeliveryLog::new(StampBounds::fixed(&[spec.depth]));
            spawn_guarded(&abort, async move {
                let mut latency = LatencyRecorder::new();
                let mut last_receive = None;
                for _ in 0..wanted {
                    let asked = Instant::now();
                    let Some(message) = receiver.recv().await else {
                        break;
                    };
                    let now = Instant::now();
                    latency.record_ns(u64::try_from((now - asked).as_nanos()).unwrap_or(u64::MAX));
                    log.observe_message(&message);
                    last_receive = Some(now);
                }
                while let Ok(message) = receiver.try_recv() {
                    log.observe_message(&message);
                }
                Ok(ConsumerOutcome {
                    group: c,
                    log,
                    latency,
                    last_receive,
                })
            })
        })
        .collect();
    let outcomes = join_all(tasks).await?;
    let expectations: Vec<_> = (0..spec.consumers)
        .map(|c| deep_expectation(spec, c))
        .collect();
    let tally = Tally::of(&outcomes, &expectations);
    Ok(Measurement {
        messages: tally.messages,
        elapsed: tally.last_receive.unwrap_or(start) - start,
        sent: spec.depth,
        send_elapsed: fill_time,
        latency_kind: LatencyKind::ReceiveCall,
        latency: tally.latency.summary(),
        check: tally.check,
        stalled: false,
        memory: None,
    })
}

async fn memory(spec: &MemorySpec) -> Result<Measurement> {
    let clock = Clock::start();
    let maker = MessageMaker::new(spec.message_size, None)?;
    let (sender, mut receiver) = unbounded_channel();
    let rss_before = settled_resident_bytes()?;
    let filling = Instant::now();
    for sequence in 0..spec.depth {
        let message = maker.make(Stamp {
            producer: 0,
            sequence,
            sent_at_ns: clock.now_ns(),
        });
        sender.send(message).map_err(|_| closed())?;
    }
    let fill_time = filling.elapsed();
    let rss_after = settled_resident_bytes()?;
    drop(sender);
    let mut log = DeliveryLog::new(StampBounds::fixed(&[spec.depth]));
    while let Some(message) = receiver.recv().await {
        log.observe_message(&message);
    }
    Ok(Measurement {
        messages: spec.depth,
        elapsed: fill_time,
        sent: spec.depth,
        send_elapsed: fill_time,
        latency_kind: LatencyKind::None,
        latency: None,
        check: verify([&log], &Expectation::all(vec![spec.depth])),
        stalled: false,
        memory: Some(MemoryFigure {
            queued: spec.depth,
            rss_before,
            rss_after,
            source: crate::MemorySource::ProcessResident,
        }),
    })
}
