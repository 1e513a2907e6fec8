//! Applying the commands of a completed workflow task to a run, in order. Validation errors
//! stop the whole completion (the caller rolls the run back and fails the task).
// Temporal marks fields deprecated (`control`, per-command `namespace`) that SDKs still send;
// Durin carries them through faithfully.
#![allow(deprecated)]

use temporalio_protos::temporal::api::command::v1::{
    Command, RequestCancelExternalWorkflowExecutionCommandAttributes,
    SignalExternalWorkflowExecutionCommandAttributes, command,
};
use temporalio_protos::temporal::api::common::v1::{Memo, SearchAttributes};
use temporalio_protos::temporal::api::enums::v1::{
    CommandType, RetryState, WorkflowExecutionStatus, WorkflowTaskFailedCause,
};
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_protos::temporal::api::history::v1::*;

use super::chain::{self, Continuation};
use super::clock::{self, dur_from_millis, dur_millis, ts_from_millis};
use super::matching::{QueueKey, QueueKind, TaskRef};
use super::state::ChildInfo;
use super::state::{ActivityInfo, TimerInfo};
use super::timers::TimerTask;
use super::{ChangeKind, Run, RunKey, retry};

pub struct CommandError {
    pub cause: WorkflowTaskFailedCause,
    pub message: String,
    /// The violation ends the run (oversized payloads), not just the workflow task.
    pub terminate: bool,
}

pub(super) fn bad(cause: WorkflowTaskFailedCause, message: impl Into<String>) -> CommandError {
    CommandError {
        cause,
        message: message.into(),
        terminate: false,
    }
}

/// Side effects applied only once the whole completion is accepted.
pub enum Effect {
    Task(QueueKey, TaskRef),
    Timer(i64, TimerTask),
    StartChild(
        i64,
        Box<StartChildWorkflowExecutionInitiatedEventAttributes>,
    ),
    SignalExternal(i64, Box<SignalExternalWorkflowExecutionCommandAttributes>),
    CancelExternal(
        i64,
        Box<RequestCancelExternalWorkflowExecutionCommandAttributes>,
    ),
}

#[derive(Default)]
pub struct Outcome {
    pub closed: Option<WorkflowExecutionStatus>,
    /// The run that continues this one (continue-as-new, retry, cron).
    pub continuation: Option<Continuation>,
    pub new_workflow_task: bool,
}

pub fn is_close_command(c: &Command) -> bool {
    matches!(
        c.attributes,
        Some(
            command::Attributes::CompleteWorkflowExecutionCommandAttributes(_)
                | command::Attributes::FailWorkflowExecutionCommandAttributes(_)
                | command::Attributes::CancelWorkflowExecutionCommandAttributes(_)
                | command::Attributes::ContinueAsNewWorkflowExecutionCommandAttributes(_)
        )
    )
}

/// What a workflow task's commands are applied in.
pub struct TaskContext<'a> {
    pub key: &'a RunKey,
    /// The namespace's custom search attributes and their types.
    pub custom_search_attributes: &'a std::collections::BTreeMap<String, i32>,
    /// The id of the task's WorkflowTaskCompleted event.
    pub wtc_id: i64,
    /// The operation's time.
    pub now: i64,
}

