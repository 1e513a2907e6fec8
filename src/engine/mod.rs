//! The durable-execution engine.
//!
//! All mutable state sits in memory behind one lock ([`Core`]); every change to a run is
//! recorded as one [`ExecutionRecord`] (the run's mutable state plus the history events it
//! appended) and handed to the [`Store`] in the order the changes were made. Public operations
//! return only after the store reports the record durable.

pub mod activity;
pub mod activity_ops;
pub mod admin;
pub mod archive;
pub mod batch;
pub mod chain;
pub mod children;
pub mod clock;
pub mod commands;
mod compaction;
pub mod deployments;
pub mod encoded_history;
mod entry_deltas;
pub mod events;
pub mod history;
mod kept_fields;
pub mod limits;
mod log;
pub mod matching;
pub mod namespace;
mod namespace_delete;
pub mod nexus;
pub mod nexus_endpoints;
pub mod pending;
mod polling;
pub use polling::Poller;
pub mod query;
mod rebuild;
pub mod reset;
pub mod retention;
pub mod retry;
pub mod run;
mod run_table;
pub mod schedule_api;
pub mod schedules;
pub mod shards;
pub mod signal;
pub mod standalone;
pub mod start;
mod start_checks;
mod sticky;
pub use crate::store::state;
pub mod timers;
pub mod token;
pub mod transfer;
mod txn;
pub mod update;
pub mod update_with_start;
pub mod visibility;
mod worker_stop;
pub mod workers;
pub mod workflow_options;
pub mod workflow_task;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use temporalio_protos::temporal::api::failure::v1::Failure;
use tokio::sync::{Notify, broadcast, watch};

use crate::store::{LogRecord, NamespaceRecord, Store, StoreError, log_record};
use matching::{Matching, QueueKey, TaskRef};
pub use run::Run;
use state::MutableState;
use timers::{TimerQueue, TimerTask};
pub use token::{TokenSigner, parse_token};

/// Identifies one run of a workflow.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunKey {
    pub namespace: String,
    pub workflow_id: String,
    pub run_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("Namespace {0} is not found.")]
    NamespaceNotFound(String),
    #[error("Namespace {0} already exists.")]
    NamespaceAlreadyExists(String),
    /// A workflow id in use (running, or closed and the reuse policy refuses it).
    #[error("{message}")]
    AlreadyStarted {
        message: String,
        workflow_id: String,
        run_id: String,
        start_request_id: String,
        first_execution_run_id: String,
    },
    /// An activity id in use (running, or closed and the reuse policy refuses it).
    #[error("{message}")]
    ActivityAlreadyStarted {
        message: String,
        start_request_id: String,
        run_id: String,
    },
    /// A Nexus operation id in use (running, or closed and the reuse policy refuses it).
    #[error("{message}")]
    NexusOperationAlreadyStarted {
        message: String,
        start_request_id: String,
        run_id: String,
    },
    #[error("{0}")]
    FailedPrecondition(String),
    /// A name in use (no error details: Temporal sends none for these).
    #[error("{0}")]
    AlreadyExists(String),
    #[error("schedule with this ID is already registered: {0}")]
    ScheduleAlreadyExists(String),
    #[error("{message}")]
    QueryFailed {
        message: String,
        failure: Option<Box<Failure>>,
    },
    #[error("{0}")]
    DeadlineExceeded(String),
    /// A per-run limit on things in flight is reached; the caller may retry later.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The execution's shard is not served here (it is moving between replicas); retry.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T> = std::result::Result<T, Error>;

const TIMERS_PER_ROUND: usize = 256;

/// What changed in an execution; published to in-process subscribers (the Kubernetes
/// controllers build on this instead of polling).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Started,
    Signaled,
    CancelRequested,
    WorkflowTaskScheduled,
    ActivityTaskScheduled,
    Closed { status: i32 },
}

#[derive(Clone, Debug)]
pub struct ExecutionChange {
    pub key: RunKey,
    pub kind: ChangeKind,
}

