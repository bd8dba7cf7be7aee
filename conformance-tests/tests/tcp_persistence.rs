//! The persistence area over TCP, against a durable Courier server running as a child
//! process: this test binary re-run as `server_child`, which opens the journal in a data
//! directory and serves it with the same `Server` `courier serve --data` runs. A restart is
//! SIGTERM (graceful: connections finish, the journal is synced and closed, exit 0) and a
//! start on the same directory and port; a crash is SIGKILL and the same start.
//!
//! The child is this binary rather than the `courier` executable because a test can only
//! locate the executables of its own package (`CARGO_BIN_EXE_*`); `cli/tests/serve.rs`
//! restarts the real `courier serve --data`. Each case gets its own server and data
//! directory (a server shared by the binary would outlive it: statics are never dropped).
//! The harness kills its child when dropped (also when a case panics).
//!
//! `crash_cycles_over_tcp` kills the server at random moments under pipelined and
//! transacted producers and acknowledging consumers (`COURIER_CRASH_CYCLES`, default 3).

use async_trait::async_trait;
use courier_api::{Connection, ConnectionFactory, Result};
use courier_broker::client::TcpFactory;
use courier_conformance::Namespace;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The durable server of one case, in a child process.
struct ServerProcess {
    dir: tempfile::TempDir,
    addr: String,
    child: Mutex<Child>,
}

