//! The journal on its own: round trip, group commit, torn tails, damage, missing segments,
//! dead-segment deletion, compaction, and a full disk.

use bytes::Bytes;
use courier_broker::storage::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn q(name: &str) -> Owner {
    Owner::Queue(name.into())
}

fn msg(id: u64, queue: &str, size: usize) -> Record {
    Record::Send(StoredMessage {
        id,
        owners: vec![q(queue)],
        body: Bytes::from(vec![(id % 251) as u8; size]),
    })
}

fn remove(id: u64) -> Record {
    Record::Remove { owner: q("q"), id }
}

fn small() -> JournalOptions {
    JournalOptions {
        segment_size: 4096,
        ..JournalOptions::default()
    }
}

fn ids(r: &Recovered) -> Vec<u64> {
    r.messages.iter().map(|m| m.id).collect()
}

async fn append(j: &Journal, r: Record) -> Result<()> {
    j.append(r).await?.await
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn everything_recorded_comes_back_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let sub = DurableSubscription {
        id: 7,
        topic: "t".into(),
        client_id: Some("client".into()),
        name: "sub".into(),
        selector: Some("x > 1".into()),
        no_local: true,
        shared: false,
    };
    {
        let (j, r) = Journal::open(dir.path(), small()).unwrap();
        assert!(r.messages.is_empty());
        append(&j, Record::QueueCreated("q".into())).await.unwrap();
        append(&j, Record::SubscriptionCreated(sub.clone()))
            .await
            .unwrap();
        for id in 1..=40 {
            append(&j, msg(id, "q", 100)).await.unwrap();
        }
        append(&j, remove(3)).await.unwrap();
        append(
            &j,
            Record::DeliveryCount {
                owner: q("q"),
                id: 5,
                count: 2,
            },
        )
        .await
        .unwrap();
        append(
            &j,
            Record::Commit {
                sends: vec![StoredMessage {
                    id: 41,
                    owners: vec![Owner::Subscription(7)],
                    body: Bytes::from_static(b"tx"),
                }],
                acks: vec![(q("q"), 1), (q("q"), 2)],
            },
        )
        .await
        .unwrap();
        j.close();
    }
    let (j, r) = Journal::open(dir.path(), small()).unwrap();
    let mut expected: Vec<u64> = (4..=40).collect();
    expected.push(41);
    assert_eq!(ids(&r), expected);
    assert_eq!(r.max_message_id, 41);
    assert_eq!(r.max_subscription_id, 7);
    let five = r.messages.iter().find(|m| m.id == 5).unwrap();
    assert_eq!(five.delivery_count, 2);
    assert_eq!(five.body.as_deref(), Some(&[5u8; 100][..]));
    let tx = r.messages.last().unwrap();
    assert_eq!(tx.owner, Owner::Subscription(7));
    assert_eq!(r.queues, vec![Arc::<str>::from("q")]);
    assert_eq!(r.subscriptions, vec![sub]);
    assert!(r.report.torn_tail.is_none() && r.report.skipped.is_empty());
    assert_eq!(j.read(&q("q"), 40).unwrap(), Bytes::from(vec![40u8; 100]));
    assert!(matches!(
        j.read(&q("q"), 3),
        Err(JournalError::UnknownMessage(3))
    ));
}

#[tokio::test]
async fn copies_of_a_fanned_out_message_and_dead_letters_live_on_their_own() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (j, _) = Journal::open(dir.path(), small()).unwrap();
        append(
            &j,
            Record::Send(StoredMessage {
                id: 1,
                owners: vec![
                    Owner::Subscription(1),
                    Owner::Subscription(2),
                    Owner::Subscription(3),
                ],
                body: Bytes::from_static(b"fan"),
            }),
        )
        .await
        .unwrap();
        append(
            &j,
            Record::Remove {
                owner: Owner::Subscription(1),
                id: 1,
            },
        )
        .await
        .unwrap();
        // Dead-lettering takes the bytes along, in the same batch as other appends too.
        let t1 = j
            .append(Record::DeadLettered {
                from: Owner::Subscription(2),
                id: 1,
                to: q("dlq"),
                new_id: 2,
            })
            .await
            .unwrap();
        let t2 = j.append(msg(3, "q", 5)).await.unwrap();
        t1.await.unwrap();
        t2.await.unwrap();
    }
    let (j, r) = Journal::open(dir.path(), small()).unwrap();
    let copies: Vec<(Owner, u64)> = r.messages.iter().map(|m| (m.owner.clone(), m.id)).collect();
    assert_eq!(
        copies,
        vec![(Owner::Subscription(3), 1), (q("dlq"), 2), (q("q"), 3)]
    );
    assert_eq!(j.read(&q("dlq"), 2).unwrap(), Bytes::from_static(b"fan"));
    assert_eq!(r.max_message_id, 3);
}