#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// How long a task-queue poll waits before answering empty.
    pub long_poll_timeout: Duration,
    /// How long a history long poll waits before answering with an empty page.
    pub history_poll_timeout: Duration,
    /// The log is rewritten as one record per live object once it holds at least this many
    /// records and more than twice as many as live objects.
    pub compact_min_records: u64,
    /// Where closed runs are archived (the data directory); without one they stay in memory
    /// until their retention ends.
    pub archive_dir: Option<std::path::PathBuf>,
    /// How long a closed run stays in memory before it is archived.
    pub archive_after: Duration,
    /// Where the engine reads the time.
    pub clock: Arc<dyn clock::Clock>,
    /// Thresholds a dev server's dynamic config may change.
    pub tuning: Tuning,
    /// Where completion callbacks may go besides this server.
    pub callback_addresses: nexus::callbacks::CallbackAddresses,
    /// Runs unused this long are frozen to save memory (None: never; see `run_table.rs`).
    pub freeze_idle_after: Option<Duration>,
}

/// Engine thresholds that `--dynamic-config-value` may set (Temporal's keys in comments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// `limit.historyCount.suggestContinueAsNew`: histories with this many events get
    /// `suggest_continue_as_new` on their workflow tasks.
    pub suggest_continue_as_new_events: i64,
    /// `limit.historySize.suggestContinueAsNew`: the same, by history bytes.
    pub suggest_continue_as_new_bytes: i64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            suggest_continue_as_new_events: 4096,
            suggest_continue_as_new_bytes: 4 * 1024 * 1024,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            long_poll_timeout: Duration::from_secs(60),
            history_poll_timeout: Duration::from_secs(20),
            compact_min_records: 200_000,
            archive_dir: None,
            archive_after: Duration::from_secs(10),
            clock: Arc::new(clock::SystemClock),
            tuning: Tuning::default(),
            callback_addresses: Default::default(),
            freeze_idle_after: Some(Duration::from_secs(10)),
        }
    }
}

pub struct Engine {
    pub(crate) core: Mutex<Core>,
    store: Arc<dyn Store>,
    timer_wake: Arc<Notify>,
    changes: broadcast::Sender<ExecutionChange>,
    shutdown: watch::Sender<bool>,
    pub config: EngineConfig,
    /// Outbox items to deliver, taken by the transfer loop (see `transfer.rs`).
    transfer_rx: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<(transfer::Source, u64)>>>,
    transfer_router: std::sync::OnceLock<Arc<dyn transfer::TransferRouter>>,
    /// Calls to external Nexus handlers, taken by their loop (see `nexus/http/`).
    nexus_calls_rx: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<nexus::http::HttpCall>>>,
    /// The client port's base URL, for the callback URL external handlers are given.
    nexus_callback_base: std::sync::OnceLock<String>,
    /// Workers that stopped: their polls answer empty (see `worker_stop.rs`).
    stopped_workers: worker_stop::StoppedWorkers,
    /// What running workers last reported about themselves (see `workers.rs`).
    workers: workers::WorkerRegistry,
}

/// Everything mutable, guarded by the engine's lock.
pub struct Core {
    store: Arc<dyn Store>,
    /// The engine's clock (see `clock.rs`).
    clock: Arc<dyn clock::Clock>,
    /// Issues and checks task tokens (keyed by the store's token secret).
    tokens: TokenSigner,
    namespaces: HashMap<String, NamespaceRecord>,
    /// The version of each deleted namespace's tombstone, so a namespace registered again
    /// under its name is numbered after it and a stale read of the tombstone is known stale.
    namespace_tombstones: HashMap<String, u64>,
    /// The cluster's Nexus endpoints (see `nexus_endpoints.rs`).
    nexus_endpoints: nexus_endpoints::Registry,
    /// The runs in memory, idle ones frozen (see `run_table.rs`).
    runs: run_table::RunTable,
    /// (namespace, workflow id) -> the latest run id.
    current: HashMap<(String, String), String>,
    matching: Matching,
    schedules: HashMap<schedules::ScheduleKey, schedules::LiveSchedule>,
    /// Batch operations, running and finished (see `batch.rs`).
    batches: HashMap<batch::BatchKey, crate::store::records::BatchJobRecord>,
    /// Wakes the batch runner when a job starts.
    batch_wake: Arc<Notify>,
    timers: TimerQueue,
    timer_wake: Arc<Notify>,
    changes: broadcast::Sender<ExecutionChange>,
    query_seq: u64,
    /// What the operation in progress changed (see `txn.rs`).
    txn: txn::Transaction,
    /// How many shards executions are spread over, and those this replica serves.
    shard_count: u32,
    owned_shards: std::collections::BTreeSet<u32>,
    /// Records in the log since it was last written whole (drives compaction).
    records_in_log: u64,
    compact_min_records: u64,
    /// The log compaction under way, if any.
    compaction: Option<compaction::Compaction>,
    /// The last handle given to a run in the log (see `ExecutionRecord::handle`).
    last_log_handle: u64,
    /// While records are replayed: the run each handle the records gave stands for.
    replay_handles: crate::store::RunHandles,
    /// Closed runs on disk (None: closed runs stay in memory).
    archive: Option<archive::Archive>,
    /// Where outbox items go for delivery.
    transfers: Option<transfer::TransferQueue>,
    /// Where completion callbacks may go besides this server.
    callback_addresses: nexus::callbacks::CallbackAddresses,
    /// Where calls to external Nexus handlers are queued (see `nexus/http/`).
    nexus_calls: Option<tokio::sync::mpsc::UnboundedSender<nexus::http::HttpCall>>,
    /// Requests from outside Nexus callers waiting for a handler (see `nexus/inbound.rs`).
    inbound_nexus: nexus::inbound::InboundCalls,
    tuning: Tuning,
}

