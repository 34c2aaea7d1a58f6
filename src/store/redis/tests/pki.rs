//! Throwaway certificates for the TLS tests, made fresh by each test run: a CA, a
//! server certificate for 127.0.0.1 and localhost, and a client certificate, all PEM
//! and signed by the CA. Depends on rcgen and base64 only, so the integration tests
//! include it too (with the harness). rcgen's own PEM feature would bring a second
//! major version of the `pem` crate; the few lines below write PEM instead.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A CA and what it signed, PEM.
pub struct Pki {
    pub ca: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
}

/// Where [`Pki::write`] put each PEM.
pub struct PkiFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Pki {
    pub fn generate() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "token-broker test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose, cn: &str| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(names).unwrap();
            params.distinguished_name.push(DnType::CommonName, cn);
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &ca).unwrap();
            (
                pem("CERTIFICATE", cert.der()),
                pem("PRIVATE KEY", &key.serialize_der()),
            )
        };
        let (server_cert, server_key) = leaf(
            vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
            ExtendedKeyUsagePurpose::ServerAuth,
            "redis",
        );
        let (client_cert, client_key) =
            leaf(Vec::new(), ExtendedKeyUsagePurpose::ClientAuth, "broker");
        Self {
            ca: pem("CERTIFICATE", ca.der()),
            server_cert,
            server_key,
            client_cert,
            client_key,
        }
    }

    /// Writes each PEM to its own file in `dir`.
    pub fn write(&self, dir: &Path) -> PkiFiles {
        let put = |name: &str, pem: &str| {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        PkiFiles {
            ca: put("ca.pem", &self.ca),
            server_cert: put("server.pem", &self.server_cert),
            server_key: put("server-key.pem", &self.server_key),
            client_cert: put("client.pem", &self.client_cert),
            client_key: put("client-key.pem", &self.client_key),
        }
    }
}

/// `der` as a PEM block labelled `label` (RFC 7468: base64 in lines of 64).
fn pem(label: &str, der: &[u8]) -> String {
    let text = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
