//! The RPC surface, declared once.
//!
//! [`workflow_rpcs!`] and [`operator_rpcs!`] list every RPC Durin serves, a row each: the
//! method, its request and response types, its gRPC name, the namespace it acts in (what
//! authorization and rate limits check) and what it is routed by between replicas. Each layer
//! of the service stack is generated from these rows — the checks (`api/authz.rs`), the
//! forwarding to the replica that owns a shard and the dispatch of forwarded calls
//! (`cluster/route.rs`), and the in-process client the operator uses
//! (`operator/frontend.rs`) — so an RPC is served by every layer or by none. A handler
//! method missing from the table, or a row without a handler, fails the tests in this
//! module.
//!
//! A layer is a macro taking the rows; `workflow_rpcs!(layer [prefix tokens])` calls
//! `layer! { [prefix tokens] rows }`.

pub mod errors;

use std::time::Duration;

use temporalio_protos::temporal::api::workflowservice::v1::ExecuteMultiOperationRequest;
use temporalio_protos::temporal::api::workflowservice::v1::execute_multi_operation_request::operation::Operation;

/// Largest message Durin sends or accepts, from clients and between replicas (histories ship
/// in one response).
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024 * 1024;

/// What a request is routed by between replicas.
#[derive(Clone, Copy)]
pub enum RouteKey<'a> {
    /// Served by whichever replica it reaches.
    Local,
    /// A workflow (or schedule) id in a namespace.
    Id(&'a str, &'a str),
    /// A standalone activity's id in a namespace (a key space of its own).
    Activity(&'a str, &'a str),
    /// A standalone Nexus operation's id in a namespace (a key space of its own).
    NexusOperation(&'a str, &'a str),
    /// A task token, which names its workflow.
    Token(&'a [u8]),
}

/// Marks a request that was forwarded here: it is served here or refused, never forwarded on.
#[derive(Clone, Copy, Debug)]
pub struct Forwarded;

/// The workflow id of an optional execution ("" when absent).
pub fn workflow_id(
    e: &Option<temporalio_protos::temporal::api::common::v1::WorkflowExecution>,
) -> &str {
    e.as_ref().map_or("", |e| e.workflow_id.as_str())
}

/// An activity named by id: a workflow's when a workflow id is given, else a standalone one.
pub fn activity_by_id<'a>(
    namespace: &'a str,
    workflow_id: &'a str,
    activity_id: &'a str,
) -> RouteKey<'a> {
    if workflow_id.is_empty() {
        RouteKey::Activity(namespace, activity_id)
    } else {
        RouteKey::Id(namespace, workflow_id)
    }
}

/// Refuses a workflow id in the standalone activities' key space: no RPC may reach an
/// activity execution as if it were a workflow.
pub fn check_route_key(key: RouteKey<'_>) -> Result<(), tonic::Status> {
    match key {
        RouteKey::Id(_, id) if crate::engine::standalone::is_reserved(id) => Err(
            tonic::Status::invalid_argument("WorkflowId must not start with a NUL character."),
        ),
        _ => Ok(()),
    }
}

/// The workflow id a multi-operation starts.
pub fn multi_operation_id(r: &ExecuteMultiOperationRequest) -> &str {
    r.operations
        .iter()
        .find_map(|o| match &o.operation {
            Some(Operation::StartWorkflow(s)) => Some(s.workflow_id.as_str()),
            _ => None,
        })
        .unwrap_or("")
}

