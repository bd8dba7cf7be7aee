//! Topics (Jakarta Messaging 3.1 §4.2 publish/subscribe, §6.11 subscriptions): fan-out, durable,
//! shared and no-local subscriptions.
use courier_api::*;
use std::collections::BTreeSet;

use crate::expect::outcome;
use crate::waits::assert_quiet;
use crate::{gated, Harness};

/// A started connection with the client id `client_id`; `None` (after checking the refusal is
/// `Unsupported`) on a backend without client-id exclusivity.
async fn connect_with_client_id(
    h: &dyn Harness,
    client_id: &str,
) -> Result<Option<Box<dyn Connection>>> {
    let conn = h.factory().create_connection().await?;
    let set = conn.set_client_id(client_id).await;
    let exclusive = h.capabilities().client_id_exclusive;
    if gated(exclusive, "client-id exclusivity", set)?.is_none() {
        return Ok(None);
    }
    conn.start().await?;
    Ok(Some(conn))
}

/// Publishes text messages to `topic` from a fresh session of `conn`.
async fn publish(conn: &dyn Connection, topic: &Destination, bodies: &[&str]) -> Result<()> {
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let producer = session.create_producer(Some(topic)).await?;
    for body in bodies {
        producer.send(&mut Message::text(*body)).await?;
    }
    session.close().await
}

/// Publishes one text message with a string property `kind`.
async fn publish_kind(
    conn: &dyn Connection,
    topic: &Destination,
    body: &str,
    kind: &str,
) -> Result<()> {
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let producer = session.create_producer(Some(topic)).await?;
    let mut m = Message::text(body);
    m.set_property("kind", kind)?;
    producer.send(&mut m).await?;
    session.close().await
}

/// Receives the next message within [`Harness::wait`] and returns its text.
async fn next_text(h: &dyn Harness, consumer: &dyn Consumer, what: &str) -> Result<String> {
    let m = consumer
        .receive_timeout(h.wait())
        .await?
        .unwrap_or_else(|| panic!("expected {what} within h.wait()"));
    Ok(m.body_text().expect("text body").to_string())
}

/// Every non-durable subscriber gets every message published after it subscribed, in order
/// (§4.2).
pub async fn fan_out_to_every_subscriber_4_2(h: &dyn Harness) -> Result<()> {
    let topic = Destination::topic(h.name("t-fan"));
    let conn = h.connect().await?;
    let other = h.connect().await?;
    let s1 = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let s2 = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let s3 = other.create_session(SessionMode::AutoAcknowledge).await?;
    let subs = [
        s1.create_consumer(&topic, ConsumerOptions::default())
            .await?,
        s2.create_consumer(&topic, ConsumerOptions::default())
            .await?,
        s3.create_consumer(&topic, ConsumerOptions::default())
            .await?,
    ];
    let bodies = ["p1", "p2", "p3", "p4", "p5"];
    publish(other.as_ref(), &topic, &bodies).await?;
    for (i, sub) in subs.iter().enumerate() {
        for expected in bodies {
            let got = next_text(h, sub.as_ref(), &format!("{expected} at subscriber {i}")).await?;
            assert_eq!(got, expected, "subscriber {i} order");
        }
        assert_quiet(h, sub.as_ref(), "each message reaches a subscriber once").await?;
    }
    other.close().await?;
    conn.close().await
}

/// A non-durable subscriber does not get messages published before it subscribed (§4.2).
pub async fn no_messages_from_before_subscription_4_2(h: &dyn Harness) -> Result<()> {
    let topic = Destination::topic(h.name("t-before"));
    let conn = h.connect().await?;
    publish(conn.as_ref(), &topic, &["early"]).await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let sub = session
        .create_consumer(&topic, ConsumerOptions::default())
        .await?;
    publish(conn.as_ref(), &topic, &["late"]).await?;
    assert_eq!(
        next_text(h, sub.as_ref(), "the late message").await?,
        "late"
    );
    assert_quiet(h, sub.as_ref(), "nothing published before subscribing").await?;
    conn.close().await
}

