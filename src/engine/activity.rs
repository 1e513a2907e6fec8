//! The activity state machine: dispatch, completion, failure with retries, cancellation,
//! heartbeats and the four activity timeouts. Retries leave no trace in history; the
//! `ActivityTaskStarted` event is written only when an attempt finally closes.

use std::sync::Arc;

use temporalio_protos::temporal::api::common::v1::Payloads;
use temporalio_protos::temporal::api::enums::v1::{RetryState, TimeoutType};
use temporalio_protos::temporal::api::failure::v1::{Failure, TimeoutFailureInfo, failure};
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_protos::temporal::api::history::v1::*;
use temporalio_protos::temporal::api::workflowservice::v1::*;

use super::activity_ops::HeartbeatAnswer;
use super::clock::{self, dur_millis, opt_ts_millis, ts_from_millis};
use super::matching::{QueueKey, QueueKind, TaskRef};
use super::state::ActivityInfo;
use super::timers::TimerTask;
use super::{Core, Engine, Error, Result, RunKey, retry};

/// How an activity attempt ended, as reported by a worker or a timer.
pub(crate) enum AttemptEnd {
    Completed {
        result: Option<Payloads>,
        identity: String,
    },
    Failed {
        failure: Box<Failure>,
        last_heartbeat_details: Option<Payloads>,
        identity: String,
    },
    Canceled {
        details: Option<Payloads>,
        identity: String,
    },
    TimedOut {
        timeout_type: TimeoutType,
    },
}

/// Which activity a request names: by task token, or by workflow and activity id.
pub(crate) enum ActivityRef<'a> {
    Token {
        /// The request's namespace, which the token must belong to.
        namespace: &'a str,
        token: &'a [u8],
    },
    Id {
        namespace: &'a str,
        workflow_id: &'a str,
        run_id: &'a str,
        activity_id: &'a str,
    },
}

impl Engine {
    pub async fn poll_activity_task(
        self: &Arc<Self>,
        req: PollActivityTaskQueueRequest,
        deadline: tokio::time::Instant,
        forwarded: bool,
    ) -> Result<PollActivityTaskQueueResponse> {
        let queue_name = self.poll_target(&req.namespace, &req.task_queue).await?;
        let queue = QueueKey::new(&req.namespace, &queue_name, QueueKind::Activity)
            .for_version(super::deployments::poller_version(&req.deployment_options));
        let poller = super::Poller::new(&req.identity, forwarded, &req.worker_instance_key);
        let resp = self
            .poll_queue(queue, &poller, deadline, |core, task| {
                Ok(core.start_activity_task(task, &queue_name, &poller.identity))
            })
            .await?;
        Ok(resp.unwrap_or_default())
    }

    pub(crate) async fn end_activity_attempt(
        &self,
        activity: ActivityRef<'_>,
        end: AttemptEnd,
    ) -> Result<()> {
        self.transact(|core| {
            let (key, sched) = core.locate_activity(activity)?;
            let run = core.run(&key)?;
            if let AttemptEnd::Canceled { .. } = end
                && !run
                    .ms
                    .activities
                    .get(&sched)
                    .is_some_and(|a| a.cancel_requested)
            {
                // Each in its server's words: Temporal's history service for a workflow's
                // activity, its standalone activities otherwise.
                return Err(Error::InvalidArgument(if run.is_standalone_activity() {
                    "unable to mark activity as canceled without activity being request \
                     canceled first"
                        .into()
                } else {
                    "Unable to mark activity as canceled without activity being request canceled."
                        .into()
                }));
            }
            core.end_attempt(&key, sched, end);
            core.changed(&key);
            Ok(())
        })
        .await
    }

