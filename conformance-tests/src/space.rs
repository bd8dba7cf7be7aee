//! Tuple spaces (`courier-space`): JavaSpaces / Linda operations over the backend — write,
//! read, take and their waiting and `_if_exists` forms, templates, leases, transactions,
//! notifications, isolation, exactly-once takes under concurrency and persistence.
use courier_api::*;
use courier_space::{Space, SpaceOptions, Template, FOREVER};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Harness;

/// The entry type most cases use.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Task {
    id: i64,
    kind: String,
    size: u32,
    owner: Option<String>,
}

/// Same fields as [`Task`], another type: templates for one never see the other.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Job {
    id: i64,
    kind: String,
    size: u32,
    owner: Option<String>,
}

/// A worker's answer in the bag-of-tasks run.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Outcome {
    task: i64,
    worker: u32,
    value: i64,
}

/// An entry with fields that cannot be matched.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Awkward {
    tags: Vec<String>,
    nested: Outcome,
    not: bool,
    data: String,
}

fn task(id: i64, kind: &str, size: u32) -> Task {
    Task {
        id,
        kind: kind.to_owned(),
        size,
        owner: None,
    }
}

/// A started connection shared by a space and the case.
async fn connect(h: &dyn Harness) -> Result<Arc<dyn Connection>> {
    Ok(h.connect().await?.into())
}

/// A new space with a unique name on a new connection.
async fn open(h: &dyn Harness) -> Result<(Arc<dyn Connection>, Space)> {
    let connection = connect(h).await?;
    let space = Space::open(&connection, &h.name("space")).await?;
    Ok((connection, space))
}

fn tasks() -> Template<Task> {
    Template::any().expect("Task is an entry type")
}

fn kind(kind: &str) -> Template<Task> {
    Template::builder()
        .eq("kind", kind)
        .build()
        .expect("a valid template")
}

