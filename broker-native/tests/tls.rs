//! Courier over TLS and the security cases over TCP, each refused with a typed error and
//! audited in the server's log (captured here from `tracing`): a round trip over TLS with
//! certificates made on the fly, a server whose CA the client does not trust, plaintext
//! where TLS is required, a wrong password, an unknown user, and a user sending to a
//! destination it may only read.

#[path = "support/certs.rs"]
mod certs;

use courier_api::*;
use courier_broker::client::{ClientTls, TcpFactory};
use courier_broker::server::{Server, ServerConfig, ServerTls};
use courier_broker::{Broker, BrokerConfig, Permissions, User};
use parking_lot::Mutex;
use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Everything the servers of this binary log at `info` and above.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log() -> &'static Log {
    static LOG: OnceLock<Log> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Log::default();
        let writer = log.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .init();
        log
    })
}

/// The log lines that mention `needle`, once one of them also holds `what` (waits briefly:
/// the server logs as it closes the connection).
async fn audited(needle: &str, what: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = String::from_utf8_lossy(&log().0.lock()).into_owned();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(needle)).collect();
        if lines
            .iter()
            .any(|l| l.contains(what) && l.contains("courier::audit"))
        {
            return lines.join("\n");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no audit line with {needle:?} and {what:?} in the log:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Users: `writer` may send and receive `orders.#`, `reader` only receive it.
fn users() -> BrokerConfig {
    BrokerConfig {
        users: vec![
            User::with_password("writer", "w-pass")
                .unwrap()
                .allow("orders.#", Permissions::SEND | Permissions::RECEIVE),
            User::with_password("reader", "r-pass")
                .unwrap()
                .allow("orders.#", Permissions::RECEIVE),
        ],
        anonymous: None,
        ..BrokerConfig::default()
    }
}

async fn serve(tls: Option<ServerTls>) -> Server {
    log();
    let config = ServerConfig {
        tls,
        ..ServerConfig::default()
    };
    Server::bind("127.0.0.1:0", Broker::new(users()), config)
        .await
        .unwrap()
}

async fn round_trip(factory: &dyn ConnectionFactory, user: &str, password: &str, text: &str) {
    let connection = factory
        .create_connection_with(user, password)
        .await
        .unwrap();
    connection.start().await.unwrap();
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    let queue = Destination::queue(format!("orders.{text}"));
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await
        .unwrap();
    session
        .create_producer(Some(&queue))
        .await
        .unwrap()
        .send(&mut Message::text(text))
        .await
        .unwrap();
    let got = consumer.receive_timeout(Duration::from_secs(5)).await;
    assert_eq!(got.unwrap().unwrap().body_text(), Some(text));
    connection.close().await.unwrap();
}

#[tokio::test]
async fn a_round_trip_over_tls_with_a_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let pki = certs::make_pki(dir.path(), "server");
    let tls = ServerTls::from_pem_files(&pki.cert_file, &pki.key_file).unwrap();
    let server = serve(Some(tls)).await;
    let port = server.local_addr().port();
    let ca = pki.ca_file.display();
    for url in [
        format!("courier+tls://127.0.0.1:{port}?ca={ca}"),
        format!("courier://localhost:{port}/?tls=true&ca={ca}"),
    ] {
        let factory = courier_broker::connect(&url).await.unwrap();
        round_trip(factory.as_ref(), "writer", "w-pass", "tls").await;
    }
    // The same identity from PEM text, and a client trusting PEM text.
    let tls = ServerTls::from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes()).unwrap();
    let server = serve(Some(tls)).await;
    let ca_pem = std::fs::read(&pki.ca_file).unwrap();
    let factory = TcpFactory::new(server.local_addr().to_string())
        .with_tls(Some(ClientTls::with_ca_pem(&ca_pem).unwrap()));
    assert!(factory.uses_tls());
    round_trip(&factory, "writer", "w-pass", "pem").await;
}

