//! The workflow-task state machine: scheduling, dispatch to pollers, completion (with the
//! unhandled-command rule), failure, start-to-close timeouts and transient retries.

use std::sync::Arc;

use temporalio_protos::temporal::api::enums::v1::{
    TaskQueueKind, TimeoutType, WorkflowTaskFailedCause,
};
use temporalio_protos::temporal::api::failure::v1::{Failure, ServerFailureInfo, failure};
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_protos::temporal::api::history::v1::{
    History, HistoryEvent, TimerFiredEventAttributes, WorkflowTaskCompletedEventAttributes,
    WorkflowTaskFailedEventAttributes, WorkflowTaskScheduledEventAttributes,
    WorkflowTaskStartedEventAttributes, WorkflowTaskTimedOutEventAttributes,
};
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflowservice::v1::{
    PollWorkflowTaskQueueRequest, PollWorkflowTaskQueueResponse,
    RespondWorkflowTaskCompletedRequest, RespondWorkflowTaskCompletedResponse,
    RespondWorkflowTaskFailedRequest,
};

use super::clock::{self, dur_millis, opt_ts_millis};
use super::commands::{CommandError, Effect};
use super::matching::{QueueKey, QueueKind, TaskRef};
use super::state::WorkflowTaskInfo;
use super::timers::TimerTask;
use super::{ChangeKind, Core, Engine, Error, Result, RunKey, events};

/// Sticky schedule-to-start timeout when the worker names none.
const DEFAULT_STICKY_TIMEOUT_MS: i64 = 10_000;

#[allow(clippy::large_enum_variant)] // short-lived; never stored
pub(crate) enum WftEnd {
    Failed {
        cause: WorkflowTaskFailedCause,
        failure: Option<Failure>,
        identity: String,
    },
    TimedOut,
}

impl Engine {
    pub async fn poll_workflow_task(
        self: &Arc<Self>,
        req: PollWorkflowTaskQueueRequest,
        deadline: tokio::time::Instant,
        forwarded: bool,
    ) -> Result<PollWorkflowTaskQueueResponse> {
        let queue_name = self.poll_target(&req.namespace, &req.task_queue).await?;
        let is_sticky = req
            .task_queue
            .as_ref()
            .is_some_and(|t| t.kind == TaskQueueKind::Sticky as i32);
        let queue = QueueKey::new(&req.namespace, &queue_name, QueueKind::Workflow)
            .for_version(super::deployments::poller_version(&req.deployment_options));
        let poller = super::Poller::new(&req.identity, forwarded, &req.worker_instance_key);
        let resp = self
            .poll_queue(queue, &poller, deadline, |core, task| {
                core.start_workflow_task(task, &poller.identity, is_sticky)
            })
            .await?;
        Ok(resp.unwrap_or_default())
    }

    pub async fn complete_workflow_task(
        &self,
        req: RespondWorkflowTaskCompletedRequest,
    ) -> Result<RespondWorkflowTaskCompletedResponse> {
        self.transact(|core| core.complete_workflow_task(req)).await
    }

    pub async fn fail_workflow_task(&self, req: RespondWorkflowTaskFailedRequest) -> Result<()> {
        self.transact(|core| {
            let (key, token) = core.tokens.check(&req.namespace, &req.task_token)?;
            core.check_started_wft(&key, token.scheduled_event_id, token.attempt)?;
            let cause = WorkflowTaskFailedCause::try_from(req.cause)
                .unwrap_or(WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure);
            core.end_workflow_task(
                &key,
                WftEnd::Failed {
                    cause,
                    failure: req.failure,
                    identity: req.identity,
                },
            );
            core.changed(&key);
            Ok(())
        })
        .await
    }
}

pub(crate) fn server_failure(message: &str) -> Failure {
    Failure {
        message: message.to_string(),
        failure_info: Some(failure::FailureInfo::ServerFailureInfo(ServerFailureInfo {
            non_retryable: false,
        })),
        ..Default::default()
    }
}

