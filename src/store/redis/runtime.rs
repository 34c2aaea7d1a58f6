//! The Redis client's own thread and runtime.
//!
//! actix runs one single-threaded runtime per worker, and tests build runtimes that
//! live for one call. A Redis connection is driven by a task on the runtime that
//! opened it, so a connection opened on a runtime that later stops would die with
//! it. Every Redis call therefore runs on this one runtime, which lives as long as
//! a store, peers handle or invalidation stream does; callers on any runtime await
//! the result. The hop costs microseconds against a network round trip.

use std::future::Future;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::store::StoreError;

pub struct IoThread {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
}

impl IoThread {
    /// Starts the thread; it runs until this value is dropped.
    pub fn start() -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Unavailable(format!("cannot start the redis runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("redis-store".to_owned())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })
            .map_err(|e| StoreError::Unavailable(format!("cannot start the redis thread: {e}")))?;
        Ok(Self {
            handle,
            stop: Some(stop),
        })
    }

    /// The runtime's handle: spawn on it, or enter it to build what spawns.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs `work` on the Redis runtime and waits for it. It finishes even if the
    /// caller stops waiting, so a script is never abandoned halfway by the client.
    pub async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        self.handle
            .spawn(work)
            .await
            .map_err(|e| StoreError::Unavailable(format!("redis task failed: {e}")))?
    }
}

impl Drop for IoThread {
    fn drop(&mut self) {
        // The thread drops the runtime, cancelling whatever still runs there.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