/// Applies a workflow task's commands and messages to its run: stages the events, returns
/// the outcome, and pushes what must happen outside the run to `effects`.
pub fn apply(
    run: &mut Run,
    context: TaskContext,
    commands: &[Command],
    messages: &[temporalio_protos::temporal::api::protocol::v1::Message],
    effects: &mut Vec<Effect>,
) -> Result<Outcome, CommandError> {
    let TaskContext {
        key,
        custom_search_attributes,
        wtc_id,
        now,
    } = context;
    let mut used_messages = std::collections::HashSet::new();
    use WorkflowTaskFailedCause as C;
    use command::Attributes as CA;
    let mut outcome = Outcome::default();
    let mut pending = super::pending::PendingWork::of(run);
    for (i, cmd) in commands.iter().enumerate() {
        if outcome.closed.is_some() {
            return Err(bad(
                C::UnhandledCommand,
                "a workflow close command must be the last command",
            ));
        }
        let Some(attrs) = &cmd.attributes else {
            let name = CommandType::try_from(cmd.command_type)
                .map(|t| t.as_str_name().to_string())
                .unwrap_or_else(|_| cmd.command_type.to_string());
            return Err(bad(
                C::UnhandledCommand,
                format!("command {i} ({name}) has no attributes"),
            ));
        };
        if let Err(message) = check_command_size(attrs) {
            return Err(CommandError {
                cause: C::WorkflowWorkerUnhandledFailure,
                message,
                terminate: true,
            });
        }
        pending.admit(run, attrs)?;
        let user_metadata = cmd.user_metadata.clone();
        let before = run.staged.len();
        match attrs {
            CA::ScheduleActivityTaskCommandAttributes(a) => {
                schedule_activity(run, key, a, wtc_id, effects, now)?;
            }
            CA::RequestCancelActivityTaskCommandAttributes(a) => {
                let Some(info) = run.ms.activities.get(&a.scheduled_event_id).cloned() else {
                    return Err(bad(
                        C::BadRequestCancelActivityAttributes,
                        format!(
                            "no pending activity with scheduled event id {}",
                            a.scheduled_event_id
                        ),
                    ));
                };
                let requested_id = run.append(
                    now,
                    Attributes::ActivityTaskCancelRequestedEventAttributes(
                        ActivityTaskCancelRequestedEventAttributes {
                            scheduled_event_id: a.scheduled_event_id,
                            workflow_task_completed_event_id: wtc_id,
                        },
                    ),
                );
                if info.started_time.is_none() {
                    run.ms.activities.remove(&a.scheduled_event_id);
                    run.append(
                        now,
                        Attributes::ActivityTaskCanceledEventAttributes(
                            ActivityTaskCanceledEventAttributes {
                                latest_cancel_requested_event_id: requested_id,
                                scheduled_event_id: a.scheduled_event_id,
                                ..Default::default()
                            },
                        ),
                    );
                    outcome.new_workflow_task = true;
                } else if let Some(info) = run.ms.activities.get_mut(&a.scheduled_event_id) {
                    info.cancel_requested = true;
                    info.cancel_requested_event_id = requested_id;
                }
            }
            CA::StartTimerCommandAttributes(a) => {
                if a.timer_id.is_empty() {
                    return Err(bad(
                        C::BadStartTimerAttributes,
                        "TimerId is not set on StartTimerCommand",
                    ));
                }
                if run.ms.timers.contains_key(&a.timer_id) {
                    return Err(bad(
                        C::StartTimerDuplicateId,
                        format!("timer id {} is already in use", a.timer_id),
                    ));
                }
                let ms = dur_millis(&a.start_to_fire_timeout);
                if ms <= 0 {
                    return Err(bad(
                        C::BadStartTimerAttributes,
                        "StartToFireTimeout must be positive",
                    ));
                }
                let started_event_id = run.append(
                    now,
                    Attributes::TimerStartedEventAttributes(TimerStartedEventAttributes {
                        timer_id: a.timer_id.clone(),
                        start_to_fire_timeout: a.start_to_fire_timeout,
                        workflow_task_completed_event_id: wtc_id,
                    }),
                );
                let due = now + ms;
                run.ms.timers.insert(
                    a.timer_id.clone(),
                    TimerInfo {
                        timer_id: a.timer_id.clone(),
                        started_event_id,
                        fire_time: Some(ts_from_millis(due)),
                    },
                );
                effects.push(Effect::Timer(
                    due,
                    TimerTask::UserTimer {
                        key: key.clone(),
                        timer_id: a.timer_id.clone(),
                        started_event_id,
                    },
                ));
            }
            CA::CancelTimerCommandAttributes(a) => {
                let started_event_id = if let Some(t) = run.ms.timers.remove(&a.timer_id) {
                    t.started_event_id
                } else if let Some(pos) = run.ms.buffered.iter().position(|e| {
                    matches!(&e.attributes, Some(Attributes::TimerFiredEventAttributes(f)) if f.timer_id == a.timer_id)
                }) {
                    match run.ms.buffered.remove(pos).attributes {
                        Some(Attributes::TimerFiredEventAttributes(f)) => f.started_event_id,
                        _ => 0,
                    }
                } else {
                    return Err(bad(C::BadCancelTimerAttributes, format!("no pending timer with id {}", a.timer_id)));
                };
                run.append(
                    now,
                    Attributes::TimerCanceledEventAttributes(TimerCanceledEventAttributes {
                        timer_id: a.timer_id.clone(),
                        started_event_id,
                        workflow_task_completed_event_id: wtc_id,
                        identity: String::new(),
                    }),
                );
            }
            CA::CompleteWorkflowExecutionCommandAttributes(a) => {
                let next = chain::cron(&run.ms, a.result.as_ref(), None, now);
                run.append(
                    now,
                    Attributes::WorkflowExecutionCompletedEventAttributes(
                        WorkflowExecutionCompletedEventAttributes {
                            result: a.result.clone(),
                            workflow_task_completed_event_id: wtc_id,
                            new_execution_run_id: next
                                .as_ref()
                                .map(|n| n.run_id.clone())
                                .unwrap_or_default(),
                        },
                    ),
                );
                outcome.closed = Some(WorkflowExecutionStatus::Completed);
                outcome.continuation = next;
            }
            CA::FailWorkflowExecutionCommandAttributes(a) => {
                let failure = a.failure.clone().unwrap_or_default();
                let (retry_state, next) = match chain::retry(&run.ms, &failure, now) {
                    Ok(next) => (RetryState::InProgress, Some(next)),
                    Err(state) => (state, chain::cron(&run.ms, None, Some(&failure), now)),
                };
                run.append(
                    now,
                    Attributes::WorkflowExecutionFailedEventAttributes(
                        WorkflowExecutionFailedEventAttributes {
                            failure: a.failure.clone(),
                            retry_state: retry_state as i32,
                            workflow_task_completed_event_id: wtc_id,
                            new_execution_run_id: next
                                .as_ref()
                                .map(|n| n.run_id.clone())
                                .unwrap_or_default(),
                        },
                    ),
                );
                outcome.closed = Some(WorkflowExecutionStatus::Failed);
                outcome.continuation = next;
            }
            CA::ContinueAsNewWorkflowExecutionCommandAttributes(a) => {
                let next = chain::continue_as_new(&run.ms, a, now);
                if next
                    .started
                    .workflow_type
                    .as_ref()
                    .is_none_or(|t| t.name.is_empty())
                {
                    return Err(bad(
                        C::BadContinueAsNewAttributes,
                        "WorkflowType is not set on ContinueAsNewCommand",
                    ));
                }
                let s = &next.started;
                run.append(
                    now,
                    Attributes::WorkflowExecutionContinuedAsNewEventAttributes(
                        WorkflowExecutionContinuedAsNewEventAttributes {
                            new_execution_run_id: next.run_id.clone(),
                            workflow_type: s.workflow_type.clone(),
                            task_queue: s.task_queue.clone(),
                            input: s.input.clone(),
                            workflow_run_timeout: s.workflow_run_timeout,
                            workflow_task_timeout: s.workflow_task_timeout,
                            workflow_task_completed_event_id: wtc_id,
                            backoff_start_interval: a.backoff_start_interval,
                            initiator: s.initiator,
                            failure: a.failure.clone(),
                            last_completion_result: a.last_completion_result.clone(),
                            header: s.header.clone(),
                            memo: s.memo.clone(),
                            search_attributes: s.search_attributes.clone(),
                            ..Default::default()
                        },
                    ),
                );
                outcome.closed = Some(WorkflowExecutionStatus::ContinuedAsNew);
                outcome.continuation = Some(next);
            }
            CA::StartChildWorkflowExecutionCommandAttributes(a) => {
                if a.workflow_id.is_empty() {
                    return Err(bad(
                        C::BadStartChildExecutionAttributes,
                        "WorkflowId is not set on StartChildWorkflowExecutionCommand",
                    ));
                }
                if a.workflow_type.as_ref().is_none_or(|t| t.name.is_empty()) {
                    return Err(bad(
                        C::BadStartChildExecutionAttributes,
                        "WorkflowType is not set on StartChildWorkflowExecutionCommand",
                    ));
                }
                if !a.cron_schedule.is_empty() {
                    chain::validate_cron(&a.cron_schedule)
                        .map_err(|m| bad(C::BadStartChildExecutionAttributes, m))?;
                }
                let task_queue = match &a.task_queue {
                    Some(t) if !t.name.is_empty() => t.name.clone(),
                    _ => run.task_queue(),
                };
                let initiated = StartChildWorkflowExecutionInitiatedEventAttributes {
                    namespace: if a.namespace.is_empty() {
                        key.namespace.clone()
                    } else {
                        a.namespace.clone()
                    },
                    workflow_id: a.workflow_id.clone(),
                    workflow_type: a.workflow_type.clone(),
                    task_queue: Some(super::workflow_task::normal_queue(&task_queue)),
                    input: a.input.clone(),
                    workflow_execution_timeout: a.workflow_execution_timeout,
                    workflow_run_timeout: a.workflow_run_timeout,
                    workflow_task_timeout: a.workflow_task_timeout,
                    parent_close_policy: a.parent_close_policy,
                    control: a.control.clone(),
                    workflow_task_completed_event_id: wtc_id,
                    workflow_id_reuse_policy: a.workflow_id_reuse_policy,
                    retry_policy: a.retry_policy.clone(),
                    cron_schedule: a.cron_schedule.clone(),
                    header: a.header.clone(),
                    memo: a.memo.clone(),
                    search_attributes: a.search_attributes.clone(),
                    priority: a.priority.clone(),
                    ..Default::default()
                };
                let id = run.append(
                    now,
                    Attributes::StartChildWorkflowExecutionInitiatedEventAttributes(
                        initiated.clone(),
                    ),
                );
                run.ms.children.insert(
                    id,
                    ChildInfo {
                        initiated_event_id: id,
                        namespace: initiated.namespace.clone(),
                        workflow_id: a.workflow_id.clone(),
                        run_id: String::new(),
                        workflow_type: a.workflow_type.clone(),
                        started_event_id: 0,
                        parent_close_policy: a.parent_close_policy,
                    },
                );
                effects.push(Effect::StartChild(id, Box::new(initiated)));
            }
            CA::SignalExternalWorkflowExecutionCommandAttributes(a) => {
                let target = a.execution.clone().unwrap_or_default();
                if target.workflow_id.is_empty() || a.signal_name.is_empty() {
                    return Err(bad(
                        C::BadSignalWorkflowExecutionAttributes,
                        "WorkflowId and SignalName must be set on SignalExternalWorkflowExecutionCommand",
                    ));
                }
                let id = run.append(
                    now,
                    Attributes::SignalExternalWorkflowExecutionInitiatedEventAttributes(
                        SignalExternalWorkflowExecutionInitiatedEventAttributes {
                            workflow_task_completed_event_id: wtc_id,
                            namespace: if a.namespace.is_empty() {
                                key.namespace.clone()
                            } else {
                                a.namespace.clone()
                            },
                            workflow_execution: Some(target),
                            signal_name: a.signal_name.clone(),
                            input: a.input.clone(),
                            control: a.control.clone(),
                            child_workflow_only: a.child_workflow_only,
                            header: a.header.clone(),
                            ..Default::default()
                        },
                    ),
                );
                effects.push(Effect::SignalExternal(id, Box::new(a.clone())));
            }
            CA::RequestCancelExternalWorkflowExecutionCommandAttributes(a) => {
                if a.workflow_id.is_empty() {
                    return Err(bad(
                        C::BadRequestCancelExternalWorkflowExecutionAttributes,
                        "WorkflowId is not set on RequestCancelExternalWorkflowExecutionCommand",
                    ));
                }
                let id = run.append(
                    now,
                    Attributes::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(
                        RequestCancelExternalWorkflowExecutionInitiatedEventAttributes {
                            workflow_task_completed_event_id: wtc_id,
                            namespace: if a.namespace.is_empty() {
                                key.namespace.clone()
                            } else {
                                a.namespace.clone()
                            },
                            workflow_execution: Some(
                                temporalio_protos::temporal::api::common::v1::WorkflowExecution {
                                    workflow_id: a.workflow_id.clone(),
                                    run_id: a.run_id.clone(),
                                },
                            ),
                            control: a.control.clone(),
                            child_workflow_only: a.child_workflow_only,
                            reason: a.reason.clone(),
                            ..Default::default()
                        },
                    ),
                );
                effects.push(Effect::CancelExternal(id, Box::new(a.clone())));
            }
            CA::CancelWorkflowExecutionCommandAttributes(a) => {
                run.append(
                    now,
                    Attributes::WorkflowExecutionCanceledEventAttributes(
                        WorkflowExecutionCanceledEventAttributes {
                            workflow_task_completed_event_id: wtc_id,
                            details: a.details.clone(),
                        },
                    ),
                );
                outcome.closed = Some(WorkflowExecutionStatus::Canceled);
            }
            CA::RecordMarkerCommandAttributes(a) => {
                if a.marker_name.is_empty() {
                    return Err(bad(
                        C::BadRecordMarkerAttributes,
                        "MarkerName is not set on RecordMarkerCommand",
                    ));
                }
                run.append(
                    now,
                    Attributes::MarkerRecordedEventAttributes(MarkerRecordedEventAttributes {
                        marker_name: a.marker_name.clone(),
                        details: a.details.clone(),
                        workflow_task_completed_event_id: wtc_id,
                        header: a.header.clone(),
                        failure: a.failure.clone(),
                    }),
                );
            }
            CA::UpsertWorkflowSearchAttributesCommandAttributes(a) => {
                let upsert = a.search_attributes.clone().unwrap_or_default();
                crate::visibility::search_attributes::validate(custom_search_attributes, &upsert)
                    .map_err(|m| bad(C::BadSearchAttributes, m))?;
                merge_search_attributes(&mut run.ms.search_attributes, &upsert);
                run.append(
                    now,
                    Attributes::UpsertWorkflowSearchAttributesEventAttributes(
                        UpsertWorkflowSearchAttributesEventAttributes {
                            workflow_task_completed_event_id: wtc_id,
                            search_attributes: Some(upsert),
                        },
                    ),
                );
            }
            CA::ModifyWorkflowPropertiesCommandAttributes(a) => {
                let upsert = a.upserted_memo.clone().unwrap_or_default();
                merge_memo(&mut run.ms.memo, &upsert);
                run.append(
                    now,
                    Attributes::WorkflowPropertiesModifiedEventAttributes(
                        WorkflowPropertiesModifiedEventAttributes {
                            workflow_task_completed_event_id: wtc_id,
                            upserted_memo: Some(upsert),
                        },
                    ),
                );
            }
            CA::ProtocolMessageCommandAttributes(a) => {
                let message = messages
                    .iter()
                    .find(|m| m.id == a.message_id)
                    .ok_or_else(|| {
                        bad(
                            C::UnhandledCommand,
                            format!("no protocol message with id {}", a.message_id),
                        )
                    })?;
                used_messages.insert(message.id.clone());
                run.apply_update_message(message, now)?;
            }
            other => {
                let name = CommandType::try_from(cmd.command_type)
                    .map(|t| t.as_str_name().to_string())
                    .unwrap_or_else(|_| format!("{other:?}").chars().take(60).collect());
                return Err(bad(
                    C::UnhandledCommand,
                    format!("command {name} is not supported by this Durin version yet"),
                ));
            }
        }
        if user_metadata.is_some() {
            for event in run.staged[before..].iter_mut() {
                event.user_metadata = user_metadata.clone();
            }
        }
    }
    if outcome.closed.is_none() {
        for message in messages.iter().filter(|m| !used_messages.contains(&m.id)) {
            run.apply_update_message(message, now)?;
        }
    }
    Ok(outcome)
}

