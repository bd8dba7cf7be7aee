//! The `courier://` client: a [`ConnectionFactory`] whose connections speak the
//! [protocol](crate::protocol) to a Courier server. Each api object is a handle the server
//! gave out; each call is a request whose reply it awaits, pipelined on one socket, so the
//! server's broker — not this client — keeps acknowledgement and transaction state.
//!
//! Consumer credit is the api's prefetch, exactly: a consumer asks for a message when the
//! application receives, one receive being one credit, so it never holds a message ahead of
//! its receives (`exact_prefetch`). Pipelined sends ([`courier_api::Producer::send_async`])
//! keep up to [`WINDOW`] sends in flight per producer.
//!
//! TLS: `courier+tls://host:port` or `courier://host:port?tls=true`, trusting the CA in
//! `?ca=/path.pem` or else the system's roots ([`ClientTls`]).

mod connection;
mod consumer;
mod link;
mod producer;
mod session;
mod stats;
mod stream;
mod tls;

use async_trait::async_trait;
use courier_api::{
    Capabilities, Connection, ConnectionFactory, ConnectionOptions, Durability, Error, Result,
};
use futures::StreamExt;
use parking_lot::Mutex;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;

use crate::protocol::batch::FrameWriter;
use crate::protocol::frame::{Frame, FrameCodec, Kind, HANDSHAKE_MAX_FRAME};
use crate::protocol::ops::{decode, encode, Hello, Welcome, MAGIC};
use crate::protocol::transport::{split, split_tcp};
use crate::protocol::{DEFAULT_PORT, VERSIONS};
pub use connection::TcpConnection;
use link::Link;
pub use tls::ClientTls;

/// Sends one producer keeps in flight with `send_async` before it waits for room.
pub const WINDOW: usize = 1024;

/// How long connecting and the handshake may take without a `connect_timeout` option.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to a Courier server over TCP (`courier://user:pass@host:7672`).
///
/// ```no_run
/// # async fn demo() -> courier_api::Result<()> {
/// use courier_api::ConnectionFactory;
/// let factory = courier_broker::client::TcpFactory::from_url("courier://app:secret@localhost:7672")?;
/// let connection = factory.create_connection().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TcpFactory {
    address: String,
    /// The host part of the address: the name a TLS server's certificate must carry.
    host: String,
    /// TLS, when the connections use it.
    tls: Option<ClientTls>,
    options: ConnectionOptions,
    /// What the last handshake said the server offers.
    learnt: Arc<Mutex<Option<Capabilities>>>,
}

impl TcpFactory {
    /// A factory for the server at `address` (`host:port`), anonymous, default options.
    pub fn new(address: impl Into<String>) -> Self {
        let address = address.into();
        let host = address
            .rsplit_once(':')
            .map_or(address.as_str(), |(host, _)| host)
            .to_owned();
        TcpFactory {
            address,
            host,
            tls: None,
            options: ConnectionOptions::default(),
            learnt: Arc::default(),
        }
    }