impl Engine {
    /// Loads everything the store holds and rebuilds task queues and timers from it.
    pub fn open(store: Arc<dyn Store>, config: EngineConfig) -> Result<Arc<Self>> {
        let timer_wake = Arc::new(Notify::new());
        let (changes, _) = broadcast::channel(4096);
        let (transfer_tx, transfer_rx) = tokio::sync::mpsc::unbounded_channel();
        let (nexus_calls_tx, nexus_calls_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut core = Core {
            tokens: TokenSigner::new(&store.token_secret()),
            store: store.clone(),
            clock: config.clock.clone(),
            namespaces: HashMap::new(),
            namespace_tombstones: HashMap::new(),
            nexus_endpoints: Default::default(),
            runs: Default::default(),
            current: HashMap::new(),
            matching: Matching::default(),
            schedules: HashMap::new(),
            batches: HashMap::new(),
            batch_wake: Arc::new(Notify::new()),
            timers: TimerQueue::default(),
            timer_wake: timer_wake.clone(),
            changes: changes.clone(),
            query_seq: 0,
            txn: txn::Transaction::default(),
            shard_count: store.shard_count(),
            owned_shards: store.initial_shards().into_iter().collect(),
            records_in_log: 0,
            compact_min_records: 0,
            compaction: None,
            last_log_handle: 0,
            replay_handles: Default::default(),
            archive: match &config.archive_dir {
                Some(dir) => Some(archive::Archive::open(
                    dir,
                    config.archive_after,
                    config.clock.now_millis(),
                )?),
                None => None,
            },
            transfers: Some(transfer_tx),
            nexus_calls: Some(nexus_calls_tx),
            inbound_nexus: Default::default(),
            callback_addresses: config.callback_addresses.clone(),
            tuning: config.tuning,
        };
        let began = std::time::Instant::now();
        let mut count = 0u64;
        let freeze = config.freeze_idle_after.is_some();
        store.load_each(&mut |record| {
            count += 1;
            core.replay_loaded(record, count, freeze)
                .map_err(StoreError::Corrupt)
        })?;
        core.end_replay();
        let replayed = began.elapsed();
        core.rearm_where(|_| true);
        let rearmed = began.elapsed() - replayed;
        // The log holds one record per change; once it is mostly superseded state, rewrite
        // it as one record per live object so start-up stays fast and the disk stays small.
        core.records_in_log = count;
        core.compact_min_records = config.compact_min_records;
        if core.superseded() {
            core.compact_now();
        }
        // Loading decoded the whole log at once; give that memory back.
        crate::allocator::release_free_memory();
        tracing::info!(
            records = count,
            runs = core.runs.len(),
            archived = core.archive.as_ref().map_or(0, |a| a.len()),
            namespaces = core.namespaces.len(),
            frozen = core.runs.open_and_frozen().1,
            replay_ms = replayed.as_millis() as u64,
            rearm_ms = rearmed.as_millis() as u64,
            total_ms = began.elapsed().as_millis() as u64,
            "engine state loaded"
        );
        Ok(Arc::new(Self {
            core: Mutex::new(core),
            store,
            timer_wake,
            changes,
            shutdown: watch::channel(false).0,
            config,
            transfer_rx: Mutex::new(Some(transfer_rx)),
            transfer_router: std::sync::OnceLock::new(),
            nexus_calls_rx: Mutex::new(Some(nexus_calls_rx)),
            nexus_callback_base: std::sync::OnceLock::new(),
            stopped_workers: Default::default(),
            workers: Default::default(),
        }))
    }

    /// Tasks waiting per task queue (for metrics), the number of open workflow runs, and how
    /// many of them are frozen. The runs are counted a part at a time, letting go of the
    /// engine between parts (a whole pass over a million takes tens of milliseconds): runs
    /// that change meanwhile may be counted as before or after, as a gauge may.
    pub fn load_snapshot(&self) -> (Vec<(matching::QueueKey, usize)>, usize, usize) {
        const RUNS_PER_PART: usize = 16 * 1024;
        let backlogs = self.core.lock().matching.backlogs();
        let (mut open, mut frozen, mut from) = (0, 0, 0);
        loop {
            let core = self.core.lock();
            let (o, f) = core.runs.open_and_frozen_in(from, RUNS_PER_PART);
            (open, frozen, from) = (open + o, frozen + f, from + RUNS_PER_PART);
            if from >= core.runs.len() {
                return (backlogs, open, frozen);
            }
        }
    }

    /// The current time by the engine's clock, in milliseconds since the epoch.
    pub(crate) fn now(&self) -> i64 {
        self.config.clock.now_millis()
    }

    pub(crate) fn now_ts(&self) -> prost_wkt_types::Timestamp {
        clock::ts_from_millis(self.now())
    }

    /// Subscribes to execution changes.
    pub fn subscribe(&self) -> broadcast::Receiver<ExecutionChange> {
        self.changes.subscribe()
    }

    /// Runs `f` under the engine lock, then waits until everything it (or anything before it)
    /// wrote is durable.
    pub(crate) async fn transact<T>(&self, f: impl FnOnce(&mut Core) -> Result<T>) -> Result<T> {
        let (result, lsn) = self.with_core(f);
        // Also an operation that wrote nothing (a read, a deduplicated retry) waits: what it
        // saw may be queued but not yet durable, and must not be reported before it is. While
        // the disk refuses writes, such a reply is UNAVAILABLE rather than a promise a crash
        // could break.
        self.store.wait_durable(lsn).await?;
        result
    }

    /// Waits until everything queued so far is durable: a reply that read engine state
    /// outside [`Engine::transact`] calls this before it reports what it read.
    pub(crate) async fn reported_state_durable(&self) -> Result<()> {
        self.store.wait_durable(self.store.last_lsn()).await?;
        Ok(())
    }

    /// Runs `f` under the engine lock and hands everything it changed to the store as one
    /// record (so a crash keeps all of it or none). Returns the position to wait for.
    fn with_core<T>(&self, f: impl FnOnce(&mut Core) -> T) -> (T, crate::store::Lsn) {
        let mut core = self.core.lock();
        let r = f(&mut core);
        core.end_operation();
        core.compact_if_superseded();
        (r, self.store.last_lsn())
    }

    /// Fires due timers until the engine is dropped.
    pub fn spawn_timer_loop(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        let wake = self.timer_wake.clone();
        let clock = self.config.clock.clone();
        tokio::spawn(async move {
            loop {
                let Some(engine) = weak.upgrade() else { return };
                let ((more, next), _) = engine.with_core(|core| {
                    let more = core.fire_due_timers();
                    (more, core.timers.next_due())
                });
                drop(engine);
                if more {
                    tokio::task::yield_now().await;
                    continue;
                }
                let sleep_ms = next
                    .map(|due| (due - clock.now_millis()).clamp(1, 60_000))
                    .unwrap_or(60_000);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(sleep_ms as u64)) => {}
                    _ = wake.notified() => {}
                }
            }
        })
    }

    /// Turns true when the engine begins shutting down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Ends every long poll now and any started later.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}

