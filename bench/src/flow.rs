//! Flow workloads through the api: producers and consumers running together on a queue, on a
//! topic, or through a transacted forwarding stage.

use courier_api::{
    ConnectionFactory, Consumer, DeliveryMode, Destination, Producer, Result, SessionMode,
};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use super::bounds::StampBounds;
use super::check::{DeliveryLog, Expectation};
use super::endpoint::{drain_leftovers, unique_name, Endpoint};
use super::latency::{Clock, LatencyKind, LatencyRecorder};
use super::measurement::Measurement;
use super::payload::{key_selector, MessageMaker, Stamp};
use super::schedule::{stamp_bounds, Schedule};
use super::spec::{AckMode, FlowSpec, Topology};
use super::task::{join, join_all, spawn_guarded, Abort, ConsumerOutcome, Tally};

/// Which consumers share which messages.
///
/// On a queue, consumers with the same selector compete for the same messages and form one
/// group; on a topic every subscription is a group of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Groups {
    /// The key each group selects; `None` selects everything.
    pub keys: Vec<Option<u32>>,
    /// The group of each consumer.
    pub member_of: Vec<usize>,
    /// Distinct key values messages carry, if they carry keys.
    key_count: Option<u32>,
}

impl Groups {
    /// The groups of `topology` when messages carry `keys` distinct keys.
    pub fn plan(topology: &Topology, keys: Option<u32>) -> Self {
        let (_, consumers) = topology.participants();
        let key_of = |c: usize| keys.map(|k| (c as u64 % u64::from(k)) as u32);
        let mut groups = Groups {
            keys: Vec::new(),
            member_of: Vec::with_capacity(consumers),
            key_count: keys,
        };
        for c in 0..consumers {
            let key = key_of(c);
            let shared = match topology {
                Topology::Topic { .. } => None,
                Topology::Queue { .. } | Topology::Forward { .. } => {
                    groups.keys.iter().position(|k| *k == key)
                }
            };
            let group = shared.unwrap_or_else(|| {
                groups.keys.push(key);
                groups.keys.len() - 1
            });
            groups.member_of.push(group);
        }
        groups
    }

    /// What `group` should receive when producer `p` sent `sent[p]` messages.
    pub fn expectation(&self, group: usize, sent: &[u64]) -> Expectation {
        match (self.keys[group], self.key_count) {
            (Some(key), Some(keys)) => Expectation::keyed(sent.to_vec(), keys, [key]),
            _ => Expectation::all(sent.to_vec()),
        }
    }

    /// The expectations of every group.
    pub fn expectations(&self, sent: &[u64]) -> Vec<Expectation> {
        (0..self.keys.len())
            .map(|g| self.expectation(g, sent))
            .collect()
    }

    /// The selector of consumer `c`.
    pub fn selector(&self, c: usize) -> Option<String> {
        self.keys[self.member_of[c]].map(key_selector)
    }
}

/// How far a delivery group has got, and the signal that it is done.
#[derive(Debug)]
pub(crate) struct Progress {
    /// Receipts so far.
    pub received: AtomicU64,
    /// Receipts the group needs (`u64::MAX` until producers know what they sent).
    pub target: AtomicU64,
    /// Cancelled once the group has its target, or the run stops.
    pub done: CancellationToken,
}

impl Progress {
    /// A group with no receipts and no target yet.
    pub fn new(done: CancellationToken) -> Arc<Self> {
        Arc::new(Progress {
            received: AtomicU64::new(0),
            target: AtomicU64::new(u64::MAX),
            done,
        })
    }

    /// Counts a receipt; true (and `done` cancelled) once the group has its target.
    pub fn record(&self) -> bool {
        let received = self.received.fetch_add(1, Ordering::SeqCst) + 1;
        if received >= self.target.load(Ordering::SeqCst) {
            self.done.cancel();
            return true;
        }
        false
    }

    /// Sets how many receipts the group needs, once producers know what they sent.
    pub fn set_target(&self, target: u64) {
        self.target.store(target, Ordering::SeqCst);
        if self.received.load(Ordering::SeqCst) >= target {
            self.done.cancel();
        }
    }
}

