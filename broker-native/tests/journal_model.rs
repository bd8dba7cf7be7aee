//! The journal against a model: random sends, removals, delivery counts, transactions, queue
//! deletions, maintenance (deleting dead segments, compacting) and reopens; after every
//! reopen the replayed state equals the model's, in order, with counts and bodies.

use bytes::Bytes;
use courier_broker::storage::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Send {
        queue: u8,
        size: u16,
    },
    Remove(usize),
    Count(usize, u32),
    Commit {
        sends: Vec<(u8, u16)>,
        acks: Vec<usize>,
    },
    DeleteQueue(u8),
    Maintain,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..3, 0u16..400).prop_map(|(queue, size)| Op::Send { queue, size }),
        5 => any::<usize>().prop_map(Op::Remove),
        2 => (any::<usize>(), 1u32..9).prop_map(|(i, c)| Op::Count(i, c)),
        2 => (
            prop::collection::vec((0u8..3, 0u16..200), 0..3),
            prop::collection::vec(any::<usize>(), 0..3)
        )
            .prop_map(|(sends, acks)| Op::Commit { sends, acks }),
        1 => (0u8..3).prop_map(Op::DeleteQueue),
        2 => Just(Op::Maintain),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Clone, Debug, PartialEq)]
struct Live {
    id: u64,
    queue: u8,
    size: u16,
    count: u32,
}

fn stored(id: u64, queue: u8, size: u16) -> StoredMessage {
    StoredMessage {
        id,
        owners: vec![Owner::Queue(format!("q{queue}").into())],
        body: Bytes::from(vec![(id % 256) as u8; size as usize]),
    }
}

fn check(r: &Recovered, model: &[Live]) {
    let got: Vec<Live> = r
        .messages
        .iter()
        .map(|m| Live {
            id: m.id,
            queue: match &m.owner {
                Owner::Queue(q) => q[1..].parse().unwrap(),
                Owner::Subscription(_) => panic!("no subscriptions here"),
            },
            size: m.body.as_ref().unwrap().len() as u16,
            count: m.delivery_count,
        })
        .collect();
    assert_eq!(got, model);
    for m in &r.messages {
        assert!(m
            .body
            .as_ref()
            .unwrap()
            .iter()
            .all(|b| *b == (m.id % 256) as u8));
    }
    assert!(r.report.torn_tail.is_none() && r.report.skipped.is_empty());
}

fn run(ops: Vec<Op>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let options = JournalOptions {
            segment_size: 4096,
            ..JournalOptions::default()
        };
        let (mut j, _) = Journal::open(dir.path(), options.clone()).unwrap();
        let mut model: Vec<Live> = Vec::new();
        let mut next = 1u64;
        for op in ops {
            let record = match op {
                Op::Send { queue, size } => {
                    model.push(Live {
                        id: next,
                        queue,
                        size,
                        count: 0,
                    });
                    next += 1;
                    Record::Send(stored(next - 1, queue, size))
                }
                Op::Remove(i) => {
                    if model.is_empty() {
                        // Removing an unknown id is harmless.
                        Record::Remove {
                            owner: Owner::Queue("q0".into()),
                            id: next + 1000,
                        }
                    } else {
                        let m = model.remove(i % model.len());
                        Record::Remove {
                            owner: Owner::Queue(format!("q{}", m.queue).into()),
                            id: m.id,
                        }
                    }
                }
                Op::Count(i, c) => {
                    if model.is_empty() {
                        continue;
                    }
                    let n = model.len();
                    let m = &mut model[i % n];
                    m.count += c;
                    Record::DeliveryCount {
                        owner: Owner::Queue(format!("q{}", m.queue).into()),
                        id: m.id,
                        count: m.count,
                    }
                }
                Op::Commit { sends, acks } => {
                    let mut acked = Vec::new();
                    for a in acks {
                        if !model.is_empty() {
                            let m = model.remove(a % model.len());
                            acked.push((Owner::Queue(format!("q{}", m.queue).into()), m.id));
                        }
                    }
                    let mut out = Vec::new();
                    for (queue, size) in sends {
                        model.push(Live {
                            id: next,
                            queue,
                            size,
                            count: 0,
                        });
                        out.push(stored(next, queue, size));
                        next += 1;
                    }
                    Record::Commit {
                        sends: out,
                        acks: acked,
                    }
                }
                Op::DeleteQueue(q) => {
                    model.retain(|m| m.queue != q);
                    Record::QueueDeleted(format!("q{q}").into())
                }
                Op::Maintain => {
                    j.maintain().unwrap();
                    continue;
                }
                Op::Reopen => {
                    drop(j);
                    let (j2, r) = Journal::open(dir.path(), options.clone()).unwrap();
                    j = j2;
                    check(&r, &model);
                    continue;
                }
            };
            j.append(record).await.unwrap().await.unwrap();
        }
        j.maintain().unwrap();
        let live_segments = j.stats().segments;
        drop(j);
        let (_, r) = Journal::open(dir.path(), options).unwrap();
        check(&r, &model);
        // Disk use follows the backlog: no more segments than the live bytes need, plus the
        // one being written and a sparse one not yet worth compacting.
        let live_bytes: u64 = model.iter().map(|m| m.size as u64 + 64).sum();
        assert!(
            live_segments <= 3 + 2 * live_bytes / 4096,
            "{live_segments} segments for {live_bytes} live bytes"
        );
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn replay_equals_the_model(ops in prop::collection::vec(op(), 1..120)) {
        run(ops);
    }
}
