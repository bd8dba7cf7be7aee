//! The standard workloads: the set `bench` runs by default, sized so the whole set takes about
//! two minutes in a release build.

use courier_api::DeliveryMode;
use std::time::Duration;

use super::spec::{
    AckMode, DeepQueueSpec, FlowSpec, Limit, MemorySpec, Scenario, Topology, Workload,
};

/// Client-ack consumers acknowledge every this many messages.
const CLIENT_ACK_BATCH: u32 = 100;

/// Unresolved send receipts a pipelining producer keeps.
const PIPELINE_WINDOW: usize = 1_000;

/// Consumers of the deep-queue workloads, each with its own key: a tenth of the keys, so each
/// run takes a tenth of the queue — enough receives for a steady figure while the queue stays
/// deep.
const DEEP_CONSUMERS: usize = 100;

/// Every standard workload, in the order `bench` runs them.
///
/// ```
/// let names: Vec<String> = courier_bench::standard().into_iter().map(|w| w.name).collect();
/// assert!(names.contains(&"queue-1x1-100b-auto".to_string()));
/// assert!(names.contains(&"selector-deep-1m".to_string()));
/// ```
pub fn standard() -> Vec<Workload> {
    let one_to_one = |size: usize, ack: AckMode, messages: u64| FlowSpec {
        message_size: size,
        ack,
        limit: Limit::Messages(messages),
        ..FlowSpec::new(Topology::Queue {
            producers: 1,
            consumers: 1,
        })
    };
    let client = AckMode::Client {
        batch: CLIENT_ACK_BATCH,
    };
    vec![
        Workload::new(
            "queue-1x1-100b-auto",
            "queue, 1 producer → 1 consumer, 100 B, auto-ack, as fast as possible",
            Scenario::Flow(one_to_one(100, AckMode::Auto, 1_000_000)),
        ),
        Workload::new(
            "queue-1x1-100b-pipelined",
            "queue, 1 → 1, 100 B, auto-ack, pipelined sends (send_async, window of 1 000)",
            Scenario::Flow(FlowSpec {
                send_window: Some(PIPELINE_WINDOW),
                ..one_to_one(100, AckMode::Auto, 1_000_000)
            }),
        ),
        Workload::new(
            "queue-1x1-100b-client",
            "queue, 1 → 1, 100 B, client-ack every 100 messages",
            Scenario::Flow(one_to_one(100, client, 1_000_000)),
        ),
        Workload::new(
            "queue-1x1-1k-auto",
            "queue, 1 → 1, 1 KiB, auto-ack",
            Scenario::Flow(one_to_one(1024, AckMode::Auto, 500_000)),
        ),
        Workload::new(
            "queue-1x1-1k-client",
            "queue, 1 → 1, 1 KiB, client-ack every 100 messages",
            Scenario::Flow(one_to_one(1024, client, 500_000)),
        ),
        Workload::new(
            "queue-1x1-100b-paced",
            "queue, 1 → 1, 100 B, auto-ack, at a fixed 500 000 msgs/s: latency at half the goal rate",
            Scenario::Flow(FlowSpec {
                rate: Some(500_000),
                ..one_to_one(100, AckMode::Auto, 1_000_000)
            }),
        ),
        Workload::new(
            "queue-4x4-100b",
            "queue, 4 producers → 4 competing consumers, 100 B, auto-ack",
            Scenario::Flow(FlowSpec {
                limit: Limit::Messages(1_000_000),
                ..FlowSpec::new(Topology::Queue {
                    producers: 4,
                    consumers: 4,
                })
            }),
        ),
        Workload::new(
            "topic-1x8-100b",
            "topic, 1 publisher → 8 subscriptions, 100 B; counts delivered messages",
            Scenario::Flow(FlowSpec {
                limit: Limit::Messages(200_000),
                ..FlowSpec::new(Topology::Topic {
                    producers: 1,
                    subscriptions: 8,
                })
            }),
        ),
        Workload::new(
            "tx-batch-100",
            "queue, 1 → 1, 100 B, transacted producer committing every 100 sends",
            Scenario::Flow(FlowSpec {
                send_batch: Some(100),
                ..one_to_one(100, AckMode::Auto, 1_000_000)
            }),
        ),
        Workload::new(
            "tx-forward",
            "queue → transacted receive+send+commit stage → queue → consumer, 100 B",
            Scenario::Flow(FlowSpec {
                limit: Limit::Messages(300_000),
                ..FlowSpec::new(Topology::Forward {
                    producers: 1,
                    consumers: 1,
                    commit_every: 1,
                })
            }),
        ),
        deep_queue("selector-deep-100k", 100_000, "100 000"),
        deep_queue("selector-deep-1m", 1_000_000, "1 000 000"),
        Workload::new(
            "memory-1m-100b",
            "resident bytes per queued message, 1 000 000 queued 100 B messages, fresh broker",
            Scenario::Memory(MemorySpec {
                depth: 1_000_000,
                message_size: 100,
                delivery_mode: DeliveryMode::NonPersistent,
            }),
        ),
    ]
}

fn deep_queue(name: &str, depth: u64, depth_text: &str) -> Workload {
    Workload::new(
        name,
        format!(
            "queue pre-filled with {depth_text} messages, `key` has 1 000 values; {DEEP_CONSUMERS} \
             consumers with `key = 'k…'` each take all of their key; receives/s"
        ),
        Scenario::DeepQueue(DeepQueueSpec {
            depth,
            keys: 1_000,
            consumers: DEEP_CONSUMERS,
            message_size: 100,
            delivery_mode: DeliveryMode::NonPersistent,
            stall_timeout: Duration::from_secs(60),
        }),
    )
}

/// The standard workload called `name`.
pub fn find(name: &str) -> Option<Workload> {
    standard().into_iter().find(|w| w.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_workloads_are_valid_and_uniquely_named() {
        let all = standard();
        for w in &all {
            w.validate().unwrap();
            assert_eq!(all.iter().filter(|o| o.name == w.name).count(), 1);
        }
        assert!(find("tx-forward").is_some());
        assert!(find("queue-1x1-100b-pipelined").is_some_and(|w| matches!(
            w.scenario,
            Scenario::Flow(FlowSpec {
                send_window: Some(_),
                ..
            })
        )));
        assert!(find("nope").is_none());
    }
}