/// Takes every remaining entry matching `template` (without waiting) and returns their ids.
async fn drain(space: &Space, template: &Template<Task>) -> Result<Vec<i64>> {
    let mut ids: Vec<i64> = space
        .take_many(template, usize::MAX, Duration::ZERO)
        .await?
        .iter()
        .map(|t| t.id)
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

/// Writes entries of every kind and takes them back unchanged; the entry is gone after.
pub async fn round_trip_write_read_take(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    let original = Task {
        id: 1,
        kind: "resize 'quoted' ünïcode".into(),
        size: u32::MAX,
        owner: Some("ann".into()),
    };
    let lease = space.write(&original, FOREVER).await?;
    assert_eq!(lease.type_name(), "Task");
    assert!(
        lease.expiration().is_none(),
        "a FOREVER lease never expires"
    );
    assert_eq!(
        space.read(&tasks(), h.wait()).await?,
        Some(original.clone())
    );
    assert_eq!(space.take(&tasks(), h.wait()).await?, Some(original));
    assert_eq!(space.take_if_exists(&tasks()).await?, None, "taken once");
    let awkward = Awkward {
        tags: vec!["a".into(), "b".into()],
        nested: Outcome {
            task: 1,
            worker: 2,
            value: -3,
        },
        not: true,
        data: "x".into(),
    };
    space.write(&awkward, FOREVER).await?;
    let back = space.take(&Template::<Awkward>::any()?, h.wait()).await?;
    assert_eq!(
        back,
        Some(awkward),
        "non-matchable fields travel in the body"
    );
    connection.close().await
}

/// `read` returns a copy and leaves the entry; only `take` removes it.
pub async fn read_leaves_entry_take_removes_it(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    space.write(&task(1, "a", 1), FOREVER).await?;
    for _ in 0..3 {
        assert_eq!(space.read_if_exists(&tasks()).await?.map(|t| t.id), Some(1));
    }
    assert_eq!(space.read(&tasks(), h.wait()).await?.map(|t| t.id), Some(1));
    assert_eq!(space.take(&tasks(), h.wait()).await?.map(|t| t.id), Some(1));
    assert_eq!(space.read_if_exists(&tasks()).await?, None);
    connection.close().await
}

/// A template without conditions matches every entry of its type, whatever the field values.
pub async fn wildcard_template_matches_every_entry_of_its_type(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    for (id, k) in [(1, "a"), (2, "b"), (3, "c")] {
        let mut t = task(id, k, id as u32 * 100);
        t.owner = (id == 2).then(|| "bob".to_owned());
        space.write(&t, FOREVER).await?;
    }
    assert_eq!(drain(&space, &tasks()).await?, vec![1, 2, 3]);
    connection.close().await
}

/// JavaSpaces matching: exact values for some fields, the others are wildcards.
pub async fn exact_values_match_and_other_fields_are_wildcards(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    for (id, k, size) in [(1, "resize", 10), (2, "crop", 10), (3, "resize", 20)] {
        space.write(&task(id, k, size), FOREVER).await?;
    }
    let exact = Template::<Task>::builder()
        .eq("kind", "resize")
        .eq("size", 20)
        .build()?;
    assert_eq!(space.take(&exact, h.wait()).await?.map(|t| t.id), Some(3));
    assert_eq!(
        space.take_if_exists(&exact).await?,
        None,
        "only one matched"
    );
    assert_eq!(drain(&space, &kind("resize")).await?, vec![1]);
    assert_eq!(drain(&space, &kind("crop")).await?, vec![2]);
    assert_eq!(
        space.take_if_exists(&kind("nothing")).await?,
        None,
        "a value no entry has matches nothing"
    );
    connection.close().await
}

/// Entries of another type never match, even with the same fields and values.
pub async fn entry_of_another_type_never_matches(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    let job = Job {
        id: 1,
        kind: "resize".into(),
        size: 10,
        owner: None,
    };
    space.write(&job, FOREVER).await?;
    assert_eq!(space.take_if_exists(&kind("resize")).await?, None);
    assert_eq!(
        space.take(&tasks(), h.quiet()).await?,
        None,
        "a Task template"
    );
    let jobs = Template::<Job>::builder().eq("kind", "resize").build()?;
    assert_eq!(space.take(&jobs, h.wait()).await?, Some(job));
    connection.close().await
}

/// A value of another type never matches: `3_i32` is not `"3"`, and tuple element types are
/// part of the tuple's type (`(i32,)` is not `(i64,)`). A struct template asking a field for
/// a value of another type is refused at creation.
pub async fn value_of_another_type_never_matches(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    space.write(&(3_i32,), FOREVER).await?;
    space.write(&("3",), FOREVER).await?;
    assert_eq!(
        space.take_if_exists(&Template::<(i64,)>::any()?).await?,
        None,
        "(i64,) does not match (i32,)"
    );
    let text = Template::<(String,)>::builder().eq(0, "3").build()?;
    assert_eq!(space.take(&text, h.wait()).await?, Some(("3".to_owned(),)));
    assert_eq!(
        space.take_if_exists(&text).await?,
        None,
        "3_i32 is not \"3\""
    );
    let int = Template::<(i32,)>::builder().eq(0, 3).build()?;
    assert_eq!(space.take(&int, h.wait()).await?, Some((3,)));
    match Template::<Task>::builder().eq("size", "3").build() {
        Err(Error::InvalidArgument(reason)) => {
            assert!(reason.contains("size"), "names the field: {reason}")
        }
        other => panic!("a string value for a u32 field must be refused, got {other:?}"),
    }
    connection.close().await
}

/// Ranges and comparisons on numeric fields.
pub async fn range_templates_select_numeric_ranges(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    for id in 0..10 {
        space.write(&task(id, "r", id as u32 * 10), FOREVER).await?;
    }
    let between = Template::<Task>::builder().range("size", 20..=40).build()?;
    let contents: Vec<Task> = space.contents(&between).await?.try_collect().await?;
    let mut ids: Vec<i64> = contents.iter().map(|t| t.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![2, 3, 4], "BETWEEN is inclusive");
    let half_open = Template::<Task>::builder().range("size", 20..40).build()?;
    assert_eq!(drain(&space, &half_open).await?, vec![2, 3]);
    let above = Template::<Task>::builder().gt("id", 7).build()?;
    assert_eq!(drain(&space, &above).await?, vec![8, 9]);
    let at_most = Template::<Task>::builder().le("size", 10).build()?;
    assert_eq!(drain(&space, &at_most).await?, vec![0, 1]);
    assert_eq!(drain(&space, &tasks()).await?, vec![4, 5, 6, 7]);
    connection.close().await
}

/// `one_of` (SQL `IN`) on string and numeric fields.
pub async fn in_templates_select_listed_values(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    for (id, k) in [(1, "a"), (2, "b"), (3, "c"), (4, "d'e")] {
        space.write(&task(id, k, 0), FOREVER).await?;
    }
    let kinds = Template::<Task>::builder()
        .one_of("kind", ["b", "d'e", "zzz"])
        .build()?;
    assert_eq!(drain(&space, &kinds).await?, vec![2, 4]);
    let ids = Template::<Task>::builder().one_of("id", [1, 3]).build()?;
    assert_eq!(drain(&space, &ids).await?, vec![1, 3]);
    connection.close().await
}

/// `like` with `%` and `_`, and `\` escaping a wildcard.
pub async fn like_templates_match_patterns(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    for (id, k) in [
        (1, "resize-png"),
        (2, "resize-jpg"),
        (3, "crop"),
        (4, "100%"),
    ] {
        space.write(&task(id, k, 0), FOREVER).await?;
    }
    let png = Template::<Task>::builder().like("kind", "%png").build()?;
    assert_eq!(drain(&space, &png).await?, vec![1]);
    let resize = Template::<Task>::builder()
        .like("kind", "resize-_pg")
        .build()?;
    assert_eq!(drain(&space, &resize).await?, vec![2]);
    let literal = Template::<Task>::builder().like("kind", "100\\%").build()?;
    assert_eq!(drain(&space, &literal).await?, vec![4]);
    assert_eq!(drain(&space, &tasks()).await?, vec![3]);
    connection.close().await
}

/// `Option` fields: `None` is NULL; `is_none`/`is_some` and values match as expected.
pub async fn option_fields_match_none_and_values(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    for (id, owner) in [(1, None), (2, Some("ann")), (3, Some("bob"))] {
        let mut t = task(id, "o", 0);
        t.owner = owner.map(str::to_owned);
        space.write(&t, FOREVER).await?;
    }
    let ann = Template::<Task>::builder().eq("owner", "ann").build()?;
    assert_eq!(drain(&space, &ann).await?, vec![2]);
    let unowned = Template::<Task>::builder().is_none("owner").build()?;
    assert_eq!(drain(&space, &unowned).await?, vec![1]);
    let owned = Template::<Task>::builder().is_some("owner").build()?;
    assert_eq!(drain(&space, &owned).await?, vec![3]);
    connection.close().await
}

/// Linda: positional tuples written as `("task", 7_i64, "resize")` match by position.
pub async fn linda_tuples_match_by_position(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    space.write(&("task", 7_i64, "resize"), FOREVER).await?;
    space.write(&("task", 8_i64, "crop"), FOREVER).await?;
    space.write(&("result", 7_i64, "ok"), FOREVER).await?;
    type Triple = (String, i64, String);
    let crop = Template::<Triple>::builder()
        .eq(0, "task")
        .eq(2, "crop")
        .build()?;
    assert_eq!(
        space.take(&crop, h.wait()).await?,
        Some(("task".into(), 8, "crop".into()))
    );
    let results = Template::<Triple>::builder().eq(0, "result").build()?;
    assert_eq!(
        space.read(&results, h.wait()).await?,
        Some(("result".into(), 7, "ok".into()))
    );
    let narrower = Template::<(String, i32, String)>::any()?;
    assert_eq!(
        space.take_if_exists(&narrower).await?,
        None,
        "an (str,i32,str) template does not match (str,i64,str) tuples"
    );
    let pairs = Template::<(String, i64)>::any()?;
    assert_eq!(space.take_if_exists(&pairs).await?, None, "arity differs");
    assert_eq!(
        space
            .take_many(&Template::<Triple>::any()?, 10, h.wait())
            .await?
            .len(),
        2
    );
    connection.close().await
}

/// `read_if_exists` and `take_if_exists` on an empty space return `None` at once.
pub async fn if_exists_on_empty_space_returns_none_at_once(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    let started = Instant::now();
    assert_eq!(space.read_if_exists(&tasks()).await?, None);
    assert_eq!(space.take_if_exists(&tasks()).await?, None);
    assert_eq!(space.take(&tasks(), Duration::ZERO).await?, None);
    assert!(space
        .take_many(&tasks(), 5, Duration::ZERO)
        .await?
        .is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the _if_exists forms must not wait (took {:?})",
        started.elapsed()
    );
    connection.close().await
}

/// A waiting take with a timeout returns `None` once the timeout passes, not much later.
pub async fn waiting_take_and_read_time_out_empty(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    space.write(&task(1, "other", 0), FOREVER).await?;
    let timeout = Duration::from_millis(300);
    for read in [false, true] {
        let started = Instant::now();
        let got = if read {
            space.read(&kind("wanted"), timeout).await?
        } else {
            space.take(&kind("wanted"), timeout).await?
        };
        let waited = started.elapsed();
        assert_eq!(got, None, "nothing matches (read: {read})");
        assert!(waited >= timeout, "returned early after {waited:?}");
        assert!(
            waited < timeout + Duration::from_secs(2),
            "returned late after {waited:?}"
        );
    }
    connection.close().await
}

/// A take waiting for a match is woken by a later matching write, and only by a matching
/// one.
pub async fn waiting_take_woken_by_later_matching_write(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    let waiter = {
        let space = space.clone();
        let wait = h.wait();
        tokio::spawn(async move {
            let started = Instant::now();
            let got = space.take(&kind("wanted"), wait).await;
            (got, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    space.write(&task(1, "other", 0), FOREVER).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !waiter.is_finished(),
        "a non-matching write must not end the wait"
    );
    let written = Instant::now();
    space.write(&task(2, "wanted", 0), FOREVER).await?;
    let (got, waited) = waiter.await.expect("waiting task panicked");
    assert_eq!(got?.map(|t| t.id), Some(2));
    assert!(
        written.elapsed() < Duration::from_secs(2) && waited < h.wait(),
        "the take was not woken promptly by the write (waited {waited:?})"
    );
    assert_eq!(
        drain(&space, &tasks()).await?,
        vec![1],
        "the other entry stays"
    );
    connection.close().await
}

/// A waiting take is woken by a matching write even when another process has an idle
/// taker on the same template (one that looked with `take_if_exists` and found nothing):
/// the write must not be announced to the idle taker only.
pub async fn waiting_take_woken_despite_idle_takers(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    let other = Space::open(&connection, space.name()).await?;
    assert_eq!(other.take_if_exists(&kind("wanted")).await?, None);
    let waiter = {
        let space = space.clone();
        let wait = h.wait();
        tokio::spawn(async move {
            let started = Instant::now();
            let got = space.take(&kind("wanted"), wait).await;
            (got, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    space.write(&task(1, "wanted", 0), FOREVER).await?;
    let (got, waited) = waiter.await.expect("waiting task panicked");
    assert_eq!(got?.map(|t| t.id), Some(1));
    assert!(
        waited < Duration::from_secs(2),
        "the waiting take was woken only after {waited:?} (the write was written after 200ms)"
    );
    connection.close().await
}

/// A read waiting for a match is woken by a later matching write and leaves the entry.
pub async fn waiting_read_woken_by_later_matching_write(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    let waiter = {
        let space = space.clone();
        let wait = h.wait();
        tokio::spawn(async move { space.read(&kind("wanted"), wait).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    space.write(&task(1, "other", 0), FOREVER).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiter.is_finished(),
        "a non-matching write must not end the read"
    );
    let written = Instant::now();
    space.write(&task(2, "wanted", 0), FOREVER).await?;
    let got = waiter.await.expect("waiting task panicked")?;
    assert_eq!(got.map(|t| t.id), Some(2));
    assert!(written.elapsed() < Duration::from_secs(2), "woken promptly");
    assert_eq!(
        drain(&space, &tasks()).await?,
        vec![1, 2],
        "read removes nothing"
    );
    connection.close().await
}

/// How a transaction that took an entry ends without committing.
#[derive(Clone, Copy, Debug)]
enum Unwind {
    Abort,
    Drop,
    Timeout,
}

/// A read waiting for ever is woken when the entry it waits for comes back to the space
/// because the transaction that took it ended as `unwind` says; `notify` does not report
/// the entry again (it came back, it was not written).
async fn waiting_read_woken_by_returned_take(h: &dyn Harness, unwind: Unwind) -> Result<()> {
    let (connection, space) = open(h).await?;
    let mut events = space.notify(&kind("held")).await?;
    space.write(&task(1, "held", 0), FOREVER).await?;
    let written = tokio::time::timeout(h.wait(), events.next()).await;
    assert_eq!(
        written.expect("reported").transpose()?.map(|t| t.id),
        Some(1)
    );
    let mut tx = match unwind {
        Unwind::Timeout => {
            space
                .transaction_with_timeout(Duration::from_millis(1500))
                .await?
        }
        Unwind::Abort | Unwind::Drop => space.transaction().await?,
    };
    assert_eq!(
        tx.take(&kind("held"), h.wait()).await?.map(|t| t.id),
        Some(1)
    );
    let reader = {
        let space = space.clone();
        tokio::spawn(async move { space.read(&kind("held"), FOREVER).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !reader.is_finished(),
        "the entry is held by the transaction, so the read waits"
    );
    match unwind {
        Unwind::Abort => tx.abort().await?,
        Unwind::Drop => drop(tx),
        Unwind::Timeout => {} // the transaction's own timer rolls it back
    }
    let got = tokio::time::timeout(h.wait(), reader)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "a read waiting FOREVER was not woken within {:?} after the {unwind:?}",
                h.wait()
            )
        });
    assert_eq!(got.expect("reader panicked")?.map(|t| t.id), Some(1));
    assert!(
        tokio::time::timeout(h.quiet(), events.next())
            .await
            .is_err(),
        "an entry coming back is not a write: notify stays quiet"
    );
    assert_eq!(drain(&space, &tasks()).await?, vec![1], "the entry is back");
    connection.close().await
}

/// A read waiting for ever gets the entry when the transaction that took it aborts.
pub async fn waiting_read_woken_by_aborted_take(h: &dyn Harness) -> Result<()> {
    waiting_read_woken_by_returned_take(h, Unwind::Abort).await
}

/// A read waiting for ever gets the entry when the transaction that took it is dropped.
pub async fn waiting_read_woken_by_dropped_take(h: &dyn Harness) -> Result<()> {
    waiting_read_woken_by_returned_take(h, Unwind::Drop).await
}

/// A read waiting for ever gets the entry when the transaction that took it times out.
pub async fn waiting_read_woken_by_timed_out_take(h: &dyn Harness) -> Result<()> {
    waiting_read_woken_by_returned_take(h, Unwind::Timeout).await
}

/// An entry is gone once its lease expires.
pub async fn lease_expiry_removes_entry(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    let lease = space
        .write(&task(1, "short", 0), Duration::from_millis(300))
        .await?;
    space.write(&task(2, "long", 0), FOREVER).await?;
    assert!(lease.expiration().is_some());
    assert_eq!(
        space.read_if_exists(&kind("short")).await?.map(|t| t.id),
        Some(1)
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(space.read_if_exists(&kind("short")).await?, None, "expired");
    assert_eq!(space.take_if_exists(&kind("short")).await?, None, "expired");
    assert_eq!(drain(&space, &tasks()).await?, vec![2]);
    connection.close().await
}

/// Cancelling a lease removes exactly its entry; cancelling after a take reports false.
pub async fn lease_cancel_removes_exactly_its_entry(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    let first = space.write(&task(1, "same", 0), FOREVER).await?;
    let second = space.write(&task(2, "same", 0), FOREVER).await?;
    let third = space.write(&task(3, "same", 0), FOREVER).await?;
    assert_ne!(first.entry_id(), second.entry_id());
    assert!(second.cancel().await?, "the entry was there");
    assert_eq!(space.take(&tasks(), h.wait()).await?.map(|t| t.id), Some(1));
    assert!(!first.cancel().await?, "already taken: nothing to cancel");
    assert_eq!(drain(&space, &tasks()).await?, vec![3]);
    assert!(!third.cancel().await?);
    connection.close().await
}

/// Renewing a lease keeps the entry past its first expiry; renewing a gone entry fails.
pub async fn lease_renew_extends_entry(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    let mut lease = space
        .write(&task(1, "renewed", 0), Duration::from_millis(400))
        .await?;
    let mut other = space
        .write(&task(2, "lapsing", 0), Duration::from_millis(400))
        .await?;
    let before = lease.expiration().expect("a finite lease");
    lease.renew(Duration::from_secs(30)).await?;
    assert!(lease.expiration().expect("still finite") > before);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        drain(&space, &tasks()).await?,
        vec![1],
        "only the renewed entry is left"
    );
    match other.renew(Duration::from_secs(30)).await {
        Err(Error::IllegalState(_)) => {}
        r => panic!("renewing an expired entry must fail with IllegalState, got {r:?}"),
    }
    match lease.renew(FOREVER).await {
        Err(Error::IllegalState(_)) => {}
        r => panic!("renewing a taken entry must fail with IllegalState, got {r:?}"),
    }
    connection.close().await
}

/// Writes in a transaction are invisible to others until commit; its takes are gone for
/// others at once and for good at commit.
pub async fn transaction_commit_publishes_writes_and_takes(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    space.write(&task(1, "input", 0), FOREVER).await?;
    let mut tx = space.transaction().await?;
    assert_eq!(
        tx.take(&kind("input"), h.wait()).await?.map(|t| t.id),
        Some(1)
    );
    tx.write(&task(2, "output", 0), FOREVER).await?;
    assert_eq!(
        space.read_if_exists(&kind("input")).await?,
        None,
        "taken in tx"
    );
    assert_eq!(
        space.read(&kind("output"), h.quiet()).await?,
        None,
        "uncommitted writes are invisible"
    );
    tx.commit().await?;
    assert_eq!(
        space.read(&kind("output"), h.wait()).await?.map(|t| t.id),
        Some(2)
    );
    assert_eq!(
        space.read_if_exists(&kind("input")).await?,
        None,
        "take is final"
    );
    assert_eq!(drain(&space, &tasks()).await?, vec![2]);
    connection.close().await
}

/// Aborting a transaction restores its takes and discards its writes.
pub async fn transaction_abort_restores_takes_and_drops_writes(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    space.write(&task(1, "input", 0), FOREVER).await?;
    let mut tx = space.transaction().await?;
    assert_eq!(tx.take(&tasks(), h.wait()).await?.map(|t| t.id), Some(1));
    tx.write(&task(2, "output", 0), FOREVER).await?;
    tx.abort().await?;
    assert_eq!(
        space.take(&kind("input"), h.wait()).await?.map(|t| t.id),
        Some(1)
    );
    assert_eq!(
        space.take(&kind("output"), h.quiet()).await?,
        None,
        "write dropped"
    );
    connection.close().await
}

/// A transaction dropped without commit or abort aborts.
pub async fn dropped_transaction_restores_takes(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    space.write(&task(1, "input", 0), FOREVER).await?;
    {
        let mut tx = space.transaction().await?;
        assert_eq!(tx.take(&tasks(), h.wait()).await?.map(|t| t.id), Some(1));
        tx.write(&task(2, "output", 0), FOREVER).await?;
    }
    assert_eq!(
        space.take(&kind("input"), h.wait()).await?.map(|t| t.id),
        Some(1)
    );
    assert_eq!(space.take(&kind("output"), h.quiet()).await?, None);
    connection.close().await
}

/// A transaction that outlives its timeout rolls back by itself; commit then fails.
pub async fn timed_out_transaction_restores_takes(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    space.write(&task(1, "input", 0), FOREVER).await?;
    let mut tx = space
        .transaction_with_timeout(Duration::from_millis(300))
        .await?;
    assert_eq!(tx.take(&tasks(), h.wait()).await?.map(|t| t.id), Some(1));
    tx.write(&task(2, "output", 0), FOREVER).await?;
    assert_eq!(
        space.take_if_exists(&tasks()).await?,
        None,
        "held by the transaction"
    );
    let restored = space.take(&kind("input"), h.wait()).await?;
    assert_eq!(
        restored.map(|t| t.id),
        Some(1),
        "restored after the timeout"
    );
    match tx.take_if_exists(&tasks()).await {
        Err(Error::TransactionRolledBack(_)) => {}
        r => panic!("operations after the timeout fail with TransactionRolledBack, got {r:?}"),
    }
    match tx.commit().await {
        Err(Error::TransactionRolledBack(_)) => {}
        r => panic!("commit after the timeout fails with TransactionRolledBack, got {r:?}"),
    }
    assert_eq!(space.take(&kind("output"), h.quiet()).await?, None);
    connection.close().await
}

/// Operations in a transaction see its own uncommitted writes; a take of one cancels it.
pub async fn transaction_sees_its_own_writes(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    space.write(&task(1, "committed", 0), FOREVER).await?;
    let mut tx = space.transaction().await?;
    tx.write(&task(2, "mine", 0), FOREVER).await?;
    tx.write(&task(3, "mine", 0), FOREVER).await?;
    assert_eq!(
        tx.read_if_exists(&kind("mine")).await?.map(|t| t.id),
        Some(2)
    );
    assert_eq!(
        tx.read(&kind("committed"), h.wait()).await?.map(|t| t.id),
        Some(1)
    );
    let listed: Vec<Task> = tx.contents(&tasks()).await?.try_collect().await?;
    let mut ids: Vec<i64> = listed.iter().map(|t| t.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2, 3], "contents: own writes and the space");
    assert_eq!(
        tx.take(&kind("mine"), h.wait()).await?.map(|t| t.id),
        Some(2)
    );
    assert_eq!(
        space.read_if_exists(&kind("mine")).await?,
        None,
        "still invisible outside"
    );
    tx.commit().await?;
    assert_eq!(
        drain(&space, &tasks()).await?,
        vec![1, 3],
        "the write taken inside the transaction never appears"
    );
    connection.close().await
}

/// `notify` reports matching writes only, as copies of the entries.
pub async fn notify_reports_only_matching_writes(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    let mut resizes = space.notify(&kind("resize")).await?;
    let mut all = space.notify(&tasks()).await?;
    space.write(&task(1, "crop", 0), FOREVER).await?;
    space.write(&task(2, "resize", 0), FOREVER).await?;
    space.write(&("resize", 3_i64), FOREVER).await?;
    let first = tokio::time::timeout(h.wait(), resizes.next())
        .await
        .expect("a matching write is reported within h.wait()");
    assert_eq!(first.transpose()?.map(|t| t.id), Some(2));
    let quiet = tokio::time::timeout(h.quiet(), resizes.next()).await;
    assert!(quiet.is_err(), "non-matching writes are not reported");
    for expected in [1, 2] {
        let event = tokio::time::timeout(h.wait(), all.next()).await;
        let event = event.expect("reported").transpose()?;
        assert_eq!(event.map(|t| t.id), Some(expected), "in write order");
    }
    assert!(tokio::time::timeout(h.quiet(), all.next()).await.is_err());
    assert_eq!(
        drain(&space, &tasks()).await?,
        vec![1, 2],
        "notify removes nothing"
    );
    connection.close().await
}

/// Writes of a transaction are reported when it commits, not before (and never if aborted).
pub async fn notify_reports_transaction_writes_at_commit(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    let mut events = space.notify(&tasks()).await?;
    let mut aborted = space.transaction().await?;
    aborted.write(&task(1, "aborted", 0), FOREVER).await?;
    aborted.abort().await?;
    let mut tx = space.transaction().await?;
    tx.write(&task(2, "committed", 0), FOREVER).await?;
    assert!(
        tokio::time::timeout(h.quiet(), events.next())
            .await
            .is_err(),
        "nothing is reported before commit"
    );
    tx.commit().await?;
    let event = tokio::time::timeout(h.wait(), events.next()).await;
    assert_eq!(event.expect("reported").transpose()?.map(|t| t.id), Some(2));
    assert!(tokio::time::timeout(h.quiet(), events.next())
        .await
        .is_err());
    connection.close().await
}

/// Two spaces never see each other's entries, on one connection or two.
pub async fn spaces_are_isolated_from_each_other(h: &dyn Harness) -> Result<()> {
    let (connection, a) = open(h).await?;
    let b = Space::open(&connection, &h.name("space")).await?;
    let other = connect(h).await?;
    let a_again = Space::open(&other, a.name()).await?;
    a.write(&task(1, "x", 0), FOREVER).await?;
    b.write(&task(2, "x", 0), FOREVER).await?;
    assert_eq!(drain(&b, &tasks()).await?, vec![2]);
    assert_eq!(
        a_again.take(&tasks(), h.wait()).await?.map(|t| t.id),
        Some(1),
        "the same name on another connection is the same space"
    );
    assert_eq!(a.take_if_exists(&tasks()).await?, None);
    other.close().await?;
    connection.close().await
}

/// A space and an ordinary queue of the same name do not share anything.
pub async fn spaces_are_isolated_from_ordinary_queues(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let queue = Destination::queue(space.name());
    let producer = session.create_producer(Some(&queue)).await?;
    let mut plain = Message::object(&task(1, "plain", 0))?;
    producer.send(&mut plain).await?;
    assert_eq!(
        space.take(&tasks(), h.quiet()).await?,
        None,
        "the queue's message is no entry"
    );
    space.write(&task(3, "entry", 0), FOREVER).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let m = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("the plain message stays");
    assert_eq!(m.body_object::<Task>()?.id, 1);
    assert!(
        consumer.receive_timeout(h.quiet()).await?.is_none(),
        "entries never reach the ordinary queue"
    );
    assert_eq!(drain(&space, &tasks()).await?, vec![3]);
    connection.close().await
}

/// Many concurrent takers, some with templates, never take one entry twice.
pub async fn concurrent_takers_take_each_entry_once(h: &dyn Harness) -> Result<()> {
    const ENTRIES: i64 = 1_000;
    let (connection, space) = open(h).await?;
    let written = Arc::new(AtomicBool::new(false));
    let mut takers = Vec::new();
    for n in 0..8 {
        let space = space.clone();
        let written = written.clone();
        let template = if n < 4 {
            Template::<Task>::builder().eq("size", n as u32).build()?
        } else {
            tasks()
        };
        takers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let done = written.load(Ordering::SeqCst);
                match space.take(&template, Duration::from_millis(50)).await? {
                    Some(t) => got.push(t.id),
                    None if done => return Ok::<_, Error>(got),
                    None => {}
                }
            }
        }));
    }
    for id in 0..ENTRIES {
        space
            .write(&task(id, "c", (id % 4) as u32), FOREVER)
            .await?;
    }
    written.store(true, Ordering::SeqCst);
    let mut all = Vec::new();
    for taker in takers {
        all.extend(taker.await.expect("taker panicked")?);
    }
    let distinct: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), distinct.len(), "an entry was taken twice");
    assert_eq!(distinct, (0..ENTRIES).collect(), "entries were lost");
    connection.close().await
}

/// Bag of tasks: a master writes 10 000 tasks, 8 workers take them concurrently and write
/// results; every task is taken exactly once and every result arrives.
pub async fn bag_of_tasks_10000_tasks_8_workers(h: &dyn Harness) -> Result<()> {
    const TASKS: i64 = 10_000;
    const WORKERS: u32 = 8;
    let (connection, space) = open(h).await?;
    let all_written = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let space = space.clone();
        let all_written = all_written.clone();
        workers.push(tokio::spawn(async move {
            let template = tasks();
            let mut taken = Vec::new();
            loop {
                let done = all_written.load(Ordering::SeqCst);
                match space.take(&template, Duration::from_millis(100)).await? {
                    Some(t) => {
                        let result = Outcome {
                            task: t.id,
                            worker,
                            value: t.id * 2 + i64::from(t.size),
                        };
                        space.write(&result, FOREVER).await?;
                        taken.push(t.id);
                    }
                    None if done => return Ok::<_, Error>(taken),
                    None => {}
                }
            }
        }));
    }
    for id in 0..TASKS {
        space
            .write(&task(id, "work", (id % 7) as u32), FOREVER)
            .await?;
    }
    all_written.store(true, Ordering::SeqCst);
    let results_template = Template::<Outcome>::any()?;
    let mut results = Vec::new();
    while results.len() < TASKS as usize {
        let batch = space.take_many(&results_template, 1_000, h.wait()).await?;
        assert!(
            !batch.is_empty(),
            "results stopped arriving after {} of {TASKS}",
            results.len()
        );
        results.extend(batch);
    }
    let mut taken = Vec::new();
    let mut per_worker = Vec::new();
    for w in workers {
        let ids = w.await.expect("worker panicked")?;
        per_worker.push(ids.len());
        taken.extend(ids);
    }
    let distinct: BTreeSet<i64> = taken.iter().copied().collect();
    assert_eq!(taken.len(), distinct.len(), "a task was taken twice");
    assert_eq!(distinct, (0..TASKS).collect(), "tasks were lost");
    let done: BTreeSet<i64> = results.iter().map(|r| r.task).collect();
    assert_eq!(results.len(), TASKS as usize, "one result per task");
    assert_eq!(done, (0..TASKS).collect(), "every task has its result");
    for r in &results {
        assert_eq!(
            r.value,
            r.task * 2 + r.task % 7,
            "result of task {}",
            r.task
        );
    }
    assert!(
        per_worker.iter().filter(|&&n| n > 0).count() > 1,
        "work was shared between workers: {per_worker:?}"
    );
    assert_eq!(space.take_if_exists(&tasks()).await?, None);
    assert_eq!(space.take_if_exists(&results_template).await?, None);
    connection.close().await
}

/// `take_many` takes up to `max` matching entries, waiting only for the first.
pub async fn take_many_takes_up_to_max(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    for id in 0..10 {
        space.write(&task(id, "m", 0), FOREVER).await?;
    }
    let first = space.take_many(&tasks(), 4, h.wait()).await?;
    assert_eq!(first.len(), 4);
    let rest = space.take_many(&tasks(), 100, h.wait()).await?;
    assert_eq!(
        rest.len(),
        6,
        "the remaining entries, without waiting for more"
    );
    let ids: BTreeSet<i64> = first.iter().chain(&rest).map(|t| t.id).collect();
    assert_eq!(ids, (0..10).collect());
    let started = Instant::now();
    assert!(space
        .take_many(&tasks(), 3, Duration::from_millis(200))
        .await?
        .is_empty());
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(space.take_many(&tasks(), 0, h.wait()).await?.is_empty());
    connection.close().await
}

/// `contents` lists the matching entries and removes nothing.
pub async fn contents_lists_matches_without_removing(h: &dyn Harness) -> Result<()> {
    let (connection, space) = open(h).await?;
    for (id, k) in [(1, "a"), (2, "b"), (3, "a"), (4, "a")] {
        space.write(&task(id, k, 0), FOREVER).await?;
    }
    let listed: Vec<Task> = space.contents(&kind("a")).await?.try_collect().await?;
    let mut ids: Vec<i64> = listed.iter().map(|t| t.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 3, 4]);
    let mut stream = space.contents(&tasks()).await?;
    assert!(
        stream.next().await.is_some(),
        "a stream dropped midway is fine"
    );
    drop(stream);
    assert_eq!(drain(&space, &tasks()).await?, vec![1, 2, 3, 4]);
    connection.close().await
}

