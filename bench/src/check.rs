//! The exactly-once and order check.
//!
//! Each consumer keeps a [`DeliveryLog`]: per producer, the set of sequences it received and the
//! last one, so a sequence lower than its predecessor is a reorder and one seen twice is a
//! duplicate. The logs of the consumers that share the messages of one queue (or of one topic
//! subscription) form a *delivery group*; [`verify`] merges them and compares the result with
//! the group's [`Expectation`]: every expected message exactly once, nothing else.
//!
//! A log is sized by the stamps it records, so it records only stamps its run's
//! [`StampBounds`] admit; any other stamp was never sent by the run and is counted as
//! unexpected on the spot, whatever producer or sequence it claims.

use courier_api::{DeliveryMode, Destination, Message};
use std::fmt;

use super::bounds::StampBounds;
use super::payload::Stamp;

/// How many examples of each kind of violation a [`CheckReport`] keeps.
const EXAMPLES_PER_KIND: usize = 5;

/// One thing that went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Violation {
    /// An expected message never arrived.
    Missing {
        /// Producer index.
        producer: u32,
        /// Sequence number.
        sequence: u64,
    },
    /// A message arrived more than once in one delivery group.
    Duplicate {
        /// Producer index.
        producer: u32,
        /// Sequence number.
        sequence: u64,
    },
    /// A consumer received a producer's message after a later one of the same producer.
    Reordered {
        /// Producer index.
        producer: u32,
        /// Sequence number that came late.
        sequence: u64,
        /// The higher sequence received before it.
        after: u64,
    },
    /// A message arrived that this group should not see: never sent, or not selected.
    Unexpected {
        /// Producer index.
        producer: u32,
        /// Sequence number.
        sequence: u64,
    },
    /// A message without a readable stamp.
    Malformed,
}

impl Violation {
    fn kind(&self) -> u8 {
        match self {
            Violation::Missing { .. } => 0,
            Violation::Duplicate { .. } => 1,
            Violation::Reordered { .. } => 2,
            Violation::Unexpected { .. } => 3,
            Violation::Malformed => 4,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Violation::Missing { producer, sequence } => {
                write!(f, "missing: producer {producer} message {sequence}")
            }
            Violation::Duplicate { producer, sequence } => {
                write!(f, "duplicate: producer {producer} message {sequence}")
            }
            Violation::Reordered {
                producer,
                sequence,
                after,
            } => write!(
                f,
                "reordered: producer {producer} message {sequence} arrived after {after}"
            ),
            Violation::Unexpected { producer, sequence } => {
                write!(f, "unexpected: producer {producer} message {sequence}")
            }
            Violation::Malformed => f.write_str(
                "malformed: a message without a stamp, or damaged (body past the stamp, \
                 properties, or the destination and delivery-mode headers)",
            ),
        }
    }
}

/// A growable set of sequence numbers.
#[derive(Debug, Clone, Default)]
struct SequenceSet {
    words: Vec<u64>,
}

impl SequenceSet {
    /// Adds `n`; false when it was already present.
    fn insert(&mut self, n: u64) -> bool {
        let (word, bit) = ((n / 64) as usize, 1u64 << (n % 64));
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let fresh = self.words[word] & bit == 0;
        self.words[word] |= bit;
        fresh
    }

    fn contains(&self, n: u64) -> bool {
        self.words
            .get((n / 64) as usize)
            .is_some_and(|w| w & (1u64 << (n % 64)) != 0)
    }

    /// Adds every member of `other`; returns the members the two had in common.
    fn union_with(&mut self, other: &SequenceSet, mut common: impl FnMut(u64)) {
        if other.words.len() > self.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        for (i, (mine, theirs)) in self.words.iter_mut().zip(&other.words).enumerate() {
            let mut both = *mine & *theirs;
            while both != 0 {
                common(i as u64 * 64 + u64::from(both.trailing_zeros()));
                both &= both - 1;
            }
            *mine |= *theirs;
        }
    }

    fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut rest = w;
            std::iter::from_fn(move || {
                (rest != 0).then(|| {
                    let bit = rest.trailing_zeros();
                    rest &= rest - 1;
                    i as u64 * 64 + u64::from(bit)
                })
            })
        })
    }
}