/// Starts the child on `dir`, listening on `listen`; its address once it accepts.
fn start(dir: &Path, listen: &str) -> std::io::Result<(Child, String)> {
    // A port just freed by a killed server can take a moment to bind again.
    let mut last = None;
    for _ in 0..100 {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--ignored", "--exact", "server_child", "--nocapture"])
            .args(["--test-threads", "1"])
            .env("COURIER_SERVER_DIR", dir)
            .env("COURIER_SERVER_LISTEN", listen)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("COURIER_SERVER_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()?;
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        let addr = loop {
            line.clear();
            if out.read_line(&mut line)? == 0 {
                break None;
            }
            // libtest prints `test server_child ... ` on the same line first.
            if let Some((_, addr)) = line.trim().split_once("listening on ") {
                break Some(addr.to_owned());
            }
        };
        match addr {
            Some(addr) => {
                // Keep draining, so the child never writes to a closed pipe.
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut out, &mut std::io::sink());
                });
                return Ok((child, addr));
            }
            None => {
                let status = child.wait()?;
                last = Some(status);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    Err(std::io::Error::other(format!(
        "the server child did not start on {listen}: {last:?}"
    )))
}

impl ServerProcess {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (child, addr) = start(dir.path(), "127.0.0.1:0").expect("the server child starts");
        ServerProcess {
            dir,
            addr,
            child: Mutex::new(child),
        }
    }

    /// Stops the child (SIGTERM and a clean exit, or SIGKILL) and starts it again on the same
    /// directory and port.
    fn bounce(&self, kill: bool) -> Result<()> {
        let mut child = self.child.lock().unwrap();
        let io =
            |e: std::io::Error| courier_api::Error::IllegalState(format!("the server child: {e}"));
        if kill {
            child.kill().map_err(io)?;
            child.wait().map_err(io)?;
        } else {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .map_err(io)?;
            assert!(status.success(), "kill -TERM");
            let exit = child.wait().map_err(io)?;
            assert_eq!(
                exit.code(),
                Some(0),
                "a graceful shutdown exits 0: {exit:?}"
            );
        }
        let (next, addr) = start(self.dir.path(), &self.addr).map_err(io)?;
        assert_eq!(addr, self.addr, "restarted on the same port");
        *child = next;
        Ok(())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the server child process of this binary's cases"]
async fn server_child() {
    use courier_broker::server::{Server, ServerConfig};
    use courier_broker::storage::{open_broker, JournalOptions};
    use courier_broker::BrokerConfig;
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(dir) = std::env::var("COURIER_SERVER_DIR") else {
        return;
    };
    let listen = std::env::var("COURIER_SERVER_LISTEN").expect("COURIER_SERVER_LISTEN");
    // Before the address is printed, so an early SIGTERM is a graceful one.
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    let config = BrokerConfig {
        max_delivery_attempts: Some(3),
        ..BrokerConfig::default()
    };
    let (broker, store, _) =
        open_broker(Path::new(&dir), config, JournalOptions::default()).expect("the journal");
    let server = Server::bind(&listen, broker, ServerConfig::default())
        .await
        .expect("the listen address");
    println!("listening on {}", server.local_addr());
    term.recv().await;
    server.shutdown().await;
    store.journal().close();
}

/// A durable server child per case, reached over `courier://`.
struct TcpDurableHarness {
    server: ServerProcess,
    factory: Arc<TcpFactory>,
    namespace: Namespace,
}

impl TcpDurableHarness {
    async fn new() -> Self {
        let server = tokio::task::block_in_place(ServerProcess::new);
        let factory = Arc::new(TcpFactory::new(server.addr.clone()));
        // One handshake teaches the factory what the server offers (durable storage).
        let probe = factory
            .create_connection()
            .await
            .expect("the server answers");
        probe.close().await.expect("close");
        assert!(factory.capabilities().durable_storage);
        TcpDurableHarness {
            server,
            factory,
            namespace: Namespace::new(),
        }
    }
}

#[async_trait]
impl courier_conformance::Harness for TcpDurableHarness {
    fn factory(&self) -> Arc<dyn ConnectionFactory> {
        self.factory.clone()
    }

    fn namespace(&self) -> &str {
        self.namespace.as_str()
    }

    /// Nothing to delete: the case's server and directory are its own.
    async fn cleanup(&self) -> Result<()> {
        Ok(())
    }

    async fn restart(&self) -> Result<()> {
        tokio::task::block_in_place(|| self.server.bounce(false))
    }

    async fn crash(&self) -> Result<()> {
        tokio::task::block_in_place(|| self.server.bounce(true))
    }

    async fn factory_with_client_id(&self, client_id: &str) -> Result<Arc<dyn ConnectionFactory>> {
        Ok(Arc::new(
            TcpFactory::clone(&self.factory).with_client_id(client_id)?,
        ))
    }

    async fn connect(&self) -> Result<Box<dyn Connection>> {
        let connection = self.factory.create_connection().await?;
        connection.start().await?;
        Ok(connection)
    }
}

courier_conformance::persistence_suite!(TcpDurableHarness::new().await);

/// What the producers of the crash test attempted and saw confirmed, by body `cycle-p-seq`.
#[derive(Default)]
struct Ledger {
    attempted: std::collections::BTreeSet<String>,
    confirmed: std::collections::BTreeSet<String>,
}

/// Sends until the connection is lost: producer 0 pipelines `send_async` (a window of 8),
/// producer 1 commits transactions of three.
async fn produce(
    factory: Arc<TcpFactory>,
    queue: String,
    p: u64,
    cycle: u64,
    ledger: Arc<Mutex<Ledger>>,
) {
    use courier_api::{Destination, Message, SessionMode};
    let Ok(connection) = factory.create_connection().await else {
        return;
    };
    let transacted = p == 1;
    let mode = if transacted {
        SessionMode::Transacted
    } else {
        SessionMode::AutoAcknowledge
    };
    let Ok(session) = connection.create_session(mode).await else {
        return;
    };
    let Ok(producer) = session
        .create_producer(Some(&Destination::queue(queue)))
        .await
    else {
        return;
    };
    let mut window = std::collections::VecDeque::new();
    for seq in 1u64.. {
        let body = format!("{cycle}-{p}-{seq:06}");
        ledger.lock().unwrap().attempted.insert(body.clone());
        if transacted {
            if producer
                .send(&mut Message::text(body.clone()))
                .await
                .is_err()
            {
                return;
            }
            if seq % 3 == 0 {
                if session.commit().await.is_err() {
                    return;
                }
                let mut l = ledger.lock().unwrap();
                for s in seq - 2..=seq {
                    l.confirmed.insert(format!("{cycle}-{p}-{s:06}"));
                }
            }
        } else {
            let Ok(receipt) = producer.send_async(Message::text(body.clone())).await else {
                return;
            };
            window.push_back((body, receipt));
            if window.len() >= 8 {
                let (body, receipt) = window.pop_front().unwrap();
                if receipt.await.is_err() {
                    return;
                }
                ledger.lock().unwrap().confirmed.insert(body);
            }
        }
    }
}

/// Crash cycles: producers run, the server is SIGKILLed at a random moment and started
/// again, and the queues are drained: every confirmed send is there exactly once (or
/// redelivered), each producer's order holds, transactions are whole, and nothing but
/// attempted sends appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_cycles_over_tcp() {
    use courier_api::{ConsumerOptions, Destination, SessionMode};
    let _server = courier_conformance::harness::SERVER_LOCK.write().await;
    let cycles: u64 = std::env::var("COURIER_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let server = tokio::task::block_in_place(ServerProcess::new);
    let factory = Arc::new(TcpFactory::new(server.addr.clone()));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut seen: std::collections::BTreeSet<String> = Default::default();
    for cycle in 0..cycles {
        let tasks: Vec<_> = (0..2u64)
            .map(|p| {
                tokio::spawn(produce(
                    factory.clone(),
                    format!("crash-p{p}"),
                    p,
                    cycle,
                    ledger.clone(),
                ))
            })
            .collect();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        tokio::time::sleep(Duration::from_millis(50 + u64::from(nanos % 250))).await;
        tokio::task::block_in_place(|| server.bounce(true)).expect("restart after SIGKILL");
        for task in tasks {
            task.await.expect("a producer task");
        }
        // Drain both queues, acknowledging.
        let connection = factory.create_connection().await.expect("reconnect");
        connection.start().await.unwrap();
        let session = connection
            .create_session(SessionMode::AutoAcknowledge)
            .await
            .unwrap();
        let (attempted, confirmed) = {
            let l = ledger.lock().unwrap();
            (l.attempted.clone(), l.confirmed.clone())
        };
        for p in 0..2u64 {
            let consumer = session
                .create_consumer(
                    &Destination::queue(format!("crash-p{p}")),
                    ConsumerOptions::default(),
                )
                .await
                .unwrap();
            let mut last: Option<String> = None;
            let mut got = Vec::new();
            while let Some(m) = consumer
                .receive_timeout(Duration::from_millis(300))
                .await
                .unwrap()
            {
                let body = m.body_text().unwrap().to_owned();
                assert!(attempted.contains(&body), "never sent: {body}");
                if let Some(prev) = &last {
                    assert!(prev < &body, "producer order broken: {prev} then {body}");
                }
                assert!(seen.insert(body.clone()), "delivered twice: {body}");
                last = Some(body.clone());
                got.push(body);
            }
            if p == 1 {
                // Whole transactions: every batch of three in full or not at all.
                for body in &got {
                    let seq: u64 = body.rsplit('-').next().unwrap().parse().unwrap();
                    let first = seq - (seq - 1) % 3;
                    for s in first..first + 3 {
                        let member = format!("{cycle}-1-{s:06}");
                        assert!(
                            got.contains(&member),
                            "transaction torn: {body} without {member}"
                        );
                    }
                }
            }
        }
        connection.close().await.unwrap();
        let lost: Vec<_> = confirmed.difference(&seen).collect();
        assert!(
            lost.is_empty(),
            "cycle {cycle}: confirmed but lost: {lost:?}"
        );
    }
    assert!(!seen.is_empty(), "the producers confirmed nothing");
}