/// A durable subscription keeps the messages published while it has no consumer, even across
/// connections: reopening it with the same client id and name delivers them (§6.11).
pub async fn durable_keeps_messages_while_inactive_6_11(h: &dyn Harness) -> Result<()> {
    let topic = Destination::topic(h.name("t-durable"));
    let client = h.name("cid");
    let name = h.name("sub");
    let Some(conn) = connect_with_client_id(h, &client).await? else {
        return Ok(());
    };
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let made = session
        .create_durable_consumer(&topic, &name, ConsumerOptions::default())
        .await;
    let caps = h.capabilities();
    let Some(sub) = gated(caps.durable_subscriptions, "durable subscriptions", made)? else {
        return Ok(());
    };
    let publisher = h.connect().await?;
    publish(publisher.as_ref(), &topic, &["d1"]).await?;
    assert_eq!(next_text(h, sub.as_ref(), "d1").await?, "d1");
    sub.close().await?;
    conn.close().await?;

    publish(publisher.as_ref(), &topic, &["d2", "d3"]).await?;

    let Some(conn) = connect_with_client_id(h, &client).await? else {
        return Ok(());
    };
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let sub = session
        .create_durable_consumer(&topic, &name, ConsumerOptions::default())
        .await?;
    assert_eq!(
        next_text(h, sub.as_ref(), "d2, kept while inactive").await?,
        "d2"
    );
    assert_eq!(
        next_text(h, sub.as_ref(), "d3, kept while inactive").await?,
        "d3"
    );
    assert_quiet(h, sub.as_ref(), "d1 was acknowledged and must not return").await?;
    sub.close().await?;
    session.unsubscribe(&name).await?;
    publisher.close().await?;
    conn.close().await
}

/// An unshared durable subscription needs a client id: without one, creating it is
/// `IllegalState` (§6.11, `createDurableConsumer`).
pub async fn durable_requires_client_id_6_11(h: &dyn Harness) -> Result<()> {
    let topic = Destination::topic(h.name("t-noid"));
    let conn = h.connect().await?;
    assert_eq!(conn.client_id(), None);
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let r = session
        .create_durable_consumer(&topic, &h.name("sub"), ConsumerOptions::default())
        .await;
    if !h.capabilities().durable_subscriptions {
        gated(false, "durable subscriptions", r)?;
        return Ok(());
    }
    assert!(
        matches!(r, Err(Error::IllegalState(_))),
        "a durable subscription without a client id must be IllegalState, got {}",
        outcome(&r)
    );
    conn.close().await
}

/// An unshared durable subscription has at most one active consumer: a second is an error
/// (`IllegalState`); once the first closes, a new one may open (§6.11).
pub async fn second_durable_consumer_is_error_6_11(h: &dyn Harness) -> Result<()> {
    let topic = Destination::topic(h.name("t-dup"));
    let name = h.name("sub");
    let Some(conn) = connect_with_client_id(h, &h.name("cid")).await? else {
        return Ok(());
    };
    let s1 = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let s2 = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let made = s1
        .create_durable_consumer(&topic, &name, ConsumerOptions::default())
        .await;
    let caps = h.capabilities();
    let Some(first) = gated(caps.durable_subscriptions, "durable subscriptions", made)? else {
        return Ok(());
    };
    let second = s2
        .create_durable_consumer(&topic, &name, ConsumerOptions::default())
        .await;
    assert!(
        matches!(second, Err(Error::IllegalState(_))),
        "a second active consumer on an unshared durable subscription must be IllegalState, \
         got {}",
        outcome(&second)
    );
    publish(conn.as_ref(), &topic, &["x"]).await?;
    assert_eq!(
        next_text(h, first.as_ref(), "x at the first consumer").await?,
        "x"
    );
    first.close().await?;
    let again = s2
        .create_durable_consumer(&topic, &name, ConsumerOptions::default())
        .await?;
    publish(conn.as_ref(), &topic, &["y"]).await?;
    assert_eq!(
        next_text(h, again.as_ref(), "y at the new consumer").await?,
        "y"
    );
    again.close().await?;
    s1.unsubscribe(&name).await?;
    conn.close().await
}