#[derive(Debug, Clone, Default)]
struct ProducerTrack {
    seen: SequenceSet,
    last: Option<u64>,
}

/// What one consumer received, for the exactly-once and order check.
///
/// ```
/// use courier_bench::{verify, DeliveryLog, Expectation, StampBounds};
/// let mut log = DeliveryLog::new(StampBounds::fixed(&[4]));
/// log.observe(0, 0);
/// log.observe(0, 2);
/// log.observe(0, 1); // late
/// log.observe(0, 1 << 40); // never sent: unexpected, and nothing is sized by it
/// let report = verify([&log], &Expectation::all(vec![4]));
/// assert_eq!((report.missing, report.reordered, report.unexpected), (1, 1, 1));
/// assert!(!report.passed());
/// ```
#[derive(Debug, Clone)]
pub struct DeliveryLog {
    bounds: StampBounds,
    producers: Vec<ProducerTrack>,
    received: u64,
    duplicates: u64,
    reordered: u64,
    unexpected: u64,
    malformed: u64,
    examples: Vec<Violation>,
    /// The destination and delivery mode every message's headers must carry, when checked.
    headers: Option<(Destination, DeliveryMode)>,
}

impl DeliveryLog {
    /// An empty log for a run whose producers send within `bounds`.
    pub fn new(bounds: StampBounds) -> Self {
        DeliveryLog {
            bounds,
            producers: Vec::new(),
            received: 0,
            duplicates: 0,
            reordered: 0,
            unexpected: 0,
            malformed: 0,
            examples: Vec::new(),
            headers: None,
        }
    }

    /// Also checks that every message's `JMSDestination` is `destination` and its delivery
    /// mode `mode`: what a backend's consumer must see (the raw-channel ceiling, which has no
    /// broker to set headers, is not checked this way).
    pub fn expecting_headers(mut self, destination: Destination, mode: DeliveryMode) -> Self {
        self.headers = Some((destination, mode));
        self
    }

    /// Records the receipt of `producer`'s message `sequence`; a stamp outside the run's
    /// bounds is recorded as unexpected.
    pub fn observe(&mut self, producer: u32, sequence: u64) {
        self.received += 1;
        if !self.bounds.admits(producer, sequence) {
            self.unexpected += 1;
            note(
                &mut self.examples,
                Violation::Unexpected { producer, sequence },
            );
            return;
        }
        let index = producer as usize;
        if index >= self.producers.len() {
            self.producers
                .resize_with(index + 1, ProducerTrack::default);
        }
        let track = &mut self.producers[index];
        if !track.seen.insert(sequence) {
            self.duplicates += 1;
            note(
                &mut self.examples,
                Violation::Duplicate { producer, sequence },
            );
            return;
        }
        match track.last {
            Some(after) if sequence < after => {
                self.reordered += 1;
                note(
                    &mut self.examples,
                    Violation::Reordered {
                        producer,
                        sequence,
                        after,
                    },
                );
            }
            _ => track.last = Some(sequence),
        }
    }

    /// Records the receipt of `message` by its stamp; returns the stamp, or `None` (recorded
    /// as malformed) when the message has none, or is damaged (see [`Stamp::of`] and
    /// [`DeliveryLog::expecting_headers`]).
    pub fn observe_message(&mut self, message: &Message) -> Option<Stamp> {
        let headers_ok = self.headers.as_ref().is_none_or(|(destination, mode)| {
            message.destination() == Some(destination) && message.delivery_mode() == *mode
        });
        match Stamp::of(message).filter(|_| headers_ok) {
            Some(stamp) => {
                self.observe(stamp.producer, stamp.sequence);
                Some(stamp)
            }
            None => {
                self.observe_malformed();
                None
            }
        }
    }

    /// Records the receipt of a message without a readable stamp.
    pub fn observe_malformed(&mut self) {
        self.received += 1;
        self.malformed += 1;
        note(&mut self.examples, Violation::Malformed);
    }

    /// Messages recorded so far, valid or not.
    pub fn received(&self) -> u64 {
        self.received
    }
}

/// Filters an expectation to the messages of some keys: a message whose sequence is `s` has
/// key `s % keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyFilter {
    keys: u32,
    accepted: Vec<bool>,
}