/// What a producer did.
struct ProducerOutcome {
    sent: u64,
    last_send: Instant,
}

/// Runs a flow workload against `factory`.
pub(crate) async fn run(
    factory: &dyn ConnectionFactory,
    name: &str,
    spec: &FlowSpec,
    made: &mut Vec<Destination>,
) -> Result<Measurement> {
    let clock = Clock::start();
    let (producers, consumers) = spec.topology.participants();
    let (send_to, receive_from, forward_from) = match spec.topology {
        Topology::Queue { .. } => {
            let queue = Destination::queue(unique_name(name, "queue"));
            (queue.clone(), queue, None)
        }
        Topology::Topic { .. } => {
            let topic = Destination::topic(unique_name(name, "topic"));
            (topic.clone(), topic, None)
        }
        Topology::Forward { .. } => {
            let input = Destination::queue(unique_name(name, "in"));
            let output = Destination::queue(unique_name(name, "out"));
            (input.clone(), output, Some(input))
        }
    };
    made.push(send_to.clone());
    if send_to != receive_from {
        made.push(receive_from.clone());
    }
    let maker = Arc::new(MessageMaker::new(spec.message_size, spec.selector_keys)?);
    let groups = Groups::plan(&spec.topology, spec.selector_keys);
    let abort = Abort::new();
    let progress: Vec<_> = groups
        .keys
        .iter()
        .map(|_| Progress::new(abort.child_token()))
        .collect();

    // Consumers first, so that topic subscriptions exist before the first publish.
    let mut consumer_ends = Vec::with_capacity(consumers);
    for c in 0..consumers {
        let endpoint = Endpoint::open(factory, spec.ack.session_mode()).await?;
        let consumer = endpoint
            .consumer(&receive_from, groups.selector(c), spec.prefetch)
            .await?;
        consumer_ends.push((endpoint, consumer));
    }
    let mut forwarder = None;
    if let (Some(input), Topology::Forward { commit_every, .. }) = (&forward_from, spec.topology) {
        let endpoint = Endpoint::open(factory, SessionMode::Transacted).await?;
        let consumer = endpoint.consumer(input, None, spec.prefetch).await?;
        let producer = endpoint.producer(&receive_from, spec.delivery_mode).await?;
        forwarder = Some(Forwarder {
            endpoint,
            consumer,
            producer,
            commit_every,
            progress: Progress::new(abort.child_token()),
        });
    }
    let producer_mode = if spec.send_batch.is_some() {
        SessionMode::Transacted
    } else {
        SessionMode::AutoAcknowledge
    };
    let mut producer_ends = Vec::with_capacity(producers);
    for _ in 0..producers {
        let endpoint = Endpoint::open(factory, producer_mode).await?;
        let producer = endpoint.producer(&send_to, spec.delivery_mode).await?;
        producer_ends.push((endpoint, producer));
    }

    let start = Instant::now();
    let schedules: Vec<_> = (0..producers)
        .map(|p| Schedule::new(spec.limit, spec.rate, producers, p, start))
        .collect();
    let bounds = stamp_bounds(&schedules);
    let forward_progress = forwarder.as_ref().map(|f| f.progress.clone());
    if let Some(planned) = schedules
        .iter()
        .map(Schedule::planned)
        .collect::<Option<Vec<u64>>>()
    {
        set_targets(&groups, &progress, forward_progress.as_deref(), &planned);
    }

    let consumer_tasks: Vec<_> = consumer_ends
        .into_iter()
        .enumerate()
        .map(|(c, (endpoint, consumer))| {
            let group = groups.member_of[c];
            let receiver = Receiver {
                endpoint,
                consumer,
                ack: spec.ack,
                progress: progress[group].clone(),
                abort: abort.clone(),
                clock,
                group,
                bounds: bounds.clone(),
                delivery_mode: spec.delivery_mode,
            };
            spawn_guarded(&abort, receiver.run())
        })
        .collect();
    let forward_task = forwarder.map(|f| spawn_guarded(&abort, f.run()));
    let producer_tasks: Vec<_> = producer_ends
        .into_iter()
        .zip(schedules)
        .enumerate()
        .map(|(p, ((endpoint, producer), schedule))| {
            let sender = Sender {
                endpoint,
                producer,
                index: p as u32,
                schedule,
                maker: maker.clone(),
                send_batch: spec.send_batch,
                send_window: spec.send_window,
                clock,
                abort: abort.clone(),
                bounds: bounds.clone(),
            };
            spawn_guarded(&abort, sender.run())
        })
        .collect();

    let produced = join_all(producer_tasks).await;
    let stalled = Arc::new(AtomicBool::new(false));
    let mut watched: Vec<_> = progress.clone();
    if let Ok(produced) = &produced {
        let sent: Vec<u64> = produced.iter().map(|o| o.sent).collect();
        set_targets(&groups, &progress, forward_progress.as_deref(), &sent);
    } else {
        abort.abort();
    }
    watched.extend(forward_progress.iter().cloned());
    let watchdog = tokio::spawn(watch(watched, spec.stall_timeout, stalled.clone()));
    let received = join_all(consumer_tasks).await;
    let forwarded = match forward_task {
        Some(task) => join(task).await,
        None => Ok(()),
    };
    watchdog.abort();
    let produced = produced?;
    let outcomes = received?;
    forwarded?;

    let sent: Vec<u64> = produced.iter().map(|o| o.sent).collect();
    let last_send = produced.iter().map(|o| o.last_send).max().unwrap_or(start);
    let tally = Tally::of(&outcomes, &groups.expectations(&sent));
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

fn set_targets(
    groups: &Groups,
    progress: &[Arc<Progress>],
    forward: Option<&Progress>,
    sent: &[u64],
) {
    for (group, expected) in groups.expectations(sent).iter().enumerate() {
        progress[group].set_target(expected.count());
    }
    if let Some(forward) = forward {
        forward.set_target(sent.iter().sum());
    }
}

/// Stops every group once none has received anything for `stall_timeout`.
pub(crate) async fn watch(
    groups: Vec<Arc<Progress>>,
    stall_timeout: Duration,
    stalled: Arc<AtomicBool>,
) {
    let tick = (stall_timeout / 10).clamp(Duration::from_millis(1), Duration::from_millis(100));
    let received = || -> u64 {
        groups
            .iter()
            .map(|g| g.received.load(Ordering::Relaxed))
            .sum()
    };
    let mut last = received();
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(tick).await;
        if groups.iter().all(|g| g.done.is_cancelled()) {
            return;
        }
        let now = received();
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= stall_timeout {
            stalled.store(true, Ordering::SeqCst);
            for group in &groups {
                group.done.cancel();
            }
            return;
        }
    }
}

