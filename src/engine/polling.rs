//! Long polls of task queues: a poller waits for a task, its deadline, the engine's shutdown or
//! its worker's stop, and a task handed to a poller that went away goes back to its queue.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::matching::{QueueKey, ReadyTask, TaskRef};
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;

use super::{Core, Engine, Error, Result};

impl Engine {
    /// What every poll starts with: the polled queue's name (required) and a namespace that
    /// exists.
    pub(crate) async fn poll_target(
        &self,
        namespace: &str,
        task_queue: &Option<TaskQueue>,
    ) -> Result<String> {
        let name = task_queue_name(task_queue)?;
        self.transact(|core| core.check_namespace(namespace))
            .await?;
        Ok(name)
    }

    /// Long-polls a task queue; `start` turns a task reference into a response (None if stale).
    /// A task another replica already started is the response as it came.
    pub(crate) async fn poll_queue<T: PollAnswer>(
        self: &Arc<Self>,
        queue: QueueKey,
        poller: &Poller,
        deadline: tokio::time::Instant,
        mut start: impl FnMut(&mut Core, TaskRef) -> Result<Option<T>>,
    ) -> Result<Option<T>> {
        loop {
            if self.worker_stopped(&poller.instance_key) {
                return Ok(None);
            }
            let taken = self.core.lock().matching.take_or_wait(
                &queue,
                &poller.identity,
                !poller.forwarded,
                self.now(),
            );
            let waiting = match taken {
                Ok(task) => {
                    let (started, lsn) = self.with_core(|core| take(core, task, &mut start));
                    match started? {
                        Some(resp) => {
                            self.store.wait_durable(lsn).await?;
                            return Ok(Some(resp));
                        }
                        None => continue,
                    }
                }
                Err(rx) => rx,
            };
            let mut guard = PollWaiter {
                rx: Some(waiting),
                engine: self.clone(),
                queue: queue.clone(),
            };
            let rx = guard
                .rx
                .as_mut()
                .expect("receiver is set until the guard is dropped");
            let received = tokio::select! {
                r = rx => Ok(r),
                _ = self.poll_expiry(deadline) => Err(()),
                _ = self.until_worker_stops(&poller.instance_key) => Err(()),
            };
            match received {
                Ok(Ok(task)) => {
                    guard.rx = None;
                    let (started, lsn) = self.with_core(|core| take(core, task, &mut start));
                    if let Some(resp) = started? {
                        self.store.wait_durable(lsn).await?;
                        return Ok(Some(resp));
                    }
                }
                Ok(Err(_)) => continue,
                Err(_) => return Ok(None),
            }
        }
    }

    /// Resolves at `deadline`, or as soon as the engine begins shutting down, so that long
    /// polls answer (empty) instead of holding the server open.
    pub(crate) async fn poll_expiry(&self, deadline: tokio::time::Instant) {
        let mut shutdown = self.shutdown.subscribe();
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.wait_for(|s| *s) => {}
        }
    }
}

/// A poll's answer, which a task fetched from another replica may already be.
pub(crate) trait PollAnswer: Sized {
    fn from_ready(ready: ReadyTask) -> Option<Self>;
}

fn take<T: PollAnswer>(
    core: &mut Core,
    task: TaskRef,
    start: &mut impl FnMut(&mut Core, TaskRef) -> Result<Option<T>>,
) -> Result<Option<T>> {
    match task {
        TaskRef::Ready(ready) => Ok(T::from_ready(*ready)),
        task => start(core, task),
    }
}

/// Who polls a task queue.
pub struct Poller {
    pub identity: String,
    /// The poll came from another replica's fetcher (see `cluster::fetch`).
    pub forwarded: bool,
    /// The polling worker's instance key (empty: not given); when that worker stops, the
    /// poll answers empty.
    pub instance_key: String,
}

impl Poller {
    pub fn new(identity: &str, forwarded: bool, instance_key: &str) -> Self {
        Self {
            identity: identity.to_string(),
            forwarded,
            instance_key: instance_key.to_string(),
        }
    }
}

/// Returns a task that was handed to a poller which went away before taking it.
struct PollWaiter {
    rx: Option<oneshot::Receiver<TaskRef>>,
    engine: Arc<Engine>,
    queue: QueueKey,
}

impl Drop for PollWaiter {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if let Ok(task) = rx.try_recv() {
                self.engine
                    .core
                    .lock()
                    .matching
                    .push_front(self.queue.clone(), task);
            }
        }
    }
}

/// The task queue a request names, which it must.
pub(crate) fn task_queue_name(task_queue: &Option<TaskQueue>) -> Result<String> {
    match task_queue.as_ref().map(|t| t.name.as_str()) {
        Some(name) if !name.is_empty() => Ok(name.to_string()),
        _ => Err(Error::InvalidArgument(
            "TaskQueue is not set on request.".into(),
        )),
    }
}
