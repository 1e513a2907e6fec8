//! Starting runs (with id reuse and conflict policies), closing them, and re-arming their
//! timers and tasks after a restart.

use temporalio_protos::temporal::api::common::v1::{Link, Payloads};
use temporalio_protos::temporal::api::enums::v1::EventType;
use temporalio_protos::temporal::api::enums::v1::{
    ContinueAsNewInitiator, RetryState, TaskQueueKind, TimeoutType, WorkflowExecutionStatus,
    WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
};
use temporalio_protos::temporal::api::failure::v1::{Failure, TimeoutFailureInfo, failure};
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_protos::temporal::api::history::v1::{
    WorkflowExecutionSignaledEventAttributes, WorkflowExecutionStartedEventAttributes,
    WorkflowExecutionTerminatedEventAttributes, WorkflowExecutionTimedOutEventAttributes,
};
use temporalio_protos::temporal::api::sdk::v1::UserMetadata;
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflowservice::v1::{
    SignalWithStartWorkflowExecutionRequest, StartWorkflowExecutionRequest,
    StartWorkflowExecutionResponse,
};

use super::clock::{self, dur_from_millis, dur_millis, opt_ts_millis, ts_from_millis};
use super::matching::{QueueKey, QueueKind, TaskRef};
use super::nexus::links::{event_link, request_link};
use super::start_checks::{check_policy_pair, signal_with_start_policies, validate_start};
use super::state::MutableState;
use super::timers::TimerTask;
use super::{ChangeKind, Core, Engine, Error, Result, Run, RunKey};

const DEFAULT_WORKFLOW_TASK_TIMEOUT_MS: i64 = 10_000;
const MAX_WORKFLOW_TASK_TIMEOUT_MS: i64 = 120_000;

impl Engine {
    pub async fn start_workflow(
        &self,
        req: StartWorkflowExecutionRequest,
    ) -> Result<StartWorkflowExecutionResponse> {
        self.transact(|core| core.start_workflow(req, None)).await
    }

    pub async fn signal_with_start(
        &self,
        req: SignalWithStartWorkflowExecutionRequest,
    ) -> Result<StartWorkflowExecutionResponse> {
        self.transact(|core| core.signal_with_start(req)).await
    }
}

/// What a new run's history holds after its started event.
#[derive(Default)]
pub(crate) struct FirstEvents {
    /// The signal of a signal-with-start.
    pub signal: Option<WorkflowExecutionSignaledEventAttributes>,
    /// The summary and details given at start, on the started event.
    pub user_metadata: Option<UserMetadata>,
    /// Links to where the start came from (a Nexus caller's event, say), on the started
    /// event.
    pub links: Vec<Link>,
}

/// One JSON string as payloads, as the Go SDK's converter encodes it.
pub(crate) fn json_string_payloads(text: &str) -> Option<Payloads> {
    Some(Payloads {
        payloads: vec![temporalio_protos::temporal::api::common::v1::Payload {
            metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
            data: serde_json::to_vec(text).unwrap_or_default(),
            ..Default::default()
        }],
    })
}

pub(crate) fn is_closed_unsuccessfully(status: i32) -> bool {
    status == WorkflowExecutionStatus::Failed as i32
        || status == WorkflowExecutionStatus::Canceled as i32
        || status == WorkflowExecutionStatus::Terminated as i32
        || status == WorkflowExecutionStatus::TimedOut as i32
}

