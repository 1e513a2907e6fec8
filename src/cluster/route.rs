//! Routing of WorkflowService calls: each call is served here when this replica owns its
//! shard, and forwarded to the owner otherwise. The same table drives the receiving side:
//! a forwarded call is decoded and run through the full handler stack (auth included).

use std::sync::Arc;

use prost::Message;
use temporalio_protos::temporal::api::workflowservice::v1::execute_multi_operation_request::operation::Operation;
use temporalio_protos::temporal::api::workflowservice::v1::*;
use tonic::{Request, Response, Status};

use super::{Cluster, Forwarded, RouteKey};
use crate::api::authz::Guarded;
use crate::api::workflow_service::WorkflowHandler;
use crate::engine::transfer::Source;
use crate::proto::cluster::cluster_service_server::ClusterService;
use crate::proto::cluster::{
    ForwardRequest, ForwardResponse, RefreshNamespacesRequest, RefreshNamespacesResponse,
    TransferRequest, TransferResponse,
};
use crate::proto::workflowservice::workflow_service_server::WorkflowService;

/// A handler that forwards calls for shards another replica owns.
pub struct Routed<H> {
    inner: H,
    cluster: Option<Arc<Cluster>>,
}

impl<H> Routed<H> {
    pub fn new(inner: H, cluster: Option<Arc<Cluster>>) -> Self {
        Self { inner, cluster }
    }

    /// The owner's address when the call must go there.
    fn remote<T>(
        &self,
        req: &Request<T>,
        key: RouteKey<'_>,
    ) -> Result<Option<(&Cluster, String)>, Status> {
        let Some(cluster) = &self.cluster else {
            return Ok(None);
        };
        if req.extensions().get::<Forwarded>().is_some() {
            return Ok(None);
        }
        Ok(cluster.remote_for(key)?.map(|a| (&**cluster, a)))
    }
}

impl<H: Send + Sync> Routed<H> {
    /// Like [`Routed::remote`], but while the shard has no reachable owner, waits for the
    /// takeover (see [`Cluster::wait_for_takeover`]).
    async fn remote_or_wait<T>(
        &self,
        req: &Request<T>,
        key: RouteKey<'_>,
        patience: &mut Option<tokio::time::Instant>,
    ) -> Result<Option<(&Cluster, String)>, Status> {
        loop {
            match self.remote(req, key) {
                Err(status) if status.code() == tonic::Code::Unavailable => {
                    let Some(cluster) = &self.cluster else {
                        return Err(status);
                    };
                    cluster.wait_for_takeover(req, patience, status).await?;
                }
                other => return other,
            }
        }
    }
}

/// A copy of a request to forward (its message and metadata), so it can be sent again.
fn copy<T: Clone>(req: &Request<T>) -> Request<T> {
    let mut copy = Request::new(req.get_ref().clone());
    *copy.metadata_mut() = req.metadata().clone();
    copy
}

fn workflow_id(
    e: &Option<temporalio_protos::temporal::api::common::v1::WorkflowExecution>,
) -> &str {
    e.as_ref().map_or("", |e| e.workflow_id.as_str())
}

fn multi_operation_id(r: &ExecuteMultiOperationRequest) -> &str {
    r.operations
        .iter()
        .find_map(|o| match &o.operation {
            Some(Operation::StartWorkflow(s)) => Some(s.workflow_id.as_str()),
            _ => None,
        })
        .unwrap_or("")
}