#[tokio::test]
async fn deleting_a_queue_or_subscription_removes_its_messages() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (j, _) = Journal::open(dir.path(), small()).unwrap();
        append(&j, msg(1, "a", 10)).await.unwrap();
        append(&j, msg(2, "b", 10)).await.unwrap();
        append(
            &j,
            Record::Send(StoredMessage {
                id: 3,
                owners: vec![Owner::Subscription(9)],
                body: Bytes::new(),
            }),
        )
        .await
        .unwrap();
        append(&j, Record::QueueDeleted("a".into())).await.unwrap();
        append(&j, Record::SubscriptionDeleted(9)).await.unwrap();
    }
    let (_, r) = Journal::open(dir.path(), small()).unwrap();
    assert_eq!(ids(&r), vec![2]);
}

#[tokio::test]
async fn concurrent_appenders_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    let j = Arc::new(j);
    let mut tasks = Vec::new();
    for p in 0..16u64 {
        let j = j.clone();
        tasks.push(tokio::spawn(async move {
            let mut tickets = Vec::new();
            for i in 0..100u64 {
                tickets.push(j.append(msg(p * 1000 + i, "q", 64)).await.unwrap());
            }
            for t in tickets {
                t.await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let s = j.stats();
    assert_eq!(s.appends, 1600);
    assert!(
        s.syncs * 4 < s.appends,
        "1600 pipelined appends took {} fsyncs",
        s.syncs
    );
    assert_eq!(s.syncs, s.batches);
}

#[tokio::test]
async fn oversized_records_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(dir.path(), small()).unwrap();
    let max = j.max_record_size();
    let err = j.append(msg(1, "q", 5000)).await.err().unwrap();
    assert!(matches!(err, JournalError::TooLarge { max: m, .. } if m == max));
    // The largest record that fits is stored, in a segment of its own.
    let body = max - msg(1, "q", 0).frame_len();
    append(&j, msg(2, "q", body)).await.unwrap();
    append(&j, msg(3, "q", body)).await.unwrap();
    drop(j);
    let (_, r) = Journal::open(dir.path(), small()).unwrap();
    assert_eq!(ids(&r), vec![2, 3]);
}

#[test]
fn bad_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for options in [
        JournalOptions {
            segment_size: 10,
            ..JournalOptions::default()
        },
        JournalOptions {
            compact_ratio: f64::NAN,
            ..JournalOptions::default()
        },
    ] {
        assert!(matches!(
            Journal::open(dir.path(), options),
            Err(JournalError::InvalidOptions(_))
        ));
    }
}

/// Writes records 1..=n one batch each; returns the file and the offset where record n starts.
async fn journal_of(dir: &Path, n: u64) -> (PathBuf, u64) {
    let (j, _) = Journal::open(dir, JournalOptions::default()).unwrap();
    for id in 1..n {
        append(&j, msg(id, "q", 20)).await.unwrap();
    }
    j.close();
    let seg = segments(dir).pop().unwrap();
    let before = std::fs::metadata(&seg).unwrap().len();
    let (j, _) = Journal::open(dir, JournalOptions::default()).unwrap();
    append(&j, msg(n, "q", 20)).await.unwrap();
    j.close();
    (seg, before)
}

#[tokio::test]
async fn truncation_at_every_byte_of_the_last_record_cuts_only_it() {
    let source = tempfile::tempdir().unwrap();
    let (seg, last_start) = journal_of(source.path(), 5).await;
    let full = std::fs::read(&seg).unwrap();
    for cut in last_start..full.len() as u64 {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(source.path(), dir.path());
        let target = dir.path().join(seg.file_name().unwrap());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&target)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let (j, r) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
        assert_eq!(ids(&r), vec![1, 2, 3, 4], "cut at {cut}");
        if cut == last_start {
            assert!(r.report.torn_tail.is_none());
        } else {
            let torn = r.report.torn_tail.clone().expect("torn tail reported");
            assert_eq!(
                (torn.offset, torn.bytes_cut),
                (last_start, cut - last_start)
            );
        }
        // The journal goes on after the cut, and the next start-up is clean.
        append(&j, msg(9, "q", 5)).await.unwrap();
        j.close();
        drop(j);
        let (_, r) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
        assert_eq!(ids(&r), vec![1, 2, 3, 4, 9], "cut at {cut}");
        assert!(r.report.torn_tail.is_none());
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn flip(path: &Path, offset: u64) {
    let mut data = std::fs::read(path).unwrap();
    data[offset as usize] ^= 0x08;
    std::fs::write(path, data).unwrap();
}

#[tokio::test]
async fn a_flipped_bit_in_the_middle_stops_start_up_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, _) = journal_of(dir.path(), 9).await;
    // Record 5's body: find it by content.
    let data = std::fs::read(&seg).unwrap();
    let at = data.windows(20).position(|w| w == [5u8; 20]).unwrap() as u64 + 10;
    flip(&seg, at);
    match Journal::open(dir.path(), JournalOptions::default()) {
        Err(JournalError::Corrupt { file, offset, .. }) => {
            assert_eq!(file, seg);
            assert!(offset < at && at - offset < 64, "offset {offset} vs {at}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let skip = JournalOptions {
        skip_corrupt: true,
        ..JournalOptions::default()
    };
    let (j, r) = Journal::open(dir.path(), skip.clone()).unwrap();
    assert_eq!(ids(&r), vec![1, 2, 3, 4, 6, 7, 8, 9]);
    assert_eq!(r.report.skipped.len(), 1);
    let lost = &r.report.skipped[0];
    assert_eq!(lost.file, seg);
    assert_eq!(
        lost.looked_like.as_deref(),
        Some("send of message 5 to queue:q")
    );
    append(&j, msg(10, "q", 5)).await.unwrap();
    drop(j);
    // The skip is remembered: the next plain start-up does not stop on it again.
    let (_, r) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    assert_eq!(ids(&r), vec![1, 2, 3, 4, 6, 7, 8, 9, 10]);
}

#[tokio::test]
async fn a_flipped_bit_in_a_length_field_or_batch_header_is_not_mistaken_for_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, _) = journal_of(dir.path(), 9).await;
    let data = std::fs::read(&seg).unwrap();
    let body = data.windows(20).position(|w| w == [4u8; 20]).unwrap();
    // Every byte of record 4's frame before its body (batch header, length, checksum, fields).
    let frame_start = body - 40;
    for at in frame_start..body {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        flip(&copy.path().join(seg.file_name().unwrap()), at as u64);
        assert!(
            matches!(
                Journal::open(copy.path(), JournalOptions::default()),
                Err(JournalError::Corrupt { .. })
            ),
            "flip at {at}"
        );
    }
}

#[tokio::test]
async fn a_missing_segment_or_manifest_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let options = JournalOptions {
        compaction: false,
        ..small()
    };
    {
        let (j, _) = Journal::open(dir.path(), options.clone()).unwrap();
        for id in 1..=60 {
            append(&j, msg(id, "q", 200)).await.unwrap();
        }
    }
    let segs = segments(dir.path());
    assert!(segs.len() >= 3);
    std::fs::remove_file(&segs[1]).unwrap();
    match Journal::open(dir.path(), options.clone()) {
        Err(JournalError::MissingSegment { file }) => assert_eq!(file, segs[1]),
        other => panic!("expected MissingSegment, got {other:?}"),
    }
    std::fs::remove_file(dir.path().join("MANIFEST")).unwrap();
    let err = Journal::open(dir.path(), options).unwrap_err();
    assert!(err.to_string().contains("manifest missing"), "{err}");
}