    /// Records heartbeat details; answers whether cancellation was requested and whether an
    /// operator paused or reset the activity.
    pub(crate) async fn heartbeat(
        &self,
        activity: ActivityRef<'_>,
        details: Option<Payloads>,
    ) -> Result<HeartbeatAnswer> {
        self.transact(|core| {
            let (key, sched) = core.locate_activity(activity)?;
            let run = core.run_mut(&key)?;
            let info = run
                .ms
                .activities
                .get_mut(&sched)
                .ok_or_else(|| Error::NotFound("activity not found".into()))?;
            info.heartbeat_details = details;
            info.last_heartbeat_time = Some(self.now_ts());
            let answer = Core::heartbeat_answer(info);
            core.count_standalone_heartbeat(&key);
            core.changed(&key);
            Ok(answer)
        })
        .await
    }
}

impl Core {
    /// Finds the running activity a request refers to, or NOT_FOUND.
    fn locate_activity(&self, activity: ActivityRef<'_>) -> Result<(RunKey, i64)> {
        let not_found = || Error::NotFound("Activity task not found.".into());
        match activity {
            ActivityRef::Token { namespace, token } => {
                let (key, token) = self.tokens.check(namespace, token)?;
                if !token.query_id.is_empty() {
                    return Err(Error::InvalidArgument(
                        "A query task token cannot be used for an activity.".into(),
                    ));
                }
                self.check_namespace(&key.namespace)?;
                let run = self.run(&key)?;
                if !run.is_open() {
                    return Err(Error::NotFound(
                        "Workflow execution already completed.".into(),
                    ));
                }
                let info = run
                    .ms
                    .activities
                    .get(&token.scheduled_event_id)
                    .ok_or_else(not_found)?;
                if info.attempt != token.attempt || info.started_time.is_none() {
                    return Err(not_found());
                }
                Ok((key, token.scheduled_event_id))
            }
            ActivityRef::Id {
                namespace,
                workflow_id,
                run_id,
                activity_id,
            } => {
                if activity_id.is_empty() {
                    return Err(Error::InvalidArgument(
                        "ActivityId is not set on request.".into(),
                    ));
                }
                let key = if workflow_id.is_empty() {
                    // No workflow: a standalone activity execution.
                    self.resolve_resident_activity_execution(namespace, activity_id, run_id)?
                } else {
                    self.resolve_resident(namespace, workflow_id, run_id)?
                };
                let run = self.run(&key)?;
                if !run.is_open() {
                    return Err(Error::NotFound(
                        "Workflow execution already completed.".into(),
                    ));
                }
                let sched = run
                    .ms
                    .activities
                    .values()
                    .find(|a| a.activity_id == activity_id)
                    .map(|a| a.scheduled_event_id)
                    .ok_or_else(not_found)?;
                Ok((key, sched))
            }
        }
    }

    /// Starts the activities a completing worker asked to run itself and returns their tasks,
    /// saving it a poll and the server a match. An activity whose run closed gets none; one
    /// routed to a worker version goes through its queue, as its worker may not be this one.
    /// If the worker never receives the answer, the attempt's start-to-close timeout retries
    /// it, as for any task lost with its worker. Temporal does the same (on by default there,
    /// `system.enableActivityEagerExecution`); SDK workers ask for it when they have a free
    /// activity slot.
    pub(crate) fn start_eager_activities(
        &mut self,
        key: &RunKey,
        eager: Vec<(QueueKey, TaskRef)>,
        identity: &str,
    ) -> Vec<PollActivityTaskQueueResponse> {
        if eager.is_empty() || !self.run(key).is_ok_and(|r| r.is_open()) {
            return Vec::new();
        }
        let mut started = Vec::new();
        for (queue, task) in eager {
            let routed = self.run_queue(key, &queue.name, queue.kind);
            if routed != queue {
                self.push_task(routed, task);
                continue;
            }
            // None: the same task cancelled it, or it is paused (unpausing queues it).
            if let Some(t) = self.start_activity_task(task, &queue.name, identity) {
                crate::metrics::record_eager_activity(&key.namespace, &queue.name);
                started.push(t);
            }
        }
        started
    }

