//! Schedules inside the engine: spec times become buffered starts, buffered starts become
//! workflow starts under the overlap policy. Every change to a schedule is one log record,
//! written in the same frame as the workflow start it caused, so a crash never loses or
//! repeats an action.

use temporalio_protos::temporal::api::common::v1::{
    Header, Payload, SearchAttributes, WorkflowExecution,
};
use temporalio_protos::temporal::api::enums::v1::{
    ScheduleOverlapPolicy, WorkflowExecutionStatus, WorkflowIdReusePolicy,
};
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_protos::temporal::api::schedule::v1::{
    ScheduleActionResult, ScheduleInfo, schedule_action,
};
use temporalio_protos::temporal::api::workflowservice::v1::StartWorkflowExecutionRequest;

use super::clock::{dur_millis, ts_from_millis};
use super::state::{
    ScheduleOverlapTransfer, ScheduleRunClosedTransfer, ScheduleStartTransfer, TransferKind,
};
use super::timers::TimerTask;
use super::{Core, RunKey};
use crate::schedule::spec::CompiledSpec;
use crate::store::records::LogRecord;
use crate::store::records::{BufferedStart, ScheduleRecord, log_record};

pub const SCHEDULED_BY_ID: &str = "TemporalScheduledById";
pub const SCHEDULED_START_TIME: &str = "TemporalScheduledStartTime";
pub const DEFAULT_CATCHUP_MS: i64 = 365 * 24 * 3600 * 1000;
pub const MIN_CATCHUP_MS: i64 = 10_000;
pub const RECENT_ACTIONS: usize = 10;
/// Starts waiting beyond this are dropped (and counted) rather than growing without bound.
const MAX_BUFFERED: usize = 1000;

/// (namespace, schedule id)
pub type ScheduleKey = (String, String);

/// A schedule held in memory: its persisted record plus the compiled spec.
pub struct LiveSchedule {
    pub record: ScheduleRecord,
    pub spec: CompiledSpec,
}

impl LiveSchedule {
    pub fn new(record: ScheduleRecord) -> Result<Self, String> {
        let canonical = record
            .schedule
            .as_ref()
            .and_then(|s| s.spec.clone())
            .unwrap_or_default();
        Ok(Self {
            spec: CompiledSpec::compile(&canonical)?,
            record,
        })
    }

    pub fn seed(&self) -> String {
        format!("{}/{}", self.record.namespace, self.record.schedule_id)
    }

    pub fn info_mut(&mut self) -> &mut ScheduleInfo {
        self.record.info.get_or_insert_with(Default::default)
    }

    fn state(&self) -> temporalio_protos::temporal::api::schedule::v1::ScheduleState {
        self.record
            .schedule
            .as_ref()
            .and_then(|s| s.state.clone())
            .unwrap_or_default()
    }

    pub fn paused(&self) -> bool {
        self.state().paused
    }

    pub fn overlap_policy(&self) -> i32 {
        let p = self
            .record
            .schedule
            .as_ref()
            .and_then(|s| s.policies.as_ref())
            .map(|p| p.overlap_policy)
            .unwrap_or(0);
        if p == ScheduleOverlapPolicy::Unspecified as i32 {
            ScheduleOverlapPolicy::Skip as i32
        } else {
            p
        }
    }

    pub fn catchup_ms(&self) -> i64 {
        let window = self
            .record
            .schedule
            .as_ref()
            .and_then(|s| s.policies.as_ref())
            .map(|p| dur_millis(&p.catchup_window))
            .unwrap_or(0);
        if window <= 0 {
            DEFAULT_CATCHUP_MS
        } else {
            window.max(MIN_CATCHUP_MS)
        }
    }

    /// Future action times from `after_ms`, as the spec and the remaining-actions limit allow.
    pub fn future_times(&self, after_ms: i64, count: usize) -> Vec<i64> {
        let state = self.state();
        let limit = if state.limited_actions {
            (state.remaining_actions.max(0) as usize).min(count)
        } else {
            count
        };
        let mut out = Vec::new();
        let mut t = after_ms;
        while out.len() < limit {
            match self.spec.next(t, &self.seed()) {
                Some((_, actual)) => {
                    out.push(actual);
                    t = actual;
                }
                None => break,
            }
        }
        out
    }
}