#[cfg(test)]
mod delta_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod timeout_tests;

impl Core {
    /// The current time by the engine's clock, in milliseconds since the epoch.
    pub(crate) fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    pub(crate) fn write_namespace(&mut self, mut record: NamespaceRecord) {
        let name = record
            .namespace
            .as_ref()
            .and_then(|n| n.namespace_info.as_ref())
            .map(|i| i.name.as_str())
            .unwrap_or("");
        record.version = self.namespace_version(name) + 1;
        self.log(LogRecord {
            kind: Some(log_record::Kind::Namespace(record.clone())),
        });
        if let Some(name) = record
            .namespace
            .as_ref()
            .and_then(|n| n.namespace_info.as_ref())
            .map(|i| i.name.clone())
        {
            self.namespaces.insert(name, record);
        }
    }

    pub(crate) fn push_timer(&mut self, due_ms: i64, task: TimerTask) {
        if self.timers.push(due_ms, task) {
            self.timer_wake.notify_one();
        }
    }

    pub(crate) fn push_task(&mut self, queue: QueueKey, task: TaskRef) {
        let runs = &self.runs;
        let inbound = &self.inbound_nexus;
        self.matching.sweep_if_grown(&queue, |t| match t {
            TaskRef::Inbound { id } => inbound.is_waiting(id),
            // Closed runs answer queries too.
            TaskRef::Query { key, .. } => runs.contains_key(key),
            TaskRef::Ready(_) => true,
            TaskRef::Workflow { key, .. }
            | TaskRef::Activity { key, .. }
            // Not `get`: a backlog of a hundred thousand frozen runs would all thaw at once.
            | TaskRef::Nexus { key, .. } => runs.is_open(key),
        });
        self.matching.push(queue, task);
    }