    /// Starts the attempt a task from `queue` names, unless the task is stale: the attempt
    /// moved on, started, was paused, or the activity moved to another queue.
    pub(crate) fn start_activity_task(
        &mut self,
        task: TaskRef,
        queue: &str,
        identity: &str,
    ) -> Option<PollActivityTaskQueueResponse> {
        let now = self.now();
        let TaskRef::Activity {
            key,
            scheduled_event_id,
            attempt,
        } = task
        else {
            return None;
        };
        let run = self.runs.get_mut(&key)?;
        if !run.is_open() {
            return None;
        }
        let workflow_type = run
            .ms
            .started
            .as_ref()
            .and_then(|s| s.workflow_type.clone());
        // A standalone activity has no workflow: its run is the activity's.
        let (execution, activity_run_id) = if run.is_standalone_activity() {
            (Default::default(), key.run_id.clone())
        } else {
            (run.execution(), String::new())
        };
        let info = run.ms.activities.get_mut(&scheduled_event_id)?;
        if info.attempt != attempt
            || info.started_time.is_some()
            || info.paused
            || info.task_queue != queue
        {
            return None;
        }
        crate::metrics::record_schedule_to_start(
            &key.namespace,
            &info.task_queue,
            QueueKind::Activity,
            now - opt_ts_millis(&info.scheduled_time),
        );
        info.started_time = Some(ts_from_millis(now));
        info.last_started_time = info.started_time;
        info.started_identity = identity.to_string();
        info.last_worker_identity = identity.to_string();
        info.started_request_id = uuid::Uuid::new_v4().to_string();
        let info = info.clone();
        let stc = dur_millis(&info.start_to_close_timeout);
        if stc > 0 {
            self.push_timer(
                now + stc,
                TimerTask::ActivityStartToClose {
                    key: key.clone(),
                    scheduled_event_id,
                    attempt,
                },
            );
        }
        let hb = dur_millis(&info.heartbeat_timeout);
        if hb > 0 {
            self.push_timer(
                now + hb,
                TimerTask::ActivityHeartbeat {
                    key: key.clone(),
                    scheduled_event_id,
                    attempt,
                },
            );
        }
        self.changed(&key);
        Some(PollActivityTaskQueueResponse {
            task_token: self.tokens.issue(&key, scheduled_event_id, attempt, 0, ""),
            workflow_namespace: key.namespace.clone(),
            workflow_type,
            workflow_execution: Some(execution),
            activity_type: info.activity_type,
            activity_id: info.activity_id,
            header: info.header,
            input: info.input,
            heartbeat_details: info.heartbeat_details,
            scheduled_time: info.first_scheduled_time,
            current_attempt_scheduled_time: info.scheduled_time,
            started_time: info.started_time,
            attempt,
            // Always present, zero meaning no limit (runs scheduled before the event carried
            // all four still read None).
            schedule_to_close_timeout: Some(info.schedule_to_close_timeout.unwrap_or_default()),
            start_to_close_timeout: Some(info.start_to_close_timeout.unwrap_or_default()),
            heartbeat_timeout: Some(info.heartbeat_timeout.unwrap_or_default()),
            retry_policy: info.retry_policy,
            priority: info.priority,
            activity_run_id,
            ..Default::default()
        })
    }