impl Core {
    /// Schedules a workflow task unless one is pending or running. Attempts above 1 are
    /// transient: their events stay out of history until the task completes.
    pub(crate) fn schedule_workflow_task(&mut self, key: &RunKey, attempt: i32) {
        let now = self.now();
        // Called for every new event: most calls find a task already pending.
        let Some(run) = self.runs.get(key) else {
            return;
        };
        if !run.is_open() || run.ms.workflow_task.is_some() {
            return;
        }
        let tq = run.task_queue();
        let own_version = run
            .ms
            .versioning
            .as_ref()
            .and_then(|v| v.version.as_ref())
            .map_or(String::new(), super::deployments::canonical_of);
        let version = self.routed_version(key, &tq, QueueKind::Workflow);
        let sticky_version_matches = own_version == version;
        let Some(run) = self.runs.get_mut(key) else {
            return;
        };
        let timeout = run
            .ms
            .started
            .as_ref()
            .and_then(|s| s.workflow_task_timeout);
        let timeout = super::retry::workflow_task_timeout(timeout, attempt, jitter_seed(key));
        let transient = attempt > 1;
        let sticky_queue = QueueKey::new(
            &key.namespace,
            &run.ms.sticky_task_queue,
            QueueKind::Workflow,
        )
        .for_version(version.clone());
        // A run moving to another version leaves its sticky worker (of the old version).
        let sticky = !transient
            && !run.ms.sticky_task_queue.is_empty()
            && sticky_version_matches
            && self.matching.is_live(&sticky_queue, now);
        tracing::debug!(workflow_id = %key.workflow_id, attempt, sticky, sticky_queue = %run.ms.sticky_task_queue, "scheduling workflow task");
        let event_queue = if sticky {
            TaskQueue {
                name: run.ms.sticky_task_queue.clone(),
                kind: TaskQueueKind::Sticky as i32,
                normal_name: tq.clone(),
            }
        } else {
            normal_queue(&tq)
        };
        let scheduled_event_id = if transient {
            run.ms.next_event_id
        } else {
            run.append(
                now,
                Attributes::WorkflowTaskScheduledEventAttributes(
                    WorkflowTaskScheduledEventAttributes {
                        task_queue: Some(event_queue),
                        start_to_close_timeout: timeout,
                        attempt,
                    },
                ),
            )
        };
        run.ms.workflow_task = Some(Box::new(WorkflowTaskInfo {
            scheduled_event_id,
            attempt,
            scheduled_time: Some(clock::ts_from_millis(now)),
            transient,
            start_to_close_timeout: timeout,
            sticky,
            ..Default::default()
        }));
        run.changes.push(ChangeKind::WorkflowTaskScheduled);
        let task = TaskRef::Workflow {
            key: key.clone(),
            scheduled_event_id,
            attempt,
        };
        if sticky {
            let wait = match dur_millis(&run.ms.sticky_schedule_to_start_timeout) {
                0 => DEFAULT_STICKY_TIMEOUT_MS,
                ms => ms,
            };
            self.push_task(sticky_queue, task);
            self.push_timer(
                now + wait,
                TimerTask::StickyScheduleToStart {
                    key: key.clone(),
                    scheduled_event_id,
                    attempt,
                },
            );
        } else {
            self.push_task(
                QueueKey::new(&key.namespace, &tq, QueueKind::Workflow).for_version(version),
                task,
            );
        }
    }

    /// Adds an event that did not come from a command (signal, timer fired, activity outcome,
    /// cancel request) and makes sure a workflow task will see it.
    pub(crate) fn add_event(&mut self, key: &RunKey, attrs: Attributes) {
        self.add_events(key, vec![attrs]);
    }

    /// Like [`Core::add_event`] for several events that belong together.
    pub(crate) fn add_events(&mut self, key: &RunKey, attrs: Vec<Attributes>) {
        let now = self.now();
        let events = attrs
            .into_iter()
            .map(|a| events::new_event(a, now))
            .collect();
        self.add_history_events(key, events);
    }

