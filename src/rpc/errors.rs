//! Mapping engine errors to gRPC statuses with Temporal's error details, which the SDKs
//! unpack into typed exceptions (e.g. `WorkflowAlreadyStartedError`).

use prost::Message;
use temporalio_protos::google::rpc::Status as RpcStatus;
use temporalio_protos::temporal::api::errordetails::v1::{
    ActivityExecutionAlreadyStartedFailure, NamespaceAlreadyExistsFailure,
    NamespaceNotFoundFailure, NexusOperationExecutionAlreadyStartedFailure, NotFoundFailure,
    QueryFailedFailure, WorkflowExecutionAlreadyStartedFailure,
};
use tonic::{Code, Status};

use crate::engine::Error;

fn any<M: Message>(type_name: &str, msg: &M) -> prost_wkt_types::Any {
    prost_wkt_types::Any {
        type_url: format!("type.googleapis.com/{type_name}"),
        value: msg.encode_to_vec(),
    }
}

fn with_detail(code: Code, message: String, detail: prost_wkt_types::Any) -> Status {
    let status = RpcStatus {
        code: code as i32,
        message: message.clone(),
        details: vec![detail],
    };
    Status::with_details(code, message, status.encode_to_vec().into())
}

pub fn to_status(err: Error) -> Status {
    let message = err.to_string();
    match err {
        Error::InvalidArgument(_) => Status::invalid_argument(message),
        Error::NotFound(_) => with_detail(
            Code::NotFound,
            message,
            any(
                "temporal.api.errordetails.v1.NotFoundFailure",
                &NotFoundFailure::default(),
            ),
        ),
        Error::NamespaceNotFound(namespace) => with_detail(
            Code::NotFound,
            message,
            any(
                "temporal.api.errordetails.v1.NamespaceNotFoundFailure",
                &NamespaceNotFoundFailure { namespace },
            ),
        ),
        Error::NamespaceAlreadyExists(_) => with_detail(
            Code::AlreadyExists,
            message,
            any(
                "temporal.api.errordetails.v1.NamespaceAlreadyExistsFailure",
                &NamespaceAlreadyExistsFailure {},
            ),
        ),
        Error::AlreadyStarted {
            run_id,
            start_request_id,
            first_execution_run_id,
            ..
        } => with_detail(
            Code::AlreadyExists,
            message,
            any(
                "temporal.api.errordetails.v1.WorkflowExecutionAlreadyStartedFailure",
                &WorkflowExecutionAlreadyStartedFailure {
                    start_request_id,
                    run_id,
                    first_execution_run_id,
                },
            ),
        ),
        Error::ActivityAlreadyStarted {
            run_id,
            start_request_id,
            ..
        } => with_detail(
            Code::AlreadyExists,
            message,
            any(
                "temporal.api.errordetails.v1.ActivityExecutionAlreadyStartedFailure",
                &ActivityExecutionAlreadyStartedFailure {
                    start_request_id,
                    run_id,
                },
            ),
        ),
        Error::NexusOperationAlreadyStarted {
            run_id,
            start_request_id,
            ..
        } => with_detail(
            Code::AlreadyExists,
            message,
            any(
                "temporal.api.errordetails.v1.NexusOperationExecutionAlreadyStartedFailure",
                &NexusOperationExecutionAlreadyStartedFailure {
                    start_request_id,
                    run_id,
                },
            ),
        ),
        Error::ScheduleAlreadyExists(_) => with_detail(
            Code::AlreadyExists,
            message,
            any(
                "temporal.api.errordetails.v1.WorkflowExecutionAlreadyStartedFailure",
                &WorkflowExecutionAlreadyStartedFailure::default(),
            ),
        ),
        Error::FailedPrecondition(_) => Status::failed_precondition(message),
        Error::AlreadyExists(_) => Status::already_exists(message),
        Error::QueryFailed { failure, .. } => with_detail(
            Code::InvalidArgument,
            message,
            any(
                "temporal.api.errordetails.v1.QueryFailedFailure",
                &QueryFailedFailure {
                    failure: failure.map(|f| *f),
                },
            ),
        ),
        Error::DeadlineExceeded(_) => Status::deadline_exceeded(message),
        Error::ResourceExhausted(_) => with_detail(
            Code::ResourceExhausted,
            message,
            any(
                "temporal.api.errordetails.v1.ResourceExhaustedFailure",
                &temporalio_protos::temporal::api::errordetails::v1::ResourceExhaustedFailure {
                    cause: temporalio_protos::temporal::api::enums::v1::ResourceExhaustedCause::ConcurrentLimit
                        as i32,
                    ..Default::default()
                },
            ),
        ),
        Error::Unavailable(_) | Error::Store(crate::store::StoreError::Moved(_)) => {
            Status::unavailable(message)
        }
        Error::Store(e) => {
            tracing::error!(error = %e, "storage failure");
            Status::unavailable(format!("storage unavailable: {e}"))
        }
    }
}
