//! `courier serve` and `courier user` as a user runs them: a user added to a config file
//! logs in over TCP, a wrong password and a forbidden destination are refused and audited,
//! and SIGTERM shuts the server down with exit code 0; with `--tls-cert`/`--tls-key` a
//! `courier+tls://` client gets through and a plaintext one is refused and audited.

#[path = "../../broker-native/tests/support/certs.rs"]
mod certs;

use courier_api::*;
use courier_broker::client::TcpFactory;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_courier");

fn add_user(config: &std::path::Path, name: &str, password: &str, allow: &str) {
    let mut child = Command::new(BIN)
        .args(["user", "add", name, "--allow", allow, "--config"])
        .arg(config)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    assert!(child.wait().unwrap().success());
}

/// Starts `courier serve` on a free port; returns the child and its address.
fn serve(config: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--memory", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, addr)
}

#[tokio::test]
async fn users_log_in_are_refused_and_audited_and_sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("courier.toml");
    add_user(&config, "app", "s3cret", "orders.#=send,receive");
    add_user(&config, "reader", "r3ad", "orders.#=receive");
    let listed = Command::new(BIN)
        .args(["user", "list", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(listed.contains("app\torders.#=send,receive"), "{listed}");
    assert!(
        !std::fs::read_to_string(&config).unwrap().contains("s3cret"),
        "only the hash is stored"
    );

    let (mut child, addr) = serve(&config);
    let factory = TcpFactory::new(addr.clone());
    let wrong = factory.create_connection_with("app", "nope").await;
    assert!(
        matches!(wrong, Err(Error::Authentication(_))),
        "{:?}",
        wrong.err()
    );
    let unknown = factory.create_connection_with("ghost", "nope").await;
    assert!(matches!(unknown, Err(Error::Authentication(_))));
    let anonymous = factory.create_connection().await;
    assert!(matches!(anonymous, Err(Error::Authentication(_))));

    let queue = Destination::queue("orders.new");
    let reader = factory
        .create_connection_with("reader", "r3ad")
        .await
        .unwrap();
    let session = reader
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    let refused = session.create_producer(Some(&queue)).await;
    assert!(
        matches!(refused, Err(Error::NotAuthorized(_))),
        "{:?}",
        refused.err()
    );

    let app = factory
        .create_connection_with("app", "s3cret")
        .await
        .unwrap();
    app.start().await.unwrap();
    let s = app
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    let consumer = s
        .create_consumer(&queue, ConsumerOptions::default())
        .await
        .unwrap();
    s.create_producer(Some(&queue))
        .await
        .unwrap()
        .send(&mut Message::text("order 1"))
        .await
        .unwrap();
    let got = consumer
        .receive_timeout(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(got.unwrap().body_text(), Some("order 1"));

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "graceful shutdown exits 0");
    let lost = app.closed().await;
    assert!(matches!(lost, Error::ConnectionLost { .. }), "{lost:?}");
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(
        log.contains("connection refused"),
        "refused logins are audited:\n{log}"
    );
    assert!(
        log.contains("operation refused"),
        "refused operations are audited:\n{log}"
    );
}

/// Starts `courier serve --data dir` on `listen`; returns the child and its address.
fn serve_data(data: &std::path::Path, listen: &str) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", listen, "--data"])
        .arg(data)
        .current_dir(data.parent().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, addr)
}

fn sigterm(child: &mut Child) -> Option<i32> {
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    child.wait().unwrap().code()
}

#[tokio::test]
async fn a_durable_server_keeps_persistent_messages_across_sigterm_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, addr) = serve_data(&data, "127.0.0.1:0");
    let factory = TcpFactory::new(addr.clone());
    let connection = factory.create_connection().await.unwrap();
    let caps = factory.capabilities();
    assert!(
        caps.durable_storage,
        "the handshake reports durable storage"
    );
    assert_eq!(caps.persistent_durability, Durability::Disk);
    let queue = Destination::queue("kept");
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    let producer = session.create_producer(Some(&queue)).await.unwrap();
    producer.send(&mut Message::text("kept 1")).await.unwrap();
    producer
        .set_delivery_mode(DeliveryMode::NonPersistent)
        .unwrap();
    producer.send(&mut Message::text("gone")).await.unwrap();
    assert_eq!(sigterm(&mut child), Some(0), "graceful shutdown exits 0");
    drop(connection);

    let (mut child, addr) = serve_data(&data, &addr);
    let factory = TcpFactory::new(addr);
    let connection = factory.create_connection().await.unwrap();
    connection.start().await.unwrap();
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await
        .unwrap();
    let got = consumer
        .receive_timeout(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(got.unwrap().body_text(), Some("kept 1"));
    let none = consumer
        .receive_timeout(Duration::from_millis(200))
        .await
        .unwrap();
    assert!(none.is_none(), "a non-persistent message is not kept");
    assert_eq!(sigterm(&mut child), Some(0));
}

#[test]
fn an_unusable_data_directory_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("data directory"), "{err}");
}

#[test]
fn memory_and_data_together_are_refused() {
    let out = Command::new(BIN)
        .args(["serve", "--memory", "--data", "/tmp/x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn with_a_certificate_tls_clients_get_through_and_plaintext_is_refused_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let pki = certs::make_pki(dir.path(), "serve");
    let config = dir.path().join("courier.toml");
    add_user(&config, "app", "s3cret", "orders.#=send,receive");
    let mut child = Command::new(BIN)
        .args(["serve", "--memory", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--tls-cert")
        .arg(&pki.cert_file)
        .arg("--tls-key")
        .arg(&pki.key_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().rsplit(':').next().unwrap().to_owned();

    let url = format!(
        "courier+tls://app:s3cret@localhost:{port}?ca={}",
        pki.ca_file.display()
    );
    let factory = courier::connect(&url).await.unwrap();
    let connection = factory.create_connection().await.unwrap();
    connection.start().await.unwrap();
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    let queue = Destination::queue("orders.tls");
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await
        .unwrap();
    session
        .create_producer(Some(&queue))
        .await
        .unwrap()
        .send(&mut Message::text("sealed"))
        .await
        .unwrap();
    let got = consumer.receive_timeout(Duration::from_secs(5)).await;
    assert_eq!(got.unwrap().unwrap().body_text(), Some("sealed"));
    connection.close().await.unwrap();

    let plain = TcpFactory::new(format!("127.0.0.1:{port}"));
    let refused = plain.create_connection_with("app", "s3cret").await;
    assert!(
        matches!(refused, Err(Error::Authentication(_))),
        "{:?}",
        refused.err()
    );

    assert_eq!(sigterm(&mut child), Some(0));
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("courier serve ready") && l.contains("\"tls\"")),
        "the server says it requires TLS:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("courier::audit") && l.contains("TLS connections only")),
        "plaintext refused and audited:\n{log}"
    );
}

#[test]
fn a_certificate_without_a_key_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let pki = certs::make_pki(dir.path(), "half");
    let out = Command::new(BIN)
        .args(["serve", "--memory", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&pki.cert_file)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tls-key"), "{err}");
    let out = Command::new(BIN)
        .args(["serve", "--memory", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&pki.key_file)
        .arg("--tls-key")
        .arg(&pki.key_file)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TLS certificate"), "{err}");
}
