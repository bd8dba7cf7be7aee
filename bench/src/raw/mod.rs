//! Raw-client baselines: the broker's own client library running the same workload as the
//! Courier backend of that broker, in the same process and run, so a backend's overhead is a
//! ratio of two rows measured the same way.
//!
//! - [`RawClient::Lapin`]: RabbitMQ through lapin, as a careful application uses it: a
//!   durable queue (classic or quorum) on the default exchange; persistent messages with
//!   publisher confirms (pipelined within the workload's send window, else awaited one by
//!   one); non-persistent messages without confirms; consumers with manual acknowledgement
//!   and a `basic.qos` prefetch.
//! - [`RawClient::RedisStreams`]: Redis Streams through redis-rs: `XADD` (pipelined on the
//!   multiplexed connection within the send window, else awaited), `XREADGROUP` in a
//!   consumer group (a batch per read), `XACK`. [`RedisServer`] starts a private
//!   `redis-server` with `appendfsync always` for the durable variant.
//!
//! The driver is the api runner's: schedules (pacing with intended send times), stamps,
//! body verification, the exactly-once/order check, HDR latency and the stall watch. Only
//! queue flows without selectors or transactions can be expressed by every raw client;
//! anything else is [`Error::Unsupported`] (a skip with a note, not a failure).

mod driver;
#[cfg(feature = "amqp")]
mod lapin_client;
#[cfg(feature = "redis")]
mod redis_client;
mod redis_server;

use courier_api::{Error, Result};
use std::fmt;

use crate::measurement::Measurement;
use crate::spec::{FlowSpec, Scenario, Topology, Workload};

pub use redis_server::RedisServer;

/// The prefetch (`basic.qos`) of raw lapin consumers when the URL gives no `prefetch`.
pub const DEFAULT_PREFETCH: u16 = 1_000;

/// Entries a raw Redis consumer reads per `XREADGROUP`.
pub const REDIS_READ_BATCH: usize = 100;

/// The RabbitMQ queue type a raw lapin baseline declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawQueueType {
    /// A classic queue (no priorities: a plain one, as a raw application declares it).
    Classic,
    /// A quorum queue.
    Quorum,
}

/// A raw client to run a workload with, beside the Courier backend of the same broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawClient {
    /// RabbitMQ through lapin.
    Lapin {
        /// The `amqp://` URL, without Courier's query options.
        url: String,
        /// Queue type declared.
        queue_type: RawQueueType,
        /// `basic.qos` prefetch of each consumer.
        prefetch: u16,
        /// `x-max-priority` declared on a classic queue: `None` for a plain queue (as a raw
        /// application declares it), `Some(9)` for the priority queue `courier-amqp`
        /// declares by default, to tell the adapter's cost from the queue type's.
        max_priority: Option<u8>,
    },
    /// Redis Streams through redis-rs.
    RedisStreams {
        /// The `redis://` URL.
        url: String,
        /// Entries per `XREADGROUP`.
        read_batch: usize,
        /// The server appends to its AOF with `appendfsync always` (a label: the server is
        /// configured so, e.g. by [`RedisServer::start_fsync_always`]).
        fsync_always: bool,
    },
}

impl RawClient {
    /// The raw client of a Courier backend URL: lapin for `amqp://`/`amqps://` (queue type
    /// and prefetch from its `queue_type` and `prefetch` options), redis-rs Streams for
    /// `redis://`/`rediss://`; `None` for other schemes.
    ///
    /// ```
    /// use courier_bench::{RawClient, RawQueueType};
    /// let raw = RawClient::for_url("amqp://guest:guest@127.0.0.1:5672/%2f?queue_type=quorum&prefetch=50");
    /// assert_eq!(raw, Some(RawClient::Lapin {
    ///     url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
    ///     queue_type: RawQueueType::Quorum,
    ///     prefetch: 50,
    ///     max_priority: None,
    /// }));
    /// assert!(RawClient::for_url("embedded:").is_none());
    /// ```
    pub fn for_url(url: &str) -> Option<RawClient> {
        let scheme = url.split_once("://")?.0.to_ascii_lowercase();
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let option = |key: &str| {
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v)
        };
        match scheme.as_str() {
            "amqp" | "amqps" => Some(RawClient::Lapin {
                url: base.to_owned(),
                queue_type: match option("queue_type") {
                    Some("quorum") => RawQueueType::Quorum,
                    _ => RawQueueType::Classic,
                },
                prefetch: option("prefetch")
                    .and_then(|p| p.parse().ok())
                    .filter(|&p| p > 0)
                    .unwrap_or(DEFAULT_PREFETCH),
                max_priority: None,
            }),
            "redis" | "rediss" => Some(RawClient::RedisStreams {
                url: url.to_owned(),
                read_batch: REDIS_READ_BATCH,
                fsync_always: false,
            }),
            _ => None,
        }
    }

    /// For a backend whose queues are not the plain ones of [`RawClient::for_url`]: the raw
    /// client declaring the same queue arguments as that backend — raw lapin on a classic
    /// queue with the `x-max-priority` `courier-amqp` declares. Run beside the plain
    /// baseline, it tells what the queue type costs RabbitMQ from what the adapter costs.
    /// `None` when the backend's queues are plain (quorum, or classic without priorities) or
    /// `url` is no `amqp://` URL.
    ///
    /// ```
    /// use courier_bench::RawClient;
    /// let classic = RawClient::with_backend_queue("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
    /// assert_eq!(classic.label(), "raw lapin classic x-max-priority 9");
    /// assert!(RawClient::with_backend_queue("amqp://h/%2f?queue_type=quorum").is_none());
    /// ```
    #[cfg(feature = "amqp")]
    pub fn with_backend_queue(url: &str) -> Option<RawClient> {
        let max_priority = courier::amqp::AmqpFactory::new(url).ok()?.max_priority()?;
        match RawClient::for_url(url)? {
            RawClient::Lapin {
                url,
                queue_type: RawQueueType::Classic,
                prefetch,
                ..
            } => Some(RawClient::Lapin {
                url,
                queue_type: RawQueueType::Classic,
                prefetch,
                max_priority: Some(max_priority),
            }),
            _ => None,
        }
    }

    /// The row label: `raw lapin classic`, `raw lapin quorum`, `raw redis streams`,
    /// `raw redis streams (appendfsync always)`.
    pub fn label(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for RawClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawClient::Lapin {
                queue_type,
                max_priority,
                ..
            } => {
                write!(
                    f,
                    "raw lapin {}",
                    match queue_type {
                        RawQueueType::Classic => "classic",
                        RawQueueType::Quorum => "quorum",
                    }
                )?;
                match max_priority {
                    Some(p) if *queue_type == RawQueueType::Classic => {
                        write!(f, " x-max-priority {p}")
                    }
                    _ => Ok(()),
                }
            }
            RawClient::RedisStreams { fsync_always, .. } => {
                f.write_str("raw redis streams")?;
                if *fsync_always {
                    f.write_str(" (appendfsync always)")?;
                }
                Ok(())
            }
        }
    }
}

