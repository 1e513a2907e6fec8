//! Commands on user timers. Each takes the run, the task's context and the command, stages its
//! events on the run, and reports what must happen outside the run.

use super::*;

/// Starts a user timer; it fires as an effect at its due time.
pub(super) fn start_timer(
    run: &mut Run,
    cx: TaskContext,
    a: &temporalio_protos::temporal::api::command::v1::StartTimerCommandAttributes,
    effects: &mut Vec<Effect>,
) -> Result<(), CommandError> {
    let TaskContext {
        key, wtc_id, now, ..
    } = cx;
    use WorkflowTaskFailedCause as C;
    if a.timer_id.is_empty() {
        return Err(bad(
            C::BadStartTimerAttributes,
            "TimerId is not set on StartTimerCommand",
        ));
    }
    if run.ms.timer(&a.timer_id).is_some() {
        return Err(bad(
            C::StartTimerDuplicateId,
            format!("timer id {} is already in use", a.timer_id),
        ));
    }
    // Zero (or unset) fires at once, as on Temporal: `sleep(0)` and a condition with a zero
    // timeout are timers the SDKs send.
    let negative = a
        .start_to_fire_timeout
        .as_ref()
        .is_some_and(|d| d.seconds < 0 || d.nanos < 0);
    if negative {
        return Err(bad(
            C::BadStartTimerAttributes,
            format!(
                "An invalid StartToFireTimeout is set on StartTimerCommand: negative duration. TimerId={}",
                a.timer_id
            ),
        ));
    }
    let ms = dur_millis(&a.start_to_fire_timeout);
    let started_event_id = run.append(
        now,
        Attributes::TimerStartedEventAttributes(TimerStartedEventAttributes {
            timer_id: a.timer_id.clone(),
            start_to_fire_timeout: a.start_to_fire_timeout,
            workflow_task_completed_event_id: wtc_id,
        }),
    );
    let due = now + ms;
    run.ms.insert_timer(TimerInfo {
        timer_id: a.timer_id.clone(),
        started_event_id,
        fire_time: Some(ts_from_millis(due)),
    });
    effects.push(Effect::Timer(
        due,
        TimerTask::UserTimer {
            key: key.clone(),
            timer_id: a.timer_id.clone(),
            started_event_id,
        },
    ));
    Ok(())
}

/// Cancels a pending timer (also one whose firing is still buffered).
pub(super) fn cancel_timer(
    run: &mut Run,
    cx: TaskContext,
    a: &temporalio_protos::temporal::api::command::v1::CancelTimerCommandAttributes,
) -> Result<(), CommandError> {
    let TaskContext { wtc_id, now, .. } = cx;
    use WorkflowTaskFailedCause as C;
    let started_event_id = if let Some(t) = run.ms.remove_timer(&a.timer_id) {
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
    Ok(())
}