    /// Ends the current attempt: retries it when the policy allows, otherwise records the
    /// activity's outcome in history.
    pub(crate) fn end_attempt(&mut self, key: &RunKey, sched: i64, end: AttemptEnd) {
        let now = self.now();
        let Some(run) = self.runs.get_mut(key) else {
            return;
        };
        let Some(info) = run.ms.activities.get(&sched).cloned() else {
            return;
        };
        let s2c = dur_millis(&info.schedule_to_close_timeout);
        let expiration = if s2c > 0 {
            opt_ts_millis(&info.first_scheduled_time) + s2c
        } else {
            0
        };
        let policy = info.retry_policy.clone().unwrap_or_default();
        let (mut failure, heartbeat_details, identity) = match end {
            AttemptEnd::Completed { result, identity } => {
                let started = started_attrs(&info, &identity);
                let completed = ActivityTaskCompletedEventAttributes {
                    result,
                    scheduled_event_id: sched,
                    identity,
                    ..Default::default()
                };
                self.activity_closed(
                    key,
                    sched,
                    vec![
                        started,
                        Attributes::ActivityTaskCompletedEventAttributes(completed),
                    ],
                );
                return;
            }
            AttemptEnd::Canceled { details, identity } => {
                let mut events = Vec::new();
                if info.started_time.is_some() {
                    events.push(started_attrs(&info, &identity));
                }
                events.push(Attributes::ActivityTaskCanceledEventAttributes(
                    ActivityTaskCanceledEventAttributes {
                        details,
                        latest_cancel_requested_event_id: info.cancel_requested_event_id,
                        scheduled_event_id: sched,
                        identity,
                        ..Default::default()
                    },
                ));
                self.activity_closed(key, sched, events);
                return;
            }
            AttemptEnd::Failed {
                failure,
                last_heartbeat_details,
                identity,
            } => (
                *failure,
                last_heartbeat_details.or(info.heartbeat_details.clone()),
                identity,
            ),
            AttemptEnd::TimedOut { timeout_type } => (
                timeout_failure(timeout_type, &info),
                info.heartbeat_details.clone(),
                info.started_identity.clone(),
            ),
        };
        let is_timeout = matches!(
            failure.failure_info,
            Some(failure::FailureInfo::TimeoutFailureInfo(_))
        );
        // A reset while this attempt ran counts the retries from attempt 1.
        let attempt = if info.reset_requested {
            1
        } else {
            info.attempt
        };
        let decision = if info.cancel_requested {
            Err(RetryState::CancelRequested)
        } else {
            retry::decide(&policy, attempt, &failure, now, expiration)
        };
        // A paused activity holds a retryable failure: the next attempt waits for the unpause.
        let held =
            info.paused && matches!(decision, Ok(_) | Err(RetryState::MaximumAttemptsReached));
        let decision = if held { Ok(0) } else { decision };
        match decision {
            Ok(delay) => {
                let Some(info) = run.ms.activities.get_mut(&sched) else {
                    return;
                };
                info.attempt = attempt + 1;
                info.started_time = None;
                info.started_identity.clear();
                info.started_request_id.clear();
                info.last_failure = Some(failure);
                info.heartbeat_details = heartbeat_details;
                if std::mem::take(&mut info.reset_heartbeat) {
                    info.heartbeat_details = None;
                }
                info.reset_requested = false;
                info.last_attempt_complete_time = Some(ts_from_millis(now));
                info.scheduled_time = Some(ts_from_millis(now + delay));
                let attempt = info.attempt;
                let info = info.clone();
                if held {
                    return;
                }
                if delay > 0 {
                    self.push_timer(
                        now + delay,
                        TimerTask::ActivityRetry {
                            key: key.clone(),
                            scheduled_event_id: sched,
                            attempt,
                        },
                    );
                } else {
                    self.activity_retry_due(key, sched, attempt);
                }
                self.arm_schedule_to_start(key, &info);
            }
            Err(retry_state) => {
                if is_timeout && retry_state == RetryState::Timeout {
                    failure = timeout_failure(TimeoutType::ScheduleToClose, &info);
                    failure.message =
                        "Not enough time to schedule next retry before activity ScheduleToClose timeout, giving up retrying".into();
                }
                let mut events = Vec::new();
                if info.started_time.is_some() {
                    events.push(started_attrs(&info, &identity));
                }
                events.push(if is_timeout {
                    Attributes::ActivityTaskTimedOutEventAttributes(
                        ActivityTaskTimedOutEventAttributes {
                            failure: Some(failure),
                            scheduled_event_id: sched,
                            started_event_id: 0,
                            retry_state: retry_state as i32,
                        },
                    )
                } else {
                    Attributes::ActivityTaskFailedEventAttributes(
                        ActivityTaskFailedEventAttributes {
                            failure: Some(failure),
                            scheduled_event_id: sched,
                            identity,
                            retry_state: retry_state as i32,
                            ..Default::default()
                        },
                    )
                });
                self.activity_closed(key, sched, events);
            }
        }
    }