impl Core {
    /// Signals the workflow, starting it first if it is not running (a new run gets the
    /// signal as its second event).
    pub(crate) fn signal_with_start(
        &mut self,
        req: SignalWithStartWorkflowExecutionRequest,
    ) -> Result<StartWorkflowExecutionResponse> {
        if req.signal_name.is_empty() {
            return Err(Error::InvalidArgument(
                "SignalName is not set on request.".into(),
            ));
        }
        check_policy_pair(
            req.workflow_id_reuse_policy,
            req.workflow_id_conflict_policy,
        )?;
        if req.workflow_id_conflict_policy == WorkflowIdConflictPolicy::Fail as i32 {
            return Err(Error::InvalidArgument(
                "Invalid WorkflowIDConflictPolicy: WORKFLOW_ID_CONFLICT_POLICY_FAIL is not \
                 supported for this operation."
                    .into(),
            ));
        }
        let (reuse, conflict) = signal_with_start_policies(
            req.workflow_id_reuse_policy,
            req.workflow_id_conflict_policy,
        );
        let signal = WorkflowExecutionSignaledEventAttributes {
            signal_name: req.signal_name.clone(),
            input: req.signal_input.clone(),
            identity: req.identity.clone(),
            header: req.header.clone(),
            request_id: req.request_id.clone(),
            ..Default::default()
        };
        self.check_namespace(&req.namespace)?;
        self.check_owned(&req.namespace, &req.workflow_id)?;
        let current = self
            .current
            .get(&(req.namespace.clone(), req.workflow_id.clone()))
            .cloned();
        if let Some(run_id) = current {
            let key = RunKey {
                namespace: req.namespace.clone(),
                workflow_id: req.workflow_id.clone(),
                run_id,
            };
            if self.run(&key)?.is_open()
                && conflict != WorkflowIdConflictPolicy::TerminateExisting as i32
            {
                self.signal_run_linked(&key, signal, req.links.clone())?;
                return Ok(StartWorkflowExecutionResponse {
                    run_id: key.run_id,
                    started: false,
                    ..Default::default()
                });
            }
        }
        let start = StartWorkflowExecutionRequest {
            namespace: req.namespace,
            workflow_id: req.workflow_id,
            workflow_type: req.workflow_type,
            task_queue: req.task_queue,
            input: req.input,
            workflow_execution_timeout: req.workflow_execution_timeout,
            workflow_run_timeout: req.workflow_run_timeout,
            workflow_task_timeout: req.workflow_task_timeout,
            identity: req.identity,
            request_id: req.request_id,
            workflow_id_reuse_policy: reuse,
            workflow_id_conflict_policy: conflict,
            retry_policy: req.retry_policy,
            cron_schedule: req.cron_schedule,
            memo: req.memo,
            search_attributes: req.search_attributes,
            header: req.header,
            workflow_start_delay: req.workflow_start_delay,
            user_metadata: req.user_metadata,
            priority: req.priority,
            links: req.links,
            ..Default::default()
        };
        self.start_workflow(start, Some(signal))
    }

