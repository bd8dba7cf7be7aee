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
