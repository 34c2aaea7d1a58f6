//! A `redis-server` of the tests' own: started on a free loopback port with nothing
//! persisted, stopped when dropped. A missing `redis-server` fails the test — run
//! `scripts/ensure-redis.sh` — never skips it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How long a server may take to answer its first `PING`.
const READY_WITHIN: Duration = Duration::from_secs(10);

pub struct RedisServer {
    port: u16,
    child: Mutex<Option<Child>>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// A server of the caller's own (tests that stop or restart it).
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut last = String::new();
        // The port is free when chosen but could be taken before redis binds it:
        // then redis exits and another port is tried.
        for _ in 0..5 {
            let port = free_port();
            match spawn(port, &dir) {
                Ok(child) => {
                    return Self {
                        port,
                        child: Mutex::new(Some(child)),
                        dir,
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

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A plain connection, to look at what the store wrote.
    pub fn connection(&self) -> ::redis::Connection {
        ::redis::Client::open(self.url())
            .unwrap()
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
            match spawn(self.port, &self.dir) {
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

/// Starts redis-server on `port` and waits for its `PONG`; on failure, why (with
/// its log).
fn spawn(port: u16, dir: &tempfile::TempDir) -> Result<Child, String> {
    let log = dir.path().join(format!("redis-{port}.log"));
    let mut child = Command::new(binary())
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
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
        if pong(port) {
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

fn pong(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}