    pub(crate) fn check_namespace(&self, namespace: &str) -> Result<()> {
        if namespace.is_empty() {
            return Err(Error::InvalidArgument(
                "Namespace is not set on request.".into(),
            ));
        }
        if !self.namespaces.contains_key(namespace) {
            return Err(Error::NamespaceNotFound(namespace.to_string()));
        }
        Ok(())
    }

    /// Resolves a run: the given run id, or the workflow id's latest run when it is empty.
    /// An archived run is brought back into memory.
    pub(crate) fn resolve_run(
        &mut self,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
    ) -> Result<RunKey> {
        self.check_namespace(namespace)?;
        if self.archive.is_some() && !workflow_id.is_empty() {
            if run_id.is_empty() {
                self.current_run_id(namespace, workflow_id)?;
            } else if uuid::Uuid::parse_str(run_id).is_ok() {
                self.fault_in(&RunKey {
                    namespace: namespace.to_string(),
                    workflow_id: workflow_id.to_string(),
                    run_id: run_id.to_string(),
                })?;
            }
        }
        self.resolve_resident(namespace, workflow_id, run_id)
    }

    /// The latest run id of a workflow id, in memory or archived (an archived one is brought
    /// back into memory and made current).
    pub(crate) fn current_run_id(
        &mut self,
        namespace: &str,
        workflow_id: &str,
    ) -> Result<Option<String>> {
        let id_key = (namespace.to_string(), workflow_id.to_string());
        let resident = self.current.get(&id_key).cloned();
        let Some(archived_start) = self.latest_archived_start(namespace, workflow_id) else {
            return Ok(resident);
        };
        // Compared before reading anything back: the run in memory is usually the newer one
        // (a continue-as-new chain's open run, say).
        let resident_start = resident.as_ref().and_then(|run_id| {
            self.runs
                .get(&RunKey {
                    namespace: namespace.to_string(),
                    workflow_id: workflow_id.to_string(),
                    run_id: run_id.clone(),
                })
                .map(|r| clock::opt_ts_millis(&r.ms.start_time))
        });
        if resident_start.is_some_and(|start| start >= archived_start) {
            return Ok(resident);
        }
        let Some((archived, _)) = self.latest_archived(namespace, workflow_id)? else {
            return Ok(resident);
        };
        self.current.insert(id_key, archived.run_id.clone());
        Ok(Some(archived.run_id))
    }

    /// Resolves a run among the runs in memory (archived runs are not found).
    pub(crate) fn resolve_resident(
        &self,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
    ) -> Result<RunKey> {
        self.check_namespace(namespace)?;
        if workflow_id.is_empty() {
            return Err(Error::InvalidArgument(
                "WorkflowId is not set on request.".into(),
            ));
        }
        self.check_owned(namespace, workflow_id)?;
        let run_id = if run_id.is_empty() {
            self.current
                .get(&(namespace.to_string(), workflow_id.to_string()))
                .cloned()
                // Temporal's wording: clients (temporal-worker-controller's gate check)
                // recognise "workflow not found" in it.
                .ok_or_else(|| {
                    Error::NotFound(format!("workflow not found for ID: {workflow_id}"))
                })?
        } else {
            if uuid::Uuid::parse_str(run_id).is_err() {
                return Err(Error::InvalidArgument(format!("Invalid RunId: {run_id}.")));
            }
            run_id.to_string()
        };
        let key = RunKey {
            namespace: namespace.to_string(),
            workflow_id: workflow_id.to_string(),
            run_id,
        };
        if !self.runs.contains_key(&key) {
            return Err(Error::NotFound(format!(
                "workflow execution not found for workflow ID {workflow_id:?} and run ID {:?}",
                key.run_id
            )));
        }
        Ok(key)
    }

