//! The persisted mutable state of one workflow run. Everything needed to resume a run after a
//! restart lives here (history is stored separately, append-only); task queues and timers are
//! rebuilt from it.

use std::collections::BTreeMap;

use prost_wkt_types::{Duration, Timestamp};
use temporalio_protos::temporal::api::common::v1::{
    ActivityType, Header, Memo, Payload, Payloads, RetryPolicy, SearchAttributes,
};
use temporalio_protos::temporal::api::failure::v1::Failure;
use temporalio_protos::temporal::api::history::v1::{
    HistoryEvent, WorkflowExecutionStartedEventAttributes,
};

#[derive(Clone, PartialEq, prost::Message)]
pub struct MutableState {
    #[prost(string, tag = "1")]
    pub namespace: String,
    #[prost(string, tag = "2")]
    pub workflow_id: String,
    #[prost(string, tag = "3")]
    pub run_id: String,
    /// `temporal.api.enums.v1.WorkflowExecutionStatus`.
    #[prost(int32, tag = "4")]
    pub status: i32,
    #[prost(int64, tag = "5")]
    pub next_event_id: i64,
    #[prost(message, optional, tag = "6")]
    pub start_time: Option<Timestamp>,
    #[prost(message, optional, tag = "7")]
    pub close_time: Option<Timestamp>,
    /// When the first workflow task may run (start time plus any start delay or backoff).
    #[prost(message, optional, tag = "8")]
    pub execution_time: Option<Timestamp>,
    #[prost(string, tag = "9")]
    pub start_request_id: String,
    /// The attributes of the run's `WorkflowExecutionStarted` event (type, queue, timeouts...).
    /// Boxed: it is most of this struct's size, and a run in memory should stay small.
    #[prost(message, optional, boxed, tag = "10")]
    pub started: Option<Box<WorkflowExecutionStartedEventAttributes>>,
    /// Boxed, as `versioning` is: most runs in memory sleep without one, and a run in memory
    /// should stay small.
    #[prost(message, optional, boxed, tag = "11")]
    pub workflow_task: Option<Box<WorkflowTaskInfo>>,
    /// Started-event id of the last completed workflow task (0: none completed yet).
    #[prost(int64, tag = "12")]
    pub last_completed_wft_started_id: i64,
    /// Events that arrived while a workflow task was running; ids are assigned at flush.
    #[prost(message, repeated, tag = "13")]
    pub buffered: Vec<HistoryEvent>,
    #[prost(btree_map = "int64, message", tag = "14")]
    pub activities: BTreeMap<i64, ActivityInfo>,
    /// Timers from records written before `timers` was a list (a map by timer id); moved
    /// there when such a record is read (`upgrade_timers`), never written.
    #[prost(btree_map = "string, message", tag = "15")]
    pub legacy_timers: BTreeMap<String, TimerInfo>,
    /// Timers started and not yet fired or canceled, in start order. A list, not a map: a run
    /// has few, and a map's first node alone takes ~900 bytes of every sleeping run's memory.
    #[prost(message, repeated, tag = "41")]
    pub timers: Vec<TimerInfo>,
    #[prost(bool, tag = "16")]
    pub cancel_requested: bool,
    #[prost(string, tag = "17")]
    pub cancel_request_id: String,
    #[prost(message, optional, tag = "18")]
    pub memo: Option<Memo>,
    #[prost(message, optional, tag = "19")]
    pub search_attributes: Option<SearchAttributes>,
    #[prost(int64, tag = "20")]
    pub history_size_bytes: i64,
    /// Request ids of every signal the run accepted, for de-duplication of retried signal
    /// calls for the life of the run (bounded by the engine's `MAX_SIGNALS_PER_RUN`).
    #[prost(string, repeated, tag = "21")]
    pub signal_request_ids: Vec<String>,
    /// Signals the run accepted (with or without a request id).
    #[prost(int64, tag = "30")]
    pub signals_received: i64,
    /// When the run times out (run timeout), if it has one.
    #[prost(message, optional, tag = "22")]
    pub run_expiration_time: Option<Timestamp>,
    #[prost(int64, tag = "23")]
    pub state_transition_count: i64,
    /// Child workflows started by this run and not yet closed, by initiated-event id.
    #[prost(btree_map = "int64, message", tag = "24")]
    pub children: BTreeMap<i64, ChildInfo>,
    /// Workflow updates by update id, from admission until (and after) their outcome.
    #[prost(btree_map = "string, message", tag = "25")]
    pub updates: BTreeMap<String, UpdateInfo>,
    /// The worker queue that has this run cached (empty: none); its workflow tasks go there
    /// with partial history until that worker stops polling.
    #[prost(string, tag = "26")]
    pub sticky_task_queue: String,
    #[prost(message, optional, tag = "27")]
    pub sticky_schedule_to_start_timeout: Option<Duration>,
    /// Operations on runs in shards another replica serves, not yet acknowledged there
    /// (see `transfer.rs`).
    #[prost(message, repeated, tag = "28")]
    pub outbox: Vec<Transfer>,
    #[prost(uint64, tag = "29")]
    pub next_transfer_id: u64,
    /// The run the latest reset of this run created (empty: never reset).
    #[prost(string, tag = "31")]
    pub reset_run_id: String,
    /// When this run was created by a reset (None: it was not).
    #[prost(message, optional, tag = "32")]
    pub last_reset_time: Option<Timestamp>,
    /// The workflow tasks a reset may go back to: the first one each worker build completed.
    #[prost(message, optional, tag = "33")]
    pub auto_reset_points: Option<temporalio_protos::temporal::api::workflow::v1::ResetPoints>,
    /// Worker versioning: where the run's workflow tasks go (None: never versioned).
    #[prost(message, optional, boxed, tag = "34")]
    pub versioning: Option<Box<RunVersioning>>,
    /// Set when this is a standalone activity execution rather than a workflow run (see
    /// `engine/standalone/`).
    #[prost(message, optional, boxed, tag = "35")]
    pub standalone_activity: Option<Box<StandaloneActivity>>,
    /// Nexus operations the workflow scheduled that have not ended, by scheduled event id
    /// (see `engine/nexus/`).
    #[prost(btree_map = "int64, message", tag = "36")]
    pub nexus_operations: BTreeMap<i64, NexusOperationInfo>,
    /// Completion callbacks to call when the workflow closes (given at start, attached by
    /// later starts, carried over by continue-as-new; see `engine/nexus/callbacks.rs`).
    #[prost(message, repeated, tag = "37")]
    pub callbacks: Vec<CallbackRecord>,
    /// Request ids of starts that attached to this running workflow (a retry of one is
    /// answered as it was).
    #[prost(string, repeated, tag = "38")]
    pub attached_request_ids: Vec<String>,
    /// Set when this is a standalone Nexus operation rather than a workflow run (see
    /// `engine/nexus/standalone/`).
    #[prost(message, optional, boxed, tag = "39")]
    pub standalone_nexus: Option<Box<StandaloneNexusOperation>>,
    /// In a log record only: fields left out because they are as the run's previous record
    /// in the log wrote them (bits of `engine::kept_fields`; always 0 in memory).
    #[prost(uint32, tag = "40")]
    pub kept_fields: u32,
}