    pub(crate) fn start_workflow(
        &mut self,
        mut req: StartWorkflowExecutionRequest,
        signal: Option<WorkflowExecutionSignaledEventAttributes>,
    ) -> Result<StartWorkflowExecutionResponse> {
        self.check_namespace(&req.namespace)?;
        validate_start(&req, &self.callback_addresses)?;
        self.check_owned(&req.namespace, &req.workflow_id)?;
        if let Some(attrs) = &req.search_attributes {
            crate::visibility::search_attributes::validate(
                &self.custom_search_attributes(&req.namespace),
                attrs,
            )
            .map_err(Error::InvalidArgument)?;
        }
        if req.request_id.is_empty() {
            req.request_id = uuid::Uuid::new_v4().to_string();
        }
        // Set when an existing run is terminated for this start: the new run's id, named in
        // the terminated run's details.
        let mut new_run_id = None;
        if let Some(run_id) = self.current_run_id(&req.namespace, &req.workflow_id)? {
            let key = RunKey {
                namespace: req.namespace.clone(),
                workflow_id: req.workflow_id.clone(),
                run_id: run_id.clone(),
            };
            let existing = self.run(&key)?;
            let already = |message: String| Error::AlreadyStarted {
                message,
                workflow_id: req.workflow_id.clone(),
                run_id: run_id.clone(),
                start_request_id: existing.ms.start_request_id.clone(),
                first_execution_run_id: existing
                    .ms
                    .started
                    .as_ref()
                    .map(|s| s.first_execution_run_id.clone())
                    .unwrap_or_default(),
            };
            let first_execution_run_id = existing
                .ms
                .started
                .as_ref()
                .map(|s| s.first_execution_run_id.clone())
                .unwrap_or_default();
            if signal.is_none() && existing.ms.start_request_id == req.request_id {
                return Ok(StartWorkflowExecutionResponse {
                    run_id,
                    first_execution_run_id,
                    started: true,
                    status: existing.ms.status,
                    link: Some(event_link(&key, 1, EventType::WorkflowExecutionStarted)),
                    ..Default::default()
                });
            }
            // A retried start that attached to this run the first time.
            if signal.is_none() && existing.ms.attached_request_ids.contains(&req.request_id) {
                return Ok(StartWorkflowExecutionResponse {
                    run_id,
                    first_execution_run_id,
                    started: false,
                    status: existing.ms.status,
                    link: Some(request_link(
                        &key,
                        &req.request_id,
                        EventType::WorkflowExecutionOptionsUpdated,
                    )),
                    ..Default::default()
                });
            }
            if existing.is_open() {
                let conflict = req.workflow_id_conflict_policy;
                #[allow(deprecated)]
                let terminate = conflict == WorkflowIdConflictPolicy::TerminateExisting as i32
                    || req.workflow_id_reuse_policy
                        == WorkflowIdReusePolicy::TerminateIfRunning as i32;
                if conflict == WorkflowIdConflictPolicy::UseExisting as i32 {
                    if let Some(signal) = signal {
                        self.signal_run(&key, signal)?;
                    }
                    let link = self.attach_to_running(&key, &req)?;
                    return Ok(StartWorkflowExecutionResponse {
                        run_id,
                        first_execution_run_id,
                        started: false,
                        status: WorkflowExecutionStatus::Running as i32,
                        link,
                        ..Default::default()
                    });
                }
                if !terminate {
                    return Err(already(format!(
                        "Workflow execution is already running. WorkflowId: {}, RunId: {run_id}.",
                        req.workflow_id
                    )));
                }
                new_run_id = Some(clock::run_id_at(self.now()));
                let details = json_string_payloads(&format!(
                    "terminated by new runID: {}",
                    new_run_id.as_deref().unwrap_or_default()
                ));
                self.terminate_run(
                    &key,
                    "TerminateIfRunning WorkflowIdReusePolicy",
                    details,
                    "history-service",
                )?;
            } else {
                let reuse = req.workflow_id_reuse_policy;
                let finished = |how: &str, policy: &str| {
                    already(format!(
                        "Workflow execution already finished{how}. WorkflowId: {}, RunId: \
                         {run_id}. Workflow Id reuse policy: {policy}.",
                        req.workflow_id
                    ))
                };
                if reuse == WorkflowIdReusePolicy::RejectDuplicate as i32 {
                    return Err(finished("", "reject duplicate workflow Id"));
                }
                if reuse == WorkflowIdReusePolicy::AllowDuplicateFailedOnly as i32
                    && !is_closed_unsuccessfully(existing.ms.status)
                {
                    return Err(finished(
                        " successfully",
                        "allow duplicate workflow Id if last run failed",
                    ));
                }
            }
        }
        let (eager, identity) = (req.request_eager_execution, req.identity.clone());
        let key = self.create_run(req, signal, new_run_id);
        let status = self.run(&key)?.ms.status;
        // Eager start: the starter's own worker takes the first workflow task from the reply,
        // saving a poll round trip (no task yet when the run waits for a delay or cron time).
        let eager_workflow_task = if eager {
            self.start_eagerly(&key, &identity)?
        } else {
            None
        };
        Ok(StartWorkflowExecutionResponse {
            first_execution_run_id: key.run_id.clone(),
            link: Some(event_link(&key, 1, EventType::WorkflowExecutionStarted)),
            run_id: key.run_id,
            started: true,
            status,
            eager_workflow_task,
        })
    }

    /// Starts the new run's first workflow task for the caller (its queued copy is then stale
    /// and skipped by pollers).
    fn start_eagerly(
        &mut self,
        key: &RunKey,
        identity: &str,
    ) -> Result<
        Option<
            temporalio_protos::temporal::api::workflowservice::v1::PollWorkflowTaskQueueResponse,
        >,
    > {
        let Some(wft) = self.run(key)?.ms.workflow_task.clone() else {
            return Ok(None);
        };
        self.start_workflow_task(
            TaskRef::Workflow {
                key: key.clone(),
                scheduled_event_id: wft.scheduled_event_id,
                attempt: wft.attempt,
            },
            identity,
            false,
        )
    }

