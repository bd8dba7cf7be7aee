//! Authentication and authorization: a backend with users refuses wrong credentials and
//! missing ones with [`Error::Authentication`] — a wrong password and an unknown user alike,
//! so a caller cannot tell which user names exist — and refuses an operation on a
//! destination the user may not use with [`Error::NotAuthorized`], naming nothing but the
//! operation and destination. A refused send delivers nothing.
//!
//! The cases connect through [`Harness::secured_factory`], configured with the users of
//! [`Fixture`]. A backend without [`Capabilities::access_control`] answers `Unsupported` there
//! and to `create_connection_with`, and the case ends early; one with it must provide the
//! factory. A refusal may come when the producer, consumer or browser is made or at its
//! first send, receive or `next`; either counts.

use courier_api::*;
use std::sync::Arc;

use crate::expect::outcome;
use crate::harness::{AccessSpec, Grant, SpecUser};
use crate::{gated, Harness};

/// The users of the security cases and their destinations:
/// - `writer` may send to `queue`;
/// - `reader` may receive from and browse `queue`;
/// - neither may do anything on `other`.
pub struct Fixture {
    /// The factory of [`Harness::secured_factory`].
    pub factory: Arc<dyn ConnectionFactory>,
    /// May send to [`Fixture::queue`].
    pub writer: SpecUser,
    /// May receive from and browse [`Fixture::queue`].
    pub reader: SpecUser,
    /// The queue the users share.
    pub queue: Destination,
    /// A queue no user may use.
    pub other: Destination,
}

impl Fixture {
    /// The fixture of `h`, or `None` when its harness cannot configure users.
    pub async fn new(h: &dyn Harness) -> Result<Option<Fixture>> {
        let queue = Destination::queue(h.name("sec-q"));
        let other = Destination::queue(h.name("sec-other"));
        let password = || uuid::Uuid::new_v4().simple().to_string();
        let writer = SpecUser {
            name: h.name("writer"),
            password: password(),
            grants: vec![(queue.clone(), vec![Grant::Send])],
        };
        let reader = SpecUser {
            name: h.name("reader"),
            password: password(),
            grants: vec![(queue.clone(), vec![Grant::Receive, Grant::Browse])],
        };
        let spec = AccessSpec {
            users: vec![writer.clone(), reader.clone()],
        };
        let caps = h.capabilities();
        let secured = h.secured_factory(&spec).await;
        let Some(factory) = gated(caps.access_control, "access control", secured)? else {
            // Without access control, credentials are refused rather than ignored.
            let with = h
                .factory()
                .create_connection_with(&writer.name, &writer.password)
                .await;
            gated(false, "access control", with)?;
            return Ok(None);
        };
        Ok(Some(Fixture {
            factory,
            writer,
            reader,
            queue,
            other,
        }))
    }

    /// A started connection as `user`.
    pub async fn connect(&self, user: &SpecUser) -> Result<Box<dyn Connection>> {
        let connection = self
            .factory
            .create_connection_with(&user.name, &user.password)
            .await?;
        connection.start().await?;
        Ok(connection)
    }
}

/// The text of an [`Error::Authentication`]; panics on anything else.
fn authentication_text<T>(result: Result<T>, what: &str) -> String {
    match result {
        Err(e @ Error::Authentication(_)) => e.to_string(),
        other => panic!(
            "{what}: expected Error::Authentication, got {}",
            outcome(&other)
        ),
    }
}

/// Panics unless `result` is [`Error::NotAuthorized`] whose text names `destination` and
/// leaks no secret of the fixture.
fn assert_not_authorized<T>(result: &Result<T>, fixture: &Fixture, destination: &Destination) {
    let text = match result {
        Err(e @ Error::NotAuthorized(_)) => e.to_string(),
        other => panic!(
            "an operation on {destination} the user may not do: expected \
             Error::NotAuthorized, got {}",
            outcome(other)
        ),
    };
    assert!(
        text.contains(destination.name()),
        "the refusal names its destination: {text}"
    );
    for secret in [&fixture.writer.password, &fixture.reader.password] {
        assert!(!text.contains(secret.as_str()), "a password leaked: {text}");
    }
}

