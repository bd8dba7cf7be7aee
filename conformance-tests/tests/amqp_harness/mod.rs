//! The harness of the RabbitMQ suites: a namespace per case, a loopback TCP proxy in front of
//! RabbitMQ so a case can lose its connections as a network failure would, and cleanup of
//! every durable queue the case's factory declared.

#![allow(dead_code)]

use async_trait::async_trait;
use courier_amqp::{AmqpFactory, QueueType};
use courier_api::{ConnectionFactory, Error, Result};
use courier_conformance::Namespace;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// Where RabbitMQ listens.
pub const BROKER: &str = "127.0.0.1:5672";

/// A TCP proxy to [`BROKER`] whose connections can all be cut at once.
pub struct Proxy {
    port: u16,
    links: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Proxy {
    /// Listens on a free loopback port.
    pub async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let port = listener.local_addr().expect("bound").port();
        let links: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let held = links.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let Ok(mut outbound) = TcpStream::connect(BROKER).await else {
                    continue;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let pipe = tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                let mut links = held.lock();
                links.retain(|l| !l.is_finished());
                links.push(pipe.abort_handle());
            }
        })
        .abort_handle();
        Proxy {
            port,
            links,
            accept,
        }
    }

    /// Cuts every connection through the proxy (new ones still pass).
    pub fn sever(&self) {
        for link in self.links.lock().drain(..) {
            link.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.sever();
    }
}

/// One case's view of RabbitMQ.
pub struct AmqpHarness {
    factory: Arc<AmqpFactory>,
    namespace: Namespace,
    proxy: Proxy,
}

impl AmqpHarness {
    /// A harness whose factory declares queues of `queue_type`, through a fresh proxy.
    pub async fn new(queue_type: QueueType) -> Self {
        let proxy = Proxy::start().await;
        let kind = match queue_type {
            QueueType::Classic => "classic",
            QueueType::Quorum => "quorum",
        };
        let url = format!(
            "amqp://guest:guest@127.0.0.1:{}/%2f?queue_type={kind}&request_timeout=10s",
            proxy.port
        );
        AmqpHarness {
            factory: Arc::new(AmqpFactory::new(&url).expect("a valid URL")),
            namespace: Namespace::new(),
            proxy,
        }
    }
}

/// Deletes `queues` over a direct connection to RabbitMQ.
pub async fn delete_queues(queues: &[String]) -> Result<()> {
    if queues.is_empty() {
        return Ok(());
    }
    let backend = |e: lapin::Error| Error::backend("amqp", e);
    let connection = lapin::Connection::connect(
        &format!("amqp://guest:guest@{BROKER}/%2f"),
        lapin::ConnectionProperties::default(),
    )
    .await
    .map_err(backend)?;
    for queue in queues {
        // A channel per delete: a missing queue is fine, and must not close the others.
        let channel = connection.create_channel().await.map_err(backend)?;
        let _ = channel
            .queue_delete(
                queue.as_str().into(),
                lapin::options::QueueDeleteOptions::default(),
            )
            .await;
        let _ = channel.close(200, "OK".into()).await;
    }
    connection.close(200, "OK".into()).await.map_err(backend)
}

#[async_trait]
impl courier_conformance::Harness for AmqpHarness {
    fn factory(&self) -> Arc<dyn ConnectionFactory> {
        self.factory.clone()
    }

    fn namespace(&self) -> &str {
        self.namespace.as_str()
    }

    /// Deletes every durable queue the case's factories declared; exclusive and auto-delete
    /// queues went with their connections.
    async fn cleanup(&self) -> Result<()> {
        let queues = self.factory.declared_queues();
        tokio::time::timeout(Duration::from_secs(30), delete_queues(&queues))
            .await
            .map_err(|_| Error::Timeout(Duration::from_secs(30)))?
    }

    fn quiet(&self) -> Duration {
        Duration::from_millis(300)
    }

    /// Cuts the proxied sockets, then gives the clients' I/O loops a moment to read the end
    /// of their streams.
    async fn sever_connections(&self) -> Result<()> {
        self.proxy.sever();
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(())
    }

    async fn factory_with_client_id(&self, client_id: &str) -> Result<Arc<dyn ConnectionFactory>> {
        Ok(Arc::new(
            AmqpFactory::clone(&self.factory).with_client_id(client_id),
        ))
    }
}
