//! Broker settings: delivery attempts, message size, the broker-wide memory limit and the
//! per-destination policies (limits, what happens when full, dead-lettering, auto-delete).

use std::time::Duration;

use crate::access::{AccessRule, User};

/// Settings of a [`crate::Broker`].
///
/// ```
/// use courier_broker::{BrokerConfig, DestinationPolicy, PolicyRule, WhenFull};
/// let mut config = BrokerConfig { max_delivery_attempts: Some(3), ..BrokerConfig::default() };
/// // Orders never take more than 10 000 messages; a send to a full queue fails at once.
/// config.destination_policies.push(PolicyRule::new(
///     "orders.#",
///     DestinationPolicy { max_depth: Some(10_000), when_full: WhenFull::Fail, ..DestinationPolicy::default() },
/// ));
/// assert_eq!(config.dead_letter_queue, "DLQ");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// After this many failed delivery attempts a message goes to the dead-letter queue;
    /// `None` redelivers for ever. Destinations whose policy says otherwise
    /// ([`DestinationPolicy::dead_letter`]) follow their policy.
    pub max_delivery_attempts: Option<u32>,
    /// Name of the queue that takes dead letters. It is never full, never blocks and is
    /// never auto-deleted; its messages count towards [`BrokerConfig::max_memory`].
    pub dead_letter_queue: String,
    /// Largest accepted message (properties and body), in bytes; larger sends fail with
    /// [`courier_api::Error::ResourceLimit`].
    pub max_message_size: usize,
    /// Bytes every stored message copy may take together (a message published to three
    /// subscriptions counts three times), including messages delivered and not yet
    /// acknowledged. When reached, each destination's [`WhenFull`] policy applies. Defaults
    /// to a quarter of the machine's memory ([`default_max_memory`]).
    pub max_memory: usize,
    /// Memory charged (see [`BrokerConfig::max_memory`]) past which a durable broker pages:
    /// persistent messages then stored in durable queues and subscriptions keep only their
    /// headers and properties in memory (what selectors and delivery order need), their
    /// bodies stay in the journal and are read back when delivered. `None` (the default):
    /// half of `max_memory`. No effect on an in-memory broker, which has nowhere to page to.
    pub paging_threshold: Option<usize>,
    /// The policy of destinations no rule of [`BrokerConfig::destination_policies`] matches.
    pub default_policy: DestinationPolicy,
    /// Policies by destination name pattern, like Artemis address settings: the most
    /// specific matching pattern wins (see [`PolicyRule`]). The default holds one rule,
    /// [`BrokerConfig::space_rule`], which keeps tuple-space entries out of the dead-letter
    /// queue; keep it when replacing the list.
    pub destination_policies: Vec<PolicyRule>,
    /// How long a destination created on demand stays once it is unused (empty, no
    /// consumer, no subscription, no unacknowledged message, not looked up); then it is
    /// deleted and made afresh on its next use. `None` keeps destinations for ever.
    /// Applies to destinations whose policy has [`DestinationPolicy::auto_delete`].
    pub auto_delete_delay: Option<Duration>,
    /// Who may connect with credentials, and what each may do (see [`User`] and the access
    /// notes of [`crate::access`]). Empty by default.
    pub users: Vec<User>,
    /// What a connection without credentials may do. `None` (the default): everything while
    /// [`BrokerConfig::users`] is empty, and no connection at all once users are configured
    /// ([`courier_api::Error::Authentication`]).
    pub anonymous: Option<Vec<AccessRule>>,
}

impl BrokerConfig {
    /// The rule the default configuration holds for tuple spaces (`courier-space` keeps the
    /// entries of space `s` and type `T` in queue `space.s.T`): an aborted transaction's
    /// take is not a failed delivery, so space entries are never dead-lettered.
    pub fn space_rule() -> PolicyRule {
        PolicyRule::new(
            "space.#",
            DestinationPolicy {
                dead_letter: DeadLetter::Never,
                ..DestinationPolicy::default()
            },
        )
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            max_delivery_attempts: Some(10),
            dead_letter_queue: "DLQ".to_owned(),
            max_message_size: 16 * 1024 * 1024,
            max_memory: default_max_memory(),
            paging_threshold: None,
            default_policy: DestinationPolicy::default(),
            destination_policies: vec![BrokerConfig::space_rule()],
            auto_delete_delay: Some(Duration::from_secs(30)),
            users: Vec::new(),
            anonymous: None,
        }
    }
}

/// A destination policy and the destination names it applies to.
///
/// A pattern is a name whose `.`-separated words may be `*` (exactly one word) or `#` (zero
/// or more words): `orders` matches that name only, `orders.*` matches `orders.eu` but not
/// `orders.eu.paris`, `orders.#` matches `orders` and everything below it. When several
/// patterns match, the most specific wins: an exact name first, then the pattern with more
/// literal words, then the one with fewer `#`; among equals, the first in the list.
/// Topic patterns also give the policy of the topic's subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRule {
    /// The destination name pattern.
    pub pattern: String,
    /// The policy of matching destinations.
    pub policy: DestinationPolicy,
}

impl PolicyRule {
    /// A rule giving `policy` to the destinations matching `pattern`.
    pub fn new(pattern: impl Into<String>, policy: DestinationPolicy) -> Self {
        PolicyRule {
            pattern: pattern.into(),
            policy,
        }
    }
}