/// Bad templates and non-entries are refused at creation, naming the type and field.
pub async fn bad_templates_are_refused_naming_the_field(h: &dyn Harness) -> Result<()> {
    fn refused<T>(what: &str, built: Result<Template<T>>, needle: &str) {
        match built {
            Err(Error::InvalidArgument(reason)) => assert!(
                reason.contains(needle),
                "{what}: the error {reason:?} should mention {needle:?}"
            ),
            Err(other) => panic!("{what}: expected InvalidArgument, got {other:?}"),
            Ok(t) => panic!("{what}: accepted as {:?}", t.selector()),
        }
    }
    let b = Template::<Task>::builder;
    refused("unknown field", b().eq("colour", "red").build(), "colour");
    refused("string for integer", b().eq("id", "1").build(), "id");
    refused("integer for string", b().eq("kind", 1).build(), "kind");
    refused("out of range", b().eq("size", -1).build(), "size");
    refused("ordering strings", b().gt("kind", "a").build(), "kind");
    refused("LIKE on a number", b().like("size", "1%").build(), "size");
    refused(
        "is_none on a non-option",
        b().is_none("kind").build(),
        "kind",
    );
    refused(
        "empty IN",
        b().one_of("kind", Vec::<String>::new()).build(),
        "kind",
    );
    refused(
        "a sequence field",
        Template::<Awkward>::builder().eq("tags", "a").build(),
        "tags",
    );
    refused(
        "a nested struct field",
        Template::<Awkward>::builder().eq("nested", 1).build(),
        "nested",
    );
    refused(
        "a selector keyword as field name",
        Template::<Awkward>::builder().eq("not", true).build(),
        "not",
    );
    refused("a non-entry type", Template::<i64>::any(), "i64");
    let (connection, space) = open(h).await?;
    for (what, result) in [
        ("an integer entry", space.write(&42_i64, FOREVER).await),
        (
            "a zero lease",
            space.write(&task(1, "x", 0), Duration::ZERO).await,
        ),
    ] {
        assert!(
            matches!(result, Err(Error::InvalidArgument(_))),
            "{what} must be refused, got {result:?}"
        );
    }
    let bad_name = Space::open(&connection, "no spaces allowed").await;
    assert!(matches!(bad_name, Err(Error::InvalidArgument(_))));
    connection.close().await
}