/// A send to `destination` on `conn`: the producer's creation or its send.
async fn try_send(conn: &dyn Connection, destination: &Destination, body: &str) -> Result<()> {
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let producer = session.create_producer(Some(destination)).await?;
    producer.send(&mut Message::text(body)).await
}

/// A receive from `destination` on `conn`: the consumer's creation or its receive.
async fn try_receive(
    h: &dyn Harness,
    conn: &dyn Connection,
    destination: &Destination,
) -> Result<Option<Message>> {
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = session
        .create_consumer(destination, ConsumerOptions::default())
        .await?;
    consumer.receive_timeout(h.quiet()).await
}

/// A wrong password is refused with `Authentication`.
pub async fn wrong_password_is_refused(h: &dyn Harness) -> Result<()> {
    let Some(f) = Fixture::new(h).await? else {
        return Ok(());
    };
    let refused = f
        .factory
        .create_connection_with(&f.writer.name, &f.reader.password)
        .await;
    let text = authentication_text(refused, "a wrong password");
    assert!(
        !text.contains(f.reader.password.as_str()),
        "the refusal repeats the password: {text}"
    );
    Ok(())
}

/// An unknown user is refused exactly like a wrong password: same kind, same text, so a
/// caller cannot learn which user names exist.
pub async fn unknown_user_is_refused_like_a_wrong_password(h: &dyn Harness) -> Result<()> {
    let Some(f) = Fixture::new(h).await? else {
        return Ok(());
    };
    let wrong = authentication_text(
        f.factory
            .create_connection_with(&f.writer.name, "not-the-password")
            .await,
        "a wrong password",
    );
    let unknown_name = h.name("nobody");
    let unknown = authentication_text(
        f.factory
            .create_connection_with(&unknown_name, "not-the-password")
            .await,
        "an unknown user",
    );
    assert_eq!(
        wrong, unknown,
        "a wrong password and an unknown user must be refused alike"
    );
    assert!(!unknown.contains(unknown_name.as_str()), "{unknown}");
    Ok(())
}

/// With anonymous access off, a connection without credentials is refused with
/// `Authentication`.
pub async fn no_credentials_are_refused_when_anonymous_is_off(h: &dyn Harness) -> Result<()> {
    let Some(f) = Fixture::new(h).await? else {
        return Ok(());
    };
    authentication_text(
        f.factory.create_connection().await,
        "a connection without credentials",
    );
    Ok(())
}

/// A user who may only receive from a queue is refused a send to it with `NotAuthorized`,
/// and the message is not delivered.
pub async fn send_to_a_receive_only_destination_is_refused(h: &dyn Harness) -> Result<()> {
    let Some(f) = Fixture::new(h).await? else {
        return Ok(());
    };
    let reader = f.connect(&f.reader).await?;
    let session = reader.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = session
        .create_consumer(&f.queue, ConsumerOptions::default())
        .await?;
    let sent = try_send(reader.as_ref(), &f.queue, "forbidden").await;
    assert_not_authorized(&sent, &f, &f.queue);
    let writer = f.connect(&f.writer).await?;
    let elsewhere = try_send(writer.as_ref(), &f.other, "forbidden elsewhere").await;
    assert_not_authorized(&elsewhere, &f, &f.other);
    let leaked = consumer.receive_timeout(h.quiet()).await?;
    assert!(
        leaked.is_none(),
        "a refused send was delivered: {:?}",
        leaked.map(|m| m.body().clone())
    );
    writer.close().await?;
    reader.close().await
}

/// Deleting a destination is an administrative operation: a user who may send, receive and
/// browse a queue, but holds no administrative grant, is refused its deletion with
/// `NotAuthorized` and the queue keeps its message.
pub async fn delete_without_admin_is_refused(h: &dyn Harness) -> Result<()> {
    let Some(f) = Fixture::new(h).await? else {
        return Ok(());
    };
    let writer = f.connect(&f.writer).await?;
    try_send(writer.as_ref(), &f.queue, "stays").await?;
    let reader = f.connect(&f.reader).await?;
    for (conn, who) in [(&writer, "writer"), (&reader, "reader")] {
        let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
        let deleted = session.delete_destination(&f.queue).await;
        if !h.capabilities().delete_destinations {
            gated(false, "destination deletion", deleted)?;
            continue;
        }
        match &deleted {
            Err(Error::NotAuthorized(_)) => assert_not_authorized(&deleted, &f, &f.queue),
            other => panic!(
                "the {who} deleted a queue without admin: {}",
                outcome(other)
            ),
        }
        session.close().await?;
    }
    let session = reader.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = session
        .create_consumer(&f.queue, ConsumerOptions::default())
        .await?;
    let m = consumer.receive_timeout(h.wait()).await?;
    assert_eq!(
        m.as_ref().and_then(|m| m.body_text()),
        Some("stays"),
        "a refused deletion keeps the queue's messages"
    );
    writer.close().await?;
    reader.close().await
}