/// Limits and behaviour of one destination (a queue, or each subscription of a topic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationPolicy {
    /// Most messages stored (ready, delayed, or delivered and not acknowledged); `None`:
    /// only the broker-wide memory limit applies.
    pub max_depth: Option<usize>,
    /// Most bytes stored (each message's size plus a fixed per-message overhead).
    pub max_bytes: Option<usize>,
    /// What a send to a full destination (or with the broker's memory full) does.
    pub when_full: WhenFull,
    /// How long a [`WhenFull::Block`] send waits for room before it fails with
    /// [`courier_api::Error::FlowControl`] (ActiveMQ's `sendFailIfNoSpaceAfterTimeout`).
    /// `Duration::MAX` waits for ever.
    pub block_timeout: Duration,
    /// Dead-lettering of messages that fail delivery repeatedly.
    pub dead_letter: DeadLetter,
    /// Whether the destination is deleted after [`BrokerConfig::auto_delete_delay`] unused.
    pub auto_delete: bool,
    /// Limits of each non-durable subscription of a matching topic (durable subscriptions
    /// use the policy's own limits).
    pub non_durable_subscriptions: SubscriptionLimits,
}

impl Default for DestinationPolicy {
    /// No own limit (the broker-wide memory limit applies), block for up to 30 s when full,
    /// dead-letter after the broker's attempts, auto-delete, and non-durable subscriptions
    /// bounded by [`SubscriptionLimits::default`].
    fn default() -> Self {
        DestinationPolicy {
            max_depth: None,
            max_bytes: None,
            when_full: WhenFull::Block,
            block_timeout: Duration::from_secs(30),
            dead_letter: DeadLetter::Broker,
            auto_delete: true,
            non_durable_subscriptions: SubscriptionLimits::default(),
        }
    }
}

/// Limits of a non-durable subscription.
///
/// The default bounds each subscription to 10 000 messages or 64 MiB with
/// [`WhenFull::DropOldestIfStalled`] after one second: a subscriber that keeps reading gets
/// flow control (publishers wait for it, nothing is lost), while one that stops reading (or
/// an unpolled `Space::notify` stream) loses its oldest messages instead of blocking every
/// publisher of the topic — and every other subscriber with them. A non-durable subscriber
/// only gets messages while it listens, so dropping for one that does not is within its
/// contract; blocking the topic for everyone is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionLimits {
    /// Most messages stored for the subscription.
    pub max_depth: Option<usize>,
    /// Most bytes stored for the subscription.
    pub max_bytes: Option<usize>,
    /// What a publish does when the subscription (or the broker's memory) is full.
    pub when_full: WhenFull,
}

impl Default for SubscriptionLimits {
    fn default() -> Self {
        SubscriptionLimits {
            max_depth: Some(10_000),
            max_bytes: Some(64 * 1024 * 1024),
            when_full: WhenFull::DropOldestIfStalled(Duration::from_secs(1)),
        }
    }
}

/// What a send does when its destination is full or the broker's memory limit is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Flow control: the send waits until there is room, up to the policy's block timeout,
    /// then fails with [`courier_api::Error::FlowControl`]. A transaction's commit waits
    /// the same way for its sends, holding the room of those already admitted: a
    /// transaction with more sends to one destination than its limit allows rolls back
    /// after the block timeout.
    #[default]
    Block,
    /// The send fails at once with [`courier_api::Error::FlowControl`] (retryable: room may
    /// come later; a message too large for any limit is `ResourceLimit`); a commit rolls
    /// back with [`courier_api::Error::TransactionRolledBack`].
    Fail,
    /// The oldest stored message of the destination is dropped to make room; when there is
    /// none to drop (all delivered and unacknowledged), the new message is dropped instead.
    DropOldest,
    /// Flow control while the destination's consumers keep reading, drop-oldest once they
    /// stall: a send waits like [`WhenFull::Block`] for up to this long; if no room comes in
    /// that time, the destination is stalled and drops its oldest messages like
    /// [`WhenFull::DropOldest`], without waiting, until its consumers take it below half its
    /// limits. The default of non-durable subscriptions.
    DropOldestIfStalled(Duration),
}

/// Dead-lettering of one destination's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeadLetter {
    /// After [`BrokerConfig::max_delivery_attempts`].
    #[default]
    Broker,
    /// Never: failed deliveries are redelivered for ever.
    Never,
    /// After this many failed delivery attempts.
    After(u32),
}

impl BrokerConfig {
    /// The memory charge past which a durable broker pages persistent messages:
    /// [`BrokerConfig::paging_threshold`], or half of [`BrokerConfig::max_memory`].
    pub fn effective_paging_threshold(&self) -> usize {
        self.paging_threshold.unwrap_or(self.max_memory / 2)
    }
}

/// Memory limit used when the machine's memory cannot be read: 1 GiB.
pub const FALLBACK_MAX_MEMORY: usize = 1024 * 1024 * 1024;

/// A quarter of the machine's memory (`MemTotal` of `/proc/meminfo`), or
/// [`FALLBACK_MAX_MEMORY`] where it cannot be read.
pub fn default_max_memory() -> usize {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_total(&text))
        .map_or(FALLBACK_MAX_MEMORY, |total| total / 4)
}

/// `MemTotal` in bytes from the text of `/proc/meminfo`.
fn mem_total(meminfo: &str) -> Option<usize> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line["MemTotal:".len()..].split_whitespace();
    let kib: usize = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => kib.checked_mul(1024),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_total_reads_kib() {
        let text = "MemFree: 5 kB\nMemTotal:       16283212 kB\n";
        assert_eq!(mem_total(text), Some(16283212 * 1024));
        assert_eq!(mem_total("MemTotal: lots\n"), None);
        assert_eq!(mem_total("MemTotal: 99999999999999999999 kB\n"), None);
        assert_eq!(mem_total(""), None);
    }

    #[test]
    fn default_memory_is_positive() {
        assert!(default_max_memory() > 0);
    }
}
