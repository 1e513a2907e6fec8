//! Commands on activities. Each takes the run, the task's context and the command, stages its
//! events on the run, and reports what must happen outside the run.

use super::*;

/// Schedules an activity; its task goes to its queue as an effect.
pub(super) fn schedule_activity_task(
    run: &mut Run,
    cx: TaskContext,
    a: &temporalio_protos::temporal::api::command::v1::ScheduleActivityTaskCommandAttributes,
    effects: &mut Vec<Effect>,
) -> Result<(), CommandError> {
    let TaskContext {
        key, wtc_id, now, ..
    } = cx;
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
    let given = ActivityTimeouts {
        schedule_to_close: dur_millis(&a.schedule_to_close_timeout),
        schedule_to_start: dur_millis(&a.schedule_to_start_timeout),
        start_to_close: dur_millis(&a.start_to_close_timeout),
        heartbeat: dur_millis(&a.heartbeat_timeout),
    };
    let Some(t) = given.normalized(run_timeout) else {
        return fail(
            "A valid StartToClose or ScheduleToCloseTimeout is not set on ScheduleActivityTaskCommand",
        );
    };
    let (s2c, s2s, stc, hb) = (
        t.schedule_to_close,
        t.schedule_to_start,
        t.start_to_close,
        t.heartbeat,
    );
    let mut policy = a.retry_policy.clone().unwrap_or_default();
    retry::fill_defaults(&mut policy);
    retry::validate(&policy).map_err(|m| bad(C::BadScheduleActivityAttributes, m))?;
    let tq = match &a.task_queue {
        Some(t) if !t.name.is_empty() => t.name.clone(),
        _ => run.task_queue(),
    };
    // Temporal always records the four timeouts, zero meaning no limit; the TypeScript SDK
    // refuses an activity task whose schedule-to-close timeout is missing.
    let opt = |v: i64| Some(dur_from_millis(v));
    let scheduled_event_id = run.append(
        now,
        Attributes::ActivityTaskScheduledEventAttributes(ActivityTaskScheduledEventAttributes {
            activity_id: a.activity_id.clone(),
            activity_type: a.activity_type.clone(),
            task_queue: Some(crate::engine::workflow_task::normal_queue(&tq)),
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
        priority: a.priority.clone(),
        attempt: 1,
        first_scheduled_time: Some(ts_from_millis(now)),
        scheduled_time: Some(ts_from_millis(now)),
        ..Default::default()
    };
    run.ms.activities.insert(scheduled_event_id, info);
    run.changes.push(ChangeKind::ActivityTaskScheduled);
    let queue = QueueKey::new(&key.namespace, &tq, QueueKind::Activity);
    let task = TaskRef::Activity {
        key: key.clone(),
        scheduled_event_id,
        attempt: 1,
    };
    // The worker completing this task polls the workflow's own queue and may not run another
    // queue's activities: SDKs ask only for those on it, and the server holds them to that.
    effects.push(if a.request_eager_execution && tq == run.task_queue() {
        Effect::EagerActivity(queue, task)
    } else {
        Effect::Task(queue, task)
    });
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

/// Requests cancellation of a pending activity; one not started yet is canceled at once.
pub(super) fn request_cancel_activity_task(
    run: &mut Run,
    cx: TaskContext,
    a: &temporalio_protos::temporal::api::command::v1::RequestCancelActivityTaskCommandAttributes,
    outcome: &mut Outcome,
) -> Result<(), CommandError> {
    let TaskContext { wtc_id, now, .. } = cx;
    use WorkflowTaskFailedCause as C;
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
            Attributes::ActivityTaskCanceledEventAttributes(ActivityTaskCanceledEventAttributes {
                latest_cancel_requested_event_id: requested_id,
                scheduled_event_id: a.scheduled_event_id,
                ..Default::default()
            }),
        );
        outcome.new_workflow_task = true;
    } else if let Some(info) = run.ms.activities.get_mut(&a.scheduled_event_id) {
        info.cancel_requested = true;
        info.cancel_requested_event_id = requested_id;
    }
    Ok(())
}

/// An activity's four timeouts in milliseconds (0: not set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ActivityTimeouts {
    pub schedule_to_close: i64,
    pub schedule_to_start: i64,
    pub start_to_close: i64,
    pub heartbeat: i64,
}

impl ActivityTimeouts {
    /// Temporal's rules: schedule-to-close bounds the others (and defaults them); without it
    /// start-to-close is required and the run timeout stands in; every timeout is capped by
    /// the run timeout (`run_timeout` 0: none); the heartbeat timeout by start-to-close.
    /// None when neither schedule-to-close nor start-to-close is set.
    pub(crate) fn normalized(self, run_timeout: i64) -> Option<Self> {
        let Self {
            schedule_to_close: mut s2c,
            schedule_to_start: mut s2s,
            start_to_close: mut stc,
            heartbeat: mut hb,
        } = self;
        if s2c > 0 {
            s2s = if s2s > 0 { s2s.min(s2c) } else { s2c };
            stc = if stc > 0 { stc.min(s2c) } else { s2c };
        } else if stc > 0 {
            s2c = run_timeout;
            if s2s == 0 {
                s2s = run_timeout;
            }
        } else {
            return None;
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
        Some(Self {
            schedule_to_close: s2c,
            schedule_to_start: s2s,
            start_to_close: stc,
            heartbeat: hb,
        })
    }
}