    fn create_run(
        &mut self,
        req: StartWorkflowExecutionRequest,
        signal: Option<WorkflowExecutionSignaledEventAttributes>,
        run_id: Option<String>,
    ) -> RunKey {
        let run_id = run_id.unwrap_or_else(|| clock::run_id_at(self.now()));
        let backoff = dur_millis(&req.workflow_start_delay);
        let task_queue = req.task_queue.clone().map(|tq| TaskQueue {
            name: tq.name,
            kind: TaskQueueKind::Normal as i32,
            normal_name: String::new(),
        });
        let mut started = WorkflowExecutionStartedEventAttributes {
            workflow_id: req.workflow_id.clone(),
            workflow_type: req.workflow_type.clone(),
            task_queue,
            input: req.input.clone(),
            workflow_execution_timeout: req.workflow_execution_timeout,
            workflow_run_timeout: req.workflow_run_timeout,
            workflow_task_timeout: req.workflow_task_timeout,
            initiator: ContinueAsNewInitiator::Unspecified as i32,
            original_execution_run_id: run_id.clone(),
            identity: req.identity.clone(),
            first_execution_run_id: run_id.clone(),
            retry_policy: req.retry_policy.clone(),
            attempt: 1,
            first_workflow_task_backoff: (backoff > 0).then(|| dur_from_millis(backoff)),
            memo: req.memo.clone(),
            search_attributes: req.search_attributes.clone(),
            header: req.header.clone(),
            priority: req.priority.clone(),
            cron_schedule: req.cron_schedule.clone(),
            continued_failure: req.continued_failure.clone(),
            last_completion_result: req.last_completion_result.clone(),
            versioning_override: req.versioning_override.clone(),
            completion_callbacks: req.completion_callbacks.clone(),
            ..Default::default()
        };
        normalize_timeouts(&mut started, self.now());
        let first = FirstEvents {
            signal,
            user_metadata: req.user_metadata,
            links: req.links,
        };
        self.create_run_from(&req.namespace, &run_id, &req.request_id, started, first)
    }