/// A producer and its send loop.
struct Sender {
    endpoint: Endpoint,
    producer: Box<dyn Producer>,
    index: u32,
    schedule: Schedule,
    maker: Arc<MessageMaker>,
    send_batch: Option<u32>,
    /// Pipelined: at most this many unresolved receipts.
    send_window: Option<usize>,
    clock: Clock,
    abort: Abort,
    /// Where it announces its sequences before sending them.
    bounds: StampBounds,
}

impl Sender {
    async fn run(self) -> Result<ProducerOutcome> {
        let mut sent = 0;
        let mut in_transaction = 0;
        let mut last_send = Instant::now();
        let mut receipts = VecDeque::new();
        while let Some(at) = self.schedule.next(sent).await {
            if self.abort.is_aborted() {
                break;
            }
            self.bounds.announce(self.index, sent);
            let mut message = self.maker.make(Stamp {
                producer: self.index,
                sequence: sent,
                sent_at_ns: self.clock.ns_at(at),
            });
            match self.send_window {
                None => self.producer.send(&mut message).await?,
                Some(window) => {
                    receipts.push_back(self.producer.send_async(message).await?);
                    if receipts.len() > window {
                        if let Some(oldest) = receipts.pop_front() {
                            oldest.await?;
                        }
                    }
                }
            }
            sent += 1;
            last_send = at;
            if let Some(batch) = self.send_batch {
                in_transaction += 1;
                if in_transaction == batch {
                    self.endpoint.session.commit().await?;
                    in_transaction = 0;
                }
            }
            tokio::task::coop::consume_budget().await;
        }
        if in_transaction > 0 {
            self.endpoint.session.commit().await?;
        }
        // Every pipelined send must have succeeded, in order.
        for receipt in receipts {
            receipt.await?;
        }
        self.producer.flush().await?;
        self.endpoint.close().await?;
        Ok(ProducerOutcome { sent, last_send })
    }
}