/// An entry over the space's size limit is refused with `ResourceLimit` and not written.
/// An entry that could not be read back (a NaN or infinite float, which JSON bodies turn into
/// `null`) is refused at the write, in and out of transactions, and nothing is written: before,
/// it was accepted and every take of it failed to decode.
pub async fn unreadable_entry_is_refused_at_write(h: &dyn Harness) -> Result<()> {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Reading {
        sensor: String,
        value: f64,
        backup: Option<f64>,
    }
    let (connection, space) = open(h).await?;
    let reading = |value: f64, backup: Option<f64>| Reading {
        sensor: "s1".into(),
        value,
        backup,
    };
    for (what, entry) in [
        ("NaN", reading(f64::NAN, None)),
        ("+inf", reading(f64::INFINITY, None)),
        ("-inf", reading(f64::NEG_INFINITY, Some(1.0))),
        ("Some(NaN)", reading(1.0, Some(f64::NAN))),
    ] {
        let written = space.write(&entry, FOREVER).await;
        assert!(
            matches!(written, Err(Error::MessageFormat(_))),
            "an entry with {what} must be refused, got {written:?}"
        );
        let mut tx = space.transaction().await?;
        let in_tx = tx.write(&entry, FOREVER).await;
        assert!(
            matches!(in_tx, Err(Error::MessageFormat(_))),
            "a transactional write with {what} must be refused, got {in_tx:?}"
        );
        tx.commit().await?;
    }
    let any = Template::<Reading>::any()?;
    assert_eq!(
        space.take_if_exists(&any).await?,
        None,
        "nothing was written"
    );
    space.write(&reading(2.5, Some(-0.5)), FOREVER).await?;
    assert_eq!(
        space.take(&any, h.wait()).await?,
        Some(reading(2.5, Some(-0.5)))
    );
    connection.close().await
}

