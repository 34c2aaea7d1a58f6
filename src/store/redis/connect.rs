//! The one Redis client every connection of a store comes from — the shared
//! `ConnectionManager`, the peers' pub/sub, the replicas' locks — so all of them use
//! the same url, password and TLS settings; and the store's first contact at start-up.
//!
//! A store starts while Redis is away (it answers 503 until Redis is back), but not
//! when Redis is there and refuses it: a TLS handshake that fails (wrong CA, a
//! client certificate Redis requires and did not get, a plain-text port behind a
//! `rediss://` url) or credentials Redis rejects are configuration errors, reported
//! at start-up instead of as 503s forever, as is a system CA store the Redis client
//! cannot read. Nothing ever falls back to plain text.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use ::redis::{
    AsyncConnectionConfig, Client, ClientTlsConfig, ErrorKind, IntoConnectionInfo, RedisError,
    TlsCertificates,
};
use rustls::AlertDescription;

use super::runtime::IoThread;
use crate::config::{RedisTls, Secret};
use crate::store::StoreError;

/// How long the first contact may take before the broker starts without it: the
/// connection (a TLS handshake included, and the system's CAs read) and the `PING`.
const FIRST_CONTACT_WITHIN: Duration = Duration::from_secs(5);
const FIRST_CONNECTION_WITHIN: Duration = Duration::from_secs(4);

/// A client for `url` (`redis://` or `rediss://`) with `password` (when not in the
/// url) and, for `rediss://`, `tls`. Does not connect.
pub fn client(
    url: &str,
    password: Option<&Secret>,
    tls: Option<&RedisTls>,
) -> Result<Client, StoreError> {
    // The client's own messages never include the url, which may hold a password.
    let unusable = |e: RedisError| StoreError::Unavailable(format!("store.url is not usable: {e}"));
    let mut info = url.into_connection_info().map_err(unusable)?;
    if let Some(password) = password {
        let settings = info
            .redis_settings()
            .clone()
            .set_password(password.expose());
        info = info.set_redis_settings(settings);
    }
    let Some(tls) = tls else {
        return Client::open(info).map_err(unusable);
    };
    system_roots_readable()?;
    let certificates = TlsCertificates {
        client_tls: tls.client.as_ref().map(|identity| ClientTlsConfig {
            client_cert: identity.cert.expose().as_bytes().to_vec(),
            client_key: identity.key.expose().as_bytes().to_vec(),
        }),
        root_cert: tls.ca.as_ref().map(|ca| ca.expose().as_bytes().to_vec()),
    };
    Client::build_with_tls(info, certificates)
        .map_err(|e| StoreError::Unavailable(format!("store.tls is not usable: {e}")))
}

/// The redis crate reads the system's CA store for every TLS connection, even when
/// `store.tls.ca` replaces those roots, and fails the connection when any of it cannot
/// be read (`SSL_CERT_FILE` naming a missing file, an unreadable `SSL_CERT_DIR`). The
/// store would then never connect, with nothing wrong in its own configuration: read
/// the same store once here (and in `check-config`), and refuse to start naming what
/// to fix.
pub fn system_roots_readable() -> Result<(), StoreError> {
    match rustls_native_certs::load_native_certs().errors.first() {
        None => Ok(()),
        Some(error) => Err(StoreError::Unavailable(format!(
            "the system's CA certificates cannot be read ({error}); the redis client reads them \
             on every TLS connection, even with store.tls.ca set: fix or unset SSL_CERT_FILE \
             and SSL_CERT_DIR"
        ))),
    }
}

