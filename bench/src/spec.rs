//! Describing a workload: what to send, to where, how it is consumed, and for how long.

use courier_api::{DeliveryMode, Error, Result, SessionMode};
use std::time::Duration;

use super::payload::Stamp;

/// A named workload.
///
/// ```
/// use courier_bench::{FlowSpec, Scenario, Topology, Workload};
/// let w = Workload::new(
///     "queue-2x2",
///     "a queue, two producers, two consumers",
///     Scenario::Flow(FlowSpec::new(Topology::Queue { producers: 2, consumers: 2 })),
/// );
/// assert!(w.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Short name, used on the command line and in reports.
    pub name: String,
    /// One line saying what it measures.
    pub description: String,
    /// What it does.
    pub scenario: Scenario,
}

impl Workload {
    /// A workload.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        scenario: Scenario,
    ) -> Self {
        Workload {
            name: name.into(),
            description: description.into(),
            scenario,
        }
    }

    /// Checks the settings; [`Error::InvalidArgument`] names the first one out of range.
    pub fn validate(&self) -> Result<()> {
        let check = |ok: bool, what: &str| {
            if ok {
                Ok(())
            } else {
                Err(Error::invalid_argument(format!(
                    "workload {:?}: {what}",
                    self.name
                )))
            }
        };
        let size = |size: usize| {
            check(
                size >= Stamp::LEN,
                &format!("messages must be at least {} bytes (the stamp)", Stamp::LEN),
            )
        };
        match &self.scenario {
            Scenario::Flow(flow) => {
                size(flow.message_size)?;
                let (producers, consumers) = flow.topology.participants();
                check(producers >= 1, "needs at least one producer")?;
                check(consumers >= 1, "needs at least one consumer")?;
                check(
                    producers <= u32::MAX as usize,
                    "has more producers than stamps can tell apart",
                )?;
                if let Topology::Forward { commit_every, .. } = flow.topology {
                    check(commit_every >= 1, "must commit every 1 or more messages")?;
                }
                if let AckMode::Client { batch } = flow.ack {
                    check(batch >= 1, "must acknowledge every 1 or more messages")?;
                }
                check(
                    flow.send_batch.is_none_or(|b| b >= 1),
                    "transactions must hold 1 or more sends",
                )?;
                check(
                    flow.send_window
                        .is_none_or(|w| (1..=MAX_SEND_WINDOW).contains(&w)),
                    "a send window must hold 1 to MAX_SEND_WINDOW sends",
                )?;
                check(flow.rate.is_none_or(|r| r >= 1), "rate must be positive")?;
                check(
                    flow.selector_keys.is_none_or(|k| k >= 1),
                    "needs at least one key",
                )?;
                match flow.limit {
                    Limit::Messages(n) => check(n >= 1, "must send at least one message"),
                    Limit::Duration(d) => check(!d.is_zero(), "must run for some time"),
                }
            }
            Scenario::DeepQueue(deep) => {
                size(deep.message_size)?;
                check(deep.keys >= 1, "needs at least one key")?;
                check(deep.consumers >= 1, "needs at least one consumer")?;
                check(
                    deep.consumers <= deep.keys as usize,
                    "needs a distinct key for each consumer",
                )?;
                check(deep.depth >= 1, "needs a queue depth of at least 1")
            }
            Scenario::Memory(memory) => {
                size(memory.message_size)?;
                check(memory.depth >= 1, "needs a queue depth of at least 1")
            }
        }
    }

    /// Applies command-line overrides; see [`Overrides`] for which scenario takes which.
    pub fn apply(&mut self, overrides: &Overrides) {
        match &mut self.scenario {
            Scenario::Flow(flow) => {
                if let Some(n) = overrides.messages {
                    flow.limit = Limit::Messages(n);
                }
                if let Some(d) = overrides.duration {
                    flow.limit = Limit::Duration(d);
                }
                if let Some(size) = overrides.size {
                    flow.message_size = size;
                }
                if let Some(rate) = overrides.rate {
                    flow.rate = Some(rate);
                }
                if let Some(prefetch) = overrides.prefetch {
                    flow.prefetch = Some(prefetch);
                }
            }
            Scenario::DeepQueue(deep) => {
                if let Some(size) = overrides.size {
                    deep.message_size = size;
                }
            }
            Scenario::Memory(memory) => {
                if let Some(size) = overrides.size {
                    memory.message_size = size;
                }
            }
        }
    }
}

