//! Commands that close the run. Each takes the run, the task's context and the command, stages its
//! events on the run, and reports what must happen outside the run.

use super::*;

/// Completes the run (a cron run continues with its next run).
pub(super) fn complete_workflow_execution(
    run: &mut Run,
    cx: TaskContext,
    a: &temporalio_protos::temporal::api::command::v1::CompleteWorkflowExecutionCommandAttributes,
    outcome: &mut Outcome,
) -> Result<(), CommandError> {
    let TaskContext { wtc_id, now, .. } = cx;
    let next = chain::cron(&run.ms, a.result.as_ref(), None, now);
    run.append(
        now,
        Attributes::WorkflowExecutionCompletedEventAttributes(
            WorkflowExecutionCompletedEventAttributes {
                result: a.result.clone(),
                workflow_task_completed_event_id: wtc_id,
                new_execution_run_id: next.as_ref().map(|n| n.run_id.clone()).unwrap_or_default(),
            },
        ),
    );
    outcome.closed = Some(WorkflowExecutionStatus::Completed);
    outcome.continuation = next;
    Ok(())
}

/// Fails the run; its retry policy or cron schedule may continue it.
pub(super) fn fail_workflow_execution(
    run: &mut Run,
    cx: TaskContext,
    a: &temporalio_protos::temporal::api::command::v1::FailWorkflowExecutionCommandAttributes,
    outcome: &mut Outcome,
) -> Result<(), CommandError> {
    let TaskContext { wtc_id, now, .. } = cx;
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
                new_execution_run_id: next.as_ref().map(|n| n.run_id.clone()).unwrap_or_default(),
            },
        ),
    );
    outcome.closed = Some(WorkflowExecutionStatus::Failed);
    outcome.continuation = next;
    Ok(())
}

/// Closes the run and names the run that continues it.
pub(super) fn continue_as_new_workflow_execution(
    run: &mut Run,
    cx: TaskContext,
    a: &temporalio_protos::temporal::api::command::v1::ContinueAsNewWorkflowExecutionCommandAttributes,
    outcome: &mut Outcome,
) -> Result<(), CommandError> {
    let TaskContext { wtc_id, now, .. } = cx;
    use WorkflowTaskFailedCause as C;
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
    Ok(())
}

/// Closes the run as canceled.
pub(super) fn cancel_workflow_execution(
    run: &mut Run,
    cx: TaskContext,
    a: &temporalio_protos::temporal::api::command::v1::CancelWorkflowExecutionCommandAttributes,
    outcome: &mut Outcome,
) -> Result<(), CommandError> {
    let TaskContext { wtc_id, now, .. } = cx;
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
    Ok(())
}