/// `unsubscribe` deletes a durable subscription: messages it held, and messages published
/// after it was deleted, are not delivered when the name is subscribed again (§6.11).
pub async fn unsubscribe_deletes_durable_subscription_6_11(h: &dyn Harness) -> Result<()> {
    let topic = Destination::topic(h.name("t-unsub"));
    let name = h.name("sub");
    let Some(conn) = connect_with_client_id(h, &h.name("cid")).await? else {
        return Ok(());
    };
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let made = session
        .create_durable_consumer(&topic, &name, ConsumerOptions::default())
        .await;
    let caps = h.capabilities();
    let Some(sub) = gated(caps.durable_subscriptions, "durable subscriptions", made)? else {
        return Ok(());
    };
    sub.close().await?;
    publish(conn.as_ref(), &topic, &["held"]).await?;
    session.unsubscribe(&name).await?;
    publish(conn.as_ref(), &topic, &["orphan"]).await?;

    let sub = session
        .create_durable_consumer(&topic, &name, ConsumerOptions::default())
        .await?;
    assert_quiet(
        h,
        sub.as_ref(),
        "a re-created subscription must not hold messages of the deleted one",
    )
    .await?;
    publish(conn.as_ref(), &topic, &["fresh"]).await?;
    assert_eq!(next_text(h, sub.as_ref(), "fresh").await?, "fresh");
    sub.close().await?;
    session.unsubscribe(&name).await?;
    conn.close().await
}

/// `unsubscribe` while the durable subscription has an active consumer is `IllegalState` and
/// leaves the subscription working (§6.11).
pub async fn unsubscribe_with_active_consumer_is_error_6_11(h: &dyn Harness) -> Result<()> {
    let topic = Destination::topic(h.name("t-unsub-active"));
    let name = h.name("sub");
    let Some(conn) = connect_with_client_id(h, &h.name("cid")).await? else {
        return Ok(());
    };
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let made = session
        .create_durable_consumer(&topic, &name, ConsumerOptions::default())
        .await;
    let caps = h.capabilities();
    let Some(sub) = gated(caps.durable_subscriptions, "durable subscriptions", made)? else {
        return Ok(());
    };
    let other = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let r = other.unsubscribe(&name).await;
    assert!(
        matches!(r, Err(Error::IllegalState(_))),
        "unsubscribe with an active consumer must be IllegalState, got {r:?}"
    );
    publish(conn.as_ref(), &topic, &["still here"]).await?;
    assert_eq!(
        next_text(
            h,
            sub.as_ref(),
            "a message on the still-existing subscription"
        )
        .await?,
        "still here"
    );
    sub.close().await?;
    session.unsubscribe(&name).await?;
    conn.close().await
}

/// `unsubscribe` while a message of the subscription is consumed but not acknowledged is
/// `IllegalState`; after the acknowledgement it succeeds (§6.11).
pub async fn unsubscribe_with_unacknowledged_message_is_error_6_11(h: &dyn Harness) -> Result<()> {
    let topic = Destination::topic(h.name("t-unsub-unacked"));
    let name = h.name("sub");
    let Some(conn) = connect_with_client_id(h, &h.name("cid")).await? else {
        return Ok(());
    };
    let session = conn.create_session(SessionMode::ClientAcknowledge).await?;
    let made = session
        .create_durable_consumer(&topic, &name, ConsumerOptions::default())
        .await;
    let caps = h.capabilities();
    let Some(sub) = gated(caps.durable_subscriptions, "durable subscriptions", made)? else {
        return Ok(());
    };
    publish(conn.as_ref(), &topic, &["unacked"]).await?;
    assert_eq!(next_text(h, sub.as_ref(), "unacked").await?, "unacked");
    sub.close().await?;
    let r = session.unsubscribe(&name).await;
    assert!(
        matches!(r, Err(Error::IllegalState(_))),
        "unsubscribe with an unacknowledged message must be IllegalState, got {r:?}"
    );
    session.acknowledge().await?;
    session.unsubscribe(&name).await?;
    conn.close().await
}

