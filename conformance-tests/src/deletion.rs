//! Deleting destinations ([`Session::delete_destination`], an administrative operation beside
//! the specification): the destination goes with every message it stores, a later send makes
//! it afresh and empty, a missing one is [`Error::InvalidDestination`], one in use is refused
//! with [`Error::IllegalState`], and a topic takes its durable subscriptions with it.
//!
//! A backend without [`Capabilities::delete_destinations`] answers `Unsupported`, which each
//! case checks before it ends early; one without [`Capabilities::delete_topics`] answers it
//! for topics only. The durable side (a deleted queue's messages stay gone
//! after a restart) is in the persistence area; the permission in the security area.

use courier_api::*;

use crate::expect::{is_illegal_state, is_invalid_destination, outcome, send_texts};
use crate::{gated, Harness};

/// Deletes `destination` on a fresh session of `conn`; `None` when the backend cannot.
pub(crate) async fn delete(
    h: &dyn Harness,
    conn: &dyn Connection,
    destination: &Destination,
) -> Result<Option<()>> {
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let deleted = session.delete_destination(destination).await;
    session.close().await?;
    gated(
        h.capabilities().delete_destinations,
        "destination deletion",
        deleted,
    )
}

/// A deleted queue's messages are gone; a send afterwards makes the queue afresh, holding only
/// the new message.
pub async fn delete_then_send_recreates_empty_queue(h: &dyn Harness) -> Result<()> {
    let queue = Destination::queue(h.name("del-q"));
    let conn = h.connect().await?;
    send_texts(conn.as_ref(), &queue, &["old1", "old2"]).await?;
    if delete(h, conn.as_ref(), &queue).await?.is_none() {
        return conn.close().await;
    }
    send_texts(conn.as_ref(), &queue, &["new"]).await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let m = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("the new message");
    assert_eq!(
        m.body_text(),
        Some("new"),
        "only the message sent after the deletion"
    );
    let more = consumer.receive_timeout(h.quiet()).await?;
    assert!(
        more.is_none(),
        "the deleted messages are gone: got {:?}",
        more.map(|m| m.body().clone())
    );
    conn.close().await
}

/// Deleting a destination that does not exist, or a temporary one, is
/// [`Error::InvalidDestination`].
pub async fn delete_missing_is_invalid_destination(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let caps = h.capabilities();
    for missing in [
        Destination::queue(h.name("del-never")),
        Destination::topic(h.name("del-never-t")),
    ] {
        let r = session.delete_destination(&missing).await;
        if !caps.delete_destinations {
            gated(false, "destination deletion", r)?;
            return conn.close().await;
        }
        if missing.kind() == DestinationKind::Topic && !caps.delete_topics {
            gated(false, "topic deletion", r)?;
            continue;
        }
        assert!(
            is_invalid_destination(&r),
            "deleting {missing}, which does not exist: {}",
            outcome(&r)
        );
    }
    if caps.temporary_destinations {
        let temporary = session.create_temporary_queue().await?;
        let r = session.delete_destination(&temporary).await;
        assert!(
            is_invalid_destination(&r),
            "a temporary queue is deleted with delete_temporary: {}",
            outcome(&r)
        );
    }
    conn.close().await
}

/// A queue with an open consumer is not deleted (`IllegalState`) and keeps its messages; once
/// the consumer is closed it is.
pub async fn delete_with_consumer_refused(h: &dyn Harness) -> Result<()> {
    let queue = Destination::queue(h.name("del-busy"));
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let admin = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let r = admin.delete_destination(&queue).await;
    if !h.capabilities().delete_destinations {
        gated(false, "destination deletion", r)?;
        return conn.close().await;
    }
    assert!(
        is_illegal_state(&r),
        "deleting a queue with an open consumer: {}",
        outcome(&r)
    );
    send_texts(conn.as_ref(), &queue, &["kept"]).await?;
    let m = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("the queue still works");
    assert_eq!(m.body_text(), Some("kept"));
    consumer.close().await?;
    admin.delete_destination(&queue).await?;
    conn.close().await
}

/// Deleting a topic removes its durable subscriptions: unsubscribing afterwards finds none,
/// and a subscription made again under the name holds nothing of before.
pub async fn delete_topic_removes_durable_subscriptions(h: &dyn Harness) -> Result<()> {
    let caps = h.capabilities();
    if !caps.durable_subscriptions || !caps.delete_destinations {
        return Ok(());
    }
    let topic = Destination::topic(h.name("del-t"));
    let name = h.name("del-sub");
    let conn = h.factory().create_connection().await?;
    conn.set_client_id(&h.name("del-cid")).await?;
    conn.start().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let sub = session
        .create_durable_consumer(&topic, &name, ConsumerOptions::default())
        .await?;
    sub.close().await?;
    let publisher = h.connect().await?;
    send_texts(publisher.as_ref(), &topic, &["kept-for-sub"]).await?;
    let deleted = session.delete_destination(&topic).await;
    if gated(caps.delete_topics, "topic deletion", deleted)?.is_none() {
        session.unsubscribe(&name).await?;
        publisher.close().await?;
        return conn.close().await;
    }
    let r = session.unsubscribe(&name).await;
    assert!(
        is_invalid_destination(&r),
        "the durable subscription went with its topic: {}",
        outcome(&r)
    );
    let sub = session
        .create_durable_consumer(&topic, &name, ConsumerOptions::default())
        .await?;
    let m = sub.receive_timeout(h.quiet()).await?;
    assert!(
        m.is_none(),
        "a subscription made after the deletion holds nothing of before: {:?}",
        m.map(|m| m.body().clone())
    );
    sub.close().await?;
    session.unsubscribe(&name).await?;
    publisher.close().await?;
    conn.close().await
}

/// Expands the deletion cases.
#[doc(hidden)]
#[macro_export]
macro_rules! deletion_cases {
    ($make:expr) => {
        $crate::cases!(
            $make,
            deletion,
            [
                delete_then_send_recreates_empty_queue,
                delete_missing_is_invalid_destination,
                delete_with_consumer_refused,
                delete_topic_removes_durable_subscriptions,
            ]
        );
    };
}
