//! `courier::connect` as a user meets it: which URLs open a backend, and which are refused
//! with which error, for the cargo features of this build.

use courier::{connect, Error};

async fn refusal(url: &str) -> Error {
    match connect(url).await {
        Ok(_) => panic!("{url:?} must be refused"),
        Err(e) => e,
    }
}

#[cfg(feature = "native")]
#[tokio::test]
async fn embedded_connects_and_its_refusals_pass_through() {
    assert!(connect("embedded:").await.is_ok());
    assert!(connect("Embedded:").await.is_ok());
    assert!(courier::schemes().contains(&"embedded"));
    // A data directory opens a durable broker with its journal there.
    let dir = std::env::temp_dir().join(format!("courier-connect-{}", std::process::id()));
    let durable = connect(&format!("embedded:{}", dir.display()))
        .await
        .unwrap();
    assert!(durable.capabilities().durable_storage);
    drop(durable);
    let _ = std::fs::remove_dir_all(&dir);
    for url in ["embedded:?x=%FF%FE", "embedded:?&&==", "embedded:#x"] {
        let e = refusal(url).await;
        assert!(matches!(e, Error::InvalidArgument(_)), "{url}: {e}");
    }
}

#[cfg(feature = "tcp")]
#[tokio::test]
async fn courier_urls_open_a_tcp_factory_and_a_dead_server_is_a_connection_loss() {
    assert!(courier::schemes().contains(&"courier"));
    // Nothing listens on port 9 of loopback (discard): connecting fails, typed.
    let factory = connect("courier://app:pw@127.0.0.1:9/?connect_timeout=2s")
        .await
        .unwrap();
    assert_eq!(factory.capabilities().backend, "courier");
    let e = factory.create_connection().await.err().expect("no server");
    assert!(matches!(e, Error::ConnectionLost { .. }), "{e}");
    let bad = refusal("courier://127.0.0.1:7672/?bogus=1").await;
    assert!(matches!(bad, Error::InvalidArgument(_)), "{bad}");
}

#[cfg(not(feature = "tcp"))]
#[tokio::test]
async fn courier_urls_name_the_tcp_feature_when_it_is_off() {
    let e = refusal("courier://127.0.0.1:7672").await;
    assert!(e.is_unsupported(), "{e}");
    assert!(
        e.to_string()
            .contains("enable the `tcp` feature of courier"),
        "{e}"
    );
}

#[cfg(feature = "native")]
#[tokio::test]
async fn embedded_options_ride_in_the_url() {
    let factory = connect("embedded:?client_id=app1&prefetch=10&heartbeat=5s")
        .await
        .unwrap();
    let first = factory.create_connection().await.unwrap();
    assert_eq!(first.client_id().as_deref(), Some("app1"));
    let second = factory.create_connection().await.err().expect("id in use");
    assert!(matches!(second, Error::InvalidClientId(_)), "{second}");
    for url in [
        "embedded:?prefetch=-1",
        "embedded:?client_id=a&client_id=b",
        "embedded:?connect_timeout=99999999999999h",
        "embedded:?client_id=",
        "embedded:?colour=blue",
    ] {
        let e = refusal(url).await;
        assert!(matches!(e, Error::InvalidArgument(_)), "{url}: {e}");
    }
}

/// Each backend feature: off → the error names the feature; on → the backend's own answer
/// (amqp and redis: a factory, which connects only when asked; rediss: no TLS).
#[tokio::test]
async fn amqp_and_redis_urls_name_their_feature_when_it_is_off() {
    for (url, feature, enabled) in [
        ("amqp://127.0.0.1", "amqp", cfg!(feature = "amqp")),
        ("AMQPS://u:p@h/v", "amqp", cfg!(feature = "amqp")),
        ("redis://127.0.0.1:6379", "redis", cfg!(feature = "redis")),
        ("rediss://h", "redis", cfg!(feature = "redis")),
    ] {
        if enabled && (url.starts_with("redis:") || feature == "amqp") {
            let factory = courier::connect(url).await;
            assert!(factory.is_ok(), "{url}: {:?}", factory.err());
            continue;
        }
        let e = refusal(url).await;
        assert!(e.is_unsupported(), "{url}: {e}");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("unsupported by the {feature} backend")),
            "{text}"
        );
        let names_feature = text.contains(&format!("enable the `{feature}` feature of courier"));
        assert_eq!(names_feature, !enabled, "{url}: {text}");
        if enabled {
            assert!(
                text.contains("not built yet") || text.contains("no TLS"),
                "{text}"
            );
        }
    }
}

#[cfg(not(feature = "native"))]
#[tokio::test]
async fn embedded_names_the_native_feature_when_it_is_off() {
    let e = refusal("embedded:").await;
    assert!(
        e.to_string()
            .contains("enable the `native` feature of courier"),
        "{e}"
    );
}

#[tokio::test]
async fn unknown_schemes_and_malformed_urls_are_invalid_arguments() {
    for url in [
        "",
        "nothing",
        "ftp://x",
        "http://example.com",
        "embedded:%",
        "embedded:%zz",
        "embedded:\0",
        " embedded:",
    ] {
        let e = refusal(url).await;
        assert!(matches!(e, Error::InvalidArgument(_)), "{url:?}: {e}");
    }
    let e = refusal("ftp://x").await.to_string();
    assert!(e.contains("unknown URL scheme \"ftp\""), "{e}");
    assert!(e.contains("embedded:"), "{e}");
    let huge = format!("embedded:?{}", "a=b&".repeat(1 << 20));
    let e = refusal(&huge).await.to_string();
    assert!(e.len() < 200, "{e}");
    let huge_scheme = format!("{}://x", "a".repeat(4000));
    let e = refusal(&huge_scheme).await.to_string();
    assert!(e.len() < 400, "{e}");
}