fn schedule_activity(
    run: &mut Run,
    key: &RunKey,
    a: &temporalio_protos::temporal::api::command::v1::ScheduleActivityTaskCommandAttributes,
    wtc_id: i64,
    effects: &mut Vec<Effect>,
    now: i64,
) -> Result<(), CommandError> {
    use WorkflowTaskFailedCause as C;
    let fail = |m: &str| Err(bad(C::BadScheduleActivityAttributes, m));
    if a.activity_id.is_empty() {
        return fail("ActivityId is not set on ScheduleActivityTaskCommand");
    }
    if a.activity_type.as_ref().is_none_or(|t| t.name.is_empty()) {
        return fail("ActivityType is not set on ScheduleActivityTaskCommand");
    }
    if run
        .ms
        .activities
        .values()
        .any(|x| x.activity_id == a.activity_id)
    {
        return Err(bad(
            C::ScheduleActivityDuplicateId,
            format!("activity id {} is already in use", a.activity_id),
        ));
    }
    for d in [
        &a.schedule_to_close_timeout,
        &a.schedule_to_start_timeout,
        &a.start_to_close_timeout,
        &a.heartbeat_timeout,
    ] {
        if clock::is_negative(d) {
            return fail("activity timeouts must not be negative");
        }
    }
    let run_timeout = dur_millis(&run.ms.started.as_ref().and_then(|s| s.workflow_run_timeout));
    let (mut s2c, mut s2s, mut stc, mut hb) = (
        dur_millis(&a.schedule_to_close_timeout),
        dur_millis(&a.schedule_to_start_timeout),
        dur_millis(&a.start_to_close_timeout),
        dur_millis(&a.heartbeat_timeout),
    );
    if s2c > 0 {
        s2s = if s2s > 0 { s2s.min(s2c) } else { s2c };
        stc = if stc > 0 { stc.min(s2c) } else { s2c };
    } else if stc > 0 {
        s2c = run_timeout;
        if s2s == 0 {
            s2s = run_timeout;
        }
    } else {
        return fail(
            "A valid StartToClose or ScheduleToCloseTimeout is not set on ScheduleActivityTaskCommand",
        );
    }
    if run_timeout > 0 {
        let cap = |v: i64| {
            if v == 0 || v > run_timeout {
                run_timeout
            } else {
                v
            }
        };
        s2c = cap(s2c);
        s2s = cap(s2s);
        stc = cap(stc);
    }
    if hb > stc {
        hb = stc;
    }
    let mut policy = a.retry_policy.clone().unwrap_or_default();
    retry::fill_defaults(&mut policy);
    retry::validate(&policy).map_err(|m| bad(C::BadScheduleActivityAttributes, m))?;
    let tq = match &a.task_queue {
        Some(t) if !t.name.is_empty() => t.name.clone(),
        _ => run.task_queue(),
    };
    let opt = |v: i64| (v > 0).then(|| dur_from_millis(v));
    let scheduled_event_id = run.append(
        now,
        Attributes::ActivityTaskScheduledEventAttributes(ActivityTaskScheduledEventAttributes {
            activity_id: a.activity_id.clone(),
            activity_type: a.activity_type.clone(),
            task_queue: Some(super::workflow_task::normal_queue(&tq)),
            header: a.header.clone(),
            input: a.input.clone(),
            schedule_to_close_timeout: opt(s2c),
            schedule_to_start_timeout: opt(s2s),
            start_to_close_timeout: opt(stc),
            heartbeat_timeout: opt(hb),
            workflow_task_completed_event_id: wtc_id,
            retry_policy: Some(policy.clone()),
            priority: a.priority.clone(),
            ..Default::default()
        }),
    );
    let info = ActivityInfo {
        scheduled_event_id,
        activity_id: a.activity_id.clone(),
        activity_type: a.activity_type.clone(),
        task_queue: tq.clone(),
        header: a.header.clone(),
        input: a.input.clone(),
        schedule_to_close_timeout: opt(s2c),
        schedule_to_start_timeout: opt(s2s),
        start_to_close_timeout: opt(stc),
        heartbeat_timeout: opt(hb),
        retry_policy: Some(policy),
        attempt: 1,
        first_scheduled_time: Some(ts_from_millis(now)),
        scheduled_time: Some(ts_from_millis(now)),
        ..Default::default()
    };
    run.ms.activities.insert(scheduled_event_id, info);
    run.changes.push(ChangeKind::ActivityTaskScheduled);
    effects.push(Effect::Task(
        QueueKey::new(&key.namespace, &tq, QueueKind::Activity),
        TaskRef::Activity {
            key: key.clone(),
            scheduled_event_id,
            attempt: 1,
        },
    ));
    if s2c > 0 {
        effects.push(Effect::Timer(
            now + s2c,
            TimerTask::ActivityScheduleToClose {
                key: key.clone(),
                scheduled_event_id,
            },
        ));
    }
    if s2s > 0 && (s2c == 0 || s2s < s2c) {
        effects.push(Effect::Timer(
            now + s2s,
            TimerTask::ActivityScheduleToStart {
                key: key.clone(),
                scheduled_event_id,
                attempt: 1,
            },
        ));
    }
    Ok(())
}