/// Settings given on the command line that replace a workload's own.
///
/// `messages`, `duration` and `rate` apply to [`Scenario::Flow`] workloads only: the depth of a
/// deep-queue or memory workload is what it measures. `size` applies to all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Messages to send ([`Limit::Messages`]).
    pub messages: Option<u64>,
    /// Time to send for ([`Limit::Duration`]); wins over `messages`.
    pub duration: Option<Duration>,
    /// Message size in bytes.
    pub size: Option<usize>,
    /// Fixed total send rate in messages per second.
    pub rate: Option<u64>,
    /// The consumers' prefetch in flow workloads.
    pub prefetch: Option<u32>,
}

/// What a workload does.
#[derive(Debug, Clone, PartialEq)]
pub enum Scenario {
    /// Producers and consumers run at the same time.
    Flow(FlowSpec),
    /// A queue is filled first, then consumers with selectors take their own messages.
    DeepQueue(DeepQueueSpec),
    /// A queue is filled on a fresh backend and the process's resident memory is read.
    Memory(MemorySpec),
}

/// Who sends and who receives in a [`Scenario::Flow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// Producers send to one queue; consumers compete for its messages.
    Queue {
        /// Producers, each on its own connection and session.
        producers: usize,
        /// Consumers, each on its own connection and session.
        consumers: usize,
    },
    /// Producers publish to one topic; every subscription (one consumer each) gets every
    /// message. Throughput counts delivered messages.
    Topic {
        /// Publishers.
        producers: usize,
        /// Non-durable subscriptions.
        subscriptions: usize,
    },
    /// Producers send to an input queue; one forwarding stage receives, sends to an output
    /// queue and commits in a transacted session; consumers take from the output queue.
    Forward {
        /// Producers on the input queue.
        producers: usize,
        /// Consumers on the output queue.
        consumers: usize,
        /// Messages forwarded per commit.
        commit_every: u32,
    },
}

impl Topology {
    /// Producers and final consumers.
    pub fn participants(&self) -> (usize, usize) {
        match *self {
            Topology::Queue {
                producers,
                consumers,
            }
            | Topology::Forward {
                producers,
                consumers,
                ..
            } => (producers, consumers),
            Topology::Topic {
                producers,
                subscriptions,
            } => (producers, subscriptions),
        }
    }
}

/// How consumers acknowledge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// `AUTO_ACKNOWLEDGE`.
    Auto,
    /// `CLIENT_ACKNOWLEDGE`, acknowledging every `batch` messages (and the rest at the end).
    Client {
        /// Messages per acknowledgement.
        batch: u32,
    },
    /// `DUPS_OK_ACKNOWLEDGE`.
    DupsOk,
}

impl AckMode {
    /// The session mode consumers use.
    pub fn session_mode(self) -> SessionMode {
        match self {
            AckMode::Auto => SessionMode::AutoAcknowledge,
            AckMode::Client { .. } => SessionMode::ClientAcknowledge,
            AckMode::DupsOk => SessionMode::DupsOkAcknowledge,
        }
    }
}

/// When producers stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// After this many messages in total, shared evenly by the producers.
    Messages(u64),
    /// After this long.
    Duration(Duration),
}

/// The largest [`FlowSpec::send_window`]: the receipts a producer keeps are bounded memory.
pub const MAX_SEND_WINDOW: usize = 1 << 20;

