//! A private `redis-server` for the durable Redis baseline: `appendonly yes`,
//! `appendfsync always`, on a free loopback port, in a temporary directory, killed when
//! dropped. The shared server of the machine is never reconfigured.

use courier_api::{Error, Result};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A `redis-server` child process this program started.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
    /// Kept for the server's life: its AOF lives here.
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts `redis-server` (found on `PATH`) with `--appendonly yes --appendfsync always`
    /// and no RDB snapshots, and waits until it accepts connections.
    pub async fn start_fsync_always() -> Result<RedisServer> {
        let dir = tempfile::tempdir()
            .map_err(|e| Error::illegal_state(format!("a temporary directory: {e}")))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| Error::illegal_state(format!("a free port: {e}")))?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(dir.path())
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(["--save", "", "--daemonize", "no", "--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                Error::unsupported(
                    "raw baseline",
                    format!("redis-server could not be started (is it installed?): {e}"),
                )
            })?;
        let mut server = RedisServer {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(Error::illegal_state(format!(
                    "redis-server on port {port} exited at start: {status}"
                )));
            }
            if Instant::now() > deadline {
                return Err(Error::Timeout(START_TIMEOUT));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Its URL: `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