/// Merges upserted search attributes; a null or empty-list payload removes the key.
pub fn merge_search_attributes(current: &mut Option<SearchAttributes>, upsert: &SearchAttributes) {
    let cur = current.get_or_insert_with(Default::default);
    for (k, v) in &upsert.indexed_fields {
        if is_empty_payload(&v.data) {
            cur.indexed_fields.remove(k);
        } else {
            cur.indexed_fields.insert(k.clone(), v.clone());
        }
    }
}

pub fn merge_memo(current: &mut Option<Memo>, upsert: &Memo) {
    let cur = current.get_or_insert_with(Default::default);
    for (k, v) in &upsert.fields {
        if is_empty_payload(&v.data) {
            cur.fields.remove(k);
        } else {
            cur.fields.insert(k.clone(), v.clone());
        }
    }
}

fn is_empty_payload(data: &[u8]) -> bool {
    data.is_empty() || data == b"null" || data == b"[]"
}

/// The payloads a command carries must each stay under the payload limit.
fn check_command_size(attrs: &command::Attributes) -> Result<(), String> {
    use super::limits::check_payloads;
    use command::Attributes as CA;
    match attrs {
        CA::ScheduleActivityTaskCommandAttributes(a) => {
            check_payloads("ScheduleActivityTask input", &a.input)
        }
        CA::CompleteWorkflowExecutionCommandAttributes(a) => {
            check_payloads("CompleteWorkflowExecution result", &a.result)
        }
        CA::CancelWorkflowExecutionCommandAttributes(a) => {
            check_payloads("CancelWorkflowExecution details", &a.details)
        }
        CA::ContinueAsNewWorkflowExecutionCommandAttributes(a) => {
            check_payloads("ContinueAsNewWorkflowExecution input", &a.input)
        }
        CA::StartChildWorkflowExecutionCommandAttributes(a) => {
            check_payloads("StartChildWorkflowExecution input", &a.input)
        }
        CA::SignalExternalWorkflowExecutionCommandAttributes(a) => {
            check_payloads("SignalExternalWorkflowExecution input", &a.input)
        }
        CA::RecordMarkerCommandAttributes(a) => a.details.iter().try_for_each(|(name, p)| {
            check_payloads(&format!("marker detail {name}"), &Some(p.clone()))
        }),
        _ => Ok(()),
    }
}