    /// Creates a run from its complete `WorkflowExecutionStarted` attributes (timeouts already
    /// normalised) and schedules its first workflow task, or the backoff before it.
    pub(crate) fn create_run_from(
        &mut self,
        namespace: &str,
        run_id: &str,
        request_id: &str,
        mut started: WorkflowExecutionStartedEventAttributes,
        first: FirstEvents,
    ) -> RunKey {
        let key = RunKey {
            namespace: namespace.to_string(),
            workflow_id: started.workflow_id.clone(),
            run_id: run_id.to_string(),
        };
        let now = self.now();
        // A cron run waits for its schedule's next time (retries and cron successors already
        // carry their backoff).
        let waits_for_cron = started.initiator == ContinueAsNewInitiator::Unspecified as i32
            || started.initiator == ContinueAsNewInitiator::Workflow as i32;
        if waits_for_cron
            && !started.cron_schedule.is_empty()
            && let Some(next) = super::chain::cron_backoff(&started.cron_schedule, now)
        {
            let backoff = dur_millis(&started.first_workflow_task_backoff).max(next);
            started.first_workflow_task_backoff = Some(dur_from_millis(backoff));
        }
        let backoff = dur_millis(&started.first_workflow_task_backoff);
        let run_timeout = dur_millis(&started.workflow_run_timeout);
        let mut run_expiration = if run_timeout > 0 {
            now + backoff + run_timeout
        } else {
            0
        };
        let execution_expiration = opt_ts_millis(&started.workflow_execution_expiration_time);
        if execution_expiration > 0
            && (run_expiration == 0 || execution_expiration < run_expiration)
        {
            run_expiration = execution_expiration;
        }
        let ms = MutableState {
            namespace: key.namespace.clone(),
            workflow_id: key.workflow_id.clone(),
            run_id: key.run_id.clone(),
            status: WorkflowExecutionStatus::Running as i32,
            next_event_id: 1,
            start_time: Some(ts_from_millis(now)),
            execution_time: Some(ts_from_millis(now + backoff)),
            start_request_id: if request_id.is_empty() {
                uuid::Uuid::new_v4().to_string()
            } else {
                request_id.to_string()
            },
            started: Some(Box::new(started.clone())),
            memo: started.memo.clone(),
            search_attributes: started.search_attributes.clone(),
            run_expiration_time: (run_expiration > 0).then(|| ts_from_millis(run_expiration)),
            versioning: super::deployments::initial_versioning(&started).map(Box::new),
            callbacks: super::nexus::callbacks::records(&started.completion_callbacks, "", now),
            ..Default::default()
        };
        let mut run = Run::new(ms);
        run.append_with_metadata(
            now,
            Attributes::WorkflowExecutionStartedEventAttributes(started),
            first.user_metadata,
        );
        if let Some(event) = run.staged.last_mut() {
            event.links = first.links.clone();
        }
        if let Some(signal) = first.signal {
            // A retried signal-with-start finds the signal applied, by its request id.
            if !signal.request_id.is_empty() {
                run.ms.signal_request_ids.push(signal.request_id.clone());
            }
            run.ms.signals_received += 1;
            run.append(
                now,
                Attributes::WorkflowExecutionSignaledEventAttributes(signal),
            );
            if let Some(event) = run.staged.last_mut() {
                event.links = first.links.clone();
            }
        }
        run.changes.push(ChangeKind::Started);
        self.runs.insert(key.clone(), Box::new(run));
        self.current.insert(
            (key.namespace.clone(), key.workflow_id.clone()),
            key.run_id.clone(),
        );
        if backoff > 0 {
            self.push_timer(
                now + backoff,
                TimerTask::WorkflowBackoff { key: key.clone() },
            );
        } else {
            self.schedule_workflow_task(&key, 1);
        }
        if run_expiration > 0 {
            self.push_timer(
                run_expiration,
                TimerTask::WorkflowRunTimeout { key: key.clone() },
            );
        }
        self.changed(&key);
        key
    }

    pub(crate) fn workflow_backoff_fired(&mut self, key: &RunKey) {
        let Some(run) = self.runs.get(key) else {
            return;
        };
        if !run.is_open()
            || run.ms.workflow_task.is_some()
            || run.ms.last_completed_wft_started_id > 0
        {
            return;
        }
        self.schedule_workflow_task(key, 1);
        self.changed(key);
    }

    pub(crate) fn workflow_run_timed_out(&mut self, key: &RunKey) {
        let now = self.now();
        let Some(run) = self.runs.get_mut(key) else {
            return;
        };
        if !run.is_open() {
            return;
        }
        let due = opt_ts_millis(&run.ms.run_expiration_time);
        if due == 0 {
            return;
        }
        if due > now {
            self.push_timer(due, TimerTask::WorkflowRunTimeout { key: key.clone() });
            return;
        }
        run.flush_buffer();
        let expiration = run
            .ms
            .started
            .as_ref()
            .map(|s| opt_ts_millis(&s.workflow_execution_expiration_time))
            .unwrap_or(0);
        let failure = Failure {
            message: "workflow run timed out".into(),
            failure_info: Some(failure::FailureInfo::TimeoutFailureInfo(
                TimeoutFailureInfo {
                    timeout_type: TimeoutType::StartToClose as i32,
                    last_heartbeat_details: None,
                },
            )),
            ..Default::default()
        };
        let (retry_state, next) = if expiration > 0 && now >= expiration {
            (RetryState::Timeout, None)
        } else {
            match super::chain::retry(&run.ms, &failure, now) {
                Ok(next) => (RetryState::InProgress, Some(next)),
                Err(state) => (
                    state,
                    super::chain::cron(&run.ms, None, Some(&failure), now),
                ),
            }
        };
        run.append(
            now,
            Attributes::WorkflowExecutionTimedOutEventAttributes(
                WorkflowExecutionTimedOutEventAttributes {
                    retry_state: retry_state as i32,
                    new_execution_run_id: next
                        .as_ref()
                        .map(|n| n.run_id.clone())
                        .unwrap_or_default(),
                },
            ),
        );
        self.close_run(key, WorkflowExecutionStatus::TimedOut, next);
        self.changed(key);
    }

