//! Wraps the service handlers so that, when an auth file is configured, every RPC is checked
//! against it before it reaches the engine (see `auth.rs`).

use std::sync::Arc;

use temporalio_protos::temporal::api::operatorservice::v1::*;
use temporalio_protos::temporal::api::workflowservice::v1::*;
use tonic::{Request, Response, Status};

use super::auth::AuthPolicy;
use super::operator_service::OperatorHandler;
use super::rate::NamespaceRates;
use super::workflow_service::WorkflowHandler;
use crate::cluster::route::Routed;
use crate::proto::operatorservice::operator_service_server::OperatorService;
use crate::proto::workflowservice::workflow_service_server::WorkflowService;

/// A handler behind an optional auth policy and per-namespace rate limits.
pub struct Guarded<H> {
    inner: H,
    policy: Option<Arc<AuthPolicy>>,
    rates: Option<Arc<NamespaceRates>>,
}

impl<H> Guarded<H> {
    pub fn new(
        inner: H,
        policy: Option<Arc<AuthPolicy>>,
        rates: Option<Arc<NamespaceRates>>,
    ) -> Self {
        Self {
            inner,
            policy,
            rates,
        }
    }

    fn check<T>(
        &self,
        req: &Request<T>,
        method: &str,
        namespace: Option<&str>,
    ) -> Result<(), Status> {
        if let Some(p) = &self.policy {
            p.check(req.metadata(), namespace)?;
        }
        // Long polls are bounded by --max-waiting; a forwarded call was counted where it
        // entered the cluster.
        if let (Some(rates), Some(ns)) = (&self.rates, namespace)
            && !method.starts_with("poll_")
            && req
                .extensions()
                .get::<crate::cluster::Forwarded>()
                .is_none()
        {
            rates.admit(ns)?;
        }
        Ok(())
    }
}

/// `method(Request) -> Response, namespace accessor` for every RPC Durin serves; the rest
/// keep the generated UNIMPLEMENTED answers.
macro_rules! guard {
    ($service:ident for $handler:ty { $($method:ident($req:ty) -> $resp:ty, $ns:expr;)* }) => {
        #[tonic::async_trait]
        impl $service for Guarded<$handler> {
            $(
                async fn $method(&self, req: Request<$req>) -> Result<Response<$resp>, Status> {
                    let namespace: fn(&$req) -> Option<&str> = $ns;
                    self.check(&req, stringify!($method), namespace(req.get_ref()))?;
                    self.inner.$method(req).await
                }
            )*
        }
    };
}