#[tokio::test]
async fn a_server_whose_ca_the_client_does_not_trust_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let pki = certs::make_pki(dir.path(), "server");
    let other = certs::make_pki(dir.path(), "other");
    let tls = ServerTls::from_pem_files(&pki.cert_file, &pki.key_file).unwrap();
    let server = serve(Some(tls)).await;
    let url = format!(
        "courier+tls://127.0.0.1:{}?ca={}",
        server.local_addr().port(),
        other.ca_file.display()
    );
    let factory = TcpFactory::from_url(&url).unwrap();
    let refused = factory.create_connection_with("writer", "w-pass").await;
    match refused {
        Err(Error::Authentication(why)) => {
            assert!(why.contains("not trusted"), "{why}");
            assert!(why.contains("UnknownIssuer"), "{why}");
        }
        other => panic!("expected an authentication error, got {:?}", other.err()),
    }
    // The server logs the failed TLS handshake under the audit target.
    audited("TLS handshake failed", "connection refused").await;
    // A CA file that is not one is refused before connecting.
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let bad = TcpFactory::from_url(&format!("courier+tls://127.0.0.1:1?ca={}", bogus.display()));
    assert!(
        matches!(bad, Err(Error::InvalidArgument(_))),
        "{:?}",
        bad.err()
    );
    let missing = TcpFactory::from_url("courier+tls://127.0.0.1:1?ca=/nonexistent/ca.pem");
    assert!(matches!(missing, Err(Error::InvalidArgument(_))));
    let contradiction = TcpFactory::from_url("courier+tls://127.0.0.1:1?tls=false");
    assert!(matches!(contradiction, Err(Error::InvalidArgument(_))));
}

#[tokio::test]
async fn plaintext_is_refused_where_tls_is_required_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let pki = certs::make_pki(dir.path(), "server");
    let tls = ServerTls::from_pem_files(&pki.cert_file, &pki.key_file).unwrap();
    assert!(!tls.plaintext_allowed(), "TLS is required unless allowed");
    let server = serve(Some(tls.clone())).await;
    let plain = TcpFactory::new(server.local_addr().to_string());
    match plain.create_connection_with("writer", "w-pass").await {
        Err(Error::Authentication(why)) => assert!(why.contains("TLS"), "{why}"),
        other => panic!("expected an authentication error, got {:?}", other.err()),
    }
    let lines = audited("TLS connections only", "connection refused").await;
    assert!(
        lines.contains("writer"),
        "the audit names the user:\n{lines}"
    );
    assert!(
        !lines.contains("w-pass"),
        "no password in the log:\n{lines}"
    );
    // Where plaintext is allowed, the same port serves both.
    let mixed = serve(Some(tls.allow_plaintext(true))).await;
    let port = mixed.local_addr().port();
    round_trip(
        &TcpFactory::new(format!("127.0.0.1:{port}")),
        "writer",
        "w-pass",
        "plain",
    )
    .await;
    let secured = TcpFactory::from_url(&format!(
        "courier+tls://localhost:{port}?ca={}",
        pki.ca_file.display()
    ))
    .unwrap();
    round_trip(&secured, "writer", "w-pass", "secured").await;
}

#[tokio::test]
async fn wrong_passwords_unknown_users_and_sends_to_read_only_destinations_are_refused_and_audited()
{
    let server = serve(None).await;
    let factory = TcpFactory::new(server.local_addr().to_string());

    let wrong = factory.create_connection_with("writer", "guess").await;
    assert!(
        matches!(wrong, Err(Error::Authentication(_))),
        "{:?}",
        wrong.err()
    );
    let lines = audited("user=writer", "connection refused").await;
    assert!(!lines.contains("guess"), "no password in the log:\n{lines}");

    let unknown = factory.create_connection_with("mallory", "guess").await;
    let Err(Error::Authentication(unknown_why)) = unknown else {
        panic!("expected an authentication error, got {:?}", unknown.err());
    };
    let Err(Error::Authentication(wrong_why)) =
        factory.create_connection_with("writer", "guess").await
    else {
        panic!("a wrong password is refused");
    };
    assert_eq!(
        unknown_why, wrong_why,
        "an unknown user learns nothing more"
    );
    audited("user=mallory", "connection refused").await;

    let reader = factory
        .create_connection_with("reader", "r-pass")
        .await
        .unwrap();
    let session = reader
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    let queue = Destination::queue("orders.audit");
    let producer = session.create_producer(None).await.unwrap();
    let sent = producer.send_to(&queue, &mut Message::text("x")).await;
    assert!(
        matches!(sent, Err(Error::NotAuthorized(_))),
        "{:?}",
        sent.err()
    );
    let refused = session.create_producer(Some(&queue)).await;
    assert!(
        matches!(refused, Err(Error::NotAuthorized(_))),
        "{:?}",
        refused.err()
    );
    let lines = audited("user=reader", "operation refused").await;
    assert!(
        lines.contains("orders.audit"),
        "the audit names the destination:\n{lines}"
    );
    // Receiving is what it may do.
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await
        .unwrap();
    assert!(consumer.receive_no_wait().await.unwrap().is_none());
    reader.close().await.unwrap();
}
