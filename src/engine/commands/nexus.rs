//! Commands on Nexus operations (the caller's side; the attempts are `engine/nexus/`).

use std::collections::BTreeMap;

use temporalio_protos::temporal::api::command::v1::{
    RequestCancelNexusOperationCommandAttributes, ScheduleNexusOperationCommandAttributes,
};
use temporalio_protos::temporal::api::enums::v1::PendingNexusOperationState;

use super::*;
use crate::engine::nexus::system;
use crate::engine::state::{NexusCancellation, NexusOperationInfo};

const NAME_MAX_BYTES: usize = 1000;
pub(crate) const HEADER_MAX_BYTES: usize = 8192;
/// Temporal's default `component.nexusoperations.limit.operation.concurrency`.
pub const MAX_PENDING_OPERATIONS: usize = 30;
/// Headers a workflow may not set: the server sets them for each attempt.
pub(crate) const DISALLOWED_HEADERS: &[&str] = &["request-timeout", "operation-timeout"];

/// Schedules a Nexus operation: its event now, its first attempt once the whole completion
/// is accepted (an effect). `endpoints` maps the names the commands use to endpoint ids.
pub(super) fn schedule_nexus_operation(
    run: &mut Run,
    cx: TaskContext,
    a: &ScheduleNexusOperationCommandAttributes,
    effects: &mut Vec<Effect>,
) -> Result<(), CommandError> {
    use WorkflowTaskFailedCause as C;
    let fail = |m: String| Err(bad(C::BadScheduleNexusOperationAttributes, m));
    let endpoint_id = if a.endpoint == system::SYSTEM_ENDPOINT {
        // Handled by the server itself: no registry entry, no headers, a request it can read.
        if !a.nexus_header.is_empty() {
            return fail(format!(
                "ScheduleNexusOperationCommandAttributes.NexusHeader must be empty when using \
                 {} endpoint",
                system::SYSTEM_ENDPOINT
            ));
        }
        if let Err(m) = system::request_of(
            &run.ms.namespace,
            &a.service,
            &a.operation,
            a.input.as_ref(),
        ) {
            return fail(m);
        }
        String::new()
    } else {
        match cx.nexus_endpoints.get(&a.endpoint) {
            Some(id) => id.clone(),
            None => return fail(format!("endpoint {:?} not found", a.endpoint)),
        }
    };
    if a.service.len() > NAME_MAX_BYTES {
        return fail(format!(
            "ScheduleNexusOperationCommandAttributes.Service exceeds length limit of {NAME_MAX_BYTES}"
        ));
    }
    if a.operation.len() > NAME_MAX_BYTES {
        return fail(format!(
            "ScheduleNexusOperationCommandAttributes.Operation exceeds length limit of {NAME_MAX_BYTES}"
        ));
    }
    for (name, d) in [
        ("ScheduleToCloseTimeout", &a.schedule_to_close_timeout),
        ("ScheduleToStartTimeout", &a.schedule_to_start_timeout),
        ("StartToCloseTimeout", &a.start_to_close_timeout),
    ] {
        if clock::is_negative(d) {
            return fail(format!(
                "ScheduleNexusOperationCommandAttributes.{name} is invalid: negative duration"
            ));
        }
    }
    let mut header = BTreeMap::new();
    let mut header_bytes = 0;
    for (k, v) in &a.nexus_header {
        let k = k.to_ascii_lowercase();
        if DISALLOWED_HEADERS.contains(&k.as_str()) {
            return fail(format!(
                "ScheduleNexusOperationCommandAttributes.NexusHeader contains a disallowed header key: {k:?}"
            ));
        }
        header_bytes += k.len() + v.len();
        header.insert(k, v.clone());
    }
    if header_bytes > HEADER_MAX_BYTES {
        return fail(
            "ScheduleNexusOperationCommandAttributes.NexusHeader exceeds size limit".into(),
        );
    }
    if run.ms.nexus_operations.len() >= MAX_PENDING_OPERATIONS {
        return Err(bad(
            C::PendingNexusOperationsLimitExceeded,
            format!(
                "workflow has reached the pending nexus operation limit of \
                 {MAX_PENDING_OPERATIONS} for this namespace"
            ),
        ));
    }
    let (s2c, s2s, stc) = timeouts(run, a);
    let opt = |v: i64| (v > 0).then(|| dur_from_millis(v));
    let request_id = uuid::Uuid::new_v4().to_string();
    let scheduled_event_id = run.append(
        cx.now,
        Attributes::NexusOperationScheduledEventAttributes(
            NexusOperationScheduledEventAttributes {
                endpoint: a.endpoint.clone(),
                service: a.service.clone(),
                operation: a.operation.clone(),
                input: a.input.clone(),
                schedule_to_close_timeout: opt(s2c),
                nexus_header: header.clone().into_iter().collect(),
                workflow_task_completed_event_id: cx.wtc_id,
                request_id: request_id.clone(),
                endpoint_id: endpoint_id.clone(),
                schedule_to_start_timeout: opt(s2s),
                start_to_close_timeout: opt(stc),
            },
        ),
    );
    run.ms.nexus_operations.insert(
        scheduled_event_id,
        NexusOperationInfo {
            scheduled_event_id,
            endpoint: a.endpoint.clone(),
            endpoint_id: endpoint_id.clone(),
            service: a.service.clone(),
            operation: a.operation.clone(),
            request_id,
            input: a.input.clone(),
            header,
            scheduled_time: Some(ts_from_millis(cx.now)),
            schedule_to_close_timeout: opt(s2c),
            schedule_to_start_timeout: opt(s2s),
            start_to_close_timeout: opt(stc),
            state: PendingNexusOperationState::Scheduled as i32,
            ..Default::default()
        },
    );
    effects.push(Effect::NexusOperation(scheduled_event_id));
    Ok(())
}

