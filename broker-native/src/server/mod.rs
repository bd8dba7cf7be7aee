//! Courier's broker behind a socket: an accept loop and one task per connection, each a thin
//! layer that maps the [protocol](crate::protocol)'s requests onto an embedded connection of
//! the broker — the same api objects an in-process caller gets, over the core session — so
//! acknowledgement, transactions, access control and redelivery have one implementation.
//!
//! Hostile peers are bounded: a connection must finish its handshake within
//! [`ServerConfig::handshake_timeout`] and send frames of at most
//! [`crate::protocol::frame::HANDSHAKE_MAX_FRAME`] bytes until then; the server keeps at most
//! [`ServerConfig::max_connections`]; a peer silent for three heartbeat intervals is dropped;
//! every malformed, oversized or out-of-order frame is answered with an error frame and
//! that connection closed, while the others go on.
//!
//! With [`ServerConfig::tls`] one port serves TLS clients (`courier+tls://`) and, only when
//! allowed, plaintext ones; a plaintext client where TLS is required is refused at its
//! handshake with [`courier_api::Error::Authentication`] and audited.

mod connection;
mod tls;

pub use tls::ServerTls;

use parking_lot::Mutex;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, ToSocketAddrs};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::{Broker, EmbeddedFactory};

/// Limits and timings of a [`Server`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Connections served at once; more are closed at once (and logged).
    pub max_connections: usize,
    /// Time a new connection has to complete its handshake.
    pub handshake_timeout: Duration,
    /// Heartbeat interval offered to clients (a client may ask for another, within
    /// 100 ms..=1 h); a peer silent for three intervals is dropped.
    pub heartbeat: Duration,
    /// Requests of one connection being worked on at once; the server stops reading the
    /// socket while that many are open, so a peer cannot queue work without bound.
    pub max_in_flight: usize,
    /// Sessions, producers, consumers and browsers one connection may hold open.
    pub max_handles: usize,
    /// TLS: the server's identity, and whether plaintext clients are still served. `None`
    /// serves plaintext only.
    pub tls: Option<ServerTls>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 20_000,
            handshake_timeout: Duration::from_secs(10),
            heartbeat: Duration::from_secs(10),
            max_in_flight: 4096,
            max_handles: 65_536,
            tls: None,
        }
    }
}

/// State shared by the accept loop and the connections.
pub(crate) struct Shared {
    pub factory: EmbeddedFactory,
    pub config: ServerConfig,
    /// Live connections: their sever tokens.
    live: Mutex<HashMap<u64, CancellationToken>>,
    next: AtomicU64,
    /// Cancelled when the server stops accepting and closes its connections gracefully.
    pub shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// A running server. Dropping it does not stop it; call [`Server::shutdown`].
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Server {
    /// Listens on `addr` (port 0 picks a free port) and serves `broker` until
    /// [`Server::shutdown`].
    pub async fn bind(
        addr: impl ToSocketAddrs,
        broker: Broker,
        config: ServerConfig,
    ) -> io::Result<Server> {
        let listener = listen(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            factory: broker.factory(),
            config,
            live: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        tracing::info!(%addr, "courier server listening");
        tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Server { addr, shared })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections are open.
    pub fn connections(&self) -> usize {
        self.shared.live.lock().len()
    }

    /// The broker it serves.
    pub fn broker(&self) -> &Broker {
        self.shared.factory.broker()
    }

    /// Cuts every open connection as a network failure would (a test hook): sockets close at
    /// once, the broker rolls back their transactions, redelivers their unacknowledged
    /// messages and frees their client ids. Returns how many were cut, once the broker has
    /// closed them (at most a few seconds).
    pub async fn sever_connections(&self) -> usize {
        let live: Vec<_> = self.shared.live.lock().values().cloned().collect();
        for token in &live {
            token.cancel();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self
            .shared
            .live
            .lock()
            .values()
            .any(CancellationToken::is_cancelled)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        live.len()
    }

    /// Stops accepting, lets every connection finish the requests it already read (sends
    /// and commits in flight complete and are answered), closes them, and returns when all
    /// have ended.
    pub async fn shutdown(&self) {
        self.shared.shutdown.cancel();
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
        tracing::info!(addr = %self.addr, "courier server stopped");
    }
}

/// Connections the kernel queues for the accept loop (capped by `net.core.somaxconn`).
/// Tokio's default of 1 024 overflows when a thousand clients connect at once on a busy
/// machine, and an overflowing SYN is retried only after a second or more.
const LISTEN_BACKLOG: u32 = 8192;

/// Binds the first address `addr` resolves to that accepts, with [`LISTEN_BACKLOG`].
async fn listen(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(addr).await? {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        match socket
            .bind(addr)
            .and_then(|()| socket.listen(LISTEN_BACKLOG))
        {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolves to nothing",
        )
    }))
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let id = shared.next.fetch_add(1, Ordering::Relaxed);
        let token = {
            let mut live = shared.live.lock();
            if live.len() >= shared.config.max_connections {
                tracing::warn!(%peer, limit = shared.config.max_connections,
                    "connection refused: connection limit reached");
                continue;
            }
            let token = CancellationToken::new();
            live.insert(id, token.clone());
            token
        };
        let _ = stream.set_nodelay(true);
        let shared2 = shared.clone();
        shared.tasks.spawn(async move {
            connection::serve(shared2.clone(), stream, peer, token).await;
            shared2.live.lock().remove(&id);
        });
    }
}
