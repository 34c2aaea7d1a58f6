//! A TCP relay in front of Redis that can hold Redis's replies back: commands still
//! reach Redis and run, their replies come only when released — as when Redis is
//! stopped between running a command and writing its reply — long after the store
//! gave up waiting. Held from now (`hold`), or from the first command that carries a
//! given text (`hold_from`: the reply to that command is the first one held).
//! Shared by the store's tests and the integration tests (`tests/it`, by `#[path]`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Relay {
    pub port: u16,
    hold: Arc<AtomicBool>,
    trigger: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Relay {
    /// Relays every connection made to `port` to Redis on 127.0.0.1:`target`.
    pub fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hold = Arc::new(AtomicBool::new(false));
        let trigger = Arc::new(Mutex::new(None));
        let (flag, armed) = (hold.clone(), trigger.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let (from_client, to_server) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (flag_in, armed) = (flag.clone(), armed.clone());
                std::thread::spawn(move || {
                    relay_commands(from_client, to_server, &flag_in, &armed)
                });
                let flag = flag.clone();
                std::thread::spawn(move || relay_replies(server, client, &flag));
            }
        });
        Self {
            port,
            hold,
            trigger,
        }
    }

    /// The relay's address as a store URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn hold(&self, on: bool) {
        self.hold.store(on, Ordering::SeqCst);
    }

    /// Holds replies from the first command (after now) whose bytes contain `text`.
    pub fn hold_from(&self, text: &[u8]) {
        *self.trigger.lock().unwrap() = Some(text.to_vec());
    }

    /// Whether replies are held now.
    pub fn holding(&self) -> bool {
        self.hold.load(Ordering::SeqCst)
    }
}

/// Copies the store's commands to Redis, setting `hold` first when one carries the
/// armed trigger (which is then spent).
fn relay_commands(
    mut from_client: TcpStream,
    mut to_server: TcpStream,
    hold: &AtomicBool,
    trigger: &Mutex<Option<Vec<u8>>>,
) {
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = match from_client.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let chunk = &buffer[..n];
        {
            let mut armed = trigger.lock().unwrap();
            let hit = armed
                .as_deref()
                .is_some_and(|text| chunk.windows(text.len()).any(|w| w == text));
            if hit {
                hold.store(true, Ordering::SeqCst);
                *armed = None;
            }
        }
        if to_server.write_all(chunk).is_err() {
            return;
        }
    }
}

/// Copies Redis's replies to the store, keeping them back while `hold` is set.
fn relay_replies(mut from_server: TcpStream, mut to_client: TcpStream, hold: &AtomicBool) {
    from_server
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut held = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match from_server.read(&mut buffer) {
            Ok(0) => return,
            Ok(n) => held.extend_from_slice(&buffer[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
        if !hold.load(Ordering::SeqCst) && !held.is_empty() {
            if to_client.write_all(&held).is_err() {
                return;
            }
            held.clear();
        }
    }
}
