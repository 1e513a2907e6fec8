//! Task queues: tasks waiting for pollers and pollers waiting for tasks.
//!
//! A queue holds references to tasks, not the tasks themselves; the engine checks a reference
//! against the run's mutable state when a poller takes it, and drops it if it went stale.

use std::collections::{HashMap, VecDeque};

use tokio::sync::oneshot;

use super::RunKey;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QueueKind {
    Workflow,
    Activity,
    Nexus,
}

/// A queue: a task queue's tasks of one kind for one worker deployment version ("" for
/// unversioned workers; see `deployments/`), each version being polled by its own workers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QueueKey {
    pub namespace: String,
    pub name: String,
    pub kind: QueueKind,
    /// The version's canonical string (`deployment.build`), "" when unversioned.
    pub version: String,
}

impl QueueKey {
    pub fn new(namespace: &str, name: &str, kind: QueueKind) -> Self {
        Self {
            namespace: namespace.to_string(),
            name: name.to_string(),
            kind,
            version: String::new(),
        }
    }

    /// The same task queue's queue for another version.
    pub fn for_version(mut self, version: String) -> Self {
        self.version = version;
        self
    }

    /// Whether `other` is this task queue, for any version.
    fn same_task_queue(&self, other: &QueueKey) -> bool {
        self.namespace == other.namespace && self.name == other.name && self.kind == other.kind
    }
}

#[derive(Clone, Debug)]
pub enum TaskRef {
    Workflow {
        key: RunKey,
        scheduled_event_id: i64,
        attempt: i32,
    },
    Query {
        key: RunKey,
        query_id: String,
    },
    Activity {
        key: RunKey,
        scheduled_event_id: i64,
        attempt: i32,
    },
    /// An attempt to start (or to cancel) a Nexus operation the caller's run `key` scheduled.
    Nexus {
        key: RunKey,
        scheduled_event_id: i64,
        attempt: i32,
        cancel: bool,
    },
    /// A request from an outside caller over HTTP, waiting for a handler (see
    /// `nexus/inbound.rs`).
    Inbound {
        id: String,
    },
    /// A task another replica already started for a poller here (see `cluster::fetch`).
    Ready(Box<ReadyTask>),
}

/// A poll answer fetched from the replica that owns the task's run.
#[derive(Clone, Debug)]
pub enum ReadyTask {
    Workflow(temporalio_protos::temporal::api::workflowservice::v1::PollWorkflowTaskQueueResponse),
    Activity(temporalio_protos::temporal::api::workflowservice::v1::PollActivityTaskQueueResponse),
    Nexus(temporalio_protos::temporal::api::workflowservice::v1::PollNexusTaskQueueResponse),
}

macro_rules! poll_answer {
    ($($variant:ident($resp:ty)),*) => {
        $(impl super::polling::PollAnswer for $resp {
            fn from_ready(ready: ReadyTask) -> Option<Self> {
                match ready {
                    ReadyTask::$variant(resp) => Some(resp),
                    _ => None,
                }
            }
        })*
    };
}

poll_answer!(
    Workflow(temporalio_protos::temporal::api::workflowservice::v1::PollWorkflowTaskQueueResponse),
    Activity(temporalio_protos::temporal::api::workflowservice::v1::PollActivityTaskQueueResponse),
    Nexus(temporalio_protos::temporal::api::workflowservice::v1::PollNexusTaskQueueResponse)
);

impl TaskRef {
    /// The run the task belongs to (None for a task fetched from another replica).
    pub fn key(&self) -> Option<&RunKey> {
        match self {
            TaskRef::Workflow { key, .. }
            | TaskRef::Query { key, .. }
            | TaskRef::Activity { key, .. }
            | TaskRef::Nexus { key, .. } => Some(key),
            TaskRef::Ready(_) | TaskRef::Inbound { .. } => None,
        }
    }
}

#[derive(Default)]
struct Queue {
    backlog: VecDeque<TaskRef>,
    /// Tasks fetched from other replicas: only for pollers of this replica's own clients
    /// (never handed on to another replica's fetcher, so they cannot travel in circles).
    ready: VecDeque<TaskRef>,
    /// Backlog length at which stale references are next swept out.
    sweep_at: usize,
    /// Waiting pollers, and whether each takes fetched tasks.
    pollers: VecDeque<(oneshot::Sender<TaskRef>, bool)>,
    /// When a poller last came (ms since the epoch); 0: never, or its worker shut down.
    last_poll_ms: i64,
    /// Poller identities and when each last polled, for DescribeTaskQueue.
    seen: HashMap<String, i64>,
}

/// A backlog is first swept of stale references once it holds this many.
const FIRST_SWEEP_AT: usize = 1024;
/// A sticky queue nobody polled for this long is treated as gone.
const STICKY_LIVENESS_MS: i64 = 10_000;
/// Pollers listed by DescribeTaskQueue: those seen within this window, at most this many.
const POLLER_WINDOW_MS: i64 = 5 * 60_000;
const MAX_POLLERS_TRACKED: usize = 1000;

#[derive(Default)]
pub struct Matching {
    queues: HashMap<QueueKey, Queue>,
}

impl Matching {
    /// Hands the task to a waiting poller, or keeps it until one comes.
    pub fn push(&mut self, queue: QueueKey, mut task: TaskRef) {
        let q = self.queues.entry(queue).or_default();
        let fetched = matches!(task, TaskRef::Ready(_));
        while let Some(i) = q.pollers.iter().position(|p| p.1 || !fetched) {
            let Some((poller, _)) = q.pollers.remove(i) else {
                break;
            };
            match poller.send(task) {
                Ok(()) => return,
                Err(returned) => task = returned,
            }
        }
        if fetched {
            q.ready.push_back(task);
        } else {
            q.backlog.push_back(task);
        }
    }