guard!(WorkflowService for Routed<WorkflowHandler> {
    get_system_info(GetSystemInfoRequest) -> GetSystemInfoResponse, |_| None;
    get_cluster_info(GetClusterInfoRequest) -> GetClusterInfoResponse, |_| None;
    get_search_attributes(GetSearchAttributesRequest) -> GetSearchAttributesResponse, |_| None;
    list_namespaces(ListNamespacesRequest) -> ListNamespacesResponse, |_| None;
    register_namespace(RegisterNamespaceRequest) -> RegisterNamespaceResponse, |r| Some(&r.namespace);
    describe_namespace(DescribeNamespaceRequest) -> DescribeNamespaceResponse, |r| Some(&r.namespace);
    update_namespace(UpdateNamespaceRequest) -> UpdateNamespaceResponse, |r| Some(&r.namespace);
    start_workflow_execution(StartWorkflowExecutionRequest) -> StartWorkflowExecutionResponse, |r| Some(&r.namespace);
    signal_with_start_workflow_execution(SignalWithStartWorkflowExecutionRequest) -> SignalWithStartWorkflowExecutionResponse, |r| Some(&r.namespace);
    execute_multi_operation(ExecuteMultiOperationRequest) -> ExecuteMultiOperationResponse, |r| Some(&r.namespace);
    poll_workflow_task_queue(PollWorkflowTaskQueueRequest) -> PollWorkflowTaskQueueResponse, |r| Some(&r.namespace);
    respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest) -> RespondWorkflowTaskCompletedResponse, |r| Some(&r.namespace);
    respond_workflow_task_failed(RespondWorkflowTaskFailedRequest) -> RespondWorkflowTaskFailedResponse, |r| Some(&r.namespace);
    poll_activity_task_queue(PollActivityTaskQueueRequest) -> PollActivityTaskQueueResponse, |r| Some(&r.namespace);
    record_activity_task_heartbeat(RecordActivityTaskHeartbeatRequest) -> RecordActivityTaskHeartbeatResponse, |r| Some(&r.namespace);
    record_activity_task_heartbeat_by_id(RecordActivityTaskHeartbeatByIdRequest) -> RecordActivityTaskHeartbeatByIdResponse, |r| Some(&r.namespace);
    respond_activity_task_completed(RespondActivityTaskCompletedRequest) -> RespondActivityTaskCompletedResponse, |r| Some(&r.namespace);
    respond_activity_task_completed_by_id(RespondActivityTaskCompletedByIdRequest) -> RespondActivityTaskCompletedByIdResponse, |r| Some(&r.namespace);
    respond_activity_task_failed(RespondActivityTaskFailedRequest) -> RespondActivityTaskFailedResponse, |r| Some(&r.namespace);
    respond_activity_task_failed_by_id(RespondActivityTaskFailedByIdRequest) -> RespondActivityTaskFailedByIdResponse, |r| Some(&r.namespace);
    respond_activity_task_canceled(RespondActivityTaskCanceledRequest) -> RespondActivityTaskCanceledResponse, |r| Some(&r.namespace);
    respond_activity_task_canceled_by_id(RespondActivityTaskCanceledByIdRequest) -> RespondActivityTaskCanceledByIdResponse, |r| Some(&r.namespace);
    signal_workflow_execution(SignalWorkflowExecutionRequest) -> SignalWorkflowExecutionResponse, |r| Some(&r.namespace);
    query_workflow(QueryWorkflowRequest) -> QueryWorkflowResponse, |r| Some(&r.namespace);
    respond_query_task_completed(RespondQueryTaskCompletedRequest) -> RespondQueryTaskCompletedResponse, |r| Some(&r.namespace);
    request_cancel_workflow_execution(RequestCancelWorkflowExecutionRequest) -> RequestCancelWorkflowExecutionResponse, |r| Some(&r.namespace);
    terminate_workflow_execution(TerminateWorkflowExecutionRequest) -> TerminateWorkflowExecutionResponse, |r| Some(&r.namespace);
    delete_workflow_execution(DeleteWorkflowExecutionRequest) -> DeleteWorkflowExecutionResponse, |r| Some(&r.namespace);
    get_workflow_execution_history(GetWorkflowExecutionHistoryRequest) -> GetWorkflowExecutionHistoryResponse, |r| Some(&r.namespace);
    describe_workflow_execution(DescribeWorkflowExecutionRequest) -> DescribeWorkflowExecutionResponse, |r| Some(&r.namespace);
    update_workflow_execution(UpdateWorkflowExecutionRequest) -> UpdateWorkflowExecutionResponse, |r| Some(&r.namespace);
    poll_workflow_execution_update(PollWorkflowExecutionUpdateRequest) -> PollWorkflowExecutionUpdateResponse, |r| Some(&r.namespace);
    list_workflow_executions(ListWorkflowExecutionsRequest) -> ListWorkflowExecutionsResponse, |r| Some(&r.namespace);
    scan_workflow_executions(ScanWorkflowExecutionsRequest) -> ScanWorkflowExecutionsResponse, |r| Some(&r.namespace);
    count_workflow_executions(CountWorkflowExecutionsRequest) -> CountWorkflowExecutionsResponse, |r| Some(&r.namespace);
    describe_task_queue(DescribeTaskQueueRequest) -> DescribeTaskQueueResponse, |r| Some(&r.namespace);
    shutdown_worker(ShutdownWorkerRequest) -> ShutdownWorkerResponse, |r| Some(&r.namespace);
    reset_sticky_task_queue(ResetStickyTaskQueueRequest) -> ResetStickyTaskQueueResponse, |r| Some(&r.namespace);
    create_schedule(CreateScheduleRequest) -> CreateScheduleResponse, |r| Some(&r.namespace);
    describe_schedule(DescribeScheduleRequest) -> DescribeScheduleResponse, |r| Some(&r.namespace);
    update_schedule(UpdateScheduleRequest) -> UpdateScheduleResponse, |r| Some(&r.namespace);
    patch_schedule(PatchScheduleRequest) -> PatchScheduleResponse, |r| Some(&r.namespace);
    delete_schedule(DeleteScheduleRequest) -> DeleteScheduleResponse, |r| Some(&r.namespace);
    list_schedules(ListSchedulesRequest) -> ListSchedulesResponse, |r| Some(&r.namespace);
    list_schedule_matching_times(ListScheduleMatchingTimesRequest) -> ListScheduleMatchingTimesResponse, |r| Some(&r.namespace);
});

guard!(OperatorService for OperatorHandler {
    add_search_attributes(AddSearchAttributesRequest) -> AddSearchAttributesResponse, |r| Some(&r.namespace);
    remove_search_attributes(RemoveSearchAttributesRequest) -> RemoveSearchAttributesResponse, |r| Some(&r.namespace);
    list_search_attributes(ListSearchAttributesRequest) -> ListSearchAttributesResponse, |r| Some(&r.namespace);
});
