//! A `redis-server` of the tests' own: started on a free loopback port with nothing
//! persisted, stopped when dropped; plain, or TLS only (`--port 0 --tls-port`) with
//! certificates made for the run (`pki`). A missing `redis-server` fails the test —
//! run `scripts/ensure-redis.sh` — never skips it. The integration tests include this
//! file too.

#[path = "pki.rs"]
pub mod pki;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use self::pki::{Pki, PkiFiles};

/// How long a server may take to answer its first `PING`.
const READY_WITHIN: Duration = Duration::from_secs(10);

pub struct RedisServer {
    port: u16,
    child: Mutex<Option<Child>>,
    dir: tempfile::TempDir,
    tls: Option<Tls>,
}

/// A TLS server's certificates, and whether it asks clients for theirs.
pub struct Tls {
    pub pki: Pki,
    pub files: PkiFiles,
    /// `--tls-auth-clients yes`: a client without a certificate signed by the CA is
    /// refused; else `optional`.
    pub clients_need_certificates: bool,
    /// Where `files` are.
    _certs: tempfile::TempDir,
}

impl RedisServer {
    /// A server of the caller's own (tests that stop or restart it).
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A server that speaks TLS only, on certificates made for it.
    pub fn start_tls(clients_need_certificates: bool) -> Self {
        let certs = tempfile::tempdir().unwrap();
        let pki = Pki::generate();
        let files = pki.write(certs.path());
        Self::start_with(Some(Tls {
            pki,
            files,
            clients_need_certificates,
            _certs: certs,
        }))
    }

    fn start_with(tls: Option<Tls>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut last = String::new();
        // The port is free when chosen but could be taken before redis binds it:
        // then redis exits and another port is tried.
        for _ in 0..5 {
            let port = free_port();
            match spawn(port, &dir, tls.as_ref()) {
                Ok(child) => {
                    return Self {
                        port,
                        child: Mutex::new(Some(child)),
                        dir,
                        tls,
                    };
                }
                Err(why) => last = why,
            }
        }
        panic!("redis-server did not start: {last}");
    }

    /// A server shared by the tests running at the same time (each under its own key
    /// prefix); the last one to finish stops it.
    pub fn shared() -> Arc<Self> {
        static SHARED: Mutex<Weak<RedisServer>> = Mutex::new(Weak::new());
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(server) = shared.upgrade() {
            return server;
        }
        let server = Arc::new(Self::start());
        *shared = Arc::downgrade(&server);
        server
    }

    /// Like [`RedisServer::shared`], for a TLS server that requires client certificates.
    pub fn shared_tls() -> Arc<Self> {
        static SHARED: Mutex<Weak<RedisServer>> = Mutex::new(Weak::new());
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(server) = shared.upgrade() {
            return server;
        }
        let server = Arc::new(Self::start_tls(true));
        *shared = Arc::downgrade(&server);
        server
    }

    /// `redis://…`, or `rediss://…` for a TLS server.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/", self.port)
    }

    /// The TLS server's certificates.
    pub fn tls(&self) -> &Tls {
        self.tls.as_ref().expect("a TLS server")
    }

    /// `[store.tls]` for this TLS server, with the client certificate: `file:` references.
    pub fn store_tls_section(&self) -> String {
        self.store_tls_section_trusting(&self.tls().files.ca)
    }

    /// [`RedisServer::store_tls_section`] with the CA in `ca` instead of the server's.
    pub fn store_tls_section_trusting(&self, ca: &std::path::Path) -> String {
        let files = &self.tls().files;
        format!(
            "[store.tls]\nca = \"file:{}\"\nclient_cert = \"file:{}\"\nclient_key = \"file:{}\"\n",
            ca.display(),
            files.client_cert.display(),
            files.client_key.display()
        )
    }

    /// A connection of the test's own (over TLS with the client certificate for a TLS
    /// server), to look at what the store wrote.
    pub fn connection(&self) -> ::redis::Connection {
        client(&self.url(), self.tls.as_ref())
            .get_connection()
            .unwrap()
    }

    /// Kills the server (as a crash would); its data is gone.
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, as a restarted Redis comes back.
    pub fn restart(&self) {
        self.stop();
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            // The old socket may linger a moment; redis binds with SO_REUSEADDR.
            match spawn(self.port, &self.dir, self.tls.as_ref()) {
                Ok(child) => {
                    *self.child.lock().unwrap() = Some(child);
                    return;
                }
                Err(why) if Instant::now() > deadline => {
                    panic!("redis-server did not restart: {why}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn binary() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("redis-server"))
            .find(|candidate| candidate.is_file())
    });
    on_path
        .or_else(|| {
            let debian = PathBuf::from("/usr/bin/redis-server");
            debian.is_file().then_some(debian)
        })
        .unwrap_or_else(|| {
            panic!("redis-server is not installed: run `bash scripts/ensure-redis.sh`")
        })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn client(url: &str, tls: Option<&Tls>) -> ::redis::Client {
    match tls {
        None => ::redis::Client::open(url).unwrap(),
        Some(tls) => ::redis::Client::build_with_tls(
            url,
            ::redis::TlsCertificates {
                client_tls: Some(::redis::ClientTlsConfig {
                    client_cert: tls.pki.client_cert.clone().into_bytes(),
                    client_key: tls.pki.client_key.clone().into_bytes(),
                }),
                root_cert: Some(tls.pki.ca.clone().into_bytes()),
            },
        )
        .unwrap(),
    }
}

/// Starts redis-server on `port` (its TLS port for `tls`, with no plain port) and
/// waits for its `PONG`; on failure, why (with its log).
fn spawn(port: u16, dir: &tempfile::TempDir, tls: Option<&Tls>) -> Result<Child, String> {
    let log = dir.path().join(format!("redis-{port}.log"));
    let mut command = Command::new(binary());
    match tls {
        None => command.args(["--port", &port.to_string()]),
        Some(tls) => command
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(&tls.files.server_cert)
            .arg("--tls-key-file")
            .arg(&tls.files.server_key)
            .arg("--tls-ca-cert-file")
            .arg(&tls.files.ca)
            .args([
                "--tls-auth-clients",
                if tls.clients_need_certificates {
                    "yes"
                } else {
                    "optional"
                },
            ]),
    };
    let mut child = command
        .args(["--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir.path())
        .arg("--logfile")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run redis-server: {e}"))?;
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("redis-server exited ({status}): {log}"));
        }
        if pong(port, tls) {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("redis-server on port {port} never answered PING"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pong(port: u16, tls: Option<&Tls>) -> bool {
    if let Some(tls) = tls {
        let url = format!("rediss://127.0.0.1:{port}/");
        let Ok(mut conn) =
            client(&url, Some(tls)).get_connection_with_timeout(Duration::from_secs(1))
        else {
            return false;
        };
        return ::redis::cmd("PING")
            .query::<String>(&mut conn)
            .is_ok_and(|r| r == "PONG");
    }
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}