/// Re-creating an inactive durable subscription with another selector deletes and re-creates
/// it: the messages it held are dropped and the new selector applies (§6.11).
pub async fn durable_new_selector_starts_afresh_6_11(h: &dyn Harness) -> Result<()> {
    let topic = Destination::topic(h.name("t-resel"));
    let name = h.name("sub");
    let Some(conn) = connect_with_client_id(h, &h.name("cid")).await? else {
        return Ok(());
    };
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let made = session
        .create_durable_consumer(&topic, &name, ConsumerOptions::selector("kind = 'a'"))
        .await;
    let caps = h.capabilities();
    let Some(sub) = gated(caps.durable_subscriptions, "durable subscriptions", made)? else {
        return Ok(());
    };
    sub.close().await?;
    publish_kind(conn.as_ref(), &topic, "old-a", "a").await?;
    publish_kind(conn.as_ref(), &topic, "old-b", "b").await?;

    let sub = session
        .create_durable_consumer(&topic, &name, ConsumerOptions::selector("kind = 'b'"))
        .await?;
    assert_eq!(sub.selector(), Some("kind = 'b'"));
    assert_quiet(
        h,
        sub.as_ref(),
        "a durable subscription re-created with a new selector starts empty",
    )
    .await?;
    publish_kind(conn.as_ref(), &topic, "new-a", "a").await?;
    publish_kind(conn.as_ref(), &topic, "new-b", "b").await?;
    assert_eq!(
        next_text(h, sub.as_ref(), "new-b, matching the new selector").await?,
        "new-b"
    );
    assert_quiet(h, sub.as_ref(), "the old selector no longer applies").await?;
    sub.close().await?;
    session.unsubscribe(&name).await?;
    conn.close().await
}

/// Re-opening an inactive durable subscription with the same selector keeps its messages
/// (only a change of topic, selector or no-local starts afresh) (§6.11).
pub async fn durable_same_selector_keeps_messages_6_11(h: &dyn Harness) -> Result<()> {
    let topic = Destination::topic(h.name("t-samesel"));
    let name = h.name("sub");
    let Some(conn) = connect_with_client_id(h, &h.name("cid")).await? else {
        return Ok(());
    };
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let made = session
        .create_durable_consumer(&topic, &name, ConsumerOptions::selector("kind = 'a'"))
        .await;
    let caps = h.capabilities();
    let Some(sub) = gated(caps.durable_subscriptions, "durable subscriptions", made)? else {
        return Ok(());
    };
    sub.close().await?;
    publish_kind(conn.as_ref(), &topic, "kept", "a").await?;
    publish_kind(conn.as_ref(), &topic, "filtered", "b").await?;
    let sub = session
        .create_durable_consumer(&topic, &name, ConsumerOptions::selector("kind = 'a'"))
        .await?;
    assert_eq!(next_text(h, sub.as_ref(), "kept").await?, "kept");
    assert_quiet(
        h,
        sub.as_ref(),
        "a non-matching message is never added to a subscription",
    )
    .await?;
    sub.close().await?;
    session.unsubscribe(&name).await?;
    conn.close().await
}

/// A shared durable subscription with an active consumer cannot be re-opened with another
/// selector: `IllegalState` (§6.11).
pub async fn shared_durable_selector_change_while_active_is_error_6_11(
    h: &dyn Harness,
) -> Result<()> {
    let topic = Destination::topic(h.name("t-shared-resel"));
    let name = h.name("sub");
    let conn = h.connect().await?;
    let s1 = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let s2 = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let made = s1
        .create_shared_durable_consumer(&topic, &name, ConsumerOptions::selector("kind = 'a'"))
        .await;
    let caps = h.capabilities();
    let Some(first) = gated(
        caps.durable_subscriptions && caps.shared_subscriptions,
        "shared durable subscriptions",
        made,
    )?
    else {
        return Ok(());
    };
    let r = s2
        .create_shared_durable_consumer(&topic, &name, ConsumerOptions::selector("kind = 'b'"))
        .await;
    assert!(
        matches!(r, Err(Error::IllegalState(_))),
        "changing the selector of an active shared durable subscription must be IllegalState, \
         got {}",
        outcome(&r)
    );
    publish_kind(conn.as_ref(), &topic, "a-msg", "a").await?;
    assert_eq!(
        next_text(h, first.as_ref(), "the subscription keeps its selector").await?,
        "a-msg"
    );
    first.close().await?;
    s1.unsubscribe(&name).await?;
    conn.close().await
}

