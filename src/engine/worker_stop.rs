//! A worker stopping (ShutdownWorker naming its worker instance key): its outstanding polls
//! answer empty at once, and new polls with the key too for a while, so the worker stops
//! without waiting out a long poll. This is the namespace capability
//! `worker_poll_complete_on_shutdown`: SDKs that see it let their polls finish instead of
//! cancelling them, so the server must keep the promise.

use std::collections::HashMap;

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::Engine;

/// How long polls with a stopped worker's key keep answering empty (Temporal's 30 s).
const STOPPED_FOR_MS: i64 = 30_000;

/// Worker instance keys that stopped, with when each stopped.
#[derive(Default)]
pub(crate) struct StoppedWorkers {
    stopped: Mutex<HashMap<String, i64>>,
    wake: Notify,
}

impl Engine {
    /// The worker with `instance_key` stopped: its polls answer empty now.
    pub fn stop_worker_polls(&self, instance_key: &str) {
        if instance_key.is_empty() {
            return;
        }
        let now = self.now();
        let mut stopped = self.stopped_workers.stopped.lock();
        stopped.retain(|_, at| now - *at < STOPPED_FOR_MS);
        stopped.insert(instance_key.to_string(), now);
        drop(stopped);
        self.stopped_workers.wake.notify_waiters();
    }

    /// Whether polls with `instance_key` answer empty because their worker stopped.
    pub(crate) fn worker_stopped(&self, instance_key: &str) -> bool {
        if instance_key.is_empty() {
            return false;
        }
        let now = self.now();
        self.stopped_workers
            .stopped
            .lock()
            .get(instance_key)
            .is_some_and(|at| now - *at < STOPPED_FOR_MS)
    }

    /// Resolves when the worker with `instance_key` stops (never without a key).
    pub(crate) async fn until_worker_stops(&self, instance_key: &str) {
        if instance_key.is_empty() {
            return std::future::pending().await;
        }
        loop {
            let woken = self.stopped_workers.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.worker_stopped(instance_key) {
                return;
            }
            woken.await;
        }
    }
}