pub async fn oversized_entry_is_refused(h: &dyn Harness) -> Result<()> {
    let connection = connect(h).await?;
    let options = SpaceOptions::default().with_max_entry_size(64 * 1024);
    let space = Space::open_with(&connection, &h.name("space"), options).await?;
    let big = Awkward {
        tags: vec![],
        nested: Outcome {
            task: 0,
            worker: 0,
            value: 0,
        },
        not: false,
        data: "x".repeat(100 * 1024),
    };
    match space.write(&big, FOREVER).await {
        Err(Error::ResourceLimit(reason)) => assert!(reason.contains("Awkward"), "{reason}"),
        r => panic!("an oversized entry must fail with ResourceLimit, got {r:?}"),
    }
    let mut tx = space.transaction().await?;
    assert!(matches!(
        tx.write(&big, FOREVER).await,
        Err(Error::ResourceLimit(_))
    ));
    tx.commit().await?;
    let small = Awkward {
        data: "x".repeat(1024),
        ..big
    };
    space.write(&small, FOREVER).await?;
    let back = space
        .take_many(&Template::<Awkward>::any()?, 10, h.wait())
        .await?;
    assert_eq!(
        back,
        vec![small],
        "only the entry within the limit was written"
    );
    connection.close().await
}

/// Persistent entries survive a restart of a durable backend; a backend without durable
/// storage says so.
pub async fn entries_persist_across_restart(h: &dyn Harness) -> Result<()> {
    let name = h.name("space");
    let connection = connect(h).await?;
    let space = Space::open(&connection, &name).await?;
    space.write(&task(1, "durable", 0), FOREVER).await?;
    connection.close().await?;
    match h.restart().await {
        Err(e) if e.is_unsupported() => {
            assert!(
                !h.capabilities().durable_storage,
                "a backend that cannot restart must not claim durable storage"
            );
            return Ok(());
        }
        other => other?,
    }
    let connection = connect(h).await?;
    let space = Space::open(&connection, &name).await?;
    assert_eq!(
        space.take(&tasks(), h.wait()).await?.map(|t| t.id),
        Some(1),
        "the persistent entry survived the restart"
    );
    connection.close().await
}

