//! TLS for `courier://` connections (`courier+tls://`, `?tls=true`): rustls with the ring
//! provider, trusting either one CA file (`?ca=/path.pem`) or the system's roots. A server
//! whose certificate is not trusted, or does not name the host connected to, is refused
//! with [`Error::Authentication`] saying why.

use courier_api::{Error, Result};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;

/// Whom a client trusts, and how it connects over TLS.
#[derive(Clone)]
pub struct ClientTls {
    connector: TlsConnector,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls").finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Trusts the certificates in the PEM file `ca` (and nothing else). An unreadable file
    /// or one without a certificate is [`Error::InvalidArgument`].
    pub fn with_ca_file(ca: &Path) -> Result<Self> {
        let certs = CertificateDer::pem_file_iter(ca)
            .and_then(|iter| iter.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| Error::invalid_argument(format!("TLS CA file {}: {e}", ca.display())))?;
        Self::with_roots(certs, &format!("TLS CA file {}", ca.display()))
    }

    /// Trusts the certificates in PEM text.
    pub fn with_ca_pem(pem: &[u8]) -> Result<Self> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::invalid_argument(format!("TLS CA: {e}")))?;
        Self::with_roots(certs, "TLS CA")
    }

    /// Trusts the system's root certificates.
    pub fn with_native_roots() -> Result<Self> {
        let found = rustls_native_certs::load_native_certs();
        if found.certs.is_empty() {
            let why = found
                .errors
                .first()
                .map_or_else(|| "none found".to_owned(), ToString::to_string);
            return Err(Error::invalid_argument(format!(
                "TLS: cannot load the system's root certificates ({why}); give ?ca=/path.pem"
            )));
        }
        Self::with_roots(found.certs, "the system's root certificates")
    }

    fn with_roots(certs: Vec<CertificateDer<'static>>, what: &str) -> Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(Error::invalid_argument(format!(
                "{what}: no usable certificate"
            )));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::invalid_argument(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(ClientTls {
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    /// Runs the TLS handshake on `stream` for `host`.
    pub(crate) async fn connect(
        &self,
        host: &str,
        stream: TcpStream,
    ) -> Result<TlsStream<TcpStream>> {
        let name = ServerName::try_from(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        )
        .map_err(|e| Error::invalid_argument(format!("TLS: {host:?} is no server name: {e}")))?;
        self.connector.connect(name, stream).await.map_err(|e| {
            let refused = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .is_some();
            if refused {
                Error::authentication(format!("TLS: the server {host} is not trusted: {e}"))
            } else {
                Error::connection_lost_from(format!("TLS handshake with {host} failed"), e)
            }
        })
    }
}