    /// [`Core::add_events`] for events built whole (with links, say).
    pub(crate) fn add_history_events(&mut self, key: &RunKey, events: Vec<HistoryEvent>) {
        let Some(run) = self.runs.get_mut(key) else {
            return;
        };
        if run
            .ms
            .workflow_task
            .as_ref()
            .is_some_and(|w| w.transient && w.started_event_id == 0)
        {
            // New events turn a scheduled retry into a regular workflow task.
            run.ms.workflow_task = None;
        }
        run.ms.buffered.extend(events);
        if !run.wft_started() {
            run.flush_buffer();
        }
        self.schedule_workflow_task(key, 1);
    }

    /// Hands a workflow task to a poller. A poller of a sticky queue gets only the events after
    /// the last completed task (its worker has the rest cached); others get full history.
    pub(crate) fn start_workflow_task(
        &mut self,
        task: TaskRef,
        identity: &str,
        from_sticky: bool,
    ) -> Result<Option<PollWorkflowTaskQueueResponse>> {
        let now = self.now();
        let (key, scheduled_event_id, attempt) = match task {
            TaskRef::Workflow {
                key,
                scheduled_event_id,
                attempt,
            } => (key, scheduled_event_id, attempt),
            TaskRef::Query { key, query_id } => return Ok(self.start_query_task(&key, &query_id)),
            TaskRef::Activity { .. }
            | TaskRef::Nexus { .. }
            | TaskRef::Inbound { .. }
            | TaskRef::Ready(_) => {
                return Ok(None);
            }
        };
        let target_version_changed = self.target_version_changed(&key);
        let Some(run) = self.runs.get_mut(&key) else {
            return Ok(None);
        };
        let Some(wft) = run.ms.workflow_task.clone() else {
            return Ok(None);
        };
        if !run.is_open()
            || wft.scheduled_event_id != scheduled_event_id
            || wft.attempt != attempt
            || wft.started_event_id != 0
            || wft.sticky != from_sticky
        {
            return Ok(None);
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        let size = run.ms.history_size_bytes;
        // Histories at or past these sizes get `suggest_continue_as_new`, with the reasons.
        use temporalio_protos::temporal::api::enums::v1::SuggestContinueAsNewReason as Why;
        let reasons: Vec<i32> = [
            (
                size >= self.tuning.suggest_continue_as_new_bytes,
                Why::HistorySizeTooLarge,
            ),
            (
                run.ms.next_event_id >= self.tuning.suggest_continue_as_new_events,
                Why::TooManyHistoryEvents,
            ),
        ]
        .into_iter()
        .filter_map(|(over, why)| over.then_some(why as i32))
        .collect();
        let suggest = !reasons.is_empty();
        let started_event_id = if wft.transient {
            scheduled_event_id + 1
        } else {
            run.append(
                now,
                Attributes::WorkflowTaskStartedEventAttributes(
                    WorkflowTaskStartedEventAttributes {
                        scheduled_event_id,
                        identity: identity.to_string(),
                        request_id: request_id.clone(),
                        suggest_continue_as_new: suggest,
                        suggest_continue_as_new_reasons: reasons.clone(),
                        history_size_bytes: size,
                        target_worker_deployment_version_changed: target_version_changed,
                        ..Default::default()
                    },
                ),
            )
        };
        if let Some(w) = run.ms.workflow_task.as_mut() {
            w.started_event_id = started_event_id;
            w.started_time = Some(clock::ts_from_millis(now));
            w.identity = identity.to_string();
            w.request_id = request_id;
            w.history_size_bytes = size;
            w.suggest_continue_as_new_reasons = reasons;
            w.target_version_changed = target_version_changed;
        }
        tracing::debug!(workflow_id = %key.workflow_id, attempt, from_sticky, %identity, "workflow task started");
        crate::metrics::record_schedule_to_start(
            &key.namespace,
            &run.task_queue(),
            QueueKind::Workflow,
            now - opt_ts_millis(&wft.scheduled_time),
        );
        let queries = run.attach_waiting_queries(scheduled_event_id);
        let messages = run.deliver_updates(scheduled_event_id, started_event_id);
        let timeout = dur_millis(&wft.start_to_close_timeout);
        self.push_timer(
            now + timeout,
            TimerTask::WorkflowTaskTimeout {
                key: key.clone(),
                scheduled_event_id,
                attempt,
            },
        );
        self.changed(&key);
        let run = self.run(&key)?;
        let first = if from_sticky {
            run.ms.last_completed_wft_started_id + 1
        } else {
            1
        };
        let mut history: Vec<HistoryEvent> = run.events_from(first).collect();
        history.extend(transient_events(run.ms.workflow_task.as_deref()));
        let ms = &run.ms;
        Ok(Some(PollWorkflowTaskQueueResponse {
            task_token: self
                .tokens
                .issue(&key, scheduled_event_id, attempt, started_event_id, ""),
            workflow_execution: Some(run.execution()),
            workflow_type: ms.started.as_ref().and_then(|s| s.workflow_type.clone()),
            previous_started_event_id: ms.last_completed_wft_started_id,
            started_event_id,
            attempt,
            history: Some(History { events: history }),
            workflow_execution_task_queue: Some(normal_queue(&run.task_queue())),
            scheduled_time: wft.scheduled_time,
            started_time: Some(clock::ts_from_millis(now)),
            queries,
            messages,
            ..Default::default()
        }))
    }

    /// The running workflow task named by a token, or NOT_FOUND.
    pub(crate) fn check_started_wft(
        &self,
        key: &RunKey,
        scheduled_event_id: i64,
        attempt: i32,
    ) -> Result<WorkflowTaskInfo> {
        self.check_namespace(&key.namespace)?;
        let run = self.run(key)?;
        let not_found = || Error::NotFound("Workflow task not found.".into());
        if !run.is_open() {
            return Err(Error::NotFound(
                "Workflow execution already completed.".into(),
            ));
        }
        let wft = run.ms.workflow_task.clone().ok_or_else(not_found)?;
        if wft.scheduled_event_id != scheduled_event_id
            || wft.attempt != attempt
            || wft.started_event_id == 0
        {
            tracing::debug!(
                workflow_id = %key.workflow_id,
                token.scheduled_event_id = scheduled_event_id,
                token.attempt = attempt,
                current.scheduled_event_id = wft.scheduled_event_id,
                current.attempt = wft.attempt,
                current.started = wft.started_event_id != 0,
                "workflow task named by a token is not the running one"
            );
            return Err(not_found());
        }
        Ok(*wft)
    }

    fn complete_workflow_task(
        &mut self,
        req: RespondWorkflowTaskCompletedRequest,
    ) -> Result<RespondWorkflowTaskCompletedResponse> {
        let now = self.now();
        let (key, token) = self.tokens.check(&req.namespace, &req.task_token)?;
        if !token.query_id.is_empty() {
            return Err(Error::InvalidArgument(
                "A query task token cannot complete a workflow task.".into(),
            ));
        }
        let wft = self.check_started_wft(&key, token.scheduled_event_id, token.attempt)?;
        let has_close = req.commands.iter().any(super::commands::is_close_command);
        if has_close && !self.run(&key)?.ms.buffered.is_empty() {
            self.end_workflow_task(
                &key,
                WftEnd::Failed {
                    cause: WorkflowTaskFailedCause::UnhandledCommand,
                    failure: Some(server_failure("UnhandledCommand")),
                    identity: req.identity.clone(),
                },
            );
            self.changed(&key);
            return Err(Error::InvalidArgument("UnhandledCommand".into()));
        }
        let custom = self.custom_search_attributes(&key.namespace);
        let endpoints = self.endpoints_named_by(&req.commands);
        let run = self.run_mut(&key)?;
        let snapshot = (run.ms.clone(), run.staged.len(), run.changes.len());
        materialize_transient(run, &wft, now);
        // Where the run's next tasks go follows the worker that completed this one.
        let completed = super::deployments::completed_by(&req);
        run.ms.versioning = completed
            .next_state(run.ms.versioning.take().map(|v| *v))
            .map(Box::new);
        #[allow(deprecated)]
        let completed_id = run.append(
            now,
            Attributes::WorkflowTaskCompletedEventAttributes(completed.event(
                WorkflowTaskCompletedEventAttributes {
                    scheduled_event_id: wft.scheduled_event_id,
                    started_event_id: wft.started_event_id,
                    identity: req.identity.clone(),
                    binary_checksum: req.binary_checksum.clone(),
                    sdk_metadata: req.sdk_metadata.clone(),
                    metering_metadata: req.metering_metadata,
                    ..Default::default()
                },
            )),
        );
        run.ms.workflow_task = None;
        run.ms.last_completed_wft_started_id = wft.started_event_id;
        let point = super::reset::reset_point_of(&run.ms, &req, now);
        super::reset::add_reset_point(&mut run.ms, point, completed_id);
        match req
            .sticky_attributes
            .as_ref()
            .and_then(|a| a.worker_task_queue.as_ref().map(|q| (q, a)))
        {
            Some((queue, attrs)) if !queue.name.is_empty() => {
                run.ms.sticky_task_queue = queue.name.clone();
                run.ms.sticky_schedule_to_start_timeout = attrs.schedule_to_start_timeout;
            }
            _ => run.ms.sticky_task_queue.clear(),
        }
        let mut effects = Vec::new();
        let context = super::commands::TaskContext {
            key: &key,
            custom_search_attributes: &custom,
            nexus_endpoints: &endpoints,
            wtc_id: completed_id,
            now,
        };
        let outcome =
            super::commands::apply(run, context, &req.commands, &req.messages, &mut effects);
        let outcome = match outcome {
            Ok(o) => o,
            Err(CommandError {
                cause,
                message,
                terminate,
            }) => {
                let run = self.run_mut(&key)?;
                run.ms = snapshot.0;
                run.staged.truncate(snapshot.1);
                run.changes.truncate(snapshot.2);
                self.end_workflow_task(
                    &key,
                    WftEnd::Failed {
                        cause,
                        failure: Some(server_failure(&message)),
                        identity: req.identity,
                    },
                );
                self.changed(&key);
                if terminate {
                    self.terminate_run(&key, &message, None, "durin")?;
                }
                return Err(Error::InvalidArgument(message));
            }
        };
        let record = outcome.closed.is_none();
        let mut eager = Vec::new();
        for effect in effects {
            match effect {
                Effect::Task(queue, task) => {
                    let queue = self.run_queue(&key, &queue.name, queue.kind);
                    self.push_task(queue, task)
                }
                Effect::EagerActivity(queue, task) => eager.push((queue, task)),
                Effect::Timer(due, task) => self.push_timer(due, task),
                Effect::StartChild(id, attrs) => self.start_child(&key, &attrs, id, record),
                Effect::SignalExternal(id, attrs) => self.signal_external(&key, &attrs, id, record),
                Effect::CancelExternal(id, attrs) => self.cancel_external(&key, &attrs, id, record),
                Effect::NexusOperation(id) => self.dispatch_nexus_attempt(&key, id),
                Effect::NexusCancel(id) => self.nexus_cancel_requested(&key, id),
            }
        }
        let run = self.run_mut(&key)?;
        run.resolve_query_results(req.query_results);
        if let Some(status) = outcome.closed {
            self.close_run(&key, status, outcome.continuation);
        } else {
            run.reject_unanswered_updates(wft.scheduled_event_id);
            let flushed = run.flush_buffer();
            if flushed > 0
                || req.force_create_new_workflow_task
                || outcome.new_workflow_task
                || run.has_undelivered_updates()
            {
                self.schedule_workflow_task(&key, 1);
            }
            self.dispatch_waiting_queries(&key);
        }
        let activity_tasks = self.start_eager_activities(&key, eager, &req.identity);
        self.changed(&key);
        self.end_if_history_over_limit(&key)?;
        let workflow_task = if req.return_new_workflow_task {
            self.start_next_task_for(&key, &req.identity)?
        } else {
            None
        };
        Ok(RespondWorkflowTaskCompletedResponse {
            workflow_task,
            activity_tasks,
            ..Default::default()
        })
    }

    /// The workflow task a completion just scheduled, started for the completing worker (it
    /// asked for it with `return_new_workflow_task`, as SDKs do to keep a workflow task going
    /// while local activities run). The copy in the task queue is then stale and skipped.
    fn start_next_task_for(
        &mut self,
        key: &RunKey,
        identity: &str,
    ) -> Result<Option<PollWorkflowTaskQueueResponse>> {
        let Some(next) = self
            .runs
            .get(key)
            .filter(|r| r.is_open())
            .and_then(|r| r.ms.workflow_task.clone())
            .filter(|w| w.started_event_id == 0)
        else {
            return Ok(None);
        };
        let task = TaskRef::Workflow {
            key: key.clone(),
            scheduled_event_id: next.scheduled_event_id,
            attempt: next.attempt,
        };
        self.start_workflow_task(task, identity, next.sticky)
    }

    /// Ends the running workflow task without completion and schedules the next attempt.
    pub(crate) fn end_workflow_task(&mut self, key: &RunKey, end: WftEnd) {
        let now = self.now();
        let Some(run) = self.runs.get_mut(key) else {
            return;
        };
        let Some(wft) = run.ms.workflow_task.take() else {
            return;
        };
        let unhandled = matches!(
            end,
            WftEnd::Failed {
                cause: WorkflowTaskFailedCause::UnhandledCommand,
                ..
            }
        );
        // A transient attempt leaves no trace in history, except for the unhandled-command
        // rejection, which must be visible to the worker's next replay.
        if !wft.transient || unhandled {
            materialize_transient(run, &wft, now);
            match end {
                WftEnd::Failed {
                    cause,
                    failure,
                    identity,
                } => {
                    run.append(
                        now,
                        Attributes::WorkflowTaskFailedEventAttributes(
                            WorkflowTaskFailedEventAttributes {
                                scheduled_event_id: wft.scheduled_event_id,
                                started_event_id: wft.started_event_id,
                                cause: cause as i32,
                                failure,
                                identity,
                                ..Default::default()
                            },
                        ),
                    );
                }
                WftEnd::TimedOut => {
                    run.append(
                        now,
                        Attributes::WorkflowTaskTimedOutEventAttributes(
                            WorkflowTaskTimedOutEventAttributes {
                                scheduled_event_id: wft.scheduled_event_id,
                                started_event_id: wft.started_event_id,
                                timeout_type: TimeoutType::StartToClose as i32,
                            },
                        ),
                    );
                }
            }
        }
        run.requeue_attached_queries();
        run.redeliver_updates();
        let flushed = run.flush_buffer();
        let attempt = if unhandled || flushed > 0 {
            1
        } else {
            wft.attempt + 1
        };
        self.schedule_workflow_task(key, attempt);
    }

    pub(crate) fn workflow_task_timed_out(
        &mut self,
        key: &RunKey,
        scheduled_event_id: i64,
        attempt: i32,
    ) {
        // Mostly stale (the task was answered): a frozen run is not kept thawed for it.
        let due = {
            let Some(run) = self.runs.peek(key) else {
                return;
            };
            let Some(wft) = run.ms.workflow_task.as_ref() else {
                return;
            };
            if !run.is_open()
                || wft.scheduled_event_id != scheduled_event_id
                || wft.attempt != attempt
                || wft.started_event_id == 0
            {
                return;
            }
            opt_ts_millis(&wft.started_time) + dur_millis(&wft.start_to_close_timeout)
        };
        if due > self.now() {
            self.push_timer(
                due,
                TimerTask::WorkflowTaskTimeout {
                    key: key.clone(),
                    scheduled_event_id,
                    attempt,
                },
            );
            return;
        }
        tracing::debug!(workflow_id = %key.workflow_id, attempt, "workflow task timed out");
        self.end_workflow_task(key, WftEnd::TimedOut);
        self.changed(key);
    }

    pub(crate) fn fire_user_timer(&mut self, key: &RunKey, timer_id: &str, started_event_id: i64) {
        let now = self.now();
        let Some(run) = self.runs.get_mut(key) else {
            return;
        };
        let Some(timer) = run.ms.timer(timer_id) else {
            return;
        };
        if !run.is_open() || timer.started_event_id != started_event_id {
            return;
        }
        let due = opt_ts_millis(&timer.fire_time);
        if due > now {
            self.push_timer(
                due,
                TimerTask::UserTimer {
                    key: key.clone(),
                    timer_id: timer_id.into(),
                    started_event_id,
                },
            );
            return;
        }
        run.ms.remove_timer(timer_id);
        self.add_event(
            key,
            Attributes::TimerFiredEventAttributes(TimerFiredEventAttributes {
                timer_id: timer_id.to_string(),
                started_event_id,
            }),
        );
        self.changed(key);
    }
}

pub(crate) fn normal_queue(name: &str) -> TaskQueue {
    TaskQueue {
        name: name.to_string(),
        kind: TaskQueueKind::Normal as i32,
        normal_name: String::new(),
    }
}

/// The Scheduled/Started events of a transient workflow task, as shipped to the worker.
/// A per-run seed, so runs whose tasks fail together do not retry in lockstep.
fn jitter_seed(key: &RunKey) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.run_id.hash(&mut h);
    h.finish()
}