/// Connects once and sends `PING`, waiting at most a few seconds. `Ok` when Redis
/// answered or could not be reached (the store reconnects later); an error when
/// Redis was reached and refused the broker's TLS or credentials.
pub fn first_contact(io: &IoThread, client: &Client) -> Result<(), StoreError> {
    let contacted = client.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    io.handle().spawn(async move {
        let contact = async {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(FIRST_CONNECTION_WITHIN))
                .set_response_timeout(Some(FIRST_CONTACT_WITHIN));
            let mut conn = contacted
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            ::redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        let _ = tx.send(tokio::time::timeout(FIRST_CONTACT_WITHIN, contact).await);
    });
    // The task ends within its own timeout; the margin covers a busy thread.
    match rx.recv_timeout(FIRST_CONTACT_WITHIN + Duration::from_secs(1)) {
        Ok(Ok(Ok(_))) => Ok(()),
        Ok(Ok(Err(error))) => match refusal(&error).or_else(|| plain_text_port(client)) {
            Some(why) => Err(StoreError::Unavailable(why)),
            None => {
                tracing::warn!(%error, "redis unreachable at start-up: requests that need the store get 503 until it is");
                Ok(())
            }
        },
        Ok(Err(_)) | Err(_) => {
            // Also what a plain-text port behind a rediss:// url looks like: Redis
            // waits for the end of a "command" that is a TLS greeting. A plain PING
            // tells the two apart.
            if let Some(why) = plain_text_port(client) {
                return Err(StoreError::Unavailable(why));
            }
            tracing::warn!(
                "redis did not answer at start-up: requests that need the store get 503 until it does \
                 (with a rediss:// url, check that the port is Redis's TLS port)"
            );
            Ok(())
        }
    }
}

/// For a `rediss://` url whose TLS greeting went unanswered: whether its port answers
/// a plain-text `PING` as Redis does (`+PONG`, or an error such as `-NOAUTH` when it
/// wants a password). Then the url names Redis's plain port, not its TLS port: a
/// configuration error, not an outage. Only `PING` is sent, never credentials.
fn plain_text_port(client: &Client) -> Option<String> {
    use std::io::{Read, Write};
    use std::net::{TcpStream, ToSocketAddrs};
    let ::redis::ConnectionAddr::TcpTls { host, port, .. } = client.get_connection_info().addr()
    else {
        return None;
    };
    let within = Duration::from_secs(1);
    let address = (host.as_str(), *port).to_socket_addrs().ok()?.next()?;
    let mut stream = TcpStream::connect_timeout(&address, within).ok()?;
    stream.set_read_timeout(Some(within)).ok()?;
    stream.set_write_timeout(Some(within)).ok()?;
    stream.write_all(b"PING\r\n").ok()?;
    let mut reply = [0u8; 16];
    let read = stream.read(&mut reply).ok()?;
    let reply = reply.get(..read)?;
    let redis =
        reply.starts_with(b"+PONG") || reply.starts_with(b"-NOAUTH") || reply.starts_with(b"-ERR");
    redis.then(|| {
        format!(
            "{host}:{port} answers plain-text Redis, not TLS: a rediss:// store.url needs Redis's TLS port (its tls-port)"
        )
    })
}

/// Why Redis refused the broker, when it did (rather than being away).
fn refusal(error: &RedisError) -> Option<String> {
    if let Some(tls) = rustls_error(error) {
        return Some(format!(
            "the TLS handshake with redis failed: {tls}{}",
            tls_hint(tls)
        ));
    }
    let credentials = error.kind() == ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("NOAUTH" | "WRONGPASS" | "NOPERM"));
    credentials.then(|| {
        format!("redis refused the broker's credentials ({error}): check the password in store.url or store.password")
    })
}

/// What the operator most likely has to change for `error`.
fn tls_hint(error: &rustls::Error) -> &'static str {
    use rustls::{CertificateError, Error};
    match error {
        Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        ) => {
            " (store.tls.ca, or the system's CAs when it is not set, did not sign redis's certificate)"
        }
        Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => " (redis's certificate is not for the url's host)",
        Error::AlertReceived(
            AlertDescription::CertificateRequired
            | AlertDescription::HandshakeFailure
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::DecryptError,
        ) => {
            " (redis wants a client certificate it accepts: set store.tls.client_cert and client_key)"
        }
        Error::InvalidMessage(_) => " (is the url's port a TLS port? rediss:// needs one)",
        _ => "",
    }
}

/// The rustls error behind `error`, if the connection failed in TLS. The Redis
/// client keeps the I/O error in an `Arc`, and `io::Error::source` skips the error
/// it wraps, so the chain is walked by hand.
fn rustls_error(error: &RedisError) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(current) = next {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(inner) = current
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            next = Some(inner as &(dyn StdError + 'static));
            continue;
        }
        if let Some(shared) = current.downcast_ref::<Arc<dyn StdError + Send + Sync>>() {
            next = Some(shared.as_ref() as &(dyn StdError + 'static));
            continue;
        }
        next = current.source();
    }
    None
}