/// The `grpc-timeout` header's value as a duration.
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    if v.len() < 2 {
        return None;
    }
    let (digits, unit) = v.split_at(v.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Every WorkflowService RPC Durin serves:
/// `method(Request) -> Response, "Name", namespace, route key;`.
#[macro_export]
macro_rules! workflow_rpcs {
    ($layer:ident [$($prefix:tt)*]) => {
        $layer! { [$($prefix)*]
            get_system_info(GetSystemInfoRequest) -> GetSystemInfoResponse, "GetSystemInfo",
                |_| None, |_| $crate::rpc::RouteKey::Local;
            get_cluster_info(GetClusterInfoRequest) -> GetClusterInfoResponse, "GetClusterInfo",
                |_| None, |_| $crate::rpc::RouteKey::Local;
            get_search_attributes(GetSearchAttributesRequest) -> GetSearchAttributesResponse, "GetSearchAttributes",
                |_| None, |_| $crate::rpc::RouteKey::Local;
            list_namespaces(ListNamespacesRequest) -> ListNamespacesResponse, "ListNamespaces",
                |_| None, |_| $crate::rpc::RouteKey::Local;
            register_namespace(RegisterNamespaceRequest) -> RegisterNamespaceResponse, "RegisterNamespace",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            describe_namespace(DescribeNamespaceRequest) -> DescribeNamespaceResponse, "DescribeNamespace",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            update_namespace(UpdateNamespaceRequest) -> UpdateNamespaceResponse, "UpdateNamespace",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            start_workflow_execution(StartWorkflowExecutionRequest) -> StartWorkflowExecutionResponse, "StartWorkflowExecution",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, &r.workflow_id);
            signal_with_start_workflow_execution(SignalWithStartWorkflowExecutionRequest) -> SignalWithStartWorkflowExecutionResponse, "SignalWithStartWorkflowExecution",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, &r.workflow_id);
            execute_multi_operation(ExecuteMultiOperationRequest) -> ExecuteMultiOperationResponse, "ExecuteMultiOperation",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, $crate::rpc::multi_operation_id(r));
            poll_workflow_task_queue(PollWorkflowTaskQueueRequest) -> PollWorkflowTaskQueueResponse, "PollWorkflowTaskQueue",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest) -> RespondWorkflowTaskCompletedResponse, "RespondWorkflowTaskCompleted",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Token(&r.task_token);
            respond_workflow_task_failed(RespondWorkflowTaskFailedRequest) -> RespondWorkflowTaskFailedResponse, "RespondWorkflowTaskFailed",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Token(&r.task_token);
            poll_activity_task_queue(PollActivityTaskQueueRequest) -> PollActivityTaskQueueResponse, "PollActivityTaskQueue",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            record_activity_task_heartbeat(RecordActivityTaskHeartbeatRequest) -> RecordActivityTaskHeartbeatResponse, "RecordActivityTaskHeartbeat",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Token(&r.task_token);
            record_activity_task_heartbeat_by_id(RecordActivityTaskHeartbeatByIdRequest) -> RecordActivityTaskHeartbeatByIdResponse, "RecordActivityTaskHeartbeatById",
                |r| Some(&r.namespace), |r| $crate::rpc::activity_by_id(&r.namespace, &r.workflow_id, &r.activity_id);
            respond_activity_task_completed(RespondActivityTaskCompletedRequest) -> RespondActivityTaskCompletedResponse, "RespondActivityTaskCompleted",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Token(&r.task_token);
            respond_activity_task_completed_by_id(RespondActivityTaskCompletedByIdRequest) -> RespondActivityTaskCompletedByIdResponse, "RespondActivityTaskCompletedById",
                |r| Some(&r.namespace), |r| $crate::rpc::activity_by_id(&r.namespace, &r.workflow_id, &r.activity_id);
            respond_activity_task_failed(RespondActivityTaskFailedRequest) -> RespondActivityTaskFailedResponse, "RespondActivityTaskFailed",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Token(&r.task_token);
            respond_activity_task_failed_by_id(RespondActivityTaskFailedByIdRequest) -> RespondActivityTaskFailedByIdResponse, "RespondActivityTaskFailedById",
                |r| Some(&r.namespace), |r| $crate::rpc::activity_by_id(&r.namespace, &r.workflow_id, &r.activity_id);
            respond_activity_task_canceled(RespondActivityTaskCanceledRequest) -> RespondActivityTaskCanceledResponse, "RespondActivityTaskCanceled",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Token(&r.task_token);
            respond_activity_task_canceled_by_id(RespondActivityTaskCanceledByIdRequest) -> RespondActivityTaskCanceledByIdResponse, "RespondActivityTaskCanceledById",
                |r| Some(&r.namespace), |r| $crate::rpc::activity_by_id(&r.namespace, &r.workflow_id, &r.activity_id);
            pause_activity(PauseActivityRequest) -> PauseActivityResponse, "PauseActivity",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, $crate::rpc::workflow_id(&r.execution));
            unpause_activity(UnpauseActivityRequest) -> UnpauseActivityResponse, "UnpauseActivity",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, $crate::rpc::workflow_id(&r.execution));
            reset_activity(ResetActivityRequest) -> ResetActivityResponse, "ResetActivity",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, $crate::rpc::workflow_id(&r.execution));
            update_activity_options(UpdateActivityOptionsRequest) -> UpdateActivityOptionsResponse, "UpdateActivityOptions",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, $crate::rpc::workflow_id(&r.execution));
            pause_activity_execution(PauseActivityExecutionRequest) -> PauseActivityExecutionResponse, "PauseActivityExecution",
                |r| Some(&r.namespace), |r| $crate::rpc::activity_by_id(&r.namespace, &r.workflow_id, &r.activity_id);
            unpause_activity_execution(UnpauseActivityExecutionRequest) -> UnpauseActivityExecutionResponse, "UnpauseActivityExecution",
                |r| Some(&r.namespace), |r| $crate::rpc::activity_by_id(&r.namespace, &r.workflow_id, &r.activity_id);
            reset_activity_execution(ResetActivityExecutionRequest) -> ResetActivityExecutionResponse, "ResetActivityExecution",
                |r| Some(&r.namespace), |r| $crate::rpc::activity_by_id(&r.namespace, &r.workflow_id, &r.activity_id);
            update_activity_execution_options(UpdateActivityExecutionOptionsRequest) -> UpdateActivityExecutionOptionsResponse, "UpdateActivityExecutionOptions",
                |r| Some(&r.namespace), |r| $crate::rpc::activity_by_id(&r.namespace, &r.workflow_id, &r.activity_id);
            start_activity_execution(StartActivityExecutionRequest) -> StartActivityExecutionResponse, "StartActivityExecution",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Activity(&r.namespace, &r.activity_id);
            describe_activity_execution(DescribeActivityExecutionRequest) -> DescribeActivityExecutionResponse, "DescribeActivityExecution",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Activity(&r.namespace, &r.activity_id);
            poll_activity_execution(PollActivityExecutionRequest) -> PollActivityExecutionResponse, "PollActivityExecution",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Activity(&r.namespace, &r.activity_id);
            request_cancel_activity_execution(RequestCancelActivityExecutionRequest) -> RequestCancelActivityExecutionResponse, "RequestCancelActivityExecution",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Activity(&r.namespace, &r.activity_id);
            terminate_activity_execution(TerminateActivityExecutionRequest) -> TerminateActivityExecutionResponse, "TerminateActivityExecution",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Activity(&r.namespace, &r.activity_id);
            delete_activity_execution(DeleteActivityExecutionRequest) -> DeleteActivityExecutionResponse, "DeleteActivityExecution",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Activity(&r.namespace, &r.activity_id);
            list_activity_executions(ListActivityExecutionsRequest) -> ListActivityExecutionsResponse, "ListActivityExecutions",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            count_activity_executions(CountActivityExecutionsRequest) -> CountActivityExecutionsResponse, "CountActivityExecutions",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            start_nexus_operation_execution(StartNexusOperationExecutionRequest) -> StartNexusOperationExecutionResponse, "StartNexusOperationExecution",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::NexusOperation(&r.namespace, &r.operation_id);
            describe_nexus_operation_execution(DescribeNexusOperationExecutionRequest) -> DescribeNexusOperationExecutionResponse, "DescribeNexusOperationExecution",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::NexusOperation(&r.namespace, &r.operation_id);
            poll_nexus_operation_execution(PollNexusOperationExecutionRequest) -> PollNexusOperationExecutionResponse, "PollNexusOperationExecution",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::NexusOperation(&r.namespace, &r.operation_id);
            request_cancel_nexus_operation_execution(RequestCancelNexusOperationExecutionRequest) -> RequestCancelNexusOperationExecutionResponse, "RequestCancelNexusOperationExecution",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::NexusOperation(&r.namespace, &r.operation_id);
            terminate_nexus_operation_execution(TerminateNexusOperationExecutionRequest) -> TerminateNexusOperationExecutionResponse, "TerminateNexusOperationExecution",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::NexusOperation(&r.namespace, &r.operation_id);
            delete_nexus_operation_execution(DeleteNexusOperationExecutionRequest) -> DeleteNexusOperationExecutionResponse, "DeleteNexusOperationExecution",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::NexusOperation(&r.namespace, &r.operation_id);
            list_nexus_operation_executions(ListNexusOperationExecutionsRequest) -> ListNexusOperationExecutionsResponse, "ListNexusOperationExecutions",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            count_nexus_operation_executions(CountNexusOperationExecutionsRequest) -> CountNexusOperationExecutionsResponse, "CountNexusOperationExecutions",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            signal_workflow_execution(SignalWorkflowExecutionRequest) -> SignalWorkflowExecutionResponse, "SignalWorkflowExecution",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, $crate::rpc::workflow_id(&r.workflow_execution));
            query_workflow(QueryWorkflowRequest) -> QueryWorkflowResponse, "QueryWorkflow",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, $crate::rpc::workflow_id(&r.execution));
            respond_query_task_completed(RespondQueryTaskCompletedRequest) -> RespondQueryTaskCompletedResponse, "RespondQueryTaskCompleted",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Token(&r.task_token);
            request_cancel_workflow_execution(RequestCancelWorkflowExecutionRequest) -> RequestCancelWorkflowExecutionResponse, "RequestCancelWorkflowExecution",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, $crate::rpc::workflow_id(&r.workflow_execution));
            terminate_workflow_execution(TerminateWorkflowExecutionRequest) -> TerminateWorkflowExecutionResponse, "TerminateWorkflowExecution",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, $crate::rpc::workflow_id(&r.workflow_execution));
            reset_workflow_execution(ResetWorkflowExecutionRequest) -> ResetWorkflowExecutionResponse, "ResetWorkflowExecution",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, $crate::rpc::workflow_id(&r.workflow_execution));
            delete_workflow_execution(DeleteWorkflowExecutionRequest) -> DeleteWorkflowExecutionResponse, "DeleteWorkflowExecution",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, $crate::rpc::workflow_id(&r.workflow_execution));
            get_workflow_execution_history(GetWorkflowExecutionHistoryRequest) -> GetWorkflowExecutionHistoryResponse, "GetWorkflowExecutionHistory",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, $crate::rpc::workflow_id(&r.execution));
            get_workflow_execution_history_reverse(GetWorkflowExecutionHistoryReverseRequest) -> GetWorkflowExecutionHistoryReverseResponse, "GetWorkflowExecutionHistoryReverse",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, $crate::rpc::workflow_id(&r.execution));
            describe_workflow_execution(DescribeWorkflowExecutionRequest) -> DescribeWorkflowExecutionResponse, "DescribeWorkflowExecution",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, $crate::rpc::workflow_id(&r.execution));
            update_workflow_execution(UpdateWorkflowExecutionRequest) -> UpdateWorkflowExecutionResponse, "UpdateWorkflowExecution",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, $crate::rpc::workflow_id(&r.workflow_execution));
            poll_workflow_execution_update(PollWorkflowExecutionUpdateRequest) -> PollWorkflowExecutionUpdateResponse, "PollWorkflowExecutionUpdate",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, r.update_ref.as_ref().map_or("", |u| $crate::rpc::workflow_id(&u.workflow_execution)));
            list_workflow_executions(ListWorkflowExecutionsRequest) -> ListWorkflowExecutionsResponse, "ListWorkflowExecutions",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            scan_workflow_executions(ScanWorkflowExecutionsRequest) -> ScanWorkflowExecutionsResponse, "ScanWorkflowExecutions",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            list_open_workflow_executions(ListOpenWorkflowExecutionsRequest) -> ListOpenWorkflowExecutionsResponse, "ListOpenWorkflowExecutions",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            list_closed_workflow_executions(ListClosedWorkflowExecutionsRequest) -> ListClosedWorkflowExecutionsResponse, "ListClosedWorkflowExecutions",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            count_workflow_executions(CountWorkflowExecutionsRequest) -> CountWorkflowExecutionsResponse, "CountWorkflowExecutions",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            describe_task_queue(DescribeTaskQueueRequest) -> DescribeTaskQueueResponse, "DescribeTaskQueue",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            shutdown_worker(ShutdownWorkerRequest) -> ShutdownWorkerResponse, "ShutdownWorker",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            update_workflow_execution_options(UpdateWorkflowExecutionOptionsRequest) -> UpdateWorkflowExecutionOptionsResponse, "UpdateWorkflowExecutionOptions",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, $crate::rpc::workflow_id(&r.workflow_execution));
            reset_sticky_task_queue(ResetStickyTaskQueueRequest) -> ResetStickyTaskQueueResponse, "ResetStickyTaskQueue",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, $crate::rpc::workflow_id(&r.execution));
            create_schedule(CreateScheduleRequest) -> CreateScheduleResponse, "CreateSchedule",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, &r.schedule_id);
            describe_schedule(DescribeScheduleRequest) -> DescribeScheduleResponse, "DescribeSchedule",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, &r.schedule_id);
            update_schedule(UpdateScheduleRequest) -> UpdateScheduleResponse, "UpdateSchedule",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, &r.schedule_id);
            patch_schedule(PatchScheduleRequest) -> PatchScheduleResponse, "PatchSchedule",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, &r.schedule_id);
            delete_schedule(DeleteScheduleRequest) -> DeleteScheduleResponse, "DeleteSchedule",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, &r.schedule_id);
            start_batch_operation(StartBatchOperationRequest) -> StartBatchOperationResponse, "StartBatchOperation",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, &r.job_id);
            describe_batch_operation(DescribeBatchOperationRequest) -> DescribeBatchOperationResponse, "DescribeBatchOperation",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, &r.job_id);
            stop_batch_operation(StopBatchOperationRequest) -> StopBatchOperationResponse, "StopBatchOperation",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, &r.job_id);
            list_batch_operations(ListBatchOperationsRequest) -> ListBatchOperationsResponse, "ListBatchOperations",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            count_schedules(CountSchedulesRequest) -> CountSchedulesResponse, "CountSchedules",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            list_schedules(ListSchedulesRequest) -> ListSchedulesResponse, "ListSchedules",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            list_schedule_matching_times(ListScheduleMatchingTimesRequest) -> ListScheduleMatchingTimesResponse, "ListScheduleMatchingTimes",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Id(&r.namespace, &r.schedule_id);
            record_worker_heartbeat(RecordWorkerHeartbeatRequest) -> RecordWorkerHeartbeatResponse, "RecordWorkerHeartbeat",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            list_workers(ListWorkersRequest) -> ListWorkersResponse, "ListWorkers",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            count_workers(CountWorkersRequest) -> CountWorkersResponse, "CountWorkers",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            describe_worker(DescribeWorkerRequest) -> DescribeWorkerResponse, "DescribeWorker",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            poll_nexus_task_queue(PollNexusTaskQueueRequest) -> PollNexusTaskQueueResponse, "PollNexusTaskQueue",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            respond_nexus_task_completed(RespondNexusTaskCompletedRequest) -> RespondNexusTaskCompletedResponse, "RespondNexusTaskCompleted",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Token(&r.task_token);
            respond_nexus_task_failed(RespondNexusTaskFailedRequest) -> RespondNexusTaskFailedResponse, "RespondNexusTaskFailed",
                |r| Some(&r.namespace), |r| $crate::rpc::RouteKey::Token(&r.task_token);
            describe_worker_deployment(DescribeWorkerDeploymentRequest) -> DescribeWorkerDeploymentResponse, "DescribeWorkerDeployment",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            list_worker_deployments(ListWorkerDeploymentsRequest) -> ListWorkerDeploymentsResponse, "ListWorkerDeployments",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            delete_worker_deployment(DeleteWorkerDeploymentRequest) -> DeleteWorkerDeploymentResponse, "DeleteWorkerDeployment",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            describe_worker_deployment_version(DescribeWorkerDeploymentVersionRequest) -> DescribeWorkerDeploymentVersionResponse, "DescribeWorkerDeploymentVersion",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            delete_worker_deployment_version(DeleteWorkerDeploymentVersionRequest) -> DeleteWorkerDeploymentVersionResponse, "DeleteWorkerDeploymentVersion",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            set_worker_deployment_current_version(SetWorkerDeploymentCurrentVersionRequest) -> SetWorkerDeploymentCurrentVersionResponse, "SetWorkerDeploymentCurrentVersion",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            set_worker_deployment_ramping_version(SetWorkerDeploymentRampingVersionRequest) -> SetWorkerDeploymentRampingVersionResponse, "SetWorkerDeploymentRampingVersion",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            set_worker_deployment_manager(SetWorkerDeploymentManagerRequest) -> SetWorkerDeploymentManagerResponse, "SetWorkerDeploymentManager",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            update_worker_deployment_version_metadata(UpdateWorkerDeploymentVersionMetadataRequest) -> UpdateWorkerDeploymentVersionMetadataResponse, "UpdateWorkerDeploymentVersionMetadata",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
        }
    };
}

