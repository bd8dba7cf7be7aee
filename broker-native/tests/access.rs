//! Access control of the broker through the embedded factory: authentication of users with
//! argon2id hashes, anonymous access, and per-destination permissions.

use courier_api::*;
use courier_broker::{AccessRule, BrokerConfig, EmbeddedFactory, Permissions, User};
use std::sync::LazyLock;
use std::time::Duration;

/// Each password hashed once for the whole binary (argon2id is slow by design).
static ALICE: LazyLock<User> = LazyLock::new(|| {
    User::with_password("alice", "alice-pw")
        .unwrap()
        .allow("orders.#", Permissions::SEND | Permissions::RECEIVE)
        .allow("orders.audit", Permissions::BROWSE)
        .allow("news", Permissions::RECEIVE | Permissions::ADMIN)
});

static BOB: LazyLock<User> = LazyLock::new(|| {
    User::with_hash(
        "bob",
        User::with_password("x", "bob-pw").unwrap().password_hash(),
    )
    .unwrap()
    .allow("orders.*", Permissions::SEND)
    .allow("news", Permissions::SEND)
});

fn config(anonymous: Option<Vec<AccessRule>>) -> BrokerConfig {
    BrokerConfig {
        users: vec![ALICE.clone(), BOB.clone()],
        anonymous,
        ..BrokerConfig::default()
    }
}

fn is_not_authorized<T>(r: &Result<T>) -> bool {
    matches!(r, Err(Error::NotAuthorized(_)))
}

fn auth_message<T>(r: Result<T>) -> String {
    match r {
        Err(Error::Authentication(m)) => m,
        Err(e) => panic!("expected Authentication, got {e:?}"),
        Ok(_) => panic!("expected Authentication, got a connection"),
    }
}

#[tokio::test]
async fn the_default_broker_lets_anonymous_callers_do_everything() {
    let factory = EmbeddedFactory::default();
    let conn = factory.create_connection().await.unwrap();
    conn.start().await.unwrap();
    let session = conn
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    let q = Destination::queue("anything.at.all");
    session.create_browser(&q, None).await.unwrap();
    let consumer = session
        .create_consumer(&q, ConsumerOptions::default())
        .await
        .unwrap();
    session
        .create_producer(Some(&q))
        .await
        .unwrap()
        .send(&mut Message::text("hi"))
        .await
        .unwrap();
    assert!(consumer.receive_no_wait().await.unwrap().is_some());
}

