//! What a batch operation does to one workflow: the RPC a user would send for it.

use temporalio_protos::temporal::api::common::v1::{WorkflowExecution, reset_options::Target};
use temporalio_protos::temporal::api::enums::v1::EventType;
use temporalio_protos::temporal::api::workflowservice::v1::start_batch_operation_request::Operation;
use temporalio_protos::temporal::api::workflowservice::v1::*;
use tonic::Status;

use crate::operator::frontend::{Frontend, Local};
use crate::store::records::BatchJobRecord;

/// Applies the job's operation to the workflow run `target` (workflow id, run id).
pub(super) async fn apply(
    frontend: &Local,
    job: &BatchJobRecord,
    req: &StartBatchOperationRequest,
    target: &(String, String),
) -> Result<(), Status> {
    let namespace = req.namespace.clone();
    let execution = Some(WorkflowExecution {
        workflow_id: target.0.clone(),
        run_id: target.1.clone(),
    });
    // The same job acting again on the same run (after a restart) is recognised by this.
    let request_id = format!("{}-{}-{}", job.job_id, target.0, target.1);
    match req.operation.clone() {
        Some(Operation::TerminationOperation(op)) => {
            frontend
                .terminate_workflow_execution(TerminateWorkflowExecutionRequest {
                    namespace,
                    workflow_execution: execution,
                    reason: req.reason.clone(),
                    details: op.details,
                    identity: op.identity,
                    ..Default::default()
                })
                .await?;
        }
        Some(Operation::SignalOperation(op)) => {
            frontend
                .signal_workflow_execution(SignalWorkflowExecutionRequest {
                    namespace,
                    workflow_execution: execution,
                    signal_name: op.signal,
                    input: op.input,
                    identity: op.identity,
                    request_id,
                    header: op.header,
                    ..Default::default()
                })
                .await?;
        }
        Some(Operation::CancellationOperation(op)) => {
            frontend
                .request_cancel_workflow_execution(RequestCancelWorkflowExecutionRequest {
                    namespace,
                    workflow_execution: execution,
                    identity: op.identity,
                    request_id,
                    reason: req.reason.clone(),
                    ..Default::default()
                })
                .await?;
        }
        Some(Operation::DeletionOperation(_)) => {
            frontend
                .delete_workflow_execution(DeleteWorkflowExecutionRequest {
                    namespace,
                    workflow_execution: execution,
                })
                .await?;
        }
        Some(Operation::ResetOperation(op)) => {
            let options = op.options.unwrap_or_default();
            let Some(event_id) =
                reset_point(frontend, &namespace, target, options.target.as_ref()).await?
            else {
                return Err(Status::failed_precondition(
                    "the workflow has no workflow task to reset to",
                ));
            };
            frontend
                .reset_workflow_execution(ResetWorkflowExecutionRequest {
                    namespace,
                    workflow_execution: execution,
                    reason: req.reason.clone(),
                    workflow_task_finish_event_id: event_id,
                    request_id,
                    reset_reapply_exclude_types: options.reset_reapply_exclude_types,
                    identity: op.identity,
                    ..Default::default()
                })
                .await?;
        }
        Some(Operation::UnpauseActivitiesOperation(op)) => {
            use temporalio_protos::temporal::api::batch::v1::batch_operation_unpause_activities::Activity as A;
            frontend
                .unpause_activity(UnpauseActivityRequest {
                    namespace,
                    execution,
                    identity: op.identity,
                    reset_attempts: op.reset_attempts,
                    reset_heartbeat: op.reset_heartbeat,
                    jitter: op.jitter,
                    activity: op.activity.map(|a| match a {
                        A::Type(t) => unpause_activity_request::Activity::Type(t),
                        A::MatchAll(b) => unpause_activity_request::Activity::UnpauseAll(b),
                    }),
                })
                .await?;
        }
        Some(Operation::ResetActivitiesOperation(op)) => {
            use temporalio_protos::temporal::api::batch::v1::batch_operation_reset_activities::Activity as A;
            frontend
                .reset_activity(ResetActivityRequest {
                    namespace,
                    execution,
                    identity: op.identity,
                    reset_heartbeat: op.reset_heartbeat,
                    keep_paused: op.keep_paused,
                    jitter: op.jitter,
                    restore_original_options: op.restore_original_options,
                    activity: op.activity.map(|a| match a {
                        A::Type(t) => reset_activity_request::Activity::Type(t),
                        A::MatchAll(b) => reset_activity_request::Activity::MatchAll(b),
                    }),
                })
                .await?;
        }
        Some(Operation::UpdateActivityOptionsOperation(op)) => {
            use temporalio_protos::temporal::api::batch::v1::batch_operation_update_activity_options::Activity as A;
            frontend
                .update_activity_options(UpdateActivityOptionsRequest {
                    namespace,
                    execution,
                    identity: op.identity,
                    activity_options: op.activity_options,
                    update_mask: op.update_mask,
                    restore_original: op.restore_original,
                    activity: op.activity.map(|a| match a {
                        A::Type(t) => update_activity_options_request::Activity::Type(t),
                        A::MatchAll(b) => update_activity_options_request::Activity::MatchAll(b),
                    }),
                })
                .await?;
        }
        Some(Operation::UpdateWorkflowOptionsOperation(op)) => {
            frontend
                .update_workflow_execution_options(UpdateWorkflowExecutionOptionsRequest {
                    namespace,
                    workflow_execution: execution,
                    workflow_execution_options: op.workflow_execution_options,
                    update_mask: op.update_mask,
                    identity: op.identity,
                })
                .await?;
        }
        _ => return Err(Status::invalid_argument("unsupported batch operation")),
    }
    Ok(())
}

/// The workflow-task event a batch reset goes back to in `target`'s history.
async fn reset_point(
    frontend: &Local,
    namespace: &str,
    target: &(String, String),
    wanted: Option<&Target>,
) -> Result<Option<i64>, Status> {
    let execution = Some(WorkflowExecution {
        workflow_id: target.0.clone(),
        run_id: target.1.clone(),
    });
    if let Some(Target::WorkflowTaskId(id)) = wanted {
        return Ok(Some(*id));
    }
    if let Some(Target::BuildId(build)) = wanted {
        let desc = frontend
            .describe_workflow_execution(DescribeWorkflowExecutionRequest {
                namespace: namespace.to_string(),
                execution,
            })
            .await?;
        return Ok(desc
            .workflow_execution_info
            .and_then(|i| i.auto_reset_points)
            .and_then(|p| {
                #[allow(deprecated)]
                p.points
                    .into_iter()
                    .find(|p| &p.build_id == build || &p.binary_checksum == build)
            })
            .map(|p| p.first_workflow_task_completed_id));
    }
    let mut completed = Vec::new();
    let mut token = Vec::new();
    loop {
        let page = frontend
            .get_workflow_execution_history(GetWorkflowExecutionHistoryRequest {
                namespace: namespace.to_string(),
                execution: execution.clone(),
                next_page_token: token,
                ..Default::default()
            })
            .await?;
        for event in page.history.map(|h| h.events).unwrap_or_default() {
            if event.event_type == EventType::WorkflowTaskCompleted as i32 {
                completed.push(event.event_id);
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    Ok(match wanted {
        Some(Target::LastWorkflowTask(())) => completed.last().copied(),
        _ => completed.first().copied(),
    })
}