    /// Marks a run closed after its close event was appended, then settles what the close
    /// implies: children's parent-close policies, the report to a parent, and the run that
    /// continues this one, if any.
    pub(crate) fn close_run(
        &mut self,
        key: &RunKey,
        status: WorkflowExecutionStatus,
        continuation: Option<super::chain::Continuation>,
    ) {
        let now = self.now();
        let Some(run) = self.runs.get_mut(key) else {
            return;
        };
        run.ms.status = status as i32;
        run.ms.close_time = Some(ts_from_millis(now));
        run.ms.workflow_task = None;
        run.ms.activities.clear();
        run.ms.timers.clear();
        run.ms.buffered.clear();
        let carried = run.abort_updates(continuation.is_some());
        run.changes.push(ChangeKind::Closed {
            status: status as i32,
        });
        self.redirect_queries_after_close(key);
        // Marked before the continuation starts, so the closed run's record goes first and
        // replay sees the new run last.
        self.changed(key);
        self.arm_retention(key);
        self.after_close(key, continuation.is_some());
        self.schedule_run_closed(key, continuation.is_some());
        if let Some(next) = continuation {
            let next_key = RunKey {
                run_id: next.run_id.clone(),
                ..key.clone()
            };
            self.start_continuation(key, next);
            self.carry_updates(key, &next_key, carried);
        }
    }

    /// Updates not yet accepted when a run continued as new go on to the next run (their
    /// callers follow them there), as Temporal retries them on the new run.
    fn carry_updates(
        &mut self,
        from: &RunKey,
        to: &RunKey,
        carried: Vec<(String, super::state::UpdateInfo)>,
    ) {
        if carried.is_empty() {
            return;
        }
        let Some(next) = self.runs.get_mut(to) else {
            return;
        };
        let ids: Vec<String> = carried.iter().map(|(id, _)| id.clone()).collect();
        for (id, info) in carried {
            next.ms.updates.entry(id).or_insert(info);
        }
        next.updates_dirty = true;
        self.schedule_workflow_task(to, 1);
        self.changed(to);
        if let Some(prev) = self.runs.get_mut(from) {
            for id in ids {
                if let Some(info) = prev.ms.updates.get_mut(&id) {
                    info.aborted_by_close = false;
                    info.moved_to_run_id = to.run_id.clone();
                }
            }
            prev.updates_dirty = true;
        }
    }

    pub(crate) fn terminate_run(
        &mut self,
        key: &RunKey,
        reason: &str,
        details: Option<Payloads>,
        identity: &str,
    ) -> Result<()> {
        let now = self.now();
        let run = self.run_mut(key)?;
        if !run.is_open() {
            return Err(Error::NotFound(
                "workflow execution already completed".into(),
            ));
        }
        // No history to close (a namespace's deletion terminates every execution).
        if run.is_standalone_activity() {
            return self.terminate_activity_execution_now(key, reason, identity);
        }
        if run.is_standalone_nexus() {
            return self.terminate_nexus_execution_now(key, reason, identity);
        }
        run.flush_buffer();
        run.append(
            now,
            Attributes::WorkflowExecutionTerminatedEventAttributes(
                WorkflowExecutionTerminatedEventAttributes {
                    reason: reason.to_string(),
                    details,
                    identity: identity.to_string(),
                },
            ),
        );
        self.close_run(key, WorkflowExecutionStatus::Terminated, None);
        self.changed(key);
        Ok(())
    }