/// A [`Scenario::Flow`]: producers and consumers running together.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowSpec {
    /// Who sends, who receives.
    pub topology: Topology,
    /// Body size in bytes, stamp included.
    pub message_size: usize,
    /// When producers stop.
    pub limit: Limit,
    /// Persistent or not.
    pub delivery_mode: DeliveryMode,
    /// How the final consumers acknowledge.
    pub ack: AckMode,
    /// Producers send in transacted sessions, committing every this many sends.
    pub send_batch: Option<u32>,
    /// Producers pipeline their sends with `Producer::send_async`, keeping at most this many
    /// receipts unresolved (each one's outcome is checked, in order); `None` awaits every
    /// `send`. At most [`MAX_SEND_WINDOW`].
    pub send_window: Option<usize>,
    /// Fixed total send rate in messages per second, shared by the producers; `None` sends
    /// as fast as the backend takes messages.
    pub rate: Option<u64>,
    /// Messages carry a `key` property with this many distinct values (`k0`, `k1`, … by
    /// sequence), and consumer `c` selects `key = 'k{c % keys}'`.
    pub selector_keys: Option<u32>,
    /// After the producers finish, give up when no consumer has received anything for this
    /// long; what never arrived is reported missing.
    pub stall_timeout: Duration,
    /// The consumers' prefetch ([`courier_api::ConsumerOptions::prefetch`]); `None`: the
    /// backend's default (the URL's `prefetch`, else each receive fetches one message).
    pub prefetch: Option<u32>,
}

impl FlowSpec {
    /// 100 000 non-persistent 100-byte messages, auto-acknowledged, as fast as possible.
    pub fn new(topology: Topology) -> Self {
        FlowSpec {
            topology,
            message_size: 100,
            limit: Limit::Messages(100_000),
            delivery_mode: DeliveryMode::NonPersistent,
            ack: AckMode::Auto,
            send_batch: None,
            send_window: None,
            rate: None,
            selector_keys: None,
            stall_timeout: Duration::from_secs(10),
            prefetch: None,
        }
    }
}

/// A [`Scenario::DeepQueue`]: one producer fills a queue with `depth` messages whose `key`
/// takes `keys` distinct values (by sequence, so each key's messages are spread over the whole
/// queue); then each consumer, with selector `key = 'k…'` on a distinct key, receives every
/// message of its key. Throughput counts receives; latency is the time of each receive call.
#[derive(Debug, Clone, PartialEq)]
pub struct DeepQueueSpec {
    /// Messages in the queue before consumers start.
    pub depth: u64,
    /// Distinct values of the `key` property.
    pub keys: u32,
    /// Consumers, each selecting its own key.
    pub consumers: usize,
    /// Body size in bytes, stamp included.
    pub message_size: usize,
    /// Persistent or not.
    pub delivery_mode: DeliveryMode,
    /// Give up when a receive waits this long; what never arrived is reported missing.
    pub stall_timeout: Duration,
}

/// A [`Scenario::Memory`]: one producer fills a queue on a fresh backend with `depth`
/// messages; the resident memory the process gained, divided by `depth`, is the figure. The
/// queue is then drained to check it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemorySpec {
    /// Messages queued.
    pub depth: u64,
    /// Body size in bytes, stamp included.
    pub message_size: usize,
    /// Persistent or not.
    pub delivery_mode: DeliveryMode,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_reach_flows_and_keep_depths() {
        let mut flow = Workload::new(
            "f",
            "",
            Scenario::Flow(FlowSpec::new(Topology::Queue {
                producers: 1,
                consumers: 1,
            })),
        );
        let mut memory = Workload::new(
            "m",
            "",
            Scenario::Memory(MemorySpec {
                depth: 10,
                message_size: 100,
                delivery_mode: DeliveryMode::NonPersistent,
            }),
        );
        let overrides = Overrides {
            messages: Some(5),
            size: Some(64),
            rate: Some(1_000),
            ..Overrides::default()
        };
        flow.apply(&overrides);
        memory.apply(&overrides);
        let Scenario::Flow(f) = &flow.scenario else {
            unreachable!()
        };
        assert_eq!(
            (f.limit, f.message_size, f.rate),
            (Limit::Messages(5), 64, Some(1_000))
        );
        let Scenario::Memory(m) = &memory.scenario else {
            unreachable!()
        };
        assert_eq!((m.depth, m.message_size), (10, 64));
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut spec = FlowSpec::new(Topology::Topic {
            producers: 1,
            subscriptions: 0,
        });
        let w = |s: FlowSpec| Workload::new("w", "", Scenario::Flow(s));
        assert!(w(spec.clone()).validate().is_err());
        spec.topology = Topology::Topic {
            producers: 1,
            subscriptions: 2,
        };
        assert!(w(spec.clone()).validate().is_ok());
        spec.message_size = Stamp::LEN - 1;
        assert!(w(spec).validate().is_err());
    }
}