impl MutableState {
    /// The pending timer `timer_id`.
    pub fn timer(&self, timer_id: &str) -> Option<&TimerInfo> {
        self.timers.iter().find(|t| t.timer_id == timer_id)
    }

    /// Adds a pending timer (replacing one of the same id). The first takes no spare room
    /// (most runs have one at a time); more grow the list as usual, so a run starting
    /// thousands does not copy it at every start.
    pub fn insert_timer(&mut self, timer: TimerInfo) {
        self.remove_timer(&timer.timer_id);
        if self.timers.capacity() == 0 {
            self.timers.reserve_exact(1);
        }
        self.timers.push(timer);
    }

    pub fn remove_timer(&mut self, timer_id: &str) -> Option<TimerInfo> {
        let at = self.timers.iter().position(|t| t.timer_id == timer_id)?;
        Some(self.timers.remove(at))
    }

    /// Moves timers read from an older record's map into the list.
    pub fn upgrade_timers(&mut self) {
        for (_, timer) in std::mem::take(&mut self.legacy_timers) {
            self.insert_timer(timer);
        }
    }
}

/// A completion callback of a run, as DescribeWorkflowExecution shows it, and the request
/// that attached it to a running workflow (empty: given when the workflow started).
#[derive(Clone, PartialEq, prost::Message)]
pub struct CallbackRecord {
    #[prost(message, optional, tag = "1")]
    pub info: Option<temporalio_protos::temporal::api::workflow::v1::CallbackInfo>,
    #[prost(string, tag = "2")]
    pub attached_request_id: String,
}