/// `method(Request) -> Response, "Method", route key` for every RPC Durin serves.
macro_rules! routes {
    ($($method:ident($req:ty) -> $resp:ty, $name:literal, $key:expr;)*) => {
        #[tonic::async_trait]
        impl WorkflowService for Routed<WorkflowHandler> {
            $(
                async fn $method(&self, req: Request<$req>) -> Result<Response<$resp>, Status> {
                    let key: fn(&$req) -> RouteKey<'_> = $key;
                    let mut patience = None;
                    loop {
                        let Some((cluster, address)) = self.remote_or_wait(&req, key(req.get_ref()), &mut patience).await? else {
                            return self.inner.$method(req).await;
                        };
                        match cluster.forward(&address, $name, copy(&req)).await {
                            Err(status) if status.code() == tonic::Code::Unavailable => {
                                cluster.wait_for_takeover(&req, &mut patience, status).await?
                            }
                            answer => return answer,
                        }
                    }
                }
            )*
        }

        /// Runs a forwarded call through the whole handler stack.
        async fn dispatch(
            svc: &Guarded<Routed<WorkflowHandler>>,
            method: &str,
            bytes: &[u8],
            metadata: tonic::metadata::MetadataMap,
        ) -> Result<Vec<u8>, Status> {
            match method {
                $(
                    $name => {
                        let message = <$req>::decode(bytes)
                            .map_err(|e| Status::invalid_argument(format!("bad forwarded {}: {e}", $name)))?;
                        let mut req = Request::new(message);
                        *req.metadata_mut() = metadata;
                        req.extensions_mut().insert(Forwarded);
                        Ok(svc.$method(req).await?.into_inner().encode_to_vec())
                    }
                )*
                other => Err(Status::unimplemented(format!("cannot forward {other}"))),
            }
        }
    };
}