    /// A factory for a `courier[+tls]://[user[:password]@]host[:port][/][?options]` URL;
    /// the options are [`ConnectionOptions`]' and `tls=true|false` (TLS, also what
    /// `courier+tls://` says) and `ca=/path.pem` (the CA to trust, implying TLS; without
    /// it the system's roots). The port defaults to 7672.
    pub fn from_url(url: &str) -> Result<Self> {
        let parsed = ConnectionOptions::from_url(url, &["tls", "ca"])?;
        let u = url::Url::parse(url)
            .map_err(|e| Error::invalid_argument(format!("malformed URL: {e}")))?;
        let scheme_tls = if u.scheme().eq_ignore_ascii_case("courier") {
            false
        } else if u.scheme().eq_ignore_ascii_case("courier+tls") {
            true
        } else {
            return Err(Error::invalid_argument(format!(
                "{:?} is not a courier:// URL",
                u.scheme()
            )));
        };
        let mut tls_option = None;
        let mut ca = None;
        for (key, value) in &parsed.extra {
            match key.as_str() {
                "tls" => tls_option = Some(courier_api::options::parse_flag(key, value)?),
                _ => ca = Some(value.clone()),
            }
        }
        if scheme_tls && tls_option == Some(false) {
            return Err(Error::invalid_argument(
                "courier+tls:// URLs always use TLS; drop tls=false",
            ));
        }
        if ca.is_some() && tls_option == Some(false) {
            return Err(Error::invalid_argument(
                "option ca needs TLS; drop tls=false",
            ));
        }
        let tls = if let Some(ca) = &ca {
            Some(ClientTls::with_ca_file(Path::new(ca))?)
        } else if scheme_tls || tls_option == Some(true) {
            Some(ClientTls::with_native_roots()?)
        } else {
            None
        };
        let host = u
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::invalid_argument("a courier:// URL names a host"))?;
        if !matches!(u.path(), "" | "/") {
            return Err(Error::invalid_argument(format!(
                "a courier:// URL has no path (got {:?})",
                u.path()
            )));
        }
        if u.fragment().is_some() {
            return Err(Error::invalid_argument(
                "a courier:// URL takes no fragment",
            ));
        }
        let port = u.port().unwrap_or(DEFAULT_PORT);
        TcpFactory::new(format!("{host}:{port}"))
            .with_tls(tls)
            .with_options(parsed.options)
    }

    /// This factory with TLS (`Some`) or plaintext (`None`) connections.
    pub fn with_tls(mut self, tls: Option<ClientTls>) -> Self {
        self.tls = tls;
        self
    }

    /// Whether its connections use TLS.
    pub fn uses_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// This factory with connection options (credentials, client id, timeouts, heartbeat).
    pub fn with_options(mut self, options: ConnectionOptions) -> Result<Self> {
        if let Some(id) = &options.client_id {
            if id.trim().is_empty() {
                return Err(Error::invalid_argument("a client id must not be empty"));
            }
        }
        self.options = options;
        Ok(self)
    }

    /// This factory with a configured client id: every connection claims it as it connects.
    pub fn with_client_id(mut self, client_id: &str) -> Result<Self> {
        self.options.client_id = Some(client_id.to_owned());
        let options = self.options.clone();
        self.with_options(options)
    }

    /// This factory with default credentials.
    pub fn with_credentials(mut self, username: &str, password: &str) -> Self {
        self.options.username = Some(username.to_owned());
        self.options.password = Some(password.to_owned());
        self
    }

    /// The server address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The URL's user name and password, if it has them.
    fn credentials(&self) -> Option<(String, String)> {
        self.options
            .username
            .clone()
            .map(|u| (u, self.options.password.clone().unwrap_or_default()))
    }

    async fn connect(&self, credentials: Option<(String, String)>) -> Result<TcpConnection> {
        let limit = self
            .options
            .connect_timeout
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        match tokio::time::timeout(limit, self.handshake(credentials)).await {
            Ok(r) => r,
            Err(_) => Err(Error::connection_lost(format!(
                "no connection to {} within {limit:?}",
                self.address
            ))),
        }
    }

    async fn handshake(&self, credentials: Option<(String, String)>) -> Result<TcpConnection> {
        let stream = TcpStream::connect(&self.address).await.map_err(|e| {
            Error::connection_lost_from(format!("cannot connect to {}", self.address), e)
        })?;
        let _ = stream.set_nodelay(true);
        let (rd, wr) = match &self.tls {
            Some(tls) => split(tls.connect(&self.host, stream).await?),
            None => split_tcp(stream),
        };
        let mut reader = FramedRead::new(rd, FrameCodec::new(HANDSHAKE_MAX_FRAME));
        let mut writer = FrameWriter::new(wr, HANDSHAKE_MAX_FRAME);
        let hello = Hello {
            magic: MAGIC,
            versions: VERSIONS.to_vec(),
            credentials,
            client_id: self.options.client_id.clone(),
            heartbeat_ms: self
                .options
                .heartbeat
                .map_or(0, |h| u64::try_from(h.as_millis()).unwrap_or(u64::MAX)),
        };
        writer
            .send(Frame::new(Kind::Hello, 0, encode(&hello)))
            .await
            .map_err(|e| Error::connection_lost(format!("handshake: {e}")))?;
        let frame = match reader.next().await {
            Some(Ok(frame)) if frame.kind == Kind::Welcome => frame,
            Some(Ok(frame)) => {
                return Err(Error::protocol(format!(
                    "expected welcome, got {:?}",
                    frame.kind
                )))
            }
            Some(Err(e)) => return Err(Error::protocol(e.to_string())),
            None => {
                return Err(Error::connection_lost(
                    "the server closed the connection during the handshake",
                ))
            }
        };
        match decode::<Welcome>(&frame.payload, "welcome")? {
            Welcome::Refused(e) => Err(e.into()),
            Welcome::Accepted {
                version,
                server_version,
                capabilities,
                heartbeat_ms,
                max_frame,
            } => {
                let caps = capabilities.to_caps("courier");
                *self.learnt.lock() = Some(caps.clone());
                let max_frame = usize::try_from(max_frame).unwrap_or(usize::MAX);
                reader.decoder_mut().set_max(max_frame);
                writer.set_max(max_frame);
                let heartbeat = Duration::from_millis(heartbeat_ms.max(100));
                let link = Link::start(
                    reader,
                    writer,
                    heartbeat,
                    caps,
                    server_version,
                    max_frame,
                    version,
                );
                Ok(TcpConnection::new(
                    link,
                    self.options.client_id.clone(),
                    self.options.prefetch,
                ))
            }
        }
    }
}

#[async_trait]
impl ConnectionFactory for TcpFactory {
    /// Authenticates with the URL's credentials, or anonymously without any.
    async fn create_connection(&self) -> Result<Box<dyn Connection>> {
        Ok(Box::new(self.connect(self.credentials()).await?))
    }

    async fn create_connection_with(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Box<dyn Connection>> {
        Ok(Box::new(
            self.connect(Some((username.to_owned(), password.to_owned())))
                .await?,
        ))
    }

    /// What the server said in the last handshake; before any, the most a Courier server
    /// can offer.
    fn capabilities(&self) -> Capabilities {
        if let Some(caps) = self.learnt.lock().clone() {
            return caps;
        }
        let mut caps = Capabilities::full("courier");
        caps.durable_storage = true;
        caps.persistent_durability = Durability::Disk;
        caps.delete_destinations = true;
        caps.delete_topics = true;
        caps
    }
}