/// An entry written by one program under the serde name `Shape`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename = "Shape")]
struct ShapeV1 {
    id: i64,
    label: String,
}

/// Another program's `Shape`: same serde name, a shape [`ShapeV1`] entries cannot decode as.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename = "Shape")]
struct ShapeV2 {
    id: i64,
    label: Vec<i64>,
}

/// The space's options for the case's backend, and the decode-failure limit they use.
fn backend_options(h: &dyn Harness) -> (SpaceOptions, u32) {
    let options = SpaceOptions::for_backend(&h.capabilities());
    let limit = options.max_decode_failures;
    (options, limit)
}

/// The messages on queue `dead_letters` whose entry id is `entry_id`, browsed by a session.
async fn dead_lettered(
    connection: &Arc<dyn Connection>,
    dead_letters: &str,
    entry_id: &str,
) -> Result<Vec<Message>> {
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let browser = session
        .create_browser(
            &Destination::queue(dead_letters),
            Some(&format!("$entry = '{entry_id}'")),
        )
        .await?;
    let mut found = Vec::new();
    while let Some(m) = browser.next().await? {
        found.push(m);
    }
    browser.close().await?;
    session.close().await?;
    Ok(found)
}

/// An entry no take of a template's type can decode fails each such take with
/// `MessageFormat`; after the space's decode-failure limit it moves to the backend's
/// dead-letter queue, so it no longer blocks takes with that template. Without a
/// dead-letter queue it stays and keeps failing.
pub async fn undecodable_entry_is_dead_lettered_after_decode_failures(
    h: &dyn Harness,
) -> Result<()> {
    let connection = connect(h).await?;
    let (options, limit) = backend_options(h);
    let space = Space::open_with(&connection, &h.name("space"), options.clone()).await?;
    let written = ShapeV1 {
        id: 1,
        label: "one".into(),
    };
    let lease = space.write(&written, FOREVER).await?;
    let v2 = Template::<ShapeV2>::any()?;
    for attempt in 1..=limit {
        match space.take(&v2, h.wait()).await {
            Err(Error::MessageFormat(_)) => {}
            other => panic!(
                "take {attempt} of an undecodable entry: expected MessageFormat, got {other:?}"
            ),
        }
    }
    let Some(dead_letters) = options.dead_letter_queue.as_deref() else {
        // No dead-letter queue: the entry stays, and takes keep failing.
        assert!(matches!(
            space.take(&v2, Duration::ZERO).await,
            Err(Error::MessageFormat(_))
        ));
        assert_eq!(
            space.take(&Template::<ShapeV1>::any()?, h.wait()).await?,
            Some(written)
        );
        return connection.close().await;
    };
    assert_eq!(
        space.take(&v2, Duration::ZERO).await?,
        None,
        "after {limit} failed decodes the entry no longer blocks the space"
    );
    assert_eq!(
        space.read_if_exists(&Template::<ShapeV1>::any()?).await?,
        None,
        "the entry left the space"
    );
    let moved = dead_lettered(&connection, dead_letters, lease.entry_id()).await?;
    assert_eq!(
        moved.len(),
        1,
        "the entry is on {dead_letters} exactly once"
    );
    assert_eq!(moved[0].body_object::<ShapeV1>()?, written);
    connection.close().await
}