/// The operation's timeouts after Temporal's rules: schedule-to-close defaults to (and is
/// capped by) the run timeout; the others are capped by schedule-to-close.
fn timeouts(run: &Run, a: &ScheduleNexusOperationCommandAttributes) -> (i64, i64, i64) {
    let run_timeout = dur_millis(&run.ms.started.as_ref().and_then(|s| s.workflow_run_timeout));
    let mut s2c = dur_millis(&a.schedule_to_close_timeout);
    if run_timeout > 0 && (s2c == 0 || s2c > run_timeout) {
        s2c = run_timeout;
    }
    let cap = |v: i64| if s2c > 0 && v > s2c { s2c } else { v };
    (
        s2c,
        cap(dur_millis(&a.schedule_to_start_timeout)),
        cap(dur_millis(&a.start_to_close_timeout)),
    )
}

/// Records the workflow's request to cancel an operation; the handler is asked once the
/// operation has started (an effect, after the whole completion is accepted). An operation
/// whose end is waiting in the buffer (it ended while this task ran) accepts the request, as
/// Temporal does, and nothing is asked.
pub(super) fn request_cancel_nexus_operation(
    run: &mut Run,
    cx: TaskContext,
    a: &RequestCancelNexusOperationCommandAttributes,
    effects: &mut Vec<Effect>,
) -> Result<(), CommandError> {
    use WorkflowTaskFailedCause as C;
    let sched = a.scheduled_event_id;
    let fail = |m: String| Err(bad(C::BadRequestCancelNexusOperationAttributes, m));
    let pending = run.ms.nexus_operations.get(&sched);
    let ended_meanwhile = pending.is_none()
        && run
            .ms
            .buffered
            .iter()
            .any(|e| crate::engine::events::nexus_operation_ended(e) == Some(sched));
    if pending.is_none() && !ended_meanwhile {
        return fail(format!(
            "requested cancelation for a non-existing or already completed operation with \
             scheduled event ID of {sched}"
        ));
    }
    if pending.is_some_and(|info| info.cancel_requested_event_id != 0) {
        return fail(format!(
            "cancelation was already requested for an operation with scheduled event ID {sched}"
        ));
    }
    let requested = run.append(
        cx.now,
        Attributes::NexusOperationCancelRequestedEventAttributes(
            NexusOperationCancelRequestedEventAttributes {
                scheduled_event_id: sched,
                workflow_task_completed_event_id: cx.wtc_id,
            },
        ),
    );
    if let Some(info) = run.ms.nexus_operations.get_mut(&sched) {
        info.cancel_requested_event_id = requested;
        info.cancellation = Some(NexusCancellation {
            requested_time: Some(ts_from_millis(cx.now)),
            ..Default::default()
        });
        effects.push(Effect::NexusCancel(sched));
    }
    Ok(())
}
