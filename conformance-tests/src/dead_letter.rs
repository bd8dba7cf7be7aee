//! Dead letters (ARCHITECTURE.md; Jakarta Messaging 3.1 §6.2.10 redelivery): a message that
//! fails the configured number of delivery attempts moves to the dead-letter queue.
use courier_api::*;

use crate::Harness;

/// How many failed attempts the cases make when the backend never dead-letters.
const ATTEMPTS_WITHOUT_LIMIT: u32 = 5;

/// A message tagged with a unique `dl_tag`, so it can be found in a shared dead-letter queue.
fn tagged(body: &str, tag: &str) -> Result<Message> {
    let mut m = Message::text(body);
    m.set_property("dl_tag", tag)?;
    m.set_property("attempted", 42_i32)?;
    m.set_property("ratio", 0.5_f64)?;
    m.set_message_type(Some("poison"));
    m.set_correlation_id("corr-1")?;
    Ok(m)
}

/// Sends `message` to `queue` from a fresh session of `conn`.
async fn send(conn: &dyn Connection, queue: &Destination, message: &mut Message) -> Result<()> {
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    session
        .create_producer(Some(queue))
        .await?
        .send(message)
        .await?;
    session.close().await
}

/// Looks for the message tagged `tag` on the dead-letter queue, waiting up to `wait` for it.
/// With queue selectors it consumes just that message; otherwise it scans in a
/// client-acknowledge session and leaves every message (its own included) on the queue.
async fn find_dead_letter(
    h: &dyn Harness,
    conn: &dyn Connection,
    dlq: &Destination,
    tag: &str,
    wait: std::time::Duration,
) -> Result<Option<Message>> {
    if h.capabilities().queue_selectors {
        let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
        let consumer = session
            .create_consumer(dlq, ConsumerOptions::selector(format!("dl_tag = '{tag}'")))
            .await?;
        let found = consumer.receive_timeout(wait).await?;
        session.close().await?;
        return Ok(found);
    }
    let session = conn.create_session(SessionMode::ClientAcknowledge).await?;
    let consumer = session
        .create_consumer(dlq, ConsumerOptions::default())
        .await?;
    let mut found = None;
    while let Some(m) = consumer.receive_timeout(wait).await? {
        if m.property::<String>("dl_tag")?.as_deref() == Some(tag) {
            found = Some(m);
            break;
        }
    }
    session.close().await?;
    Ok(found)
}

/// Checks that a dead letter is the original message: body, properties and application
/// headers intact.
fn assert_intact(m: &Message, body: &str, tag: &str) -> Result<()> {
    assert_eq!(m.body_text(), Some(body), "dead letter body");
    assert_eq!(m.property::<String>("dl_tag")?.as_deref(), Some(tag));
    assert_eq!(m.property::<i32>("attempted")?, Some(42));
    assert_eq!(m.property::<f64>("ratio")?, Some(0.5));
    assert_eq!(m.message_type(), Some("poison"));
    assert_eq!(m.correlation_id(), Some("corr-1"));
    Ok(())
}

/// A message rolled back `max_delivery_attempts` times goes to the dead-letter queue, not
/// back to its queue, with body and properties intact. Without a limit, it keeps being
/// redelivered with a growing delivery count.
pub async fn rolled_back_message_dead_lettered_6_2_10(h: &dyn Harness) -> Result<()> {
    let caps = h.capabilities();
    let conn = h.connect().await?;
    let queue = Destination::queue(h.name("dl-rollback"));
    let tag = h.name("tag");
    send(conn.as_ref(), &queue, &mut tagged("poison", &tag)?).await?;

    let tx = conn.create_session(SessionMode::Transacted).await?;
    let consumer = tx
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let attempts = caps.max_delivery_attempts.unwrap_or(ATTEMPTS_WITHOUT_LIMIT);
    assert!(attempts >= 1, "max_delivery_attempts must be at least 1");
    for attempt in 1..=attempts {
        let m = consumer
            .receive_timeout(h.wait())
            .await?
            .unwrap_or_else(|| panic!("delivery attempt {attempt} of {attempts} happens"));
        assert_intact(&m, "poison", &tag)?;
        assert_eq!(m.delivery_count(), attempt, "JMSXDeliveryCount");
        assert_eq!(m.redelivered(), attempt > 1, "JMSRedelivered");
        tx.rollback().await?;
    }

    let Some(max) = caps.max_delivery_attempts else {
        // No limit: the message is still there, attempt after attempt.
        let m = consumer
            .receive_timeout(h.wait())
            .await?
            .expect("without a delivery limit the message keeps being redelivered");
        assert_eq!(m.delivery_count(), ATTEMPTS_WITHOUT_LIMIT + 1);
        assert!(m.redelivered());
        tx.commit().await?;
        return conn.close().await;
    };
    let again = consumer.receive_timeout(h.quiet()).await?;
    assert!(
        again.is_none(),
        "after {max} failed attempts the message must leave its queue, got delivery {:?}",
        again.map(|m| m.delivery_count())
    );
    tx.commit().await?;
    if let Some(dlq) = caps.dead_letter_queue.as_deref() {
        let dead = find_dead_letter(h, conn.as_ref(), &Destination::queue(dlq), &tag, h.wait())
            .await?
            .expect("the message is on the dead-letter queue");
        assert_intact(&dead, "poison", &tag)?;
    }
    conn.close().await
}