/// Every OperatorService RPC Durin serves (served by the replica a call reaches).
#[macro_export]
macro_rules! operator_rpcs {
    ($layer:ident [$($prefix:tt)*]) => {
        $layer! { [$($prefix)*]
            add_search_attributes(AddSearchAttributesRequest) -> AddSearchAttributesResponse, "AddSearchAttributes",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            remove_search_attributes(RemoveSearchAttributesRequest) -> RemoveSearchAttributesResponse, "RemoveSearchAttributes",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            list_search_attributes(ListSearchAttributesRequest) -> ListSearchAttributesResponse, "ListSearchAttributes",
                |r| Some(&r.namespace), |_| $crate::rpc::RouteKey::Local;
            // Deleting a namespace takes a token for every namespace, not one for this one.
            delete_namespace(DeleteNamespaceRequest) -> DeleteNamespaceResponse, "DeleteNamespace",
                |_| Some($crate::api::auth::EVERY_NAMESPACE), |_| $crate::rpc::RouteKey::Local;
            // The Nexus endpoint registry spans namespaces (an endpoint routes one namespace's
            // calls to another's workers): reading or changing it takes a token for all.
            create_nexus_endpoint(CreateNexusEndpointRequest) -> CreateNexusEndpointResponse, "CreateNexusEndpoint",
                |_| Some($crate::api::auth::EVERY_NAMESPACE), |_| $crate::rpc::RouteKey::Local;
            update_nexus_endpoint(UpdateNexusEndpointRequest) -> UpdateNexusEndpointResponse, "UpdateNexusEndpoint",
                |_| Some($crate::api::auth::EVERY_NAMESPACE), |_| $crate::rpc::RouteKey::Local;
            delete_nexus_endpoint(DeleteNexusEndpointRequest) -> DeleteNexusEndpointResponse, "DeleteNexusEndpoint",
                |_| Some($crate::api::auth::EVERY_NAMESPACE), |_| $crate::rpc::RouteKey::Local;
            get_nexus_endpoint(GetNexusEndpointRequest) -> GetNexusEndpointResponse, "GetNexusEndpoint",
                |_| Some($crate::api::auth::EVERY_NAMESPACE), |_| $crate::rpc::RouteKey::Local;
            list_nexus_endpoints(ListNexusEndpointsRequest) -> ListNexusEndpointsResponse, "ListNexusEndpoints",
                |_| Some($crate::api::auth::EVERY_NAMESPACE), |_| $crate::rpc::RouteKey::Local;
        }
    };
}

/// The gRPC names of a table's rows.
macro_rules! names {
    ([] $($method:ident($req:ty) -> $resp:ty, $name:literal, $ns:expr, $key:expr;)*) => {
        &[$($name),*]
    };
}

/// The gRPC names of every WorkflowService RPC in the table.
pub const WORKFLOW_RPCS: &[&str] = workflow_rpcs!(names[]);
/// The gRPC names of every OperatorService RPC in the table.
pub const OPERATOR_RPCS: &[&str] = operator_rpcs!(names[]);

#[cfg(test)]
mod tests;