#[tokio::test]
async fn a_segment_of_another_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Journal::open(dir.path(), small()).unwrap());
    let seg = segments(dir.path()).pop().unwrap();
    let mut data = std::fs::read(&seg).unwrap();
    data[4] = 9;
    let crc = crc32c::crc32c(&data[0..20]);
    data[20..24].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&seg, data).unwrap();
    assert!(matches!(
        Journal::open(dir.path(), small()),
        Err(JournalError::Version { found: 9, .. })
    ));
}

#[tokio::test]
async fn consumed_segments_are_deleted_and_sparse_ones_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(dir.path(), small()).unwrap();
    // A backlog that is consumed: disk use follows it.
    for id in 1..=200 {
        append(&j, msg(id, "q", 200)).await.unwrap();
    }
    let grown = segments(dir.path()).len();
    assert!(grown > 8, "{grown} segments");
    // One long-lived message per segment-ish, the rest consumed.
    for id in 1..=200 {
        if id % 20 != 0 {
            append(&j, remove(id)).await.unwrap();
        }
    }
    j.maintain().unwrap();
    let s = j.stats();
    assert!(s.compactions >= 1, "{s:?}");
    // Counted once the journal is closed: background maintenance may be mid-step before.
    // Left: compacted copies, the newest sealed segment (never compacted) and the active one.
    drop(j);
    let left = segments(dir.path()).len();
    assert!(left <= 4, "{left} segments left of {grown}: {s:?}");
    let (j, r) = Journal::open(dir.path(), small()).unwrap();
    assert_eq!(ids(&r), (1..=10).map(|i| i * 20).collect::<Vec<_>>());
    for id in ids(&r) {
        assert_eq!(
            j.read(&q("q"), id).unwrap(),
            Bytes::from(vec![(id % 251) as u8; 200])
        );
    }
}