    /// A retry's backoff is over: offer the attempt to pollers.
    pub(crate) fn activity_retry_due(&mut self, key: &RunKey, sched: i64, attempt: i32) {
        let Some(run) = self.runs.get(key) else {
            return;
        };
        let Some(info) = run.ms.activities.get(&sched) else {
            return;
        };
        if !run.is_open() || info.attempt != attempt || info.started_time.is_some() || info.paused {
            return;
        }
        let queue = self.run_queue(key, &info.task_queue, QueueKind::Activity);
        self.push_task(
            queue,
            TaskRef::Activity {
                key: key.clone(),
                scheduled_event_id: sched,
                attempt,
            },
        );
    }

    pub(crate) fn arm_schedule_to_start(&mut self, key: &RunKey, info: &ActivityInfo) {
        let s2s = dur_millis(&info.schedule_to_start_timeout);
        let s2c = dur_millis(&info.schedule_to_close_timeout);
        if s2s > 0 && (s2c == 0 || s2s < s2c) {
            self.push_timer(
                opt_ts_millis(&info.scheduled_time) + s2s,
                TimerTask::ActivityScheduleToStart {
                    key: key.clone(),
                    scheduled_event_id: info.scheduled_event_id,
                    attempt: info.attempt,
                },
            );
        }
    }

    /// Re-creates an activity's queue entry and timers (after a restart).
    pub(crate) fn arm_activity(&mut self, key: &RunKey, info: &ActivityInfo) {
        let sched = info.scheduled_event_id;
        let attempt = info.attempt;
        let s2c = dur_millis(&info.schedule_to_close_timeout);
        if s2c > 0 {
            self.push_timer(
                opt_ts_millis(&info.first_scheduled_time) + s2c,
                TimerTask::ActivityScheduleToClose {
                    key: key.clone(),
                    scheduled_event_id: sched,
                },
            );
        }
        if let Some(started) = &info.started_time {
            let started = clock::ts_millis(started);
            let stc = dur_millis(&info.start_to_close_timeout);
            if stc > 0 {
                self.push_timer(
                    started + stc,
                    TimerTask::ActivityStartToClose {
                        key: key.clone(),
                        scheduled_event_id: sched,
                        attempt,
                    },
                );
            }
            let hb = dur_millis(&info.heartbeat_timeout);
            if hb > 0 {
                let last = opt_ts_millis(&info.last_heartbeat_time).max(started);
                self.push_timer(
                    last + hb,
                    TimerTask::ActivityHeartbeat {
                        key: key.clone(),
                        scheduled_event_id: sched,
                        attempt,
                    },
                );
            }
        } else {
            self.push_timer(
                opt_ts_millis(&info.scheduled_time),
                TimerTask::ActivityRetry {
                    key: key.clone(),
                    scheduled_event_id: sched,
                    attempt,
                },
            );
            self.arm_schedule_to_start(key, info);
        }
    }

    fn running_attempt(&self, key: &RunKey, sched: i64, attempt: i32) -> Option<ActivityInfo> {
        let run = self.runs.get(key).filter(|r| r.is_open())?;
        run.ms
            .activities
            .get(&sched)
            .filter(|a| a.attempt == attempt && a.started_time.is_some())
            .cloned()
    }

    fn fire_activity_timeout(
        &mut self,
        key: &RunKey,
        sched: i64,
        due: i64,
        timeout_type: TimeoutType,
        again: TimerTask,
    ) {
        if due > self.now() {
            self.push_timer(due, again);
            return;
        }
        // A paused activity has no timeouts; unpausing arms them again.
        let paused = self
            .runs
            .get(key)
            .and_then(|r| r.ms.activities.get(&sched))
            .is_some_and(|a| a.paused);
        if paused {
            return;
        }
        self.end_attempt(key, sched, AttemptEnd::TimedOut { timeout_type });
        self.changed(key);
    }