/// A final consumer and its receive loop.
struct Receiver {
    endpoint: Endpoint,
    consumer: Box<dyn Consumer>,
    ack: AckMode,
    progress: Arc<Progress>,
    abort: Abort,
    clock: Clock,
    group: usize,
    /// The stamps the run's producers can send.
    bounds: StampBounds,
    /// The delivery mode every message must arrive with.
    delivery_mode: DeliveryMode,
}

impl Receiver {
    async fn run(self) -> Result<ConsumerOutcome> {
        let mut log = DeliveryLog::new(self.bounds.clone())
            .expecting_headers(self.consumer.destination().clone(), self.delivery_mode);
        let mut latency = LatencyRecorder::new();
        let mut last_receive = None;
        let mut unacknowledged = 0;
        loop {
            let received = tokio::select! {
                biased;
                received = self.consumer.receive() => received?,
                () = self.progress.done.cancelled() => break,
            };
            let Some(message) = received else { break };
            let now = Instant::now();
            if let Some(stamp) = log.observe_message(&message) {
                latency.record_ns(self.clock.ns_at(now).saturating_sub(stamp.sent_at_ns));
            }
            last_receive = Some(now);
            if let AckMode::Client { batch } = self.ack {
                unacknowledged += 1;
                if unacknowledged == batch {
                    self.endpoint.session.acknowledge().await?;
                    unacknowledged = 0;
                }
            }
            if self.progress.record() {
                break;
            }
            tokio::task::coop::consume_budget().await;
        }
        if !self.abort.is_aborted() {
            drain_leftovers(self.consumer.as_ref(), &mut log).await?;
        }
        if matches!(self.ack, AckMode::Client { .. }) {
            self.endpoint.session.acknowledge().await?;
        }
        self.endpoint.close().await?;
        Ok(ConsumerOutcome {
            group: self.group,
            log,
            latency,
            last_receive,
        })
    }
}

/// The forwarding stage: receives, sends the received message on, and commits every
/// `commit_every` messages, in one transacted session.
struct Forwarder {
    endpoint: Endpoint,
    consumer: Box<dyn Consumer>,
    producer: Box<dyn Producer>,
    commit_every: u32,
    progress: Arc<Progress>,
}

impl Forwarder {
    async fn run(self) -> Result<()> {
        let mut in_transaction = 0;
        loop {
            let received = tokio::select! {
                biased;
                received = self.consumer.receive() => received?,
                () = self.progress.done.cancelled() => break,
            };
            let Some(mut message) = received else { break };
            self.producer.send(&mut message).await?;
            in_transaction += 1;
            if in_transaction == self.commit_every {
                self.endpoint.session.commit().await?;
                in_transaction = 0;
            }
            if self.progress.record() {
                break;
            }
            tokio::task::coop::consume_budget().await;
        }
        if in_transaction > 0 {
            self.endpoint.session.commit().await?;
        }
        self.endpoint.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_group_by_selector_and_topics_by_subscription() {
        let queue = Groups::plan(
            &Topology::Queue {
                producers: 1,
                consumers: 4,
            },
            None,
        );
        assert_eq!((queue.keys.len(), queue.member_of), (1, vec![0; 4]));
        let keyed = Groups::plan(
            &Topology::Queue {
                producers: 1,
                consumers: 5,
            },
            Some(2),
        );
        assert_eq!(keyed.member_of, vec![0, 1, 0, 1, 0]);
        assert_eq!(keyed.selector(3).as_deref(), Some("key = 'k1'"));
        assert_eq!(keyed.expectation(1, &[10]).count(), 5);
        let topic = Groups::plan(
            &Topology::Topic {
                producers: 1,
                subscriptions: 3,
            },
            None,
        );
        assert_eq!(topic.member_of, vec![0, 1, 2]);
        assert_eq!(topic.expectations(&[7, 3])[2].count(), 10);
    }
}