/// Consumers of one shared non-durable subscription split its messages (each to exactly one
/// of them), while a separate subscription still gets every message (§6.11).
pub async fn shared_subscription_splits_messages_6_11(h: &dyn Harness) -> Result<()> {
    let topic = Destination::topic(h.name("t-shared"));
    let name = h.name("sub");
    let c1 = h.connect().await?;
    let c2 = h.connect().await?;
    let s1 = c1.create_session(SessionMode::AutoAcknowledge).await?;
    let s2 = c2.create_session(SessionMode::AutoAcknowledge).await?;
    let made = s1
        .create_shared_consumer(&topic, &name, ConsumerOptions::default())
        .await;
    let caps = h.capabilities();
    let Some(shared1) = gated(caps.shared_subscriptions, "shared subscriptions", made)? else {
        return Ok(());
    };
    let shared2 = s2
        .create_shared_consumer(&topic, &name, ConsumerOptions::default())
        .await?;
    let separate = s1
        .create_consumer(&topic, ConsumerOptions::default())
        .await?;

    let bodies: Vec<String> = (0..50).map(|i| format!("m{i:02}")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    publish(c2.as_ref(), &topic, &refs).await?;

    let mut split = Vec::new();
    for shared in [&shared1, &shared2] {
        while let Some(m) = shared.receive_timeout(h.quiet()).await? {
            split.push(m.body_text().expect("text").to_string());
        }
    }
    let distinct: BTreeSet<&String> = split.iter().collect();
    assert_eq!(
        split.len(),
        distinct.len(),
        "a message of a shared subscription reached two of its consumers"
    );
    assert_eq!(
        distinct,
        bodies.iter().collect::<BTreeSet<_>>(),
        "the shared subscription lost messages"
    );
    for expected in &bodies {
        assert_eq!(
            &next_text(
                h,
                separate.as_ref(),
                "every message on a separate subscription"
            )
            .await?,
            expected
        );
    }
    assert_quiet(
        h,
        separate.as_ref(),
        "no duplicates on the separate subscription",
    )
    .await?;
    c1.close().await?;
    c2.close().await
}

/// A shared non-durable subscription is deleted with its last consumer: messages published
/// while it has none are not delivered when it is created again (§6.11).
pub async fn shared_subscription_deleted_with_last_consumer_6_11(h: &dyn Harness) -> Result<()> {
    let topic = Destination::topic(h.name("t-shared-gone"));
    let name = h.name("sub");
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let made = session
        .create_shared_consumer(&topic, &name, ConsumerOptions::default())
        .await;
    let caps = h.capabilities();
    let Some(a) = gated(caps.shared_subscriptions, "shared subscriptions", made)? else {
        return Ok(());
    };
    let b = session
        .create_shared_consumer(&topic, &name, ConsumerOptions::default())
        .await?;
    a.close().await?;
    publish(conn.as_ref(), &topic, &["one consumer left"]).await?;
    assert_eq!(
        next_text(
            h,
            b.as_ref(),
            "the subscription lives while one consumer remains"
        )
        .await?,
        "one consumer left"
    );
    b.close().await?;
    publish(conn.as_ref(), &topic, &["nobody"]).await?;
    let c = session
        .create_shared_consumer(&topic, &name, ConsumerOptions::default())
        .await?;
    assert_quiet(
        h,
        c.as_ref(),
        "a shared non-durable subscription must not outlive its last consumer",
    )
    .await?;
    publish(conn.as_ref(), &topic, &["again"]).await?;
    assert_eq!(next_text(h, c.as_ref(), "again").await?, "again");
    conn.close().await
}

/// A shared durable subscription survives all its consumers closing and delivers what was
/// published meanwhile (§6.11).
pub async fn shared_durable_survives_consumers_closing_6_11(h: &dyn Harness) -> Result<()> {
    let topic = Destination::topic(h.name("t-shared-durable"));
    let name = h.name("sub");
    let conn = h.connect().await?;
    let s1 = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let s2 = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let made = s1
        .create_shared_durable_consumer(&topic, &name, ConsumerOptions::default())
        .await;
    let caps = h.capabilities();
    let Some(a) = gated(
        caps.durable_subscriptions && caps.shared_subscriptions,
        "shared durable subscriptions",
        made,
    )?
    else {
        return Ok(());
    };
    let b = s2
        .create_shared_durable_consumer(&topic, &name, ConsumerOptions::default())
        .await?;
    a.close().await?;
    b.close().await?;
    conn.close().await?;

    let publisher = h.connect().await?;
    publish(publisher.as_ref(), &topic, &["k1", "k2", "k3"]).await?;

    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let c = session
        .create_shared_durable_consumer(&topic, &name, ConsumerOptions::default())
        .await?;
    for expected in ["k1", "k2", "k3"] {
        assert_eq!(
            next_text(
                h,
                c.as_ref(),
                &format!("{expected}, kept without consumers")
            )
            .await?,
            expected
        );
    }
    assert_quiet(h, c.as_ref(), "no duplicates").await?;
    c.close().await?;
    session.unsubscribe(&name).await?;
    publisher.close().await?;
    conn.close().await
}

/// A no-local subscriber does not get messages published by its own connection, but does
/// get another connection's (§6.11, no-local).
pub async fn no_local_skips_own_connection_6_11(h: &dyn Harness) -> Result<()> {
    let topic = Destination::topic(h.name("t-nolocal"));
    let conn = h.connect().await?;
    let other = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let made = session
        .create_consumer(&topic, ConsumerOptions::default().with_no_local(true))
        .await;
    let caps = h.capabilities();
    let Some(no_local) = gated(caps.no_local, "no-local consumers", made)? else {
        return Ok(());
    };
    let plain = session
        .create_consumer(&topic, ConsumerOptions::default())
        .await?;
    publish(conn.as_ref(), &topic, &["own"]).await?;
    publish(other.as_ref(), &topic, &["foreign"]).await?;
    assert_eq!(
        next_text(h, no_local.as_ref(), "the other connection's message").await?,
        "foreign"
    );
    assert_quiet(
        h,
        no_local.as_ref(),
        "a no-local subscriber got its own connection's message",
    )
    .await?;
    let mut both = vec![
        next_text(
            h,
            plain.as_ref(),
            "a message at the subscriber without no-local",
        )
        .await?,
        next_text(
            h,
            plain.as_ref(),
            "both messages at the subscriber without no-local",
        )
        .await?,
    ];
    both.sort();
    assert_eq!(
        both,
        ["foreign", "own"],
        "no-local affects only its own consumer"
    );
    other.close().await?;
    conn.close().await
}

/// Durable subscriptions with the same name under different client ids are different
/// subscriptions: each gets every message (§6.11).
pub async fn durable_names_are_scoped_by_client_id_6_11(h: &dyn Harness) -> Result<()> {
    let topic = Destination::topic(h.name("t-scoped"));
    let name = h.name("sub");
    let Some(c1) = connect_with_client_id(h, &h.name("cid")).await? else {
        return Ok(());
    };
    let Some(c2) = connect_with_client_id(h, &h.name("cid")).await? else {
        return Ok(());
    };
    let s1 = c1.create_session(SessionMode::AutoAcknowledge).await?;
    let s2 = c2.create_session(SessionMode::AutoAcknowledge).await?;
    let made = s1
        .create_durable_consumer(&topic, &name, ConsumerOptions::default())
        .await;
    let caps = h.capabilities();
    let Some(d1) = gated(caps.durable_subscriptions, "durable subscriptions", made)? else {
        return Ok(());
    };
    let d2 = s2
        .create_durable_consumer(&topic, &name, ConsumerOptions::default())
        .await?;
    publish(c1.as_ref(), &topic, &["both1", "both2"]).await?;
    for (i, d) in [&d1, &d2].into_iter().enumerate() {
        for expected in ["both1", "both2"] {
            assert_eq!(
                next_text(h, d.as_ref(), &format!("{expected} at client {i}")).await?,
                expected
            );
        }
        assert_quiet(h, d.as_ref(), "each subscription gets each message once").await?;
    }
    d1.close().await?;
    d2.close().await?;
    s1.unsubscribe(&name).await?;
    s2.unsubscribe(&name).await?;
    c1.close().await?;
    c2.close().await
}

/// The cases of this area, for [`crate::conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! topics_cases {
    ($make:expr) => {
        $crate::cases!(
            $make,
            topics,
            [
                fan_out_to_every_subscriber_4_2,
                no_messages_from_before_subscription_4_2,
                durable_keeps_messages_while_inactive_6_11,
                durable_requires_client_id_6_11,
                second_durable_consumer_is_error_6_11,
                unsubscribe_deletes_durable_subscription_6_11,
                unsubscribe_with_active_consumer_is_error_6_11,
                unsubscribe_with_unacknowledged_message_is_error_6_11,
                durable_new_selector_starts_afresh_6_11,
                durable_same_selector_keeps_messages_6_11,
                shared_durable_selector_change_while_active_is_error_6_11,
                shared_subscription_splits_messages_6_11,
                shared_subscription_deleted_with_last_consumer_6_11,
                shared_durable_survives_consumers_closing_6_11,
                no_local_skips_own_connection_6_11,
                durable_names_are_scoped_by_client_id_6_11,
            ]
        );
    };
}