/// Runs maintenance until a compaction is done (by it, or by the background thread, which
/// may hold the one compaction at a time when `maintain` looks).
fn compacted(j: &Journal) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while j.stats().compactions == 0 {
        j.maintain().unwrap();
        assert!(std::time::Instant::now() < deadline, "{:?}", j.stats());
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The live backlog of the newest sealed segment is what a consumer is about to take:
/// compaction leaves that segment alone (its copy would die at once), and takes it once a
/// later segment is sealed.
#[tokio::test]
async fn the_newest_sealed_segment_is_not_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(dir.path(), small()).unwrap();
    // Fill one segment (200 B bodies, 4 KiB segments: about 17 each) and start the next.
    let mut id = 0;
    while j.stats().segments < 2 {
        id += 1;
        append(&j, msg(id, "q", 200)).await.unwrap();
    }
    let first = id - 1;
    // Everything but one message of the sealed segment consumed: sparse, but the newest.
    for gone in 2..=first {
        append(&j, remove(gone)).await.unwrap();
    }
    j.maintain().unwrap();
    assert_eq!(j.stats().compactions, 0, "{:?}", j.stats());
    // Once the next one is sealed, the first is no longer the newest: it is compacted.
    while j.stats().segments < 3 {
        id += 1;
        append(&j, msg(id, "q", 200)).await.unwrap();
    }
    compacted(&j);
    drop(j);
    let (_j, r) = Journal::open(dir.path(), small()).unwrap();
    let mut expected = vec![1];
    expected.extend(first + 1..=id);
    assert_eq!(ids(&r), expected);
}

/// A segment a third live is read whole for compaction (a sparse one frame by frame): both
/// ways, every live copy comes back with its bytes.
#[tokio::test]
async fn compaction_of_a_dense_prefix_keeps_every_live_copy() {
    let dir = tempfile::tempdir().unwrap();
    let options = JournalOptions {
        compact_ratio: 0.9,
        ..small()
    };
    let (j, _) = Journal::open(dir.path(), options.clone()).unwrap();
    for id in 1..=120 {
        append(&j, msg(id, "q", 200)).await.unwrap();
    }
    for id in (1..=120).filter(|id| id % 3 != 0) {
        append(&j, remove(id)).await.unwrap();
    }
    compacted(&j);
    let live: Vec<u64> = (1..=120).filter(|id| id % 3 == 0).collect();
    for id in &live {
        assert_eq!(
            j.read(&q("q"), *id).unwrap(),
            Bytes::from(vec![(id % 251) as u8; 200])
        );
    }
    drop(j);
    let (_j, r) = Journal::open(dir.path(), options).unwrap();
    assert_eq!(ids(&r), live);
}

#[tokio::test]
async fn memory_limit_leaves_later_messages_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (j, _) = Journal::open(dir.path(), small()).unwrap();
        for id in 1..=20 {
            append(&j, msg(id, "q", 100)).await.unwrap();
        }
    }
    let options = JournalOptions {
        memory_limit: Some(1000),
        ..small()
    };
    let (j, r) = Journal::open(dir.path(), options).unwrap();
    let loaded = r.messages.iter().filter(|m| m.body.is_some()).count();
    assert_eq!(loaded, 10);
    assert!(r.messages[10..].iter().all(|m| m.body.is_none()));
    for m in &r.messages[10..] {
        assert_eq!(
            j.read(&m.owner, m.id).unwrap(),
            Bytes::from(vec![m.id as u8; 100])
        );
    }
}

