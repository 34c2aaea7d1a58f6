//! `token-broker healthcheck`: one HTTP GET for container probes, exit 0 on a 2xx
//! within the timeout, 1 otherwise (the reason on stderr). It must run where there is
//! no shell and no curl (a distroless image), so it is a blocking HTTP/1.1 GET over a
//! `TcpStream`: no runtime, no TLS. `https://` is refused: the probe runs beside the
//! broker and reaches it on loopback, where the broker itself speaks plain HTTP (TLS
//! is terminated in front of it); a TLS client here would only add a certificate to
//! configure.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use token_broker::config::{self, Environment, ServerConfig};
use url::Url;

/// The most of a response read: the status line is all that matters.
const MAX_HEAD: usize = 8 * 1024;

/// Why the probe failed: printed on stderr, exit 1.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// --config did not load (the same checks as `check-config`).
    #[error("cannot read the configuration {path}: {message}")]
    Config { path: String, message: String },
    /// --url is not a URL, or not one this probe can GET.
    #[error("`{0}` is not an http:// URL")]
    BadUrl(String),
    /// Neither --url nor --config (clap requires one; kept for callers of [`target`]).
    #[error("nothing to probe: pass --url or --config")]
    NoTarget,
    /// An `https://` URL: this probe speaks plain HTTP only (see the module doc).
    #[error(
        "`{0}`: https is not supported; probe the broker's plain-HTTP port on loopback (the management port when set)"
    )]
    Https(String),
    /// The configured port is chosen by the system at start: unknown from the file.
    #[error("server.{0} binds port 0 (a port the system picks): pass --url")]
    NoPort(&'static str),
    /// The URL's host has no address.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// Nothing listens there (connection refused), or the connect timed out.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// Connected, but the request or the status line did not pass in time.
    #[error("no answer from {addr} within {timeout:?}: {source}")]
    Io {
        addr: SocketAddr,
        timeout: Duration,
        source: std::io::Error,
    },
    /// The answer did not start with an HTTP/1.x status line.
    #[error("{url} answered with something that is not HTTP")]
    NotHttp { url: String },
    /// An HTTP answer other than 2xx (a draining broker's `/readyz`: 503).
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
}

/// The URL to probe: `url` when given, else `/readyz` on the configured management
/// port, or on `listen` when there is none.
pub fn target(url: Option<&str>, config: Option<&Path>) -> Result<Url, ProbeError> {
    let text = match (url, config) {
        (Some(url), _) => url.to_owned(),
        (None, Some(path)) => {
            let loaded = config::load_file(path, &Environment::from_process()).map_err(|e| {
                ProbeError::Config {
                    path: path.display().to_string(),
                    message: e.to_string(),
                }
            })?;
            readyz_url(&loaded.server)?
        }
        (None, None) => return Err(ProbeError::NoTarget),
    };
    Url::parse(&text).map_err(|_| ProbeError::BadUrl(text))
}

/// `/readyz` on the port probes belong on, a wildcard address mapped to loopback.
pub fn readyz_url(server: &ServerConfig) -> Result<String, ProbeError> {
    let (key, addr) = match server.management_listen {
        Some(addr) => ("management_listen", addr),
        None => ("listen", server.listen),
    };
    if addr.port() == 0 {
        return Err(ProbeError::NoPort(key));
    }
    Ok(format!("http://{}/readyz", reachable(addr)))
}

/// Where a probe beside the broker reaches a bound address: a wildcard means every
/// interface, loopback among them.
fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

/// GETs `url`; `Ok` on a 2xx status within `timeout` (connecting, sending and reading
/// the status line together).
pub fn probe(url: &Url, timeout: Duration) -> Result<u16, ProbeError> {
    match url.scheme() {
        "http" => {}
        "https" => return Err(ProbeError::Https(url.to_string())),
        _ => return Err(ProbeError::BadUrl(url.to_string())),
    }
    let host = url
        .host_str()
        .ok_or_else(|| ProbeError::BadUrl(url.to_string()))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let addr = (host.trim_start_matches('[').trim_end_matches(']'), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| ProbeError::Resolve(format!("{host}:{port}")))?;
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|source| ProbeError::Connect { addr, source })?;
    let io = |source| ProbeError::Io {
        addr,
        timeout,
        source,
    };
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    stream.set_write_timeout(Some(left())).map_err(io)?;
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: token-broker-healthcheck\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut head = Vec::new();
    let mut buffer = [0u8; 512];
    while !head.contains(&b'\n') && head.len() < MAX_HEAD {
        stream.set_read_timeout(Some(left())).map_err(io)?;
        match stream.read(&mut buffer).map_err(io)? {
            0 => break,
            n => head.extend_from_slice(&buffer[..n]),
        }
    }
    let status = status_code(&head).ok_or_else(|| ProbeError::NotHttp {
        url: url.to_string(),
    })?;
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(ProbeError::Status {
            url: url.to_string(),
            status,
        })
    }
}

/// The status code of an HTTP/1.x status line (`HTTP/1.1 200 OK`).
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_ascii_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_read_and_anything_else_is_not_http() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            status_code(b"HTTP/1.0 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_code(b"HTTP/1.1 2000 OK\r\n"), None);
        assert_eq!(status_code(b""), None);
    }

    #[test]
    fn wildcard_addresses_are_probed_on_loopback() {
        for (bound, probed) in [
            ("0.0.0.0:9090", "127.0.0.1:9090"),
            ("[::]:9090", "[::1]:9090"),
            ("10.1.2.3:9090", "10.1.2.3:9090"),
            ("[::1]:8080", "[::1]:8080"),
        ] {
            let bound: SocketAddr = bound.parse().unwrap();
            assert_eq!(reachable(bound).to_string(), probed);
        }
    }
}