fn policy(p: i32) -> ScheduleOverlapPolicy {
    ScheduleOverlapPolicy::try_from(p).unwrap_or(ScheduleOverlapPolicy::Skip)
}

/// `2026-01-02T15:04:05Z`: the suffix Temporal appends to a scheduled workflow's id.
pub fn nominal_suffix(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

impl Core {
    /// Sets the wake-up for the schedule's next spec time (stale wake-ups are harmless:
    /// a tick only acts on times that are due).
    pub(crate) fn arm_schedule(&mut self, key: &ScheduleKey) {
        let Some(s) = self.schedules.get(key) else {
            return;
        };
        let after = s.record.processed_until_ms;
        if let Some((_, actual)) = s.spec.next(after, &s.seed()) {
            self.push_timer(
                actual,
                TimerTask::ScheduleWake {
                    namespace: key.0.clone(),
                    schedule_id: key.1.clone(),
                },
            );
        }
    }

    /// Takes the spec times that came due since the last tick, then runs the buffer.
    pub(crate) fn schedule_tick(&mut self, key: &ScheduleKey) {
        let now = self.now();
        let Some(s) = self.schedules.get_mut(key) else {
            return;
        };
        let catchup = s.catchup_ms();
        let seed = s.seed();
        let overlap = s.overlap_policy();
        let mut t = s.record.processed_until_ms;
        let mut changed = false;
        while let Some((nominal, actual)) = s.spec.next(t, &seed) {
            if actual > now {
                break;
            }
            t = actual;
            changed = true;
            let mut state = s.state();
            if now - actual > catchup {
                s.info_mut().missed_catchup_window += 1;
                continue;
            }
            if state.paused {
                continue;
            }
            if state.limited_actions {
                if state.remaining_actions <= 0 {
                    continue;
                }
                state.remaining_actions -= 1;
                if let Some(sched) = s.record.schedule.as_mut() {
                    sched.state = Some(state);
                }
            }
            push_buffered(
                s,
                BufferedStart {
                    nominal_ms: nominal,
                    actual_ms: actual,
                    overlap_policy: overlap,
                    manual: false,
                },
            );
        }
        if changed {
            s.record.processed_until_ms = t.max(s.record.processed_until_ms);
        }
        let started = self.run_schedule_buffer(key);
        if changed || started {
            self.changed_schedule(key);
        }
        self.arm_schedule(key);
    }

    /// Workflow ids this schedule started whose latest run is still open.
    fn schedule_running(&self, key: &ScheduleKey) -> Vec<WorkflowExecution> {
        let Some(s) = self.schedules.get(key) else {
            return Vec::new();
        };
        s.record
            .info
            .as_ref()
            .map(|i| i.running_workflows.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|w| {
                // A workflow in a shard another replica serves is running until its close is
                // reported here.
                !self.owns(&key.0, &w.workflow_id)
                    || self
                        .resolve_resident(&key.0, &w.workflow_id, "")
                        .ok()
                        .and_then(|k| self.runs.get(&k))
                        .is_some_and(|r| r.is_open())
            })
            // Starts sent to another replica and not yet answered count as running too.
            .chain(s.record.outbox.iter().filter_map(|t| match &t.kind {
                Some(TransferKind::ScheduleStart(t)) => {
                    t.request.as_ref().map(|r| WorkflowExecution {
                        workflow_id: r.workflow_id.clone(),
                        run_id: String::new(),
                    })
                }
                _ => None,
            }))
            .collect()
    }

    /// Starts what the overlap policies allow; returns whether anything changed.
    pub(crate) fn run_schedule_buffer(&mut self, key: &ScheduleKey) -> bool {
        let Some(s) = self.schedules.get_mut(key) else {
            return false;
        };
        if s.record.buffered.is_empty() {
            return false;
        }
        let pending = std::mem::take(&mut s.record.buffered);
        let mut keep: Vec<BufferedStart> = Vec::new();
        let mut changed = false;
        for start in pending {
            let running = self.schedule_running(key);
            let busy = !running.is_empty() || !keep.is_empty();
            match policy(start.overlap_policy) {
                ScheduleOverlapPolicy::AllowAll => {
                    self.schedule_start(key, &start);
                    changed = true;
                }
                _ if !busy => {
                    self.schedule_start(key, &start);
                    changed = true;
                }
                ScheduleOverlapPolicy::BufferOne => {
                    if keep.is_empty() {
                        keep.push(start);
                    } else {
                        self.count_skipped(key);
                        changed = true;
                    }
                }
                ScheduleOverlapPolicy::BufferAll => keep.push(start),
                ScheduleOverlapPolicy::CancelOther => {
                    for w in &running {
                        let asked = self
                            .schedules
                            .get(key)
                            .is_some_and(|s| s.record.cancel_requested.contains(&w.workflow_id));
                        if asked {
                            continue;
                        }
                        if !self.owns(&key.0, &w.workflow_id) {
                            self.overlap_elsewhere(key, &w.workflow_id, false);
                        } else if let Ok(k) = self.resolve_run(&key.0, &w.workflow_id, "") {
                            self.request_cancel_run(
                                &k,
                                "schedule overlap policy CANCEL_OTHER",
                                "",
                                0,
                                None,
                            );
                        }
                        if let Some(s) = self.schedules.get_mut(key) {
                            s.record.cancel_requested.push(w.workflow_id.clone());
                        }
                    }
                    keep.push(start);
                    changed = true;
                }
                ScheduleOverlapPolicy::TerminateOther => {
                    for w in &running {
                        if !self.owns(&key.0, &w.workflow_id) {
                            self.overlap_elsewhere(key, &w.workflow_id, true);
                        } else if let Ok(k) = self.resolve_run(&key.0, &w.workflow_id, "") {
                            let _ = self.terminate_run(
                                &k,
                                "schedule overlap policy TERMINATE_OTHER",
                                None,
                                "",
                            );
                        }
                    }
                    if keep.is_empty() {
                        self.schedule_start(key, &start);
                    } else {
                        keep.push(start);
                    }
                    changed = true;
                }
                ScheduleOverlapPolicy::Skip | ScheduleOverlapPolicy::Unspecified => {
                    self.count_skipped(key);
                    changed = true;
                }
            }
        }
        if let Some(s) = self.schedules.get_mut(key) {
            // Starts buffered while this ran (a close that re-entered) go after ours.
            keep.append(&mut s.record.buffered);
            s.record.buffered = keep;
            s.info_mut().buffer_size = s.record.buffered.len() as i64;
        }
        changed
    }

    fn count_skipped(&mut self, key: &ScheduleKey) {
        if let Some(s) = self.schedules.get_mut(key) {
            s.info_mut().overlap_skipped += 1;
        }
    }

    /// Starts the action's workflow in this same transaction.
    fn schedule_start(&mut self, key: &ScheduleKey, start: &BufferedStart) {
        let Some(s) = self.schedules.get(key) else {
            return;
        };
        let Some(schedule_action::Action::StartWorkflow(action)) = s
            .record
            .schedule
            .as_ref()
            .and_then(|sc| sc.action.as_ref())
            .and_then(|a| a.action.clone())
        else {
            return;
        };
        let workflow_id = format!(
            "{}-{}",
            action.workflow_id,
            nominal_suffix(start.nominal_ms)
        );
        let mut search = action.search_attributes.clone().unwrap_or_default();
        search.indexed_fields.insert(
            SCHEDULED_BY_ID.to_string(),
            crate::visibility::search_attributes::keyword_payload(&key.1),
        );
        search.indexed_fields.insert(
            SCHEDULED_START_TIME.to_string(),
            datetime_payload(start.nominal_ms),
        );
        let req = StartWorkflowExecutionRequest {
            namespace: key.0.clone(),
            workflow_id: workflow_id.clone(),
            workflow_type: action.workflow_type.clone(),
            task_queue: action.task_queue.clone(),
            input: action.input.clone(),
            workflow_execution_timeout: action.workflow_execution_timeout,
            workflow_run_timeout: action.workflow_run_timeout,
            workflow_task_timeout: action.workflow_task_timeout,
            identity: "durin-scheduler".into(),
            request_id: format!("{}/{}/{}", key.1, start.nominal_ms, start.manual),
            workflow_id_reuse_policy: if start.manual {
                WorkflowIdReusePolicy::AllowDuplicate
            } else {
                WorkflowIdReusePolicy::RejectDuplicate
            } as i32,
            retry_policy: action.retry_policy.clone(),
            memo: action.memo.clone(),
            search_attributes: Some(search),
            header: Some(action.header.clone().unwrap_or_else(Header::default)),
            last_completion_result: s.record.last_completion_result.clone(),
            continued_failure: s.record.continued_failure.clone(),
            user_metadata: action.user_metadata.clone(),
            priority: action.priority.clone(),
            ..Default::default()
        };
        if !self.owns(&key.0, &workflow_id) {
            // Another replica serves the workflow's shard: it starts there, and the answer
            // is recorded here.
            self.push_schedule_transfer(
                key,
                TransferKind::ScheduleStart(ScheduleStartTransfer {
                    request: Some(Box::new(req)),
                    nominal_ms: start.nominal_ms,
                }),
            );
            return;
        }
        let started = self
            .start_workflow(req, None)
            .map(|r| r.run_id)
            .map_err(|e| e.to_string());
        self.record_schedule_action(key, start.nominal_ms, workflow_id, started);
    }

    /// Records a start the schedule made (or why it failed).
    pub(crate) fn record_schedule_action(
        &mut self,
        key: &ScheduleKey,
        nominal_ms: i64,
        workflow_id: String,
        started: Result<String, String>,
    ) {
        let now = self.now();
        let Some(s) = self.schedules.get_mut(key) else {
            return;
        };
        match started {
            Ok(run_id) => {
                let execution = WorkflowExecution {
                    workflow_id,
                    run_id,
                };
                let info = s.info_mut();
                info.action_count += 1;
                info.running_workflows.push(execution.clone());
                info.recent_actions.push(ScheduleActionResult {
                    schedule_time: Some(ts_from_millis(nominal_ms)),
                    actual_time: Some(ts_from_millis(now)),
                    start_workflow_result: Some(execution),
                    start_workflow_status: WorkflowExecutionStatus::Running as i32,
                });
                let excess = info.recent_actions.len().saturating_sub(RECENT_ACTIONS);
                info.recent_actions.drain(..excess);
            }
            Err(e) => {
                tracing::warn!(schedule = %key.1, namespace = %key.0, error = %e, "schedule action did not start");
            }
        }
    }

    /// A run closed: if a schedule started it, record the outcome and run the buffer.
    pub(crate) fn schedule_run_closed(&mut self, run_key: &RunKey, continuing: bool) {
        if continuing {
            return;
        }
        let Some(run) = self.runs.get(run_key) else {
            return;
        };
        let Some(schedule_id) = run
            .ms
            .search_attributes
            .as_ref()
            .and_then(|sa| sa.indexed_fields.get(SCHEDULED_BY_ID))
            .and_then(|p| serde_json::from_slice::<String>(&p.data).ok())
        else {
            return;
        };
        let (result, failure) = match run.last_event().and_then(|e| e.attributes) {
            Some(Attributes::WorkflowExecutionCompletedEventAttributes(a)) => (a.result, None),
            Some(Attributes::WorkflowExecutionFailedEventAttributes(a)) => (None, a.failure),
            _ => (None, None),
        };
        let closed = ScheduleRunClosedTransfer {
            namespace: run_key.namespace.clone(),
            schedule_id,
            workflow_id: run_key.workflow_id.clone(),
            status: run.ms.status,
            result,
            failure: failure.map(Box::new),
        };
        if self.owns(&closed.namespace, &closed.schedule_id) {
            self.schedule_closed(closed);
        } else {
            // Another replica serves the schedule's shard.
            self.push_transfer(run_key, TransferKind::ScheduleRunClosed(closed));
            self.changed(run_key);
        }
    }

    /// Records in its schedule that a workflow the schedule started closed, then runs the
    /// schedule's buffer.
    pub(crate) fn schedule_closed(&mut self, closed: ScheduleRunClosedTransfer) {
        let key = (closed.namespace, closed.schedule_id);
        if !self.schedules.contains_key(&key) {
            return;
        }
        let (status, result, failure) = (closed.status, closed.result, closed.failure.map(|f| *f));
        let workflow_id = closed.workflow_id;
        let failed = status == WorkflowExecutionStatus::Failed as i32
            || status == WorkflowExecutionStatus::TimedOut as i32;
        let Some(s) = self.schedules.get_mut(&key) else {
            return;
        };
        let pause_on_failure = s
            .record
            .schedule
            .as_ref()
            .and_then(|sc| sc.policies.as_ref())
            .is_some_and(|p| p.pause_on_failure);
        s.record.cancel_requested.retain(|w| *w != workflow_id);
        if status == WorkflowExecutionStatus::Completed as i32 {
            s.record.last_completion_result = result;
            s.record.continued_failure = None;
        } else if failure.is_some() {
            s.record.continued_failure = failure;
        }
        let info = s.info_mut();
        info.running_workflows
            .retain(|w| w.workflow_id != workflow_id);
        for a in &mut info.recent_actions {
            if a.start_workflow_result
                .as_ref()
                .is_some_and(|r| r.workflow_id == workflow_id)
            {
                a.start_workflow_status = status;
            }
        }
        if failed && pause_on_failure {
            let sched = s.record.schedule.get_or_insert_with(Default::default);
            let state = sched.state.get_or_insert_with(Default::default);
            state.paused = true;
            state.notes = format!(
                "paused: workflow {workflow_id} {}",
                crate::visibility::search_attributes::status_name(status)
            );
        }
        self.run_schedule_buffer(&key);
        self.changed_schedule(&key);
    }

    /// Asks the replica serving a running workflow's shard to cancel or terminate it.
    fn overlap_elsewhere(&mut self, key: &ScheduleKey, workflow_id: &str, terminate: bool) {
        self.push_schedule_transfer(
            key,
            TransferKind::ScheduleOverlap(ScheduleOverlapTransfer {
                namespace: key.0.clone(),
                workflow_id: workflow_id.to_string(),
                schedule_id: key.1.clone(),
                terminate,
            }),
        );
    }

    /// Cancels or terminates a workflow for its schedule's overlap policy, if it is still
    /// running and that schedule's.
    pub(crate) fn apply_schedule_overlap(&mut self, t: &ScheduleOverlapTransfer) {
        let Ok(run_key) = self.resolve_resident(&t.namespace, &t.workflow_id, "") else {
            return;
        };
        let ours = self.runs.get(&run_key).is_some_and(|r| {
            r.is_open()
                && r.ms
                    .search_attributes
                    .as_ref()
                    .and_then(|sa| sa.indexed_fields.get(SCHEDULED_BY_ID))
                    .and_then(|p| serde_json::from_slice::<String>(&p.data).ok())
                    .is_some_and(|id| id == t.schedule_id)
        });
        if !ours {
            return;
        }
        if t.terminate {
            let _ = self.terminate_run(
                &run_key,
                "schedule overlap policy TERMINATE_OTHER",
                None,
                "",
            );
        } else {
            self.request_cancel_run(
                &run_key,
                "schedule overlap policy CANCEL_OTHER",
                "",
                0,
                None,
            );
        }
    }

    pub(crate) fn schedule_wake_fired(&mut self, namespace: &str, schedule_id: &str) {
        let key = (namespace.to_string(), schedule_id.to_string());
        self.schedule_tick(&key);
    }

    pub(crate) fn replay_schedule(&mut self, record: ScheduleRecord) {
        let key = (record.namespace.clone(), record.schedule_id.clone());
        match LiveSchedule::new(record) {
            Ok(live) => {
                self.schedules.insert(key, live);
            }
            Err(e) => {
                tracing::error!(schedule = %key.1, error = %e, "stored schedule spec no longer compiles")
            }
        }
    }

    pub(crate) fn schedule_snapshot(&self) -> Vec<LogRecord> {
        let mut keys: Vec<&ScheduleKey> = self.schedules.keys().collect();
        keys.sort();
        keys.into_iter()
            .map(|k| LogRecord {
                kind: Some(log_record::Kind::Schedule(self.schedules[k].record.clone())),
            })
            .collect()
    }
}

fn push_buffered(s: &mut LiveSchedule, start: BufferedStart) {
    if s.record.buffered.len() >= MAX_BUFFERED {
        s.info_mut().buffer_dropped += 1;
        return;
    }
    s.record.buffered.push(start);
}

/// A Datetime search attribute value (RFC 3339 JSON string).
pub fn datetime_payload(ms: i64) -> Payload {
    let text = chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    crate::visibility::search_attributes::typed_payload("Datetime", &text)
}

/// Search attributes of a schedule for visibility queries on ListSchedules.
pub fn list_search_attributes(s: &LiveSchedule) -> SearchAttributes {
    let mut sa = s.record.search_attributes.clone().unwrap_or_default();
    sa.indexed_fields.insert(
        "TemporalSchedulePaused".into(),
        crate::visibility::search_attributes::typed_payload("Bool", &s.paused()),
    );
    sa
}