#[tokio::test]
async fn a_full_disk_fails_appends_with_resource_limit_and_heals() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(FaultInjector::default());
    let options = JournalOptions {
        faults: Some(faults.clone()),
        ..small()
    };
    let (j, _) = Journal::open(dir.path(), options.clone()).unwrap();
    let mut confirmed = Vec::new();
    let mut id = 0;
    // Space for a few records; the write that hits the limit is partly written, as on a disk.
    faults.set_space(1000);
    let mut full = 0;
    while full < 5 {
        id += 1;
        match append(&j, msg(id, "q", 150)).await {
            Ok(()) => confirmed.push(id),
            Err(JournalError::ResourceLimit(_)) => full += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(!confirmed.is_empty());
    // Readers are still served while the disk is full.
    assert!(j.read(&q("q"), confirmed[0]).is_ok());
    faults.free_space();
    for _ in 0..30 {
        id += 1;
        append(&j, msg(id, "q", 150)).await.unwrap();
        confirmed.push(id);
    }
    // A failed fdatasync fails its batch only.
    faults.fail_next_sync();
    assert!(append(&j, msg(1000, "q", 10)).await.is_err());
    id += 1;
    append(&j, msg(id, "q", 10)).await.unwrap();
    confirmed.push(id);
    drop(j);
    let (_, r) = Journal::open(dir.path(), small()).unwrap();
    assert_eq!(ids(&r), confirmed);
    assert!(r.report.torn_tail.is_none() && r.report.skipped.is_empty());
}

#[tokio::test]
async fn a_full_disk_while_starting_a_segment_or_compacting_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(FaultInjector::default());
    let options = JournalOptions {
        faults: Some(faults.clone()),
        ..small()
    };
    let (j, _) = Journal::open(dir.path(), options).unwrap();
    let mut confirmed = Vec::new();
    for id in 1..=60 {
        append(&j, msg(id, "q", 200)).await.unwrap();
        confirmed.push(id);
    }
    for id in 1..=50 {
        append(&j, remove(id)).await.unwrap();
        confirmed.retain(|x| *x != id);
    }
    // Little space: compaction (background or here) and new segments run out of it.
    faults.set_space(3000);
    let _ = j.maintain();
    let mut id = 100;
    let mut failed = 0;
    for _ in 0..40 {
        id += 1;
        match append(&j, msg(id, "q", 200)).await {
            Ok(()) => confirmed.push(id),
            Err(JournalError::ResourceLimit(_)) => failed += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(failed > 0);
    faults.free_space();
    j.maintain().unwrap();
    for _ in 0..5 {
        id += 1;
        append(&j, msg(id, "q", 200)).await.unwrap();
        confirmed.push(id);
    }
    drop(j);
    let (_, r) = Journal::open(dir.path(), small()).unwrap();
    assert_eq!(ids(&r), confirmed);
}

/// A real full file system: a 1 MiB tmpfs (needs root to mount; CI runs as root).
#[tokio::test]
async fn a_real_full_file_system() {
    let mount = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(mount.path())
        .status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("skipped: cannot mount a tmpfs here (not root?)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.path().to_owned());
    // Something else fills most of the disk; deleting it is "freeing space".
    let ballast = mount.path().join("ballast");
    std::fs::write(&ballast, vec![1u8; 600 << 10]).unwrap();
    let dir = mount.path().join("journal");
    let options = JournalOptions {
        segment_size: 128 << 10,
        ..JournalOptions::default()
    };
    let (j, _) = Journal::open(&dir, options.clone()).unwrap();
    let mut confirmed = Vec::new();
    let mut full = 0;
    let mut id = 0;
    while full < 3 {
        id += 1;
        match append(&j, msg(id, "q", 1000)).await {
            Ok(()) => confirmed.push(id),
            Err(JournalError::ResourceLimit(_)) => full += 1,
            Err(e) => panic!("unexpected {e}"),
        }
        assert!(id < 5000, "never ran out of space");
    }
    assert!(confirmed.len() > 100, "{} fit", confirmed.len());
    // Stored messages are still read while the disk is full.
    assert!(j.read(&q("q"), confirmed[0]).is_ok());
    std::fs::remove_file(&ballast).unwrap();
    for _ in 0..100 {
        id += 1;
        append(&j, msg(id, "q", 1000)).await.unwrap();
        confirmed.push(id);
    }
    drop(j);
    let (_, r) = Journal::open(&dir, options).unwrap();
    assert_eq!(ids(&r), confirmed);
    assert!(r.report.torn_tail.is_none() && r.report.skipped.is_empty());
}
