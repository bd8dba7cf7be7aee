//! The conformance suite over TCP: every case talks `courier://` to a Courier server
//! started in this process for the case (on a free loopback port), through the same client
//! an application uses.

mod secured_config;

use async_trait::async_trait;
use courier_api::{Connection, ConnectionFactory, Result};
use courier_broker::client::TcpFactory;
use courier_broker::server::{Server, ServerConfig};
use courier_broker::{Broker, BrokerConfig};
use courier_conformance::{AccessSpec, Namespace};
use secured_config::secured_config;
use std::sync::Arc;

/// A fresh in-memory broker behind a server per case, with dead-lettering after three
/// attempts. It keeps nothing durably, so restart and crash keep the suite's `Unsupported`.
struct TcpHarness {
    server: Server,
    factory: Arc<TcpFactory>,
    namespace: Namespace,
}

async fn serve(config: BrokerConfig) -> Server {
    Server::bind("127.0.0.1:0", Broker::new(config), ServerConfig::default())
        .await
        .expect("a loopback port")
}

impl TcpHarness {
    async fn new() -> Self {
        let server = serve(BrokerConfig {
            max_delivery_attempts: Some(3),
            ..BrokerConfig::default()
        })
        .await;
        let factory = Arc::new(TcpFactory::new(server.local_addr().to_string()));
        // One handshake teaches the factory what the server offers.
        let probe = factory
            .create_connection()
            .await
            .expect("the server answers");
        probe.close().await.expect("close");
        TcpHarness {
            server,
            factory,
            namespace: Namespace::new(),
        }
    }
}

#[async_trait]
impl courier_conformance::Harness for TcpHarness {
    fn factory(&self) -> Arc<dyn ConnectionFactory> {
        self.factory.clone()
    }

    fn namespace(&self) -> &str {
        self.namespace.as_str()
    }

    /// Nothing to delete: the case's server and broker are its own.
    async fn cleanup(&self) -> Result<()> {
        Ok(())
    }

    /// A second server with the spec's users (argon2id hashes) and anonymous access off.
    async fn secured_factory(&self, spec: &AccessSpec) -> Result<Arc<dyn ConnectionFactory>> {
        let server = serve(secured_config(spec)?).await;
        let factory = TcpFactory::new(server.local_addr().to_string());
        // The server lives as long as the test's runtime.
        std::mem::forget(server);
        Ok(Arc::new(factory))
    }

    /// Closes every socket at the server, as a network failure would.
    async fn sever_connections(&self) -> Result<()> {
        self.server.sever_connections().await;
        Ok(())
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

courier_conformance::conformance_suite!(TcpHarness::new().await);