    pub(crate) fn activity_start_to_close_fired(&mut self, key: &RunKey, sched: i64, attempt: i32) {
        let Some(info) = self.running_attempt(key, sched, attempt) else {
            return;
        };
        let due = opt_ts_millis(&info.started_time) + dur_millis(&info.start_to_close_timeout);
        let again = TimerTask::ActivityStartToClose {
            key: key.clone(),
            scheduled_event_id: sched,
            attempt,
        };
        self.fire_activity_timeout(key, sched, due, TimeoutType::StartToClose, again);
    }

    pub(crate) fn activity_heartbeat_fired(&mut self, key: &RunKey, sched: i64, attempt: i32) {
        let Some(info) = self.running_attempt(key, sched, attempt) else {
            return;
        };
        let last = opt_ts_millis(&info.last_heartbeat_time).max(opt_ts_millis(&info.started_time));
        let due = last + dur_millis(&info.heartbeat_timeout);
        let again = TimerTask::ActivityHeartbeat {
            key: key.clone(),
            scheduled_event_id: sched,
            attempt,
        };
        self.fire_activity_timeout(key, sched, due, TimeoutType::Heartbeat, again);
    }

    pub(crate) fn activity_schedule_to_start_fired(
        &mut self,
        key: &RunKey,
        sched: i64,
        attempt: i32,
    ) {
        let Some(run) = self.runs.get(key).filter(|r| r.is_open()) else {
            return;
        };
        let Some(info) = run
            .ms
            .activities
            .get(&sched)
            .filter(|a| a.attempt == attempt && a.started_time.is_none())
        else {
            return;
        };
        let due = opt_ts_millis(&info.scheduled_time) + dur_millis(&info.schedule_to_start_timeout);
        let again = TimerTask::ActivityScheduleToStart {
            key: key.clone(),
            scheduled_event_id: sched,
            attempt,
        };
        self.fire_activity_timeout(key, sched, due, TimeoutType::ScheduleToStart, again);
    }

    pub(crate) fn activity_schedule_to_close_fired(&mut self, key: &RunKey, sched: i64) {
        let Some(run) = self.runs.get(key).filter(|r| r.is_open()) else {
            return;
        };
        let Some(info) = run.ms.activities.get(&sched) else {
            return;
        };
        let due =
            opt_ts_millis(&info.first_scheduled_time) + dur_millis(&info.schedule_to_close_timeout);
        let again = TimerTask::ActivityScheduleToClose {
            key: key.clone(),
            scheduled_event_id: sched,
        };
        self.fire_activity_timeout(key, sched, due, TimeoutType::ScheduleToClose, again);
    }
}

fn started_attrs(info: &ActivityInfo, identity: &str) -> Attributes {
    let identity = if info.started_identity.is_empty() {
        identity
    } else {
        &info.started_identity
    };
    Attributes::ActivityTaskStartedEventAttributes(ActivityTaskStartedEventAttributes {
        scheduled_event_id: info.scheduled_event_id,
        identity: identity.to_string(),
        request_id: info.started_request_id.clone(),
        attempt: info.attempt,
        last_failure: info.last_failure.clone(),
        ..Default::default()
    })
}

fn timeout_failure(timeout_type: TimeoutType, info: &ActivityInfo) -> Failure {
    let name = match timeout_type {
        TimeoutType::StartToClose => "StartToClose",
        TimeoutType::ScheduleToStart => "ScheduleToStart",
        TimeoutType::ScheduleToClose => "ScheduleToClose",
        TimeoutType::Heartbeat => "Heartbeat",
        TimeoutType::Unspecified => "Unspecified",
    };
    Failure {
        message: format!("activity {name} timeout"),
        cause: info.last_failure.clone().map(Box::new),
        failure_info: Some(failure::FailureInfo::TimeoutFailureInfo(
            TimeoutFailureInfo {
                timeout_type: timeout_type as i32,
                last_heartbeat_details: info.heartbeat_details.clone(),
            },
        )),
        ..Default::default()
    }
}
