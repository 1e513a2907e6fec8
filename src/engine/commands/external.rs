//! Commands that act on other workflows: children, signals and cancel requests. Each takes the run, the task's context and the command, stages its
//! events on the run, and reports what must happen outside the run.

use super::*;
use crate::engine::standalone::is_reserved;

/// Initiates a child workflow; the start is an effect on the child.
pub(super) fn start_child_workflow_execution(
    run: &mut Run,
    cx: TaskContext,
    a: &temporalio_protos::temporal::api::command::v1::StartChildWorkflowExecutionCommandAttributes,
    effects: &mut Vec<Effect>,
) -> Result<(), CommandError> {
    let TaskContext {
        key, wtc_id, now, ..
    } = cx;
    use WorkflowTaskFailedCause as C;
    if a.workflow_id.is_empty() || is_reserved(&a.workflow_id) {
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
        task_queue: Some(crate::engine::workflow_task::normal_queue(&task_queue)),
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
        Attributes::StartChildWorkflowExecutionInitiatedEventAttributes(initiated.clone()),
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
    Ok(())
}

/// Initiates a signal to another workflow (an effect).
pub(super) fn signal_external_workflow_execution(
    run: &mut Run,
    cx: TaskContext,
    a: &temporalio_protos::temporal::api::command::v1::SignalExternalWorkflowExecutionCommandAttributes,
    effects: &mut Vec<Effect>,
) -> Result<(), CommandError> {
    let TaskContext {
        key, wtc_id, now, ..
    } = cx;
    use WorkflowTaskFailedCause as C;
    let target = a.execution.clone().unwrap_or_default();
    if target.workflow_id.is_empty() || is_reserved(&target.workflow_id) || a.signal_name.is_empty()
    {
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
    Ok(())
}

/// Initiates a cancel request to another workflow (an effect).
pub(super) fn request_cancel_external_workflow_execution(
    run: &mut Run,
    cx: TaskContext,
    a: &temporalio_protos::temporal::api::command::v1::RequestCancelExternalWorkflowExecutionCommandAttributes,
    effects: &mut Vec<Effect>,
) -> Result<(), CommandError> {
    let TaskContext {
        key, wtc_id, now, ..
    } = cx;
    use WorkflowTaskFailedCause as C;
    if a.workflow_id.is_empty() || is_reserved(&a.workflow_id) {
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
    Ok(())
}