/// A Nexus operation a workflow scheduled (the caller's side), from its scheduled event until
/// it ends. Each attempt is one call of the handler: dispatched to the endpoint's task queue
/// until its deadline, then retried with backoff while the operation's timeouts allow.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NexusOperationInfo {
    #[prost(int64, tag = "1")]
    pub scheduled_event_id: i64,
    /// The endpoint's name (as the workflow named it) and id.
    #[prost(string, tag = "2")]
    pub endpoint: String,
    #[prost(string, tag = "3")]
    pub endpoint_id: String,
    #[prost(string, tag = "4")]
    pub service: String,
    #[prost(string, tag = "5")]
    pub operation: String,
    /// The same for every attempt, so a handler deduplicates retries on it.
    #[prost(string, tag = "6")]
    pub request_id: String,
    #[prost(message, optional, tag = "7")]
    pub input: Option<Payload>,
    /// The caller's Nexus headers, keys lowercased.
    #[prost(btree_map = "string, string", tag = "8")]
    pub header: BTreeMap<String, String>,
    #[prost(message, optional, tag = "9")]
    pub scheduled_time: Option<Timestamp>,
    #[prost(message, optional, tag = "10")]
    pub schedule_to_close_timeout: Option<Duration>,
    #[prost(message, optional, tag = "11")]
    pub schedule_to_start_timeout: Option<Duration>,
    #[prost(message, optional, tag = "12")]
    pub start_to_close_timeout: Option<Duration>,
    /// `temporal.api.enums.v1.PendingNexusOperationState`.
    #[prost(int32, tag = "13")]
    pub state: i32,
    /// Attempts that ended (0 while the first is in flight).
    #[prost(int32, tag = "14")]
    pub attempt: i32,
    #[prost(message, optional, tag = "15")]
    pub last_attempt_complete_time: Option<Timestamp>,
    #[prost(message, optional, tag = "16")]
    pub last_attempt_failure: Option<Failure>,
    #[prost(message, optional, tag = "17")]
    pub next_attempt_schedule_time: Option<Timestamp>,
    /// The handler's token for an operation it started asynchronously.
    #[prost(string, tag = "18")]
    pub operation_token: String,
    #[prost(message, optional, tag = "19")]
    pub started_time: Option<Timestamp>,
    /// When the attempt in flight gives up waiting for the handler (unset while backing off).
    #[prost(message, optional, tag = "20")]
    pub attempt_deadline: Option<Timestamp>,
    /// Where the endpoint routed the operation: the handler's namespace and task queue.
    #[prost(string, tag = "21")]
    pub handler_namespace: String,
    #[prost(string, tag = "22")]
    pub handler_task_queue: String,
    /// A handler took the attempt in flight (it is not offered to another).
    #[prost(bool, tag = "23")]
    pub dispatched: bool,
    /// The workflow asked for the operation's cancellation (its event id; 0: not asked).
    #[prost(int64, tag = "24")]
    pub cancel_requested_event_id: i64,
    /// The calls asking the handler to cancel the operation (once it has started).
    #[prost(message, optional, tag = "25")]
    pub cancellation: Option<NexusCancellation>,
    /// Where an external endpoint routed the operation: the handler's URL (its calls go over
    /// HTTP; empty for a worker endpoint's queue).
    #[prost(string, tag = "26")]
    pub handler_url: String,
}

/// Asking a handler to cancel a started operation: attempts like the start's, retried with
/// backoff while the operation's timeouts allow, until the handler answers.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NexusCancellation {
    #[prost(message, optional, tag = "1")]
    pub requested_time: Option<Timestamp>,
    /// `NexusOperationCancellationState`.
    #[prost(int32, tag = "2")]
    pub state: i32,
    /// Attempts that ended.
    #[prost(int32, tag = "3")]
    pub attempt: i32,
    #[prost(message, optional, tag = "4")]
    pub last_attempt_complete_time: Option<Timestamp>,
    #[prost(message, optional, tag = "5")]
    pub last_attempt_failure: Option<Failure>,
    #[prost(message, optional, tag = "6")]
    pub next_attempt_schedule_time: Option<Timestamp>,
    #[prost(message, optional, tag = "7")]
    pub attempt_deadline: Option<Timestamp>,
    #[prost(bool, tag = "8")]
    pub dispatched: bool,
}

