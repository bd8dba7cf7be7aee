//! The key layout: every key of one destination shares one hash tag, so a destination lives in
//! one Redis Cluster slot and every script touching it runs on one node.
//!
//! A destination's *root* is `courier:{<kind>:<name>}` (kind `q` queue, `t` topic, `Q`/`T`
//! their temporary forms). Under it (see `courier.lua` for the full list): `:seq` the arrival
//! counter, `:m:<id>` one hash per message and `:b:<id>` its encoded form, `:r` the ready
//! index (a sorted set scored by priority then arrival), `:d` the delayed index (scored by due
//! time), `:h:<conn>` what a connection holds in flight, `:l:<conn>` the lease that keeps it
//! held, `:a` the consumers open on a queue, `:subs` a topic's subscriptions, each with its own
//! indexes (and `:a` consumers) under `:s:<sub>`.
//!
//! Outside the destination's slot: a durable subscription's record ([`durable`]), which
//! deleting its topic removes after the topic's keys (see `Session::delete_destination`).

use courier_api::{Destination, DestinationKind};

/// The slot root of a destination: `courier:{q:name}`.
pub fn root(destination: &Destination) -> String {
    let kind = match destination.kind() {
        DestinationKind::Queue => 'q',
        DestinationKind::Topic => 't',
        DestinationKind::TemporaryQueue => 'Q',
        DestinationKind::TemporaryTopic => 'T',
    };
    format!("courier:{{{kind}:{}}}", destination.name())
}

/// The base of a topic subscription's indexes, under its topic's root.
pub fn subscription_base(root: &str, sub: &str) -> String {
    format!("{root}:s:{sub}")
}

/// The hash tag Redis Cluster hashes for a key: the text between the first `{` and the
/// next `}`, when not empty; otherwise the whole key.
pub fn hash_tag(key: &str) -> &str {
    if let Some(open) = key.find('{') {
        if let Some(len) = key[open + 1..].find('}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// The hash of live temporary destinations: root → owner (`run_id:client_id`), read by the
/// sweep that deletes those whose connection is gone.
pub const TEMPORARIES: &str = "courier:temps";

/// Set (for one heartbeat) by the connection sweeping [`TEMPORARIES`], so one sweeps at a time.
pub const SWEEP_GATE: &str = "courier:temps:sweep";

/// The key holding a client id while a connection uses it.
pub fn client_id(id: &str) -> String {
    format!("courier:cid:{id}")
}

/// The key naming the topic, selector and no-local flag of a durable subscription.
pub fn durable(client_id: &str, name: &str) -> String {
    format!("courier:dur:{client_id}:{name}")
}

/// The [`durable`] record of a durable subscription by its id in its topic's `:subs`
/// (`d:<client_id>:<name>`, or `sd:` shared); `None` for a non-durable one.
pub fn durable_of_subscription(sub: &str) -> Option<String> {
    let scoped = sub.strip_prefix("d:").or_else(|| sub.strip_prefix("sd:"))?;
    Some(format!("courier:dur:{scoped}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_destination_is_in_one_slot() {
        let queue = root(&Destination::queue("orders"));
        let topic = root(&Destination::topic("orders"));
        assert_eq!(queue, "courier:{q:orders}");
        assert_ne!(hash_tag(&queue), hash_tag(&topic));
        let sub = subscription_base(&topic, "d:app:s1");
        for key in [
            format!("{queue}:seq"),
            format!("{queue}:m:17"),
            format!("{queue}:b:k0123456789abcdef.31"),
            format!("{queue}:t"),
            format!("{queue}:r"),
            format!("{queue}:d"),
            format!("{queue}:h:conn-1"),
            format!("{queue}:l:conn-1"),
        ] {
            assert_eq!(hash_tag(&key), "q:orders", "{key}");
        }
        for key in [
            format!("{sub}:r"),
            format!("{sub}:h:c"),
            format!("{topic}:subs"),
        ] {
            assert_eq!(hash_tag(&key), "t:orders", "{key}");
        }
        assert_eq!(
            durable_of_subscription("d:app:s1").as_deref(),
            Some(durable("app", "s1").as_str())
        );
        assert_eq!(
            durable_of_subscription("sd::s1").as_deref(),
            Some(durable("", "s1").as_str())
        );
        assert_eq!(durable_of_subscription("sn:app:s1"), None);
        assert_eq!(durable_of_subscription("n:0123"), None);
        let temp = root(&Destination::new(DestinationKind::TemporaryQueue, "x"));
        assert_eq!(hash_tag(&temp), "Q:x");
    }
}
