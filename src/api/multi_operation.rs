//! ExecuteMultiOperation: update-with-start, i.e. a StartWorkflowExecution (usually with the
//! USE_EXISTING conflict policy) and an UpdateWorkflowExecution on the same workflow, done by
//! the engine as one operation (`engine/update_with_start.rs`). Failures come back as
//! `MultiOperationExecutionFailure` details, one status per operation.

use std::sync::Arc;

use prost::Message;
use temporalio_protos::google::rpc::Status as RpcStatus;
use temporalio_protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_protos::temporal::api::errordetails::v1::MultiOperationExecutionFailure;
use temporalio_protos::temporal::api::errordetails::v1::multi_operation_execution_failure::OperationStatus;
use temporalio_protos::temporal::api::workflowservice::v1::execute_multi_operation_request::operation::Operation;
use temporalio_protos::temporal::api::workflowservice::v1::execute_multi_operation_response::{Response, response};
use temporalio_protos::temporal::api::workflowservice::v1::{ExecuteMultiOperationRequest, ExecuteMultiOperationResponse};
use tonic::{Code, Status};

use crate::engine::Engine;
use crate::rpc::errors::to_status;

pub async fn execute(
    engine: &Arc<Engine>,
    req: ExecuteMultiOperationRequest,
    deadline: tokio::time::Instant,
) -> Result<tonic::Response<ExecuteMultiOperationResponse>, Status> {
    let mut ops = req.operations.into_iter().map(|o| o.operation);
    let (
        Some(Some(Operation::StartWorkflow(mut start))),
        Some(Some(Operation::UpdateWorkflow(mut update))),
        None,
    ) = (ops.next(), ops.next(), ops.next())
    else {
        return Err(Status::invalid_argument(
            "ExecuteMultiOperation supports exactly [StartWorkflow, UpdateWorkflow].",
        ));
    };
    if start.namespace.is_empty() {
        start.namespace = req.namespace.clone();
    }
    if update.namespace.is_empty() {
        update.namespace = req.namespace.clone();
    }
    update.workflow_execution = Some(WorkflowExecution {
        workflow_id: start.workflow_id.clone(),
        run_id: String::new(),
    });
    let (started, updated) = engine
        .update_with_start(start, update, deadline)
        .await
        .map_err(|e| multi_failure(to_status(*e.error), e.index))?;
    Ok(tonic::Response::new(ExecuteMultiOperationResponse {
        responses: vec![
            Response {
                response: Some(response::Response::StartWorkflow(started)),
            },
            Response {
                response: Some(response::Response::UpdateWorkflow(updated)),
            },
        ],
    }))
}

/// Wraps the failing operation's status; the other operation is reported as aborted.
fn multi_failure(status: Status, failed_index: usize) -> Status {
    let details: Vec<prost_wkt_types::Any> = RpcStatus::decode(status.details())
        .map(|s| s.details)
        .unwrap_or_default();
    let statuses = (0..2)
        .map(|i| {
            if i == failed_index {
                OperationStatus {
                    code: status.code() as i32,
                    message: status.message().to_string(),
                    details: details.clone(),
                }
            } else {
                OperationStatus {
                    code: Code::Aborted as i32,
                    message: "Operation was aborted.".into(),
                    details: vec![],
                }
            }
        })
        .collect();
    let failure = MultiOperationExecutionFailure { statuses };
    let message = format!(
        "Update-with-start could not be executed: {}",
        status.message()
    );
    let rpc = RpcStatus {
        code: status.code() as i32,
        message: message.clone(),
        details: vec![prost_wkt_types::Any {
            type_url:
                "type.googleapis.com/temporal.api.errordetails.v1.MultiOperationExecutionFailure"
                    .into(),
            value: failure.encode_to_vec(),
        }],
    };
    Status::with_details(status.code(), message, rpc.encode_to_vec().into())
}