/// A message acknowledged (committed) on its last allowed attempt is consumed normally and
/// never dead-lettered.
pub async fn acknowledged_before_limit_never_dead_lettered_6_2_10(h: &dyn Harness) -> Result<()> {
    let caps = h.capabilities();
    let conn = h.connect().await?;
    let queue = Destination::queue(h.name("dl-acked"));
    let tag = h.name("tag");
    send(conn.as_ref(), &queue, &mut tagged("survivor", &tag)?).await?;

    let tx = conn.create_session(SessionMode::Transacted).await?;
    let consumer = tx
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let last = caps.max_delivery_attempts.unwrap_or(ATTEMPTS_WITHOUT_LIMIT);
    for attempt in 1..=last {
        let m = consumer
            .receive_timeout(h.wait())
            .await?
            .unwrap_or_else(|| panic!("delivery attempt {attempt} of {last} happens"));
        assert_eq!(m.delivery_count(), attempt);
        if attempt < last {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
    }
    let again = consumer.receive_timeout(h.quiet()).await?;
    assert!(again.is_none(), "a committed message came back: {again:?}");
    if let Some(dlq) = caps.dead_letter_queue.as_deref() {
        let dead =
            find_dead_letter(h, conn.as_ref(), &Destination::queue(dlq), &tag, h.quiet()).await?;
        assert!(
            dead.is_none(),
            "a message acknowledged within the limit was dead-lettered: {dead:?}"
        );
    }
    conn.close().await
}

/// A poison message does not block its queue: the message behind it is delivered, and the
/// poison message stops coming after `max_delivery_attempts` (or, without a limit, keeps
/// coming until it is committed).
pub async fn poison_message_does_not_block_queue_6_2_10(h: &dyn Harness) -> Result<()> {
    let caps = h.capabilities();
    let conn = h.connect().await?;
    let queue = Destination::queue(h.name("dl-poison"));
    let tag = h.name("tag");
    send(conn.as_ref(), &queue, &mut tagged("poison", &tag)?).await?;
    send(conn.as_ref(), &queue, &mut Message::text("good")).await?;

    let tx = conn.create_session(SessionMode::Transacted).await?;
    let consumer = tx
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let limit = caps.max_delivery_attempts.unwrap_or(ATTEMPTS_WITHOUT_LIMIT);
    let mut poison_counts = Vec::new();
    let (mut good_seen, mut poison_done) = (false, false);
    let mut iterations = 0;
    while !(good_seen && poison_done) {
        iterations += 1;
        assert!(
            iterations <= limit as usize + 5,
            "too many deliveries: poison counts {poison_counts:?}, good seen {good_seen}"
        );
        let m = consumer
            .receive_timeout(h.wait())
            .await?
            .unwrap_or_else(|| {
                panic!(
                    "more deliveries expected: poison counts {poison_counts:?}, good {good_seen}"
                )
            });
        match m.body_text() {
            Some("poison") => {
                let count = m.delivery_count();
                poison_counts.push(count);
                if caps.max_delivery_attempts.is_none() && count >= ATTEMPTS_WITHOUT_LIMIT {
                    tx.commit().await?;
                    poison_done = true;
                } else {
                    tx.rollback().await?;
                    poison_done = count >= limit;
                }
            }
            Some("good") => {
                assert!(!good_seen, "the good message was committed but came again");
                tx.commit().await?;
                good_seen = true;
            }
            other => panic!("unexpected message {other:?}"),
        }
    }
    assert_eq!(
        poison_counts,
        (1..=limit).collect::<Vec<_>>(),
        "the poison message's delivery counts"
    );
    let extra = consumer.receive_timeout(h.quiet()).await?;
    assert!(
        extra.is_none(),
        "nothing is left on the queue, got {:?} (delivery {:?})",
        extra.as_ref().map(|m| m.body().clone()),
        extra.as_ref().map(|m| m.delivery_count())
    );
    tx.commit().await?;
    if let (Some(_), Some(dlq)) = (
        caps.max_delivery_attempts,
        caps.dead_letter_queue.as_deref(),
    ) {
        let dead = find_dead_letter(h, conn.as_ref(), &Destination::queue(dlq), &tag, h.wait())
            .await?
            .expect("the poison message is on the dead-letter queue");
        assert_intact(&dead, "poison", &tag)?;
    }
    conn.close().await
}

/// Failed attempts count however the message comes back: a client-acknowledge session closed
/// without acknowledging, `max_delivery_attempts` times, dead-letters the message too.
pub async fn unacknowledged_close_counts_as_failed_attempt_6_2_10(h: &dyn Harness) -> Result<()> {
    let caps = h.capabilities();
    let conn = h.connect().await?;
    let queue = Destination::queue(h.name("dl-client"));
    let tag = h.name("tag");
    send(conn.as_ref(), &queue, &mut tagged("poison", &tag)?).await?;
    let attempts = caps.max_delivery_attempts.unwrap_or(ATTEMPTS_WITHOUT_LIMIT);
    for attempt in 1..=attempts {
        let session = conn.create_session(SessionMode::ClientAcknowledge).await?;
        let consumer = session
            .create_consumer(&queue, ConsumerOptions::default())
            .await?;
        let m = consumer
            .receive_timeout(h.wait())
            .await?
            .unwrap_or_else(|| panic!("delivery attempt {attempt} of {attempts} happens"));
        assert_eq!(m.delivery_count(), attempt);
        session.close().await?;
    }
    let session = conn.create_session(SessionMode::ClientAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let next = consumer
        .receive_timeout(if caps.max_delivery_attempts.is_some() {
            h.quiet()
        } else {
            h.wait()
        })
        .await?;
    match caps.max_delivery_attempts {
        Some(max) => {
            assert!(
                next.is_none(),
                "after {max} unacknowledged deliveries the message must leave its queue, got \
                 delivery {:?}",
                next.map(|m| m.delivery_count())
            );
            if let Some(dlq) = caps.dead_letter_queue.as_deref() {
                let dead =
                    find_dead_letter(h, conn.as_ref(), &Destination::queue(dlq), &tag, h.wait())
                        .await?
                        .expect("the message is on the dead-letter queue");
                assert_intact(&dead, "poison", &tag)?;
            }
        }
        None => {
            let m = next.expect("without a limit the message keeps coming back");
            assert_eq!(m.delivery_count(), ATTEMPTS_WITHOUT_LIMIT + 1);
            session.acknowledge().await?;
        }
    }
    conn.close().await
}

/// Aborted transactional takes of a tuple-space entry are not failed deliveries: after more
/// aborts (explicit, dropped and timed-out transactions) than `max_delivery_attempts`, the
/// entry is still in its space and none of the space's entries is on the dead-letter queue.
pub async fn aborted_space_takes_never_dead_letter_entry(h: &dyn Harness) -> Result<()> {
    use courier_space::{Space, Template, FOREVER};
    use std::sync::Arc;
    use std::time::Duration;

    const ABORTS: u32 = 15;
    let caps = h.capabilities();
    if let Some(max) = caps.max_delivery_attempts {
        assert!(
            max < ABORTS,
            "the case needs more aborts than the delivery limit"
        );
    }
    let connection: Arc<dyn Connection> = h.connect().await?.into();
    let space = Space::open(&connection, &h.name("dl-space")).await?;
    let entry = (String::from("job"), 7_i64);
    space.write(&entry, FOREVER).await?;
    let any = Template::<(String, i64)>::any()?;
    for abort in 0..ABORTS {
        match abort % 3 {
            0 => {
                let mut tx = space.transaction().await?;
                let taken = tx.take(&any, h.wait()).await?;
                assert_eq!(taken.as_ref(), Some(&entry), "take {abort} finds the entry");
                tx.abort().await?;
            }
            1 => {
                let mut tx = space.transaction().await?;
                let taken = tx.take(&any, h.wait()).await?;
                assert_eq!(taken.as_ref(), Some(&entry), "take {abort} finds the entry");
                drop(tx);
            }
            _ => {
                let mut tx = space
                    .transaction_with_timeout(Duration::from_millis(20))
                    .await?;
                let taken = tx.take(&any, h.wait()).await?;
                assert_eq!(taken.as_ref(), Some(&entry), "take {abort} finds the entry");
                tokio::time::sleep(Duration::from_millis(40)).await;
                let _ = tx.abort().await;
            }
        }
    }
    assert_eq!(
        space.take(&any, h.wait()).await?,
        Some(entry),
        "after {ABORTS} aborted takes the entry is still in the space"
    );
    if let Some(dlq) = caps.dead_letter_queue.as_deref() {
        let session = connection
            .create_session(SessionMode::AutoAcknowledge)
            .await?;
        let browser = session
            .create_browser(&Destination::queue(dlq), None)
            .await?;
        let prefix = format!("space.{}.", space.name());
        while let Some(dead) = browser.next().await? {
            let from = dead.destination().map(|d| d.name().to_owned());
            assert!(
                !from
                    .as_deref()
                    .is_some_and(|name| name.starts_with(&prefix)),
                "a space entry was dead-lettered from {from:?}"
            );
        }
        session.close().await?;
    }
    connection.close().await
}

/// The cases of this area, for [`crate::conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! dead_letter_cases {
    ($make:expr) => {
        $crate::cases!(
            $make,
            dead_letter,
            [
                rolled_back_message_dead_lettered_6_2_10,
                acknowledged_before_limit_never_dead_lettered_6_2_10,
                poison_message_does_not_block_queue_6_2_10,
                unacknowledged_close_counts_as_failed_attempt_6_2_10,
                aborted_space_takes_never_dead_letter_entry,
            ]
        );
    };
}