/// Before the limit, a failed decode does not lose the entry: it keeps its id (its lease
/// still renews and cancels it), a take of the right type gets it, and `notify` does not
/// report it again.
pub async fn failed_decode_keeps_entry_for_its_own_type(h: &dyn Harness) -> Result<()> {
    let connection = connect(h).await?;
    let (options, limit) = backend_options(h);
    assert!(limit >= 2, "the case needs a limit of at least two");
    let space = Space::open_with(&connection, &h.name("space"), options).await?;
    let v1 = Template::<ShapeV1>::any()?;
    let v2 = Template::<ShapeV2>::any()?;
    let mut writes = space.notify(&v1).await?;
    let first = ShapeV1 {
        id: 1,
        label: "one".into(),
    };
    let mut lease = space.write(&first, FOREVER).await?;
    assert_eq!(writes.next().await.transpose()?, Some(first.clone()));
    assert!(matches!(
        space.take(&v2, h.wait()).await,
        Err(Error::MessageFormat(_))
    ));
    lease.renew(FOREVER).await?;
    assert_eq!(space.read(&v1, h.wait()).await?, Some(first.clone()));
    assert!(lease.cancel().await?, "the lease still finds its entry");

    let second = ShapeV1 {
        id: 2,
        label: "two".into(),
    };
    space.write(&second, FOREVER).await?;
    assert_eq!(writes.next().await.transpose()?, Some(second.clone()));
    for _ in 1..limit {
        assert!(matches!(
            space.take(&v2, h.wait()).await,
            Err(Error::MessageFormat(_))
        ));
    }
    assert_eq!(
        space.take(&v1, h.wait()).await?,
        Some(second),
        "a take of the entry's own type still gets it"
    );
    let quiet = tokio::time::timeout(h.quiet(), writes.next()).await;
    assert!(quiet.is_err(), "a failed decode is not a write: {quiet:?}");
    connection.close().await
}