routes! {
    get_system_info(GetSystemInfoRequest) -> GetSystemInfoResponse, "GetSystemInfo", |_| RouteKey::Local;
    get_cluster_info(GetClusterInfoRequest) -> GetClusterInfoResponse, "GetClusterInfo", |_| RouteKey::Local;
    get_search_attributes(GetSearchAttributesRequest) -> GetSearchAttributesResponse, "GetSearchAttributes", |_| RouteKey::Local;
    list_namespaces(ListNamespacesRequest) -> ListNamespacesResponse, "ListNamespaces", |_| RouteKey::Local;
    register_namespace(RegisterNamespaceRequest) -> RegisterNamespaceResponse, "RegisterNamespace", |_| RouteKey::Local;
    describe_namespace(DescribeNamespaceRequest) -> DescribeNamespaceResponse, "DescribeNamespace", |_| RouteKey::Local;
    update_namespace(UpdateNamespaceRequest) -> UpdateNamespaceResponse, "UpdateNamespace", |_| RouteKey::Local;
    start_workflow_execution(StartWorkflowExecutionRequest) -> StartWorkflowExecutionResponse, "StartWorkflowExecution", |r| RouteKey::Id(&r.namespace, &r.workflow_id);
    signal_with_start_workflow_execution(SignalWithStartWorkflowExecutionRequest) -> SignalWithStartWorkflowExecutionResponse, "SignalWithStartWorkflowExecution", |r| RouteKey::Id(&r.namespace, &r.workflow_id);
    execute_multi_operation(ExecuteMultiOperationRequest) -> ExecuteMultiOperationResponse, "ExecuteMultiOperation", |r| RouteKey::Id(&r.namespace, multi_operation_id(r));
    poll_workflow_task_queue(PollWorkflowTaskQueueRequest) -> PollWorkflowTaskQueueResponse, "PollWorkflowTaskQueue", |_| RouteKey::Local;
    respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest) -> RespondWorkflowTaskCompletedResponse, "RespondWorkflowTaskCompleted", |r| RouteKey::Token(&r.task_token);
    respond_workflow_task_failed(RespondWorkflowTaskFailedRequest) -> RespondWorkflowTaskFailedResponse, "RespondWorkflowTaskFailed", |r| RouteKey::Token(&r.task_token);
    poll_activity_task_queue(PollActivityTaskQueueRequest) -> PollActivityTaskQueueResponse, "PollActivityTaskQueue", |_| RouteKey::Local;
    record_activity_task_heartbeat(RecordActivityTaskHeartbeatRequest) -> RecordActivityTaskHeartbeatResponse, "RecordActivityTaskHeartbeat", |r| RouteKey::Token(&r.task_token);
    record_activity_task_heartbeat_by_id(RecordActivityTaskHeartbeatByIdRequest) -> RecordActivityTaskHeartbeatByIdResponse, "RecordActivityTaskHeartbeatById", |r| RouteKey::Id(&r.namespace, &r.workflow_id);
    respond_activity_task_completed(RespondActivityTaskCompletedRequest) -> RespondActivityTaskCompletedResponse, "RespondActivityTaskCompleted", |r| RouteKey::Token(&r.task_token);
    respond_activity_task_completed_by_id(RespondActivityTaskCompletedByIdRequest) -> RespondActivityTaskCompletedByIdResponse, "RespondActivityTaskCompletedById", |r| RouteKey::Id(&r.namespace, &r.workflow_id);
    respond_activity_task_failed(RespondActivityTaskFailedRequest) -> RespondActivityTaskFailedResponse, "RespondActivityTaskFailed", |r| RouteKey::Token(&r.task_token);
    respond_activity_task_failed_by_id(RespondActivityTaskFailedByIdRequest) -> RespondActivityTaskFailedByIdResponse, "RespondActivityTaskFailedById", |r| RouteKey::Id(&r.namespace, &r.workflow_id);
    respond_activity_task_canceled(RespondActivityTaskCanceledRequest) -> RespondActivityTaskCanceledResponse, "RespondActivityTaskCanceled", |r| RouteKey::Token(&r.task_token);
    respond_activity_task_canceled_by_id(RespondActivityTaskCanceledByIdRequest) -> RespondActivityTaskCanceledByIdResponse, "RespondActivityTaskCanceledById", |r| RouteKey::Id(&r.namespace, &r.workflow_id);
    signal_workflow_execution(SignalWorkflowExecutionRequest) -> SignalWorkflowExecutionResponse, "SignalWorkflowExecution", |r| RouteKey::Id(&r.namespace, workflow_id(&r.workflow_execution));
    query_workflow(QueryWorkflowRequest) -> QueryWorkflowResponse, "QueryWorkflow", |r| RouteKey::Id(&r.namespace, workflow_id(&r.execution));
    respond_query_task_completed(RespondQueryTaskCompletedRequest) -> RespondQueryTaskCompletedResponse, "RespondQueryTaskCompleted", |r| RouteKey::Token(&r.task_token);
    request_cancel_workflow_execution(RequestCancelWorkflowExecutionRequest) -> RequestCancelWorkflowExecutionResponse, "RequestCancelWorkflowExecution", |r| RouteKey::Id(&r.namespace, workflow_id(&r.workflow_execution));
    terminate_workflow_execution(TerminateWorkflowExecutionRequest) -> TerminateWorkflowExecutionResponse, "TerminateWorkflowExecution", |r| RouteKey::Id(&r.namespace, workflow_id(&r.workflow_execution));
    delete_workflow_execution(DeleteWorkflowExecutionRequest) -> DeleteWorkflowExecutionResponse, "DeleteWorkflowExecution", |r| RouteKey::Id(&r.namespace, workflow_id(&r.workflow_execution));
    get_workflow_execution_history(GetWorkflowExecutionHistoryRequest) -> GetWorkflowExecutionHistoryResponse, "GetWorkflowExecutionHistory", |r| RouteKey::Id(&r.namespace, workflow_id(&r.execution));
    describe_workflow_execution(DescribeWorkflowExecutionRequest) -> DescribeWorkflowExecutionResponse, "DescribeWorkflowExecution", |r| RouteKey::Id(&r.namespace, workflow_id(&r.execution));
    update_workflow_execution(UpdateWorkflowExecutionRequest) -> UpdateWorkflowExecutionResponse, "UpdateWorkflowExecution", |r| RouteKey::Id(&r.namespace, workflow_id(&r.workflow_execution));
    poll_workflow_execution_update(PollWorkflowExecutionUpdateRequest) -> PollWorkflowExecutionUpdateResponse, "PollWorkflowExecutionUpdate", |r| RouteKey::Id(&r.namespace, r.update_ref.as_ref().map_or("", |u| workflow_id(&u.workflow_execution)));
    list_workflow_executions(ListWorkflowExecutionsRequest) -> ListWorkflowExecutionsResponse, "ListWorkflowExecutions", |_| RouteKey::Local;
    scan_workflow_executions(ScanWorkflowExecutionsRequest) -> ScanWorkflowExecutionsResponse, "ScanWorkflowExecutions", |_| RouteKey::Local;
    count_workflow_executions(CountWorkflowExecutionsRequest) -> CountWorkflowExecutionsResponse, "CountWorkflowExecutions", |_| RouteKey::Local;
    describe_task_queue(DescribeTaskQueueRequest) -> DescribeTaskQueueResponse, "DescribeTaskQueue", |_| RouteKey::Local;
    shutdown_worker(ShutdownWorkerRequest) -> ShutdownWorkerResponse, "ShutdownWorker", |_| RouteKey::Local;
    reset_sticky_task_queue(ResetStickyTaskQueueRequest) -> ResetStickyTaskQueueResponse, "ResetStickyTaskQueue", |r| RouteKey::Id(&r.namespace, workflow_id(&r.execution));
    create_schedule(CreateScheduleRequest) -> CreateScheduleResponse, "CreateSchedule", |r| RouteKey::Id(&r.namespace, &r.schedule_id);
    describe_schedule(DescribeScheduleRequest) -> DescribeScheduleResponse, "DescribeSchedule", |r| RouteKey::Id(&r.namespace, &r.schedule_id);
    update_schedule(UpdateScheduleRequest) -> UpdateScheduleResponse, "UpdateSchedule", |r| RouteKey::Id(&r.namespace, &r.schedule_id);
    patch_schedule(PatchScheduleRequest) -> PatchScheduleResponse, "PatchSchedule", |r| RouteKey::Id(&r.namespace, &r.schedule_id);
    delete_schedule(DeleteScheduleRequest) -> DeleteScheduleResponse, "DeleteSchedule", |r| RouteKey::Id(&r.namespace, &r.schedule_id);
    list_schedules(ListSchedulesRequest) -> ListSchedulesResponse, "ListSchedules", |_| RouteKey::Local;
    list_schedule_matching_times(ListScheduleMatchingTimesRequest) -> ListScheduleMatchingTimesResponse, "ListScheduleMatchingTimes", |r| RouteKey::Id(&r.namespace, &r.schedule_id);
}

