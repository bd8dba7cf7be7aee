//! The conformance suite over TLS: every case talks `courier+tls://` to a Courier server
//! that requires TLS, started in this process for the case (on a free loopback port), with
//! a certificate made for this run by a CA the client trusts — the TCP harness with TLS.

#[path = "../../broker-native/tests/support/certs.rs"]
mod certs;
mod secured_config;

use async_trait::async_trait;
use courier_api::{Connection, ConnectionFactory, Result};
use courier_broker::client::{ClientTls, TcpFactory};
use courier_broker::server::{Server, ServerConfig, ServerTls};
use courier_broker::{Broker, BrokerConfig};
use courier_conformance::{AccessSpec, Namespace};
use secured_config::secured_config;
use std::sync::{Arc, OnceLock};

/// A fresh in-memory broker behind a server per case, with dead-lettering after three
/// attempts. It keeps nothing durably, so restart and crash keep the suite's `Unsupported`.
struct TlsHarness {
    server: Server,
    factory: Arc<TcpFactory>,
    namespace: Namespace,
}

/// The run's CA and server identity (made once: key generation is the slow part).
fn pki() -> &'static certs::PemPki {
    static PKI: OnceLock<certs::PemPki> = OnceLock::new();
    PKI.get_or_init(|| certs::make_pem("conformance"))
}

async fn serve(config: BrokerConfig) -> Server {
    let pki = pki();
    let tls = ServerTls::from_pem(pki.cert.as_bytes(), pki.key.as_bytes()).expect("identity");
    let server_config = ServerConfig {
        tls: Some(tls),
        ..ServerConfig::default()
    };
    Server::bind("127.0.0.1:0", Broker::new(config), server_config)
        .await
        .expect("a loopback port")
}

/// A factory for `server` over TLS, trusting the run's CA.
fn tls_factory(server: &Server) -> TcpFactory {
    let tls = ClientTls::with_ca_pem(pki().ca.as_bytes()).expect("the CA");
    TcpFactory::new(format!("localhost:{}", server.local_addr().port())).with_tls(Some(tls))
}

impl TlsHarness {
    async fn new() -> Self {
        let server = serve(BrokerConfig {
            max_delivery_attempts: Some(3),
            ..BrokerConfig::default()
        })
        .await;
        let factory = Arc::new(tls_factory(&server));
        // One handshake teaches the factory what the server offers.
        let probe = factory
            .create_connection()
            .await
            .expect("the server answers");
        probe.close().await.expect("close");
        TlsHarness {
            server,
            factory,
            namespace: Namespace::new(),
        }
    }
}

#[async_trait]
impl courier_conformance::Harness for TlsHarness {
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
        let factory = tls_factory(&server);
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

courier_conformance::conformance_suite!(TlsHarness::new().await);