/// The messages one delivery group should receive, each exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    sent: Vec<u64>,
    filter: Option<KeyFilter>,
}

impl Expectation {
    /// Every message sent: producer `p` sent `sent[p]` messages, sequences `0..sent[p]`.
    pub fn all(sent: Vec<u64>) -> Self {
        Expectation { sent, filter: None }
    }

    /// The messages whose key (sequence modulo `keys`) is one of `accepted`.
    pub fn keyed(sent: Vec<u64>, keys: u32, accepted: impl IntoIterator<Item = u32>) -> Self {
        let mut mask = vec![false; keys as usize];
        for key in accepted {
            if let Some(slot) = mask.get_mut(key as usize) {
                *slot = true;
            }
        }
        Expectation {
            sent,
            filter: Some(KeyFilter {
                keys,
                accepted: mask,
            }),
        }
    }

    /// How many messages the group should receive.
    pub fn count(&self) -> u64 {
        let Some(filter) = &self.filter else {
            return self.sent.iter().sum();
        };
        let keys = u64::from(filter.keys);
        self.sent
            .iter()
            .map(|&n| {
                filter
                    .accepted
                    .iter()
                    .enumerate()
                    .filter(|(_, &accepted)| accepted)
                    .map(|(key, _)| n / keys + u64::from((key as u64) < n % keys))
                    .sum::<u64>()
            })
            .sum()
    }

    fn expects(&self, producer: u32, sequence: u64) -> bool {
        let sent = self.sent.get(producer as usize).copied().unwrap_or(0);
        sequence < sent
            && self
                .filter
                .as_ref()
                .is_none_or(|f| f.accepted[(sequence % u64::from(f.keys)) as usize])
    }
}

/// The outcome of the check, for one delivery group or (combined) for a whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Messages that should have arrived.
    pub expected: u64,
    /// Messages that did arrive, counting duplicates and strays.
    pub received: u64,
    /// Expected messages that never arrived.
    pub missing: u64,
    /// Extra arrivals of a message already received in its group.
    pub duplicates: u64,
    /// Arrivals out of per-producer order at a consumer.
    pub reordered: u64,
    /// Arrivals of messages the group should not see.
    pub unexpected: u64,
    /// Arrivals without a readable stamp.
    pub malformed: u64,
    /// A few examples of each kind of violation.
    pub examples: Vec<Violation>,
}

impl CheckReport {
    /// Every expected message arrived once, and nothing else arrived.
    pub fn exactly_once(&self) -> bool {
        self.missing == 0 && self.duplicates == 0 && self.unexpected == 0 && self.malformed == 0
    }

    /// Every consumer saw each producer's messages in the order they were sent.
    pub fn in_order(&self) -> bool {
        self.reordered == 0
    }

    /// Exactly once and in order.
    pub fn passed(&self) -> bool {
        self.exactly_once() && self.in_order()
    }

    /// Adds the counts and examples of another group's report.
    pub fn combine(&mut self, other: CheckReport) {
        self.expected += other.expected;
        self.received += other.received;
        self.missing += other.missing;
        self.duplicates += other.duplicates;
        self.reordered += other.reordered;
        self.unexpected += other.unexpected;
        self.malformed += other.malformed;
        for example in other.examples {
            note(&mut self.examples, example);
        }
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "expected {}, received {}: {} missing, {} duplicated, {} reordered, {} unexpected, {} malformed",
            self.expected,
            self.received,
            self.missing,
            self.duplicates,
            self.reordered,
            self.unexpected,
            self.malformed
        )?;
        for example in &self.examples {
            write!(f, "\n  {example}")?;
        }
        Ok(())
    }
}