/// The receiving end of `durin.cluster.v1.ClusterService`.
pub struct ClusterHandler {
    svc: Arc<Guarded<Routed<WorkflowHandler>>>,
    engine: Arc<crate::engine::Engine>,
    cluster: Arc<Cluster>,
}

impl ClusterHandler {
    pub fn new(
        svc: Arc<Guarded<Routed<WorkflowHandler>>>,
        engine: Arc<crate::engine::Engine>,
        cluster: Arc<Cluster>,
    ) -> Self {
        Self {
            svc,
            engine,
            cluster,
        }
    }
}

impl ClusterHandler {
    /// The cluster's secret, besides the peer's certificate (with cluster TLS).
    fn check<T>(&self, req: &Request<T>) -> Result<(), Status> {
        self.cluster.check_secret(req.metadata())
    }
}

#[tonic::async_trait]
impl ClusterService for ClusterHandler {
    async fn forward(
        &self,
        req: Request<ForwardRequest>,
    ) -> Result<Response<ForwardResponse>, Status> {
        self.check(&req)?;
        let ForwardRequest {
            method,
            request,
            metadata,
        } = req.into_inner();
        let response = dispatch(
            &self.svc,
            &method,
            &request,
            super::restore_metadata(metadata),
        )
        .await?;
        Ok(Response::new(ForwardResponse { response }))
    }

    async fn refresh_namespaces(
        &self,
        req: Request<RefreshNamespacesRequest>,
    ) -> Result<Response<RefreshNamespacesResponse>, Status> {
        self.check(&req)?;
        self.cluster.refresh_namespaces().await?;
        Ok(Response::new(RefreshNamespacesResponse {}))
    }

    async fn transfer(
        &self,
        req: Request<TransferRequest>,
    ) -> Result<Response<TransferResponse>, Status> {
        self.check(&req)?;
        let req = req.into_inner();
        let transfer = crate::engine::state::Transfer::decode(req.transfer.as_slice())
            .map_err(|e| Status::invalid_argument(format!("bad transfer: {e}")))?;
        let source = if req.source_schedule_id.is_empty() {
            Source::Run(crate::engine::RunKey {
                namespace: req.source_namespace,
                workflow_id: req.source_workflow_id,
                run_id: req.source_run_id,
            })
        } else {
            Source::Schedule((req.source_namespace, req.source_schedule_id))
        };
        let outcome = self
            .engine
            .receive_transfer(source, transfer)
            .await
            .map_err(crate::api::errors::to_status)?;
        Ok(Response::new(TransferResponse {
            outcome: outcome.encode_to_vec(),
        }))
    }
}