#[tokio::test]
async fn wrong_password_and_unknown_user_fail_alike() {
    let factory = EmbeddedFactory::new(config(None));
    let wrong = auth_message(factory.create_connection_with("alice", "nope").await);
    let unknown = auth_message(factory.create_connection_with("mallory", "alice-pw").await);
    assert_eq!(wrong, unknown, "no user enumeration");
    assert!(!wrong.contains("alice") && !unknown.contains("mallory"));
    let long = "x".repeat(1 << 20);
    assert_eq!(
        auth_message(factory.create_connection_with(&long, &long).await),
        wrong
    );
    assert_eq!(
        auth_message(factory.create_connection_with("", "").await),
        wrong
    );
    factory
        .create_connection_with("alice", "alice-pw")
        .await
        .unwrap();
    factory
        .create_connection_with("bob", "bob-pw")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_concurrent_bad_logins_is_refused_alike() {
    let factory = EmbeddedFactory::new(config(None));
    let attempts: Vec<_> = (0..32)
        .map(|i| {
            let factory = factory.clone();
            tokio::spawn(async move {
                let user = if i % 2 == 0 { "alice" } else { "nobody" };
                factory.create_connection_with(user, "guess").await.err()
            })
        })
        .collect();
    for attempt in attempts {
        let error = attempt.await.unwrap();
        assert!(matches!(error, Some(Error::Authentication(_))), "{error:?}");
    }
}

#[tokio::test]
async fn anonymous_is_refused_once_users_exist_unless_configured() {
    let refused = EmbeddedFactory::new(config(None));
    let message = auth_message(refused.create_connection().await);
    assert!(message.contains("anonymous"), "{message}");

    // The factory's default credentials authenticate.
    let as_alice = refused.clone().with_credentials("alice", "alice-pw");
    as_alice.create_connection().await.unwrap();
    let as_nobody = refused.clone().with_credentials("alice", "wrong");
    auth_message(as_nobody.create_connection().await);

    let allowed = EmbeddedFactory::new(config(Some(vec![AccessRule::new(
        "public.#",
        Permissions::ALL,
    )])));
    let conn = allowed.create_connection().await.unwrap();
    let session = conn
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    session
        .create_producer(Some(&Destination::queue("public.x")))
        .await
        .unwrap();
    let denied = session
        .create_producer(Some(&Destination::queue("orders.eu")))
        .await;
    assert!(is_not_authorized(&denied), "{:?}", denied.err());
}

#[tokio::test]
async fn permissions_follow_the_most_specific_pattern() {
    let factory = EmbeddedFactory::new(config(None));
    let conn = factory
        .create_connection_with("alice", "alice-pw")
        .await
        .unwrap();
    conn.start().await.unwrap();
    let session = conn
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    let orders = Destination::queue("orders.eu");
    let audit = Destination::queue("orders.audit");
    let other = Destination::queue("payroll");
    // orders.# gives send and receive, not browse.
    let consumer = session
        .create_consumer(&orders, ConsumerOptions::default())
        .await
        .unwrap();
    session
        .create_producer(Some(&orders))
        .await
        .unwrap()
        .send(&mut Message::text("o"))
        .await
        .unwrap();
    assert!(consumer.receive_no_wait().await.unwrap().is_some());
    let browse = session.create_browser(&orders, None).await;
    match browse {
        Err(Error::NotAuthorized(m)) => assert_eq!(m, "browse queue://orders.eu"),
        other => panic!("expected NotAuthorized, got {:?}", other.err()),
    }
    // orders.audit (exact) gives browse only.
    session.create_browser(&audit, None).await.unwrap();
    assert!(is_not_authorized(
        &session.create_producer(Some(&audit)).await
    ));
    assert!(is_not_authorized(
        &session
            .create_consumer(&audit, ConsumerOptions::default())
            .await
    ));
    // No rule: nothing.
    assert!(is_not_authorized(
        &session.create_producer(Some(&other)).await
    ));
}

#[tokio::test]
async fn a_send_to_a_forbidden_destination_is_refused_and_not_delivered() {
    let factory = EmbeddedFactory::new(config(None));
    let bob = factory
        .create_connection_with("bob", "bob-pw")
        .await
        .unwrap();
    let bob_session = bob
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    let alice = factory
        .create_connection_with("alice", "alice-pw")
        .await
        .unwrap();
    alice.start().await.unwrap();
    let alice_session = alice
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    let deep = Destination::queue("orders.eu.paris");
    let watcher = alice_session
        .create_consumer(&deep, ConsumerOptions::default())
        .await
        .unwrap();
    // Bob's orders.* covers orders.eu, not orders.eu.paris.
    let anonymous = bob_session.create_producer(None).await.unwrap();
    anonymous
        .send_to(&Destination::queue("orders.eu"), &mut Message::text("ok"))
        .await
        .unwrap();
    let refused = anonymous
        .send_to(&deep, &mut Message::text("forbidden"))
        .await;
    match &refused {
        Err(Error::NotAuthorized(m)) => assert_eq!(m, "send to queue://orders.eu.paris"),
        other => panic!("expected NotAuthorized, got {other:?}"),
    }
    let receipt = anonymous
        .send_async_to(&deep, Message::text("forbidden too"))
        .await;
    let outcome = match receipt {
        Ok(r) => r.await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(is_not_authorized(&outcome), "{outcome:?}");
    assert!(watcher
        .receive_timeout(Duration::from_millis(50))
        .await
        .unwrap()
        .is_none());
    // Bob may not receive anything.
    assert!(is_not_authorized(
        &bob_session
            .create_consumer(&Destination::queue("orders.eu"), ConsumerOptions::default())
            .await
    ));
}

#[tokio::test]
async fn durable_subscriptions_need_admin() {
    let factory = EmbeddedFactory::new(config(None));
    let news = Destination::topic("news");
    let bob = factory
        .create_connection_with("bob", "bob-pw")
        .await
        .unwrap();
    bob.set_client_id("bob-client").await.unwrap();
    let s = bob
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    assert!(is_not_authorized(
        &s.create_durable_consumer(&news, "d", ConsumerOptions::default())
            .await
    ));
    assert!(is_not_authorized(
        &s.create_consumer(&news, ConsumerOptions::default()).await
    ));
    s.create_producer(Some(&news)).await.unwrap();

    let alice = factory
        .create_connection_with("alice", "alice-pw")
        .await
        .unwrap();
    alice.set_client_id("alice-client").await.unwrap();
    let s = alice
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    let durable = s
        .create_durable_consumer(&news, "d", ConsumerOptions::default())
        .await
        .unwrap();
    durable.close().await.unwrap();
    s.unsubscribe("d").await.unwrap();
    assert!(is_not_authorized(&s.create_producer(Some(&news)).await));
}

#[tokio::test]
async fn unsubscribe_is_checked_against_the_subscriptions_topic() {
    // A user who may subscribe durably on `a` but only receive on `b` cannot delete a
    // durable subscription on `b` another grant made under the same client id.
    let admin = User::with_hash("admin", ALICE.password_hash())
        .unwrap()
        .allow("#", Permissions::ALL);
    let limited = User::with_hash("limited", ALICE.password_hash())
        .unwrap()
        .allow("b", Permissions::RECEIVE);
    let factory = EmbeddedFactory::new(BrokerConfig {
        users: vec![admin, limited],
        ..BrokerConfig::default()
    });
    let topic = Destination::topic("b");
    let a = factory
        .create_connection_with("admin", "alice-pw")
        .await
        .unwrap();
    a.set_client_id("shared-id").await.unwrap();
    let s = a
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    s.create_durable_consumer(&topic, "keep", ConsumerOptions::default())
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    a.close().await.unwrap();
    let l = factory
        .create_connection_with("limited", "alice-pw")
        .await
        .unwrap();
    l.set_client_id("shared-id").await.unwrap();
    let s = l
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    // RECEIVE alone subscribes non-durably, not durably.
    s.create_consumer(&topic, ConsumerOptions::default())
        .await
        .unwrap();
    match s
        .create_durable_consumer(&topic, "mine", ConsumerOptions::default())
        .await
    {
        Err(Error::NotAuthorized(m)) => assert_eq!(m, "durable subscription to topic://b"),
        other => panic!("expected NotAuthorized, got {:?}", other.err()),
    }
    match s.unsubscribe("keep").await {
        Err(Error::NotAuthorized(m)) => assert_eq!(m, "unsubscribe from topic://b"),
        other => panic!("expected NotAuthorized, got {other:?}"),
    }
}

#[tokio::test]
async fn temporary_destinations_are_not_checked() {
    let factory = EmbeddedFactory::new(config(None));
    let bob = factory
        .create_connection_with("bob", "bob-pw")
        .await
        .unwrap();
    bob.start().await.unwrap();
    let s = bob
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    let reply = s.create_temporary_queue().await.unwrap();
    let consumer = s
        .create_consumer(&reply, ConsumerOptions::default())
        .await
        .unwrap();
    s.create_producer(Some(&reply))
        .await
        .unwrap()
        .send(&mut Message::text("r"))
        .await
        .unwrap();
    assert!(consumer.receive_no_wait().await.unwrap().is_some());
}

#[test]
fn hashes_must_be_well_formed_argon2id() {
    let good = ALICE.password_hash();
    assert!(good.starts_with("$argon2id$v=19$"), "{good}");
    assert!(User::with_hash("a", good).is_ok());
    let argon2i = good.replacen("$argon2id$", "$argon2i$", 1);
    for bad in [
        "",
        "plain text",
        "$argon2id$",
        argon2i.as_str(),
        "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
        "$2b$12$abcdefghijklmnopqrstuuJ1Sa3i7yvWc6fOEbYt0QcWbP5kK4Efa",
    ] {
        assert!(
            matches!(User::with_hash("a", bad), Err(Error::InvalidArgument(_))),
            "{bad:?} accepted"
        );
    }
    assert!(User::with_hash("", good).is_err());
    // A configured hash may not make each login take absurd memory or time.
    for (from, to) in [
        ("m=19456", "m=1048576"),
        ("t=2", "t=1000"),
        ("p=1", "p=255"),
    ] {
        assert!(good.contains(from), "{good}");
        let costly = good.replacen(from, to, 1);
        assert!(
            matches!(
                User::with_hash("a", &costly),
                Err(Error::InvalidArgument(_))
            ),
            "{costly:?} accepted"
        );
    }
    assert!(
        !format!("{:?}", *ALICE).contains(good),
        "Debug hides the hash"
    );
}

#[test]
fn permissions_combine_and_print() {
    let p = Permissions::SEND | Permissions::BROWSE;
    assert!(p.contains(Permissions::SEND));
    assert!(!p.contains(Permissions::RECEIVE));
    assert!(Permissions::ALL.contains(p));
    assert_eq!(format!("{p:?}"), "SEND|BROWSE");
    assert_eq!(format!("{:?}", Permissions::NONE), "NONE");
}
