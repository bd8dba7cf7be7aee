//! The persistence area against a Redis server of its own: each case starts `redis-server`
//! on a free port in a temporary directory with AOF `appendfsync always`, and restarts it
//! gracefully (`SHUTDOWN`, which flushes) or kills it with SIGKILL, then starts it again on
//! the same files. A missing `redis-server` fails the cases.

use async_trait::async_trait;
use courier_api::{ConnectionFactory, Error, Result};
use courier_conformance::Namespace;
use courier_redis::RedisFactory;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `redis-server` child process and its files.
struct Server {
    port: u16,
    dir: tempfile::TempDir,
    child: Mutex<Option<Child>>,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let server = Server {
            port,
            dir,
            child: Mutex::new(None),
        };
        server.spawn();
        server
    }

    /// Starts the process on the server's port and files, and waits until it answers.
    fn spawn(&self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        *self.child.lock().unwrap() = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Waits for the process to exit (bounded), then starts it again.
    fn reap_and_respawn(&self) -> Result<()> {
        let mut child = self.child.lock().unwrap().take().expect("a running server");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if child
                .try_wait()
                .map_err(|e| Error::backend("redis", e))?
                .is_some()
            {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::illegal_state("redis-server did not stop"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.spawn();
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One case's own server, with a factory requiring AOF `always`.
struct PersistenceHarness {
    server: Server,
    factory: Arc<RedisFactory>,
    namespace: Namespace,
}

impl PersistenceHarness {
    fn new() -> Self {
        let server = Server::start();
        let url = format!("{}?durability=always", server.url());
        PersistenceHarness {
            factory: Arc::new(courier_redis::factory_for(&url).expect("a valid URL")),
            server,
            namespace: Namespace::new(),
        }
    }
}

#[async_trait]
impl courier_conformance::Harness for PersistenceHarness {
    fn factory(&self) -> Arc<dyn ConnectionFactory> {
        self.factory.clone()
    }

    fn namespace(&self) -> &str {
        self.namespace.as_str()
    }

    /// What a dead connection held comes back when its lease (three 1 s heartbeats) lapses.
    fn wait(&self) -> std::time::Duration {
        std::time::Duration::from_secs(10)
    }

    /// The server and its files go away with the harness.
    async fn cleanup(&self) -> Result<()> {
        Ok(())
    }

    /// `SHUTDOWN` (the AOF is flushed), then the same server again.
    async fn restart(&self) -> Result<()> {
        let client =
            redis::Client::open(self.server.url()).map_err(|e| Error::backend("redis", e))?;
        let mut admin = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| Error::backend("redis", e))?;
        // The server closes the connection as it stops: the reply is an I/O error.
        let _ = redis::cmd("SHUTDOWN").query_async::<()>(&mut admin).await;
        self.server.reap_and_respawn()
    }

    /// SIGKILL, then the same server again.
    async fn crash(&self) -> Result<()> {
        if let Some(child) = self.server.child.lock().unwrap().as_mut() {
            child.kill().map_err(|e| Error::backend("redis", e))?;
        }
        self.server.reap_and_respawn()
    }
}

courier_conformance::persistence_suite!(PersistenceHarness::new());

/// The durability a connection reports follows the server's configuration.
#[tokio::test]
async fn durability_follows_the_server_configuration() {
    let server = Server::start();
    let factory = courier_redis::connect(&server.url()).await.unwrap();
    let conn = factory.create_connection().await.unwrap();
    let caps = conn.capabilities();
    assert!(caps.durable_storage);
    assert_eq!(caps.persistent_durability, courier_api::Durability::Disk);
    conn.close().await.unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    for (fsync, durable) in [("everysec", false), ("always", true)] {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("appendfsync")
            .arg(fsync)
            .query_async(&mut admin)
            .await
            .unwrap();
        let conn = factory.create_connection().await.unwrap();
        assert_eq!(conn.capabilities().durable_storage, durable, "{fsync}");
        conn.close().await.unwrap();
    }
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendfsync")
        .arg("everysec")
        .query_async(&mut admin)
        .await
        .unwrap();
    let strict = courier_redis::connect(&format!("{}?durability=always", server.url()))
        .await
        .unwrap();
    let refused = strict
        .create_connection()
        .await
        .err()
        .expect("a weaker server");
    assert!(refused.to_string().contains("everysec"), "{refused}");
    let lenient = courier_redis::connect(&format!("{}?durability=everysec", server.url()))
        .await
        .unwrap();
    lenient
        .create_connection()
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
}