/// A standalone activity execution: an activity a client started on its own, with no
/// workflow around it. It is kept as a run without history or workflow tasks, in a key space
/// of its own; its one activity is `MutableState::activities` entry
/// [`STANDALONE_SCHEDULED_ID`] while it runs, and `closed` once it has ended.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StandaloneActivity {
    /// The id the client gave (the run's key holds it in the activity key space).
    #[prost(string, tag = "1")]
    pub activity_id: String,
    #[prost(message, optional, tag = "2")]
    pub user_metadata: Option<temporalio_protos::temporal::api::sdk::v1::UserMetadata>,
    #[prost(message, optional, tag = "3")]
    pub start_delay: Option<Duration>,
    /// The result or final failure, once closed.
    #[prost(message, optional, tag = "4")]
    pub outcome: Option<temporalio_protos::temporal::api::activity::v1::ActivityExecutionOutcome>,
    /// The activity as it was when the execution closed.
    #[prost(message, optional, tag = "5")]
    pub closed: Option<ActivityInfo>,
    /// The reason given with the cancellation request, if one came.
    #[prost(string, tag = "6")]
    pub canceled_reason: String,
    /// Heartbeats recorded over all attempts.
    #[prost(int64, tag = "7")]
    pub heartbeat_count: i64,
    #[prost(message, repeated, tag = "8")]
    pub links: Vec<temporalio_protos::temporal::api::common::v1::Link>,
    /// The identity of the client that started it.
    #[prost(string, tag = "9")]
    pub identity: String,
    /// The request id of the termination that closed it (a retried termination is a no-op).
    #[prost(string, tag = "10")]
    pub terminate_request_id: String,
}

/// A standalone Nexus operation: an operation a client started on an endpoint, with no
/// workflow around it. Kept like a standalone activity (a run without history, in a key space
/// of its own); its one operation is `MutableState::nexus_operations` entry
/// [`STANDALONE_SCHEDULED_ID`] while it runs, and `closed` once it has ended.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StandaloneNexusOperation {
    /// The id the client gave (the run's key holds it in the operation key space).
    #[prost(string, tag = "1")]
    pub operation_id: String,
    #[prost(message, optional, tag = "2")]
    pub user_metadata: Option<temporalio_protos::temporal::api::sdk::v1::UserMetadata>,
    /// The identity of the client that started it.
    #[prost(string, tag = "3")]
    pub identity: String,
    /// The result, once completed.
    #[prost(message, optional, tag = "4")]
    pub result: Option<Payload>,
    /// The failure, once closed unsuccessfully.
    #[prost(message, optional, tag = "5")]
    pub failure: Option<Failure>,
    /// The operation as it was when it closed.
    #[prost(message, optional, tag = "6")]
    pub closed: Option<NexusOperationInfo>,
    /// The links the handler returned (to what it started).
    #[prost(message, repeated, tag = "7")]
    pub links: Vec<temporalio_protos::temporal::api::common::v1::Link>,
    /// The request id of the termination that closed it (a retried termination is a no-op).
    #[prost(string, tag = "8")]
    pub terminate_request_id: String,
    /// The reason given with the cancellation request, if one came.
    #[prost(string, tag = "9")]
    pub cancel_reason: String,
}

/// The scheduled-event id a standalone activity's one activity (and a standalone Nexus
/// operation's one operation) is kept under (tokens and timers name it by it; there is no
/// history to take it from).
pub const STANDALONE_SCHEDULED_ID: i64 = 1;

/// A run's worker-versioning state.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RunVersioning {
    /// `temporal.api.enums.v1.VersioningBehavior` the last completed workflow task declared.
    #[prost(int32, tag = "1")]
    pub behavior: i32,
    /// The version that completed the last workflow task (None: an unversioned worker).
    #[prost(message, optional, tag = "2")]
    pub version: Option<temporalio_protos::temporal::api::deployment::v1::WorkerDeploymentVersion>,
    /// Set at start or by UpdateWorkflowExecutionOptions; wins over `behavior`.
    #[prost(message, optional, tag = "3")]
    pub versioning_override:
        Option<temporalio_protos::temporal::api::workflow::v1::VersioningOverride>,
    /// Until the first workflow task completes: the version the run inherited (continue-as-new
    /// or a child of a pinned run).
    #[prost(message, optional, tag = "4")]
    pub inherited_pinned:
        Option<temporalio_protos::temporal::api::deployment::v1::WorkerDeploymentVersion>,
    /// Until the first workflow task completes: go to the ramping version (continue-as-new
    /// with `USE_RAMPING_VERSION`).
    #[prost(bool, tag = "5")]
    pub use_ramping: bool,
}