fn transient_events(wft: Option<&WorkflowTaskInfo>) -> Vec<HistoryEvent> {
    let Some(wft) = wft.filter(|w| w.transient) else {
        return Vec::new();
    };
    let mut scheduled = events::new_event(
        Attributes::WorkflowTaskScheduledEventAttributes(WorkflowTaskScheduledEventAttributes {
            task_queue: None,
            start_to_close_timeout: wft.start_to_close_timeout,
            attempt: wft.attempt,
        }),
        0,
    );
    scheduled.event_id = wft.scheduled_event_id;
    scheduled.event_time = wft.scheduled_time;
    let mut out = vec![scheduled];
    if wft.started_event_id != 0 {
        let mut started = events::new_event(
            Attributes::WorkflowTaskStartedEventAttributes(WorkflowTaskStartedEventAttributes {
                scheduled_event_id: wft.scheduled_event_id,
                identity: wft.identity.clone(),
                request_id: wft.request_id.clone(),
                history_size_bytes: wft.history_size_bytes,
                suggest_continue_as_new: !wft.suggest_continue_as_new_reasons.is_empty(),
                suggest_continue_as_new_reasons: wft.suggest_continue_as_new_reasons.clone(),
                target_worker_deployment_version_changed: wft.target_version_changed,
                ..Default::default()
            }),
            0,
        );
        started.event_id = wft.started_event_id;
        started.event_time = wft.started_time;
        out.push(started);
    }
    out
}

/// Writes a transient task's Scheduled/Started events for real (when it completes).
fn materialize_transient(run: &mut super::Run, wft: &WorkflowTaskInfo, now: i64) {
    if !wft.transient {
        return;
    }
    for mut event in transient_events(Some(wft)) {
        if let Some(Attributes::WorkflowTaskScheduledEventAttributes(a)) = event.attributes.as_mut()
        {
            a.task_queue = Some(normal_queue(&run.task_queue()));
        }
        let attrs = event.attributes.take();
        if let Some(attrs) = attrs {
            let id = run.append(now, attrs);
            debug_assert!(id == wft.scheduled_event_id || id == wft.started_event_id);
        }
    }
}