/// Checks the logs of one delivery group against what it should have received: duplicates
/// within and across its consumers, reorders at each consumer, messages missing from all of
/// them, and messages it should never have seen.
pub fn verify<'a>(
    logs: impl IntoIterator<Item = &'a DeliveryLog>,
    expected: &Expectation,
) -> CheckReport {
    let mut report = CheckReport {
        expected: expected.count(),
        ..CheckReport::default()
    };
    let mut merged: Vec<SequenceSet> = Vec::new();
    for log in logs {
        report.received += log.received;
        report.duplicates += log.duplicates;
        report.reordered += log.reordered;
        report.unexpected += log.unexpected;
        report.malformed += log.malformed;
        for example in &log.examples {
            note(&mut report.examples, *example);
        }
        if log.producers.len() > merged.len() {
            merged.resize_with(log.producers.len(), SequenceSet::default);
        }
        for (producer, track) in log.producers.iter().enumerate() {
            merged[producer].union_with(&track.seen, |sequence| {
                report.duplicates += 1;
                note(
                    &mut report.examples,
                    Violation::Duplicate {
                        producer: producer as u32,
                        sequence,
                    },
                );
            });
        }
    }
    for (producer, seen) in merged.iter().enumerate() {
        let producer = producer as u32;
        for sequence in seen.iter() {
            if !expected.expects(producer, sequence) {
                report.unexpected += 1;
                note(
                    &mut report.examples,
                    Violation::Unexpected { producer, sequence },
                );
            }
        }
    }
    let empty = SequenceSet::default();
    for (producer, &sent) in expected.sent.iter().enumerate() {
        let seen = merged.get(producer).unwrap_or(&empty);
        let producer = producer as u32;
        for sequence in 0..sent {
            if expected.expects(producer, sequence) && !seen.contains(sequence) {
                report.missing += 1;
                note(
                    &mut report.examples,
                    Violation::Missing { producer, sequence },
                );
            }
        }
    }
    report
}