/// Runs `workload` with the raw client `client`; what the client cannot express (topics,
/// forwarding, selectors, transactions, deep queues, memory) is [`Error::Unsupported`].
///
/// The run's queue (or stream) has a name no other run uses and is deleted afterwards.
/// Must be called within a multi-threaded tokio runtime.
pub async fn run_raw(client: &RawClient, workload: &Workload) -> Result<Measurement> {
    workload.validate()?;
    let spec = expressible(workload)?;
    match client {
        #[cfg(feature = "amqp")]
        RawClient::Lapin {
            url,
            queue_type,
            prefetch,
            max_priority,
        } => {
            let queue = lapin_client::QueueShape {
                queue_type: *queue_type,
                max_priority: *max_priority,
            };
            lapin_client::run(url, queue, *prefetch, &workload.name, spec).await
        }
        #[cfg(feature = "redis")]
        RawClient::RedisStreams {
            url, read_batch, ..
        } => redis_client::run(url, *read_batch, &workload.name, spec).await,
        #[allow(unreachable_patterns)]
        other => Err(Error::unsupported(
            "raw baseline",
            format!("{other} is not built in (courier-bench's `amqp`/`redis` features)"),
        )),
    }
}

/// The queue flow of `workload`, if a raw client can run it.
fn expressible(workload: &Workload) -> Result<&FlowSpec> {
    let refuse = |why: &str| Err(Error::unsupported("raw baseline", why.to_owned()));
    let Scenario::Flow(spec) = &workload.scenario else {
        return refuse("only flow workloads (deep-queue selectors and memory have no raw form)");
    };
    if !matches!(spec.topology, Topology::Queue { .. }) {
        return refuse("only queue flows (no topics or forwarding stage)");
    }
    if spec.selector_keys.is_some() {
        return refuse("selectors on a queue have no raw form");
    }
    if spec.send_batch.is_some() {
        return refuse("transacted sends have no raw form here");
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Limit;

    #[test]
    fn urls_map_to_their_raw_client() {
        assert_eq!(
            RawClient::for_url("redis://127.0.0.1:6379/0").map(|c| c.label()),
            Some("raw redis streams".to_owned())
        );
        let amqp = RawClient::for_url("amqp://h/?prefetch=0&heartbeat=5s").unwrap();
        assert_eq!(
            amqp,
            RawClient::Lapin {
                url: "amqp://h/".into(),
                queue_type: RawQueueType::Classic,
                prefetch: DEFAULT_PREFETCH,
                max_priority: None,
            }
        );
        assert_eq!(amqp.label(), "raw lapin classic");
        let priority = RawClient::Lapin {
            url: "amqp://h/".into(),
            queue_type: RawQueueType::Classic,
            prefetch: DEFAULT_PREFETCH,
            max_priority: Some(9),
        };
        assert_eq!(priority.label(), "raw lapin classic x-max-priority 9");
        assert!(RawClient::for_url("courier://127.0.0.1:7672").is_none());
    }

    #[test]
    fn only_plain_queue_flows_are_expressible() {
        let queue = FlowSpec {
            limit: Limit::Messages(10),
            ..FlowSpec::new(Topology::Queue {
                producers: 1,
                consumers: 1,
            })
        };
        let w = |s: FlowSpec| Workload::new("w", "", Scenario::Flow(s));
        assert!(expressible(&w(queue.clone())).is_ok());
        let selected = FlowSpec {
            selector_keys: Some(2),
            ..queue.clone()
        };
        assert!(expressible(&w(selected)).unwrap_err().is_unsupported());
        let topic = FlowSpec::new(Topology::Topic {
            producers: 1,
            subscriptions: 2,
        });
        assert!(expressible(&w(topic)).unwrap_err().is_unsupported());
        let deep = crate::find("selector-deep-100k").unwrap();
        assert!(expressible(&deep).unwrap_err().is_unsupported());
    }
}