/// A user who may only send to a queue is refused a receive from it, and anyone a receive
/// from a queue it has no grant on, with `NotAuthorized`; the queue's message stays for a
/// user who may take it.
pub async fn receive_from_a_forbidden_destination_is_refused(h: &dyn Harness) -> Result<()> {
    let Some(f) = Fixture::new(h).await? else {
        return Ok(());
    };
    let writer = f.connect(&f.writer).await?;
    try_send(writer.as_ref(), &f.queue, "kept").await?;
    let taken = try_receive(h, writer.as_ref(), &f.queue).await;
    assert_not_authorized(&taken, &f, &f.queue);
    let reader = f.connect(&f.reader).await?;
    let elsewhere = try_receive(h, reader.as_ref(), &f.other).await;
    assert_not_authorized(&elsewhere, &f, &f.other);
    let session = reader.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = session
        .create_consumer(&f.queue, ConsumerOptions::default())
        .await?;
    let kept = consumer.receive_timeout(h.wait()).await?;
    assert_eq!(
        kept.as_ref().and_then(|m| m.body_text()),
        Some("kept"),
        "the message a refused consumer could not take stays for a permitted one"
    );
    writer.close().await?;
    reader.close().await
}

/// A user without browse permission on a queue is refused a browser on it with
/// `NotAuthorized` (on a backend that browses at all).
pub async fn browse_of_a_forbidden_destination_is_refused(h: &dyn Harness) -> Result<()> {
    if !h.capabilities().browse {
        return Ok(());
    }
    let Some(f) = Fixture::new(h).await? else {
        return Ok(());
    };
    let writer = f.connect(&f.writer).await?;
    try_send(writer.as_ref(), &f.queue, "hidden").await?;
    let session = writer.create_session(SessionMode::AutoAcknowledge).await?;
    let browsed = match session.create_browser(&f.queue, None).await {
        Ok(browser) => browser.next().await,
        Err(e) => Err(e),
    };
    assert_not_authorized(&browsed, &f, &f.queue);
    writer.close().await
}

/// What the users may do works: the writer's message reaches the reader, who can browse it
/// first.
pub async fn permitted_operations_work(h: &dyn Harness) -> Result<()> {
    let Some(f) = Fixture::new(h).await? else {
        return Ok(());
    };
    let writer = f.connect(&f.writer).await?;
    try_send(writer.as_ref(), &f.queue, "allowed").await?;
    let reader = f.connect(&f.reader).await?;
    let session = reader.create_session(SessionMode::AutoAcknowledge).await?;
    if h.capabilities().browse {
        let browser = session.create_browser(&f.queue, None).await?;
        let seen = browser.next().await?;
        assert_eq!(
            seen.as_ref().and_then(|m| m.body_text()),
            Some("allowed"),
            "the reader browses the queue"
        );
    }
    let consumer = session
        .create_consumer(&f.queue, ConsumerOptions::default())
        .await?;
    let got = consumer.receive_timeout(h.wait()).await?;
    assert_eq!(got.as_ref().and_then(|m| m.body_text()), Some("allowed"));
    writer.close().await?;
    reader.close().await
}

/// The cases of this area, for [`crate::conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! security_cases {
    ($make:expr) => {
        $crate::cases!(
            $make,
            security,
            [
                wrong_password_is_refused,
                unknown_user_is_refused_like_a_wrong_password,
                no_credentials_are_refused_when_anonymous_is_off,
                send_to_a_receive_only_destination_is_refused,
                receive_from_a_forbidden_destination_is_refused,
                browse_of_a_forbidden_destination_is_refused,
                permitted_operations_work,
                delete_without_admin_is_refused,
            ]
        );
    };
}