/// Keeps `violation` as an example unless its kind has enough already.
fn note(examples: &mut Vec<Violation>, violation: Violation) {
    let same = examples
        .iter()
        .filter(|e| e.kind() == violation.kind())
        .count();
    if same < EXAMPLES_PER_KIND {
        examples.push(violation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bounds wide enough for every stamp the tests below record.
    fn wide() -> StampBounds {
        StampBounds::fixed(&[100; 8])
    }

    fn log_of(messages: &[(u32, u64)]) -> DeliveryLog {
        let mut log = DeliveryLog::new(wide());
        for &(producer, sequence) in messages {
            log.observe(producer, sequence);
        }
        log
    }

    #[test]
    fn a_complete_ordered_delivery_passes() {
        let a = log_of(&[(0, 0), (1, 0), (0, 1), (1, 1), (0, 2)]);
        let report = verify([&a], &Expectation::all(vec![3, 2]));
        assert!(report.passed(), "{report}");
        assert_eq!((report.expected, report.received), (5, 5));
    }

    #[test]
    fn a_dropped_message_is_reported() {
        let a = log_of(&[(0, 0), (0, 2)]);
        let report = verify([&a], &Expectation::all(vec![3]));
        assert!(!report.exactly_once());
        assert_eq!(report.missing, 1);
        assert_eq!(
            report.examples,
            vec![Violation::Missing {
                producer: 0,
                sequence: 1
            }]
        );
    }

    #[test]
    fn a_message_lost_at_the_end_is_reported() {
        let a = log_of(&[(0, 0), (0, 1)]);
        let report = verify([&a], &Expectation::all(vec![3]));
        assert_eq!(report.missing, 1);
    }

    #[test]
    fn a_duplicate_at_one_consumer_is_reported() {
        let a = log_of(&[(0, 0), (0, 1), (0, 1), (0, 2)]);
        let report = verify([&a], &Expectation::all(vec![3]));
        assert!(!report.exactly_once());
        assert_eq!((report.duplicates, report.reordered), (1, 0));
        assert!(report.examples.contains(&Violation::Duplicate {
            producer: 0,
            sequence: 1
        }));
    }

    #[test]
    fn a_duplicate_across_consumers_of_a_group_is_reported() {
        let a = log_of(&[(0, 0), (0, 2)]);
        let b = log_of(&[(0, 1), (0, 2)]);
        let report = verify([&a, &b], &Expectation::all(vec![3]));
        assert_eq!((report.duplicates, report.missing), (1, 0));
        assert!(!report.exactly_once());
    }

    #[test]
    fn a_reordered_message_is_reported() {
        let a = log_of(&[(0, 0), (0, 2), (0, 1), (0, 3)]);
        let report = verify([&a], &Expectation::all(vec![4]));
        assert!(report.exactly_once(), "{report}");
        assert!(!report.in_order());
        assert!(!report.passed());
        assert_eq!(
            report.examples,
            vec![Violation::Reordered {
                producer: 0,
                sequence: 1,
                after: 2
            }]
        );
    }

    #[test]
    fn order_is_per_producer_and_per_consumer() {
        // Interleaved producers, and two consumers each seeing an ordered subsequence.
        let a = log_of(&[(1, 0), (0, 0), (1, 2), (0, 3)]);
        let b = log_of(&[(0, 1), (1, 1), (0, 2)]);
        let report = verify([&a, &b], &Expectation::all(vec![4, 3]));
        assert!(report.passed(), "{report}");
    }

    #[test]
    fn messages_never_sent_are_unexpected() {
        let a = log_of(&[(0, 0), (0, 1), (0, 9), (4, 0)]);
        let report = verify([&a], &Expectation::all(vec![2]));
        assert_eq!(report.unexpected, 2);
        assert!(!report.exactly_once());
    }

    #[test]
    fn malformed_messages_fail_the_check() {
        let mut a = log_of(&[(0, 0)]);
        a.observe_malformed();
        let report = verify([&a], &Expectation::all(vec![1]));
        assert_eq!(report.malformed, 1);
        assert!(!report.exactly_once());
    }

    #[test]
    fn keyed_expectations_count_and_filter() {
        // 10 messages, 4 keys: key 1 has sequences 1, 5, 9.
        let expected = Expectation::keyed(vec![10], 4, [1]);
        assert_eq!(expected.count(), 3);
        assert_eq!(
            Expectation::keyed(vec![10, 3], 4, [0, 3]).count(),
            3 + 2 + 1
        );
        let good = log_of(&[(0, 1), (0, 5), (0, 9)]);
        assert!(verify([&good], &expected).passed());
        let stray = log_of(&[(0, 1), (0, 2), (0, 5), (0, 9)]);
        assert_eq!(verify([&stray], &expected).unexpected, 1);
        let short = log_of(&[(0, 1), (0, 9)]);
        assert_eq!(verify([&short], &expected).missing, 1);
    }

    #[test]
    fn reports_combine_and_keep_few_examples() {
        let a = log_of(&[]);
        let mut total = verify([&a], &Expectation::all(vec![100]));
        assert_eq!(total.missing, 100);
        assert_eq!(total.examples.len(), EXAMPLES_PER_KIND);
        total.combine(verify(
            [&log_of(&[(0, 0), (0, 0)])],
            &Expectation::all(vec![1]),
        ));
        assert_eq!(
            (total.expected, total.missing, total.duplicates),
            (101, 100, 1)
        );
        assert_eq!(total.examples.len(), EXAMPLES_PER_KIND + 1);
        assert!(total
            .to_string()
            .contains("duplicate: producer 0 message 0"));
    }

    #[test]
    fn forged_stamps_are_unexpected_and_allocate_nothing() {
        let mut log = DeliveryLog::new(StampBounds::fixed(&[2]));
        log.observe(0, 0);
        log.observe(u32::MAX, 0);
        log.observe(0, 1 << 40);
        log.observe(0, u64::MAX);
        log.observe(1, 0);
        log.observe(0, 1);
        assert_eq!(log.producers.len(), 1);
        assert!(log.producers[0].seen.words.len() <= 1);
        let report = verify([&log], &Expectation::all(vec![2]));
        assert_eq!(report.unexpected, 4, "{report}");
        assert_eq!(
            (report.missing, report.duplicates, report.reordered),
            (0, 0, 0)
        );
        assert_eq!(report.received, 6);
        assert!(!report.exactly_once());
        assert!(report.examples.contains(&Violation::Unexpected {
            producer: u32::MAX,
            sequence: 0
        }));
        assert!(report
            .to_string()
            .contains("unexpected: producer 0 message 1099511627776"));
    }

    #[test]
    fn open_bounds_admit_what_producers_announced() {
        let bounds = StampBounds::open(1);
        let mut log = DeliveryLog::new(bounds.clone());
        bounds.announce(0, 0);
        log.observe(0, 0);
        log.observe(0, 1 << 40);
        let report = verify([&log], &Expectation::all(vec![1]));
        assert_eq!((report.unexpected, report.missing), (1, 0), "{report}");
    }
}