    /// Puts a task back at the head of its queue (a poller left before using it).
    pub fn push_front(&mut self, queue: QueueKey, task: TaskRef) {
        let q = self.queues.entry(queue.clone()).or_default();
        if q.pollers.iter().all(|p| p.0.is_closed()) {
            match task {
                TaskRef::Ready(_) => q.ready.push_front(task),
                _ => q.backlog.push_front(task),
            }
        } else {
            self.push(queue, task);
        }
    }

    /// Takes the oldest task, or registers the caller as a waiting poller. Pollers from
    /// other replicas (`take_fetched` false) are served this replica's own tasks only.
    pub fn take_or_wait(
        &mut self,
        queue: &QueueKey,
        identity: &str,
        take_fetched: bool,
        now: i64,
    ) -> Result<TaskRef, oneshot::Receiver<TaskRef>> {
        let q = self.queues.entry(queue.clone()).or_default();
        q.last_poll_ms = now;
        if q.seen.len() < MAX_POLLERS_TRACKED || q.seen.contains_key(identity) {
            q.seen.insert(identity.to_string(), q.last_poll_ms);
        }
        if take_fetched && let Some(task) = q.ready.pop_front() {
            return Ok(task);
        }
        if let Some(task) = q.backlog.pop_front() {
            return Ok(task);
        }
        q.pollers.retain(|p| !p.0.is_closed());
        let (tx, rx) = oneshot::channel();
        q.pollers.push_back((tx, take_fetched));
        Err(rx)
    }

    /// The versions of a task queue that have a queue here (polled or holding tasks).
    fn versions_of<'a>(&'a self, queue: &'a QueueKey) -> impl Iterator<Item = &'a QueueKey> {
        self.queues.keys().filter(|k| k.same_task_queue(queue))
    }

    /// Whether a worker is polling this queue (now or within the last few seconds).
    pub fn is_live(&self, queue: &QueueKey, now_ms: i64) -> bool {
        self.queues.get(queue).is_some_and(|q| {
            q.pollers.iter().any(|p| !p.0.is_closed())
                || (q.last_poll_ms > 0 && now_ms - q.last_poll_ms < STICKY_LIVENESS_MS)
        })
    }

    /// Fetched tasks not yet taken (a fetcher stops adding while some wait).
    pub fn fetched_len(&self, queue: &QueueKey) -> usize {
        self.queues.get(queue).map_or(0, |q| q.ready.len())
    }

    /// Forgets a task queue's pollers, of every version (its worker shut down), and returns
    /// the tasks it held.
    pub fn retire(&mut self, queue: &QueueKey) -> Vec<TaskRef> {
        let keys: Vec<QueueKey> = self.versions_of(queue).cloned().collect();
        keys.iter()
            .filter_map(|k| self.queues.remove(k))
            .flat_map(|q| q.backlog.into_iter().chain(q.ready))
            .collect()
    }

    /// Takes every task waiting in a queue's backlog (to be routed again).
    pub fn drain(&mut self, queue: &QueueKey) -> Vec<TaskRef> {
        self.queues
            .get_mut(queue)
            .map(|q| q.backlog.drain(..).collect())
            .unwrap_or_default()
    }

    /// The queues of a namespace holding tasks in their backlog.
    pub fn queues_with_backlog(&self, namespace: &str) -> Vec<QueueKey> {
        self.queues
            .iter()
            .filter(|(k, q)| k.namespace == namespace && !q.backlog.is_empty())
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Identities that polled a task queue recently (any version), with the time of their
    /// last poll (ms since the epoch) and the version they polled for.
    pub fn recent_pollers(&mut self, queue: &QueueKey, now_ms: i64) -> Vec<(String, i64, String)> {
        let mut pollers = Vec::new();
        for (key, q) in self
            .queues
            .iter_mut()
            .filter(|(k, _)| k.same_task_queue(queue))
        {
            q.seen.retain(|_, last| now_ms - *last < POLLER_WINDOW_MS);
            pollers.extend(
                q.seen
                    .iter()
                    .map(|(id, last)| (id.clone(), *last, key.version.clone())),
            );
        }
        pollers
    }

    /// Drops references `live` rejects once the backlog has doubled since the last sweep,
    /// so a queue nobody polls does not keep references to runs long closed (amortized
    /// constant work per task).
    pub fn sweep_if_grown(&mut self, queue: &QueueKey, live: impl Fn(&TaskRef) -> bool) {
        let Some(q) = self.queues.get_mut(queue) else {
            return;
        };
        if q.backlog.len() < q.sweep_at.max(FIRST_SWEEP_AT) {
            return;
        }
        q.backlog.retain(|t| live(t));
        q.backlog.shrink_to_fit();
        q.sweep_at = (2 * q.backlog.len()).max(FIRST_SWEEP_AT);
    }

    /// Tasks waiting in a task queue, over all its versions.
    pub fn backlog_len(&self, queue: &QueueKey) -> usize {
        self.versions_of(queue)
            .filter_map(|k| self.queues.get(k))
            .map(|q| q.backlog.len())
            .sum()
    }

    /// Every queue with tasks waiting, and how many.
    pub fn backlogs(&self) -> Vec<(QueueKey, usize)> {
        self.queues
            .iter()
            .filter(|(_, q)| !q.backlog.is_empty())
            .map(|(k, q)| (k.clone(), q.backlog.len()))
            .collect()
    }
}