    /// Re-creates the queue entries and timers an open run needs (used after a restart).
    pub(crate) fn rearm_run(&mut self, key: &RunKey) {
        // Read once: a frozen run is decoded for the moment and stays frozen.
        let Some(ms) = self.runs.state_copy(key) else {
            return;
        };
        if ms.standalone_activity.is_some() {
            for activity in ms.activities.values() {
                self.arm_activity(key, activity);
            }
            return;
        }
        if ms.standalone_nexus.is_some() {
            return self.rearm_nexus_operations(key, &ms);
        }
        let tq = super::run::task_queue_of(&ms);
        if let Some(wft) = &ms.workflow_task {
            if wft.started_event_id == 0 {
                let task = TaskRef::Workflow {
                    key: key.clone(),
                    scheduled_event_id: wft.scheduled_event_id,
                    attempt: wft.attempt,
                };
                if wft.sticky {
                    // The sticky worker may be gone after a restart; the sticky timeout
                    // moves the task to the normal queue if nobody takes it.
                    let version = self.routed_version_with(
                        key,
                        ms.versioning.as_deref(),
                        &tq,
                        QueueKind::Workflow,
                    );
                    let sticky =
                        QueueKey::new(&key.namespace, &ms.sticky_task_queue, QueueKind::Workflow)
                            .for_version(version);
                    self.push_task(sticky, task);
                    let wait = dur_millis(&ms.sticky_schedule_to_start_timeout).max(1000);
                    self.push_timer(
                        opt_ts_millis(&wft.scheduled_time) + wait,
                        TimerTask::StickyScheduleToStart {
                            key: key.clone(),
                            scheduled_event_id: wft.scheduled_event_id,
                            attempt: wft.attempt,
                        },
                    );
                } else {
                    let versioning = ms.versioning.as_deref();
                    let queue = self.run_queue_with(key, versioning, &tq, QueueKind::Workflow);
                    self.push_task(queue, task);
                }
            } else {
                let due =
                    opt_ts_millis(&wft.started_time) + dur_millis(&wft.start_to_close_timeout);
                self.push_timer(
                    due,
                    TimerTask::WorkflowTaskTimeout {
                        key: key.clone(),
                        scheduled_event_id: wft.scheduled_event_id,
                        attempt: wft.attempt,
                    },
                );
            }
        } else if ms.last_completed_wft_started_id == 0 {
            self.push_timer(
                opt_ts_millis(&ms.execution_time),
                TimerTask::WorkflowBackoff { key: key.clone() },
            );
        }
        if let Some(t) = &ms.run_expiration_time {
            self.push_timer(
                clock::ts_millis(t),
                TimerTask::WorkflowRunTimeout { key: key.clone() },
            );
        }
        for timer in &ms.timers {
            self.push_timer(
                opt_ts_millis(&timer.fire_time),
                TimerTask::UserTimer {
                    key: key.clone(),
                    timer_id: timer.timer_id.clone(),
                    started_event_id: timer.started_event_id,
                },
            );
        }
        for activity in ms.activities.values() {
            self.arm_activity(key, activity);
        }
        self.rearm_nexus_operations(key, &ms);
    }
}

/// Applies Temporal's timeout rules: run timeout defaults to (and is capped by) the execution
/// timeout; the task timeout defaults to 10 s and is capped at 120 s and by the run timeout.
/// Also sets the chain-wide expiration time when there is an execution timeout.
pub(crate) fn normalize_timeouts(started: &mut WorkflowExecutionStartedEventAttributes, now: i64) {
    let exec_timeout = dur_millis(&started.workflow_execution_timeout);
    let mut run_timeout = dur_millis(&started.workflow_run_timeout);
    if run_timeout == 0 || (exec_timeout > 0 && run_timeout > exec_timeout) {
        run_timeout = exec_timeout;
    }
    let mut task_timeout = dur_millis(&started.workflow_task_timeout);
    if task_timeout == 0 {
        task_timeout = DEFAULT_WORKFLOW_TASK_TIMEOUT_MS;
    }
    task_timeout = task_timeout.min(MAX_WORKFLOW_TASK_TIMEOUT_MS);
    if run_timeout > 0 {
        task_timeout = task_timeout.min(run_timeout);
    }
    started.workflow_execution_timeout = (exec_timeout > 0).then(|| dur_from_millis(exec_timeout));
    started.workflow_run_timeout = (run_timeout > 0).then(|| dur_from_millis(run_timeout));
    started.workflow_task_timeout = Some(dur_from_millis(task_timeout));
    if exec_timeout > 0 && started.workflow_execution_expiration_time.is_none() {
        started.workflow_execution_expiration_time = Some(ts_from_millis(now + exec_timeout));
    }
}
