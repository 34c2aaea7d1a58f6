//! Registration's de-duplication memory in this process: a bounded map whose
//! entries go when their window passes.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::Expiry;
use moka::sync::Cache;

use crate::store::StoreError;
use crate::store::recent_clients::RecentClients;

/// Fingerprints held at most; beyond, the least recently used are forgotten (which
/// costs only an extra client).
const CAPACITY: u64 = 100_000;

/// A client id and how long it is remembered.
#[derive(Clone)]
struct Entry {
    client_id: String,
    window: Duration,
}

struct ForItsWindow;

impl Expiry<[u8; 32], Entry> for ForItsWindow {
    fn expire_after_create(&self, _: &[u8; 32], entry: &Entry, _: Instant) -> Option<Duration> {
        Some(entry.window)
    }

    fn expire_after_update(
        &self,
        _: &[u8; 32],
        entry: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.window)
    }
}

pub struct MemoryRecentClients {
    clients: Cache<[u8; 32], Entry>,
}

impl MemoryRecentClients {
    pub fn new() -> Self {
        Self {
            clients: Cache::builder()
                .max_capacity(CAPACITY)
                .expire_after(ForItsWindow)
                .build(),
        }
    }
}

impl Default for MemoryRecentClients {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl RecentClients for MemoryRecentClients {
    async fn recall(&self, fingerprint: &[u8; 32]) -> Result<Option<String>, StoreError> {
        Ok(self.clients.get(fingerprint).map(|entry| entry.client_id))
    }

    async fn remember(
        &self,
        fingerprint: &[u8; 32],
        client_id: &str,
        window: Duration,
    ) -> Result<(), StoreError> {
        self.clients.insert(
            *fingerprint,
            Entry {
                client_id: client_id.to_owned(),
                window,
            },
        );
        Ok(())
    }
}