/// One operation a run owes a run in another shard; delivered (and retried) until the owner
/// of that shard acknowledges it. The receiving side makes every kind idempotent.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Transfer {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(oneof = "TransferKind", tags = "2, 3, 4, 5, 6, 7, 8, 9, 10, 11")]
    pub kind: Option<TransferKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum TransferKind {
    /// Start a child (de-duplicated by the start request id).
    #[prost(message, tag = "2")]
    StartChild(StartChildTransfer),
    /// A child closed: record its outcome in the parent.
    #[prost(message, tag = "3")]
    ChildClosed(ChildClosedTransfer),
    /// Signal another workflow (de-duplicated by the signal's request id).
    #[prost(message, tag = "4")]
    Signal(SignalTransfer),
    /// Ask another workflow to cancel (a second request changes nothing).
    #[prost(message, tag = "5")]
    Cancel(CancelTransfer),
    /// Apply a closed parent's close policy to its child.
    #[prost(message, tag = "6")]
    CloseChild(CloseChildTransfer),
    /// A schedule's action: start its workflow (de-duplicated by the start request id).
    #[prost(message, tag = "7")]
    ScheduleStart(ScheduleStartTransfer),
    /// A workflow a schedule started closed: the schedule records it.
    #[prost(message, tag = "8")]
    ScheduleRunClosed(ScheduleRunClosedTransfer),
    /// A schedule's overlap policy cancels or terminates a workflow it started.
    #[prost(message, tag = "9")]
    ScheduleOverlap(ScheduleOverlapTransfer),
    /// A handler's workflow closed: its completion callback ends the caller's Nexus
    /// operation (once; a second delivery finds the operation ended).
    #[prost(message, tag = "10")]
    NexusCompletion(NexusCompletionTransfer),
    /// A workflow's system Nexus operation: signal-with-start another workflow
    /// (de-duplicated by the operation's request id).
    #[prost(message, tag = "11")]
    SystemSignalWithStart(SystemSignalWithStartTransfer),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SystemSignalWithStartTransfer {
    #[prost(int64, tag = "1")]
    pub scheduled_event_id: i64,
    #[prost(message, optional, boxed, tag = "2")]
    pub request: Option<
        Box<
            temporalio_protos::temporal::api::workflowservice::v1::SignalWithStartWorkflowExecutionRequest,
        >,
    >,
}

/// An asynchronous Nexus operation's outcome, delivered to the caller's run.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NexusCompletionTransfer {
    #[prost(string, tag = "1")]
    pub caller_namespace: String,
    #[prost(string, tag = "2")]
    pub caller_workflow_id: String,
    #[prost(string, tag = "3")]
    pub caller_run_id: String,
    #[prost(int64, tag = "4")]
    pub scheduled_event_id: i64,
    /// The handler's token for the operation (recorded if the start has to be recorded too).
    #[prost(string, tag = "5")]
    pub operation_token: String,
    /// The handler workflow's closing event.
    #[prost(message, optional, boxed, tag = "6")]
    pub close: Option<Box<HistoryEvent>>,
    /// The link to the handler workflow's start, for a Started event recorded with it.
    #[prost(message, optional, tag = "7")]
    pub start_link: Option<temporalio_protos::temporal::api::common::v1::Link>,
    /// Which of the source run's callbacks this is (its request id).
    #[prost(string, tag = "8")]
    pub callback_request_id: String,
    /// The handler's own failure for a canceled operation (a completion over HTTP carries
    /// one; a workflow's cancellation does not, and gets Temporal's "operation canceled").
    #[prost(message, optional, boxed, tag = "9")]
    pub canceled_failure: Option<Box<Failure>>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ScheduleStartTransfer {
    #[prost(message, optional, boxed, tag = "1")]
    pub request: Option<
        Box<temporalio_protos::temporal::api::workflowservice::v1::StartWorkflowExecutionRequest>,
    >,
    #[prost(int64, tag = "2")]
    pub nominal_ms: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ScheduleRunClosedTransfer {
    #[prost(string, tag = "1")]
    pub namespace: String,
    #[prost(string, tag = "2")]
    pub schedule_id: String,
    #[prost(string, tag = "3")]
    pub workflow_id: String,
    /// `temporal.api.enums.v1.WorkflowExecutionStatus`.
    #[prost(int32, tag = "4")]
    pub status: i32,
    #[prost(message, optional, tag = "5")]
    pub result: Option<Payloads>,
    #[prost(message, optional, boxed, tag = "6")]
    pub failure: Option<Box<Failure>>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ScheduleOverlapTransfer {
    #[prost(string, tag = "1")]
    pub namespace: String,
    #[prost(string, tag = "2")]
    pub workflow_id: String,
    #[prost(string, tag = "3")]
    pub schedule_id: String,
    /// Terminate (true) or ask to cancel.
    #[prost(bool, tag = "4")]
    pub terminate: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StartChildTransfer {
    #[prost(int64, tag = "1")]
    pub initiated_event_id: i64,
    #[prost(message, optional, boxed, tag = "2")]
    pub initiated: Option<
        Box<
            temporalio_protos::temporal::api::history::v1::StartChildWorkflowExecutionInitiatedEventAttributes,
        >,
    >,
    /// The child's first event, prepared by the parent (its run id included).
    #[prost(message, optional, boxed, tag = "3")]
    pub started: Option<Box<WorkflowExecutionStartedEventAttributes>>,
    #[prost(string, tag = "4")]
    pub namespace: String,
    #[prost(string, tag = "5")]
    pub run_id: String,
    #[prost(string, tag = "6")]
    pub request_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ChildClosedTransfer {
    #[prost(string, tag = "1")]
    pub parent_namespace: String,
    #[prost(string, tag = "2")]
    pub parent_workflow_id: String,
    #[prost(string, tag = "3")]
    pub parent_run_id: String,
    #[prost(int64, tag = "4")]
    pub initiated_event_id: i64,
    #[prost(message, optional, tag = "5")]
    pub child: Option<temporalio_protos::temporal::api::common::v1::WorkflowExecution>,
    /// The child's closing event.
    #[prost(message, optional, boxed, tag = "6")]
    pub close: Option<Box<HistoryEvent>>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SignalTransfer {
    #[prost(string, tag = "1")]
    pub namespace: String,
    #[prost(string, tag = "2")]
    pub workflow_id: String,
    #[prost(string, tag = "3")]
    pub run_id: String,
    #[prost(message, optional, tag = "4")]
    pub signal: Option<
        temporalio_protos::temporal::api::history::v1::WorkflowExecutionSignaledEventAttributes,
    >,
    #[prost(int64, tag = "5")]
    pub initiated_event_id: i64,
    #[prost(string, tag = "6")]
    pub control: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CancelTransfer {
    #[prost(string, tag = "1")]
    pub namespace: String,
    #[prost(string, tag = "2")]
    pub workflow_id: String,
    #[prost(string, tag = "3")]
    pub run_id: String,
    #[prost(string, tag = "4")]
    pub reason: String,
    #[prost(int64, tag = "5")]
    pub initiated_event_id: i64,
    #[prost(string, tag = "6")]
    pub control: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CloseChildTransfer {
    #[prost(string, tag = "1")]
    pub namespace: String,
    #[prost(string, tag = "2")]
    pub workflow_id: String,
    /// `temporal.api.enums.v1.ParentClosePolicy`.
    #[prost(int32, tag = "3")]
    pub policy: i32,
}

/// What the owner of the target answered.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TransferOutcome {
    /// The target was found (or started).
    #[prost(bool, tag = "1")]
    pub ok: bool,
    /// The child's run id (StartChild).
    #[prost(string, tag = "2")]
    pub run_id: String,
    /// Why a child could not start (`StartChildWorkflowExecutionFailedCause`).
    #[prost(int32, tag = "3")]
    pub cause: i32,
    /// Why a schedule's workflow could not start (or a system operation failed).
    #[prost(string, tag = "4")]
    pub message: String,
    /// A signal-with-start started the workflow (it was not running).
    #[prost(bool, tag = "5")]
    pub started: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UpdateInfo {
    #[prost(message, optional, tag = "1")]
    pub request: Option<temporalio_protos::temporal::api::update::v1::Request>,
    /// `temporal.api.enums.v1.UpdateWorkflowExecutionLifecycleStage` reached so far.
    #[prost(int32, tag = "2")]
    pub stage: i32,
    /// Scheduled-event id of the workflow task that carries the request (0: not yet sent).
    #[prost(int64, tag = "3")]
    pub delivered_in: i64,
    #[prost(int64, tag = "4")]
    pub accepted_event_id: i64,
    #[prost(message, optional, tag = "5")]
    pub outcome: Option<temporalio_protos::temporal::api::update::v1::Outcome>,
    /// Ended by the run's close, not by the worker: an accepted update with the server's
    /// failure as its outcome, or (no outcome) one not yet accepted, whose caller is told it
    /// was aborted. Either way a later update-with-start does not attach to it.
    #[prost(bool, tag = "6")]
    pub aborted_by_close: bool,
    /// Admitted but not accepted when the run continued as new: it went on to this run.
    #[prost(string, tag = "7")]
    pub moved_to_run_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ChildInfo {
    #[prost(int64, tag = "1")]
    pub initiated_event_id: i64,
    #[prost(string, tag = "2")]
    pub namespace: String,
    #[prost(string, tag = "3")]
    pub workflow_id: String,
    /// The run started for it (its latest run once it continues as new or retries).
    #[prost(string, tag = "4")]
    pub run_id: String,
    #[prost(message, optional, tag = "5")]
    pub workflow_type: Option<temporalio_protos::temporal::api::common::v1::WorkflowType>,
    #[prost(int64, tag = "6")]
    pub started_event_id: i64,
    /// `temporal.api.enums.v1.ParentClosePolicy`.
    #[prost(int32, tag = "7")]
    pub parent_close_policy: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct WorkflowTaskInfo {
    #[prost(int64, tag = "1")]
    pub scheduled_event_id: i64,
    /// 0 while the task waits for a poller.
    #[prost(int64, tag = "2")]
    pub started_event_id: i64,
    #[prost(int32, tag = "3")]
    pub attempt: i32,
    #[prost(message, optional, tag = "4")]
    pub scheduled_time: Option<Timestamp>,
    #[prost(message, optional, tag = "5")]
    pub started_time: Option<Timestamp>,
    #[prost(string, tag = "6")]
    pub identity: String,
    #[prost(string, tag = "7")]
    pub request_id: String,
    /// A retry (attempt > 1) whose Scheduled/Started events are not in history yet.
    #[prost(bool, tag = "8")]
    pub transient: bool,
    #[prost(message, optional, tag = "9")]
    pub start_to_close_timeout: Option<Duration>,
    /// Dispatched to the run's sticky queue rather than the normal one.
    #[prost(bool, tag = "10")]
    pub sticky: bool,
    /// What the task's started event tells the worker (kept for a transient task, whose
    /// started event is rebuilt for each poll): the history size then, and whether to
    /// continue as new, with the reasons (`SuggestContinueAsNewReason`).
    #[prost(int64, tag = "11")]
    pub history_size_bytes: i64,
    #[prost(int32, repeated, tag = "12")]
    pub suggest_continue_as_new_reasons: Vec<i32>,
    /// The run's deployment would send it to another version than its own (see
    /// `deployments/routing.rs`).
    #[prost(bool, tag = "13")]
    pub target_version_changed: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ActivityInfo {
    #[prost(int64, tag = "1")]
    pub scheduled_event_id: i64,
    #[prost(string, tag = "2")]
    pub activity_id: String,
    #[prost(message, optional, tag = "3")]
    pub activity_type: Option<ActivityType>,
    #[prost(string, tag = "4")]
    pub task_queue: String,
    #[prost(message, optional, tag = "5")]
    pub header: Option<Header>,
    #[prost(message, optional, tag = "6")]
    pub input: Option<Payloads>,
    #[prost(message, optional, tag = "7")]
    pub schedule_to_close_timeout: Option<Duration>,
    #[prost(message, optional, tag = "8")]
    pub schedule_to_start_timeout: Option<Duration>,
    #[prost(message, optional, tag = "9")]
    pub start_to_close_timeout: Option<Duration>,
    #[prost(message, optional, tag = "10")]
    pub heartbeat_timeout: Option<Duration>,
    #[prost(message, optional, tag = "11")]
    pub retry_policy: Option<RetryPolicy>,
    #[prost(int32, tag = "12")]
    pub attempt: i32,
    /// When the activity was first scheduled (schedule-to-close counts from here).
    #[prost(message, optional, tag = "13")]
    pub first_scheduled_time: Option<Timestamp>,
    /// When the current attempt becomes available to pollers (after any retry backoff).
    #[prost(message, optional, tag = "14")]
    pub scheduled_time: Option<Timestamp>,
    /// Set while an attempt is running.
    #[prost(message, optional, tag = "15")]
    pub started_time: Option<Timestamp>,
    #[prost(string, tag = "16")]
    pub started_identity: String,
    #[prost(string, tag = "17")]
    pub started_request_id: String,
    #[prost(message, optional, tag = "18")]
    pub heartbeat_details: Option<Payloads>,
    #[prost(message, optional, tag = "19")]
    pub last_heartbeat_time: Option<Timestamp>,
    #[prost(bool, tag = "20")]
    pub cancel_requested: bool,
    #[prost(int64, tag = "21")]
    pub cancel_requested_event_id: i64,
    #[prost(message, optional, tag = "22")]
    pub last_failure: Option<Failure>,
    #[prost(string, tag = "23")]
    pub last_worker_identity: String,
    /// Paused by an operator: not dispatched, no timeouts, a failure holds instead of retrying.
    #[prost(bool, tag = "24")]
    pub paused: bool,
    /// When and by whom it was paused (with `paused`).
    #[prost(message, optional, tag = "25")]
    pub pause_info:
        Option<temporalio_protos::temporal::api::workflow::v1::pending_activity_info::PauseInfo>,
    /// The pause request's id: the same pause again is a no-op, another is refused.
    #[prost(string, tag = "26")]
    pub pause_request_id: String,
    /// Reset while an attempt ran: that attempt's heartbeats say so, and retries count from
    /// attempt 1 once it ends.
    #[prost(bool, tag = "27")]
    pub reset_requested: bool,
    /// With `reset_requested`: the heartbeat details go when the running attempt ends.
    #[prost(bool, tag = "28")]
    pub reset_heartbeat: bool,
    /// When the last attempt ended (None: none ended yet).
    #[prost(message, optional, tag = "29")]
    pub last_attempt_complete_time: Option<Timestamp>,
    #[prost(message, optional, tag = "30")]
    pub priority: Option<temporalio_protos::temporal::api::common::v1::Priority>,
    /// When the latest attempt started (kept after it ended).
    #[prost(message, optional, tag = "31")]
    pub last_started_time: Option<Timestamp>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimerInfo {
    #[prost(string, tag = "1")]
    pub timer_id: String,
    #[prost(int64, tag = "2")]
    pub started_event_id: i64,
    #[prost(message, optional, tag = "3")]
    pub fire_time: Option<Timestamp>,
}

/// The opaque token handed to workers with each task.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskToken {
    #[prost(string, tag = "1")]
    pub namespace: String,
    #[prost(string, tag = "2")]
    pub workflow_id: String,
    #[prost(string, tag = "3")]
    pub run_id: String,
    #[prost(int64, tag = "4")]
    pub scheduled_event_id: i64,
    #[prost(int32, tag = "5")]
    pub attempt: i32,
    /// Set for legacy query tasks.
    #[prost(string, tag = "6")]
    pub query_id: String,
    #[prost(int64, tag = "7")]
    pub started_event_id: i64,
    /// Set for Nexus tasks: the handler's namespace, where the task was dispatched and where
    /// its answer must come from (the run named is the caller's, in another namespace).
    #[prost(string, tag = "8")]
    pub nexus_namespace: String,
    /// A Nexus task asking to cancel the operation (not to start it).
    #[prost(bool, tag = "9")]
    pub nexus_cancel: bool,
    /// HMAC-SHA256 of the token without it, keyed by the store's token secret: a token
    /// Durin did not issue is refused.
    #[prost(bytes = "vec", tag = "14")]
    pub signature: Vec<u8>,
    /// Marks tokens Durin issued, so arbitrary bytes are refused rather than misread.
    #[prost(fixed32, tag = "15")]
    pub magic: u32,
}

pub const TOKEN_MAGIC: u32 = 0x4455_5231;

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    /// Records written before timers became a list hold them as a map at tag 15; reading one
    /// gives the same pending timers.
    #[test]
    fn timers_from_records_of_the_map_format_are_read_into_the_list() {
        let timer = |id: &str, started| TimerInfo {
            timer_id: id.into(),
            started_event_id: started,
            fire_time: Some(Timestamp {
                seconds: 100,
                nanos: 0,
            }),
        };
        let old = MutableState {
            legacy_timers: [
                ("a".to_string(), timer("a", 5)),
                ("b".to_string(), timer("b", 7)),
            ]
            .into(),
            ..Default::default()
        };
        let mut read = MutableState::decode(old.encode_to_vec().as_slice()).unwrap();
        read.upgrade_timers();
        assert_eq!(read.timer("a"), Some(&timer("a", 5)));
        assert_eq!(read.timer("b"), Some(&timer("b", 7)));
        assert!(read.legacy_timers.is_empty());
        // Written again, the record holds the list only.
        let again = MutableState::decode(read.encode_to_vec().as_slice()).unwrap();
        assert!(again.legacy_timers.is_empty());
        assert_eq!(again.timers.len(), 2);
    }
}
