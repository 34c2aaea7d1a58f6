//! `[store.tls]`: TLS to Redis (a `rediss://` url). `ca` is the PEM bundle that may
//! sign Redis's certificate (default: the system's trust store), `client_cert` and
//! `client_key` the PEM chain and key the broker presents to a Redis that checks
//! clients (`tls-auth-clients`). Each is a secret reference (inline, `env:`, `file:`).
//!
//! Certificate checks cannot be turned off: there is no `insecure_skip_verify`, and
//! the url's `#insecure` is refused (see `RedisUrl`). Everything is parsed here, so
//! `check-config` and start-up report bad PEM by key; a certificate that does not fit
//! Redis is found by the store's first contact (`store::redis::connect`).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use serde::Deserialize;

use super::super::sections::Checker;
use super::super::{Environment, Secret};

/// `[store.tls]` as written. Every value is a secret reference.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawStoreTls {
    pub ca: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
}

/// TLS to Redis: present exactly when the url is `rediss://`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisTls {
    /// `ca`: the PEM certificates Redis's certificate must chain to; `None`: the
    /// system's trust store.
    pub ca: Option<Secret>,
    /// `client_cert` and `client_key`: what the broker presents when Redis asks
    /// (mutual TLS); `None`: no client certificate.
    pub client: Option<ClientIdentity>,
}

/// A client certificate chain and its private key, both PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub cert: Secret,
    pub key: Secret,
}

/// Checks `[store.tls]` against the url's scheme. `None` is a problem reported (or
/// a plain `redis://` url without TLS settings: `Some(None)`).
pub(super) fn redis_tls(
    c: &mut Checker<'_>,
    raw: Option<RawStoreTls>,
    url_is_tls: Option<bool>,
    env: &Environment,
) -> Option<Option<RedisTls>> {
    let raw = match (raw, url_is_tls) {
        (None, Some(false)) => return Some(None),
        (Some(_), Some(false)) => {
            // Settings for TLS on a plain url would send the password in clear text
            // while the operator believes the link encrypted.
            c.report(
                "tls",
                "only used with a rediss:// url; redis:// is plain text (use rediss://)",
            );
            return None;
        }
        (raw, _) => raw.unwrap_or_default(),
    };
    let mut ok = true;
    let ca = raw.ca.and_then(|spec| {
        let checked = Secret::resolve(&spec, env).and_then(|pem| check_ca(&pem).map(|()| pem));
        note(c, "tls.ca", checked, &mut ok)
    });
    let client = match (raw.client_cert, raw.client_key) {
        (None, None) => None,
        (Some(_), None) => {
            c.report("tls.client_key", "missing (client_cert is given)");
            ok = false;
            None
        }
        (None, Some(_)) => {
            c.report("tls.client_cert", "missing (client_key is given)");
            ok = false;
            None
        }
        (Some(cert), Some(key)) => {
            let cert = Secret::resolve(&cert, env).and_then(|pem| certificates(&pem).map(|_| pem));
            let cert = note(c, "tls.client_cert", cert, &mut ok);
            let key = Secret::resolve(&key, env).and_then(|pem| private_key(&pem).map(|_| pem));
            let key = note(c, "tls.client_key", key, &mut ok);
            match (cert, key) {
                (Some(cert), Some(key)) => {
                    let identity = ClientIdentity { cert, key };
                    note(c, "tls.client_key", check_pair(&identity), &mut ok);
                    Some(identity)
                }
                _ => None,
            }
        }
    };
    if !ok || url_is_tls.is_none() {
        return None;
    }
    Some(Some(RedisTls { ca, client }))
}

fn note<T>(c: &mut Checker<'_>, key: &str, checked: Result<T, String>, ok: &mut bool) -> Option<T> {
    checked
        .map_err(|message| {
            c.report(key, message);
            *ok = false;
        })
        .ok()
}

/// The certificates in `pem` (at least one).
fn certificates(pem: &Secret) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.expose().as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("is not PEM ({e})"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned());
    }
    Ok(certs)
}

/// Every certificate in the bundle must be usable as a trust anchor.
fn check_ca(pem: &Secret) -> Result<(), String> {
    let mut roots = RootCertStore::empty();
    for (n, cert) in certificates(pem)?.into_iter().enumerate() {
        roots
            .add(cert)
            .map_err(|e| format!("certificate {} is not usable as a CA ({e})", n + 1))?;
    }
    Ok(())
}

fn private_key(pem: &Secret) -> Result<PrivateKeyDer<'static>, String> {
    // The parser's message is left out: it may quote a line of the key.
    PrivateKeyDer::from_pem_slice(pem.expose().as_bytes()).map_err(|_| {
        "holds no PEM private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)".to_owned()
    })
}

/// The key must belong to the chain's first certificate and be of a kind rustls
/// signs with; checked as the client will use them.
fn check_pair(identity: &ClientIdentity) -> Result<(), String> {
    let chain = certificates(&identity.cert)?;
    let key = private_key(&identity.key)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("no TLS version available ({e})"))?
        .with_root_certificates(RootCertStore::empty())
        .with_client_auth_cert(chain, key)
        .map(|_| ())
        .map_err(|e| format!("does not fit client_cert ({e})"))
}

#[cfg(test)]
mod tests;
