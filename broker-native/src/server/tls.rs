//! TLS for the server: a certificate chain and private key from PEM files, served with
//! rustls (ring provider). One port serves both TLS and plaintext clients — the first byte
//! tells them apart ([`TLS_HANDSHAKE_RECORD`](crate::protocol::transport::TLS_HANDSHAKE_RECORD))
//! — and plaintext is refused unless allowed ([`ServerTls::allow_plaintext`]).

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// A server's TLS identity and policy.
#[derive(Clone)]
pub struct ServerTls {
    pub(crate) acceptor: TlsAcceptor,
    /// Plaintext clients are served too (else they are refused, and audited).
    pub(crate) plaintext: bool,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("plaintext", &self.plaintext)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// The identity in PEM files: `cert` holds the certificate chain (the server's first),
    /// `key` its private key (PKCS#8, PKCS#1 or SEC1). Plaintext clients are refused.
    /// A missing, unreadable or malformed file, or a key that does not match, is an
    /// [`io::ErrorKind::InvalidInput`] error naming the file.
    pub fn from_pem_files(cert: &Path, key: &Path) -> io::Result<Self> {
        let certs = CertificateDer::pem_file_iter(cert)
            .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
            .map_err(|e| invalid(format!("TLS certificate {}: {e}", cert.display())))?;
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| invalid(format!("TLS private key {}: {e}", key.display())))?;
        Self::new(certs, key)
    }

    /// The identity from PEM text (as [`Self::from_pem_files`] reads).
    pub fn from_pem(cert: &[u8], key: &[u8]) -> io::Result<Self> {
        let certs = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("TLS certificate: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|e| invalid(format!("TLS private key: {e}")))?;
        Self::new(certs, key)
    }

    /// The identity from DER: the chain (the server's certificate first) and its key.
    pub fn new(
        certs: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> io::Result<Self> {
        if certs.is_empty() {
            return Err(invalid(
                "TLS certificate: the file holds no certificate".into(),
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(format!("TLS: {e}")))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| invalid(format!("TLS certificate and key: {e}")))?;
        Ok(ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            plaintext: false,
        })
    }

    /// Serves plaintext clients too (`true`), or refuses them (`false`, the default).
    pub fn allow_plaintext(mut self, allow: bool) -> Self {
        self.plaintext = allow;
        self
    }

    /// Whether plaintext clients are served.
    pub fn plaintext_allowed(&self) -> bool {
        self.plaintext
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}
