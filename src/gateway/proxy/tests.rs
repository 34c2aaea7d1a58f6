//! The hop's TLS against a real TLS server: a certificate the client trusts carries
//! the request, in HTTP/2 where the server offers it; one the platform does not know
//! stops it before a byte is sent. The request target, and idle connections let go.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::web::Bytes;
use http_body_util::{BodyExt, Full};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{client_with, hop_client};

// The Redis tests' certificate maker, included again: it is private to them.
#[path = "../../store/redis/tests/pki.rs"]
#[allow(dead_code, clippy::duplicate_mod)]
mod pki;

/// A TLS server on 127.0.0.1 with the test CA's certificate, HTTP/1.1 only, answering
/// every request `200 ok`; counts the requests it read.
async fn tls_server(pki: &pki::Pki) -> (String, Arc<AtomicUsize>) {
    let (acceptor, listener, url) = tls_listener(pki, b"http/1.1").await;
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, seen) = (acceptor.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(stream).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buffer = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                seen.fetch_add(1, Ordering::SeqCst);
                let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (url, requests)
}

/// A TLS listener with the test CA's server certificate, offering `alpn` alone.
async fn tls_listener(
    pki: &pki::Pki,
    alpn: &[u8],
) -> (tokio_rustls::TlsAcceptor, tokio::net::TcpListener, String) {
    let certs = vec![CertificateDer::from_pem_slice(pki.server_cert.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(pki.server_key.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = vec![alpn.to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}/mcp",
        listener.local_addr().unwrap().port()
    );
    (acceptor, listener, url)
}

/// The same, speaking HTTP/2 alone (ALPN `h2`): every request answered `200 h2`.
async fn h2_server(pki: &pki::Pki) -> String {
    let (acceptor, listener, url) = tls_listener(pki, b"h2").await;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let Ok(mut connection) = h2::server::handshake(stream).await else {
                    return;
                };
                while let Some(Ok((_request, mut respond))) = connection.accept().await {
                    let answer = http::Response::builder().status(200).body(()).unwrap();
                    if let Ok(mut body) = respond.send_response(answer, false) {
                        let _ = body.send_data(Bytes::from_static(b"h2"), true);
                    }
                }
            });
        }
    });
    url
}

/// A client trusting the test CA alone.
fn trusting(pki: &pki::Pki) -> super::Client<super::Connector, Full<Bytes>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client_with(tls, Duration::from_secs(5))
}

fn get(url: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(url).body(Full::default()).unwrap()
}

#[tokio::test]
async fn an_https_mcp_server_with_a_trusted_certificate_gets_the_request() {
    let pki = pki::Pki::generate();
    let (url, requests) = tls_server(&pki).await;
    let response = trusting(&pki).request(get(&url)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_11);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok");
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_https_mcp_server_that_offers_http2_is_spoken_to_in_http2() {
    let pki = pki::Pki::generate();
    let url = h2_server(&pki).await;
    let client = trusting(&pki);
    for _ in 0..2 {
        let response = client.request(get(&url)).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), http::Version::HTTP_2);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"h2");
    }
}

#[tokio::test]
async fn a_certificate_the_platform_does_not_trust_stops_the_hop_before_the_request() {
    let pki = pki::Pki::generate();
    let (url, requests) = tls_server(&pki).await;
    let client = hop_client(Duration::from_secs(5)).unwrap();
    let error = client.request(get(&url)).await.unwrap_err();
    let refused = super::GatewayError::unreachable(error).to_string();
    assert!(
        refused.contains("certificate"),
        "the refusal should name the certificate: {refused}"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 0, "a request went out");
}

fn upstream(url: &str) -> super::Upstream {
    let config = crate::config::GatewayConfig {
        path: "/mcp".to_owned(),
        resource: "https://mcp.example/mcp".to_owned(),
        upstream: url.parse().unwrap(),
        timeout: Duration::from_secs(5),
    };
    let identity = crate::config::IdentityHeaders::default();
    super::Upstream::new(&config, &identity, Default::default()).unwrap()
}

#[test]
fn the_clients_query_goes_on_to_the_configured_path() {
    let server = upstream("http://127.0.0.1:3000/mcp/v1");
    assert_eq!(server.target(None).unwrap(), "http://127.0.0.1:3000/mcp/v1");
    let sent = server.target(Some("session=a%20b&x={1}|2")).unwrap();
    assert_eq!(sent, "http://127.0.0.1:3000/mcp/v1?session=a%20b&x={1}|2");
}

/// A plain-HTTP keep-alive server answering `200 ok`; counts the connections it
/// accepted.
async fn keep_alive_server() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://127.0.0.1:{}/mcp",
        listener.local_addr().unwrap().port()
    );
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let mut head = Vec::new();
                loop {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                    while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                        head.drain(..end + 4);
                        let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, accepted)
}

#[tokio::test]
async fn a_hop_connection_idle_past_the_pool_timeout_is_not_reused() {
    let (url, accepted) = keep_alive_server().await;
    let client = hop_client(Duration::from_secs(5)).unwrap();
    for _ in 0..2 {
        let response = client.request(get(&url)).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "kept alive while busy");
    // The pool's own idle clock (hyper's): no test clock reaches it.
    let idle = crate::upstream::http::POOL_IDLE_TIMEOUT + Duration::from_millis(500);
    tokio::time::sleep(idle).await;
    let response = client.request(get(&url)).await.unwrap();
    response.into_body().collect().await.unwrap();
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "a connection idle past POOL_IDLE_TIMEOUT was reused"
    );
}
