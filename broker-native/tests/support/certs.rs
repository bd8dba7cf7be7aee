//! Certificates made on the fly for TLS tests: a CA and a server certificate it signs for
//! `localhost` and `127.0.0.1`, as PEM text and files in a temporary directory.

use std::path::PathBuf;

/// A CA and a server identity it signed, written to `dir`.
pub struct TestPki {
    /// The CA certificate (PEM file): what clients trust.
    pub ca_file: PathBuf,
    /// The server's certificate (PEM file).
    pub cert_file: PathBuf,
    /// The server's private key (PEM file).
    pub key_file: PathBuf,
    /// The server certificate, PEM text.
    pub cert_pem: String,
    /// The server key, PEM text.
    pub key_pem: String,
}

/// PEM text of a fresh CA named `name`, and of a server certificate and key it signed.
pub struct PemPki {
    /// The CA certificate.
    pub ca: String,
    /// The server certificate.
    pub cert: String,
    /// The server key.
    pub key: String,
}

/// Makes a fresh CA named `name` and a server certificate it signs, in `dir`.
#[allow(dead_code)]
pub fn make_pki(dir: &std::path::Path, name: &str) -> TestPki {
    let pem = make_pem(name);
    let pki = TestPki {
        ca_file: dir.join(format!("{name}-ca.pem")),
        cert_file: dir.join(format!("{name}-cert.pem")),
        key_file: dir.join(format!("{name}-key.pem")),
        cert_pem: pem.cert,
        key_pem: pem.key,
    };
    std::fs::write(&pki.ca_file, pem.ca).unwrap();
    std::fs::write(&pki.cert_file, &pki.cert_pem).unwrap();
    std::fs::write(&pki.key_file, &pki.key_pem).unwrap();
    pki
}

/// Makes a fresh CA named `name` and a server certificate it signs, as PEM text.
pub fn make_pem(name: &str) -> PemPki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} test CA"));
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    PemPki {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}