    pub(crate) fn run(&self, key: &RunKey) -> Result<&Run> {
        self.runs.get(key).ok_or_else(|| {
            Error::NotFound(format!("workflow execution {} not found", key.workflow_id))
        })
    }

    pub(crate) fn run_mut(&mut self, key: &RunKey) -> Result<&mut Run> {
        self.runs.get_mut(key).ok_or_else(|| {
            Error::NotFound(format!("workflow execution {} not found", key.workflow_id))
        })
    }

    pub(crate) fn next_query_id(&mut self) -> String {
        self.query_seq += 1;
        format!("q{}-{}", self.query_seq, uuid::Uuid::new_v4().simple())
    }

    /// Fires up to `TIMERS_PER_ROUND` due timers; returns true if more are due. Bounding the
    /// round keeps the lock (and the log frame carrying the round) short when many timers
    /// fall due at once.
    fn fire_due_timers(&mut self) -> bool {
        let now = self.now();
        for _ in 0..TIMERS_PER_ROUND {
            match self.timers.pop_due(now) {
                Some(task) => self.fire_timer(task),
                None => return false,
            }
        }
        self.timers.next_due().is_some_and(|due| due <= now)
    }

    fn fire_timer(&mut self, task: TimerTask) {
        match task {
            TimerTask::UserTimer {
                key,
                timer_id,
                started_event_id,
            } => self.fire_user_timer(&key, &timer_id, started_event_id),
            TimerTask::WorkflowTaskTimeout {
                key,
                scheduled_event_id,
                attempt,
            } => self.workflow_task_timed_out(&key, scheduled_event_id, attempt),
            TimerTask::StickyScheduleToStart {
                key,
                scheduled_event_id,
                attempt,
            } => self.sticky_schedule_to_start_fired(&key, scheduled_event_id, attempt),
            TimerTask::WorkflowBackoff { key } => self.workflow_backoff_fired(&key),
            TimerTask::RetentionExpired { key } => self.retention_expired(&key),
            TimerTask::WorkflowRunTimeout { key } => self.workflow_run_timed_out(&key),
            TimerTask::ActivityRetry {
                key,
                scheduled_event_id,
                attempt,
            } => self.activity_retry_due(&key, scheduled_event_id, attempt),
            TimerTask::ActivityStartToClose {
                key,
                scheduled_event_id,
                attempt,
            } => self.activity_start_to_close_fired(&key, scheduled_event_id, attempt),
            TimerTask::ActivityHeartbeat {
                key,
                scheduled_event_id,
                attempt,
            } => self.activity_heartbeat_fired(&key, scheduled_event_id, attempt),
            TimerTask::ActivityScheduleToStart {
                key,
                scheduled_event_id,
                attempt,
            } => self.activity_schedule_to_start_fired(&key, scheduled_event_id, attempt),
            TimerTask::ActivityScheduleToClose {
                key,
                scheduled_event_id,
            } => self.activity_schedule_to_close_fired(&key, scheduled_event_id),
            TimerTask::ScheduleWake {
                namespace,
                schedule_id,
            } => self.schedule_wake_fired(&namespace, &schedule_id),
            TimerTask::NexusAttemptTimeout {
                key,
                scheduled_event_id,
                attempt,
            } => self.nexus_attempt_timed_out(&key, scheduled_event_id, attempt),
            TimerTask::NexusRetry {
                key,
                scheduled_event_id,
                attempt,
            } => self.nexus_retry_due(&key, scheduled_event_id, attempt),
            TimerTask::NexusTimeout {
                key,
                scheduled_event_id,
            } => self.nexus_timeout_fired(&key, scheduled_event_id),
            TimerTask::NexusCancelAttemptTimeout {
                key,
                scheduled_event_id,
                attempt,
            } => self.nexus_cancel_attempt_timed_out(&key, scheduled_event_id, attempt),
            TimerTask::NexusCancelRetry {
                key,
                scheduled_event_id,
                attempt,
            } => self.nexus_cancel_retry_due(&key, scheduled_event_id, attempt),
        }
    }
}

pub(crate) fn is_running(ms: &MutableState) -> bool {
    ms.status
        == temporalio_protos::temporal::api::enums::v1::WorkflowExecutionStatus::Running as i32
}