/// Transactional takes count failed decodes too, however the transaction ends: aborted
/// ones move the entry to the dead-letter queue at the limit, and a commit after a failed
/// decode does not consume the entry.
pub async fn undecodable_entry_counts_in_transactions(h: &dyn Harness) -> Result<()> {
    let connection = connect(h).await?;
    let (options, limit) = backend_options(h);
    let space = Space::open_with(&connection, &h.name("space"), options.clone()).await?;
    let v1 = Template::<ShapeV1>::any()?;
    let v2 = Template::<ShapeV2>::any()?;
    let written = ShapeV1 {
        id: 1,
        label: "one".into(),
    };
    let lease = space.write(&written, FOREVER).await?;
    let mut tx = space.transaction().await?;
    assert!(matches!(
        tx.take(&v2, h.wait()).await,
        Err(Error::MessageFormat(_))
    ));
    tx.commit().await?;
    if limit > 1 {
        assert_eq!(
            space.read(&v1, h.wait()).await?,
            Some(written.clone()),
            "a commit after a failed decode does not consume the entry"
        );
    }
    for attempt in 2..=limit {
        let mut tx = space.transaction().await?;
        match tx.take(&v2, h.wait()).await {
            Err(Error::MessageFormat(_)) => {}
            other => panic!("take {attempt}: expected MessageFormat, got {other:?}"),
        }
        tx.abort().await?;
    }
    let Some(dead_letters) = options.dead_letter_queue.as_deref() else {
        assert_eq!(space.read(&v1, h.wait()).await?, Some(written));
        return connection.close().await;
    };
    let mut tx = space.transaction().await?;
    assert_eq!(tx.take(&v2, Duration::ZERO).await?, None);
    tx.abort().await?;
    let moved = dead_lettered(&connection, dead_letters, lease.entry_id()).await?;
    assert_eq!(
        moved.len(),
        1,
        "the entry is on {dead_letters} exactly once"
    );
    connection.close().await
}

/// `Space::open` needs selectors on queues: backends without them answer `Unsupported`.
pub async fn open_needs_queue_selectors(h: &dyn Harness) -> Result<()> {
    let connection = connect(h).await?;
    let opened = Space::open(&connection, &h.name("space")).await;
    if h.capabilities().queue_selectors && h.capabilities().browse {
        let space = opened?;
        space.write(&task(1, "x", 0), FOREVER).await?;
        assert_eq!(space.take(&tasks(), h.wait()).await?.map(|t| t.id), Some(1));
    } else {
        assert!(
            matches!(opened, Err(Error::Unsupported { .. })),
            "a backend without queue selectors must refuse spaces, got {opened:?}"
        );
    }
    connection.close().await
}

/// The cases of this area, for [`crate::conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! space_cases {
    ($make:expr) => {
        $crate::cases!(
            $make,
            space,
            [
                round_trip_write_read_take,
                read_leaves_entry_take_removes_it,
                wildcard_template_matches_every_entry_of_its_type,
                exact_values_match_and_other_fields_are_wildcards,
                entry_of_another_type_never_matches,
                value_of_another_type_never_matches,
                range_templates_select_numeric_ranges,
                in_templates_select_listed_values,
                like_templates_match_patterns,
                option_fields_match_none_and_values,
                linda_tuples_match_by_position,
                if_exists_on_empty_space_returns_none_at_once,
                waiting_take_and_read_time_out_empty,
                waiting_take_woken_by_later_matching_write,
                waiting_take_woken_despite_idle_takers,
                waiting_read_woken_by_later_matching_write,
                waiting_read_woken_by_aborted_take,
                waiting_read_woken_by_dropped_take,
                waiting_read_woken_by_timed_out_take,
                lease_expiry_removes_entry,
                lease_cancel_removes_exactly_its_entry,
                lease_renew_extends_entry,
                transaction_commit_publishes_writes_and_takes,
                transaction_abort_restores_takes_and_drops_writes,
                dropped_transaction_restores_takes,
                timed_out_transaction_restores_takes,
                transaction_sees_its_own_writes,
                notify_reports_only_matching_writes,
                notify_reports_transaction_writes_at_commit,
                spaces_are_isolated_from_each_other,
                spaces_are_isolated_from_ordinary_queues,
                concurrent_takers_take_each_entry_once,
                bag_of_tasks_10000_tasks_8_workers,
                take_many_takes_up_to_max,
                contents_lists_matches_without_removing,
                bad_templates_are_refused_naming_the_field,
                oversized_entry_is_refused,
                unreadable_entry_is_refused_at_write,
                entries_persist_across_restart,
                open_needs_queue_selectors,
                undecodable_entry_is_dead_lettered_after_decode_failures,
                failed_decode_keeps_entry_for_its_own_type,
                undecodable_entry_counts_in_transactions,
            ]
        );
    };
}
