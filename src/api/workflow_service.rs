//! `temporal.api.workflowservice.v1.WorkflowService`: where SDK requests enter Durin. Each
//! handler validates what the engine cannot know (deadlines, request shape) and delegates.

use std::sync::Arc;
use std::time::Duration;

use temporalio_protos::temporal::api::enums::v1::TaskQueueType;
use temporalio_protos::temporal::api::workflowservice::v1::*;
use tonic::{Request, Response, Status};

use crate::cluster::fetch::PollTemplate;
use crate::engine::Engine;
use crate::proto::workflowservice::workflow_service_server::WorkflowService;
use crate::rpc::errors::to_status;

mod activity_tasks;
mod deployments;
mod nexus_tasks;
mod visibility;
mod workers;

/// A long poll answers this long before the caller's own deadline.
const LONG_POLL_TAIL_ROOM: Duration = Duration::from_secs(1);

/// How long an update call waits for its stage before answering with the stage so far
/// (clients then poll again).
const UPDATE_WAIT: Duration = Duration::from_secs(20);

pub struct WorkflowHandler {
    engine: Arc<Engine>,
    /// With several replicas: polls here also fetch tasks from the others.
    cluster: Option<Arc<crate::cluster::Cluster>>,
}

impl WorkflowHandler {
    pub fn new(engine: Arc<Engine>, cluster: Option<Arc<crate::cluster::Cluster>>) -> Self {
        Self { engine, cluster }
    }

    /// The cluster to merge a list over, when there are other replicas and the call came
    /// from a client (a forwarded one answers for this replica alone).
    fn merging<T>(&self, req: &Request<T>) -> Option<&Arc<crate::cluster::Cluster>> {
        self.cluster.as_ref().filter(|c| {
            req.extensions()
                .get::<crate::cluster::Forwarded>()
                .is_none()
                && !c.peer_addresses().is_empty()
        })
    }

    /// Whether a poll came from another replica's fetcher; if not, fetching from the other
    /// replicas starts for its queue.
    fn forwarded_or_fetch<T>(
        &self,
        req: &Request<T>,
        template: impl FnOnce() -> PollTemplate,
    ) -> bool {
        if req
            .extensions()
            .get::<crate::cluster::Forwarded>()
            .is_some()
        {
            return true;
        }
        if let Some(cluster) = &self.cluster {
            cluster.ensure_fetching(template());
        }
        false
    }

    /// When a long poll must answer: the server's limit, or just before the client's deadline.
    fn poll_deadline<T>(&self, req: &Request<T>, limit: Duration) -> tokio::time::Instant {
        let client = req
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::rpc::parse_grpc_timeout)
            .map(|d| d.saturating_sub(LONG_POLL_TAIL_ROOM));
        let wait = client.map_or(limit, |c| c.min(limit));
        tokio::time::Instant::now() + wait
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// Responses smaller than this go out uncompressed even to clients that accept gzip:
/// setting up a gzip stream costs far more CPU than the few bytes it saves on a small message.
const COMPRESS_FROM_BYTES: usize = 4096;

fn ok<T: prost::Message>(r: Result<T, crate::engine::Error>) -> Reply<T> {
    r.map(|message| {
        let small = message.encoded_len() < COMPRESS_FROM_BYTES;
        let mut response = Response::new(message);
        if small {
            response.disable_compression();
        }
        response
    })
    .map_err(to_status)
}

#[tonic::async_trait]
impl WorkflowService for WorkflowHandler {
    async fn get_system_info(
        &self,
        _req: Request<GetSystemInfoRequest>,
    ) -> Reply<GetSystemInfoResponse> {
        Ok(Response::new(GetSystemInfoResponse {
            server_version: super::TEMPORAL_VERSION.to_string(),
            // Only what Durin implements: schedules, eager start and worker versioning (build
            // ids recorded on workflow tasks) yes; Nexus not yet.
            capabilities: Some(get_system_info_response::Capabilities {
                signal_and_query_header: true,
                internal_error_differentiation: true,
                activity_failure_include_heartbeat: true,
                supports_schedules: true,
                encoded_failure_attributes: true,
                build_id_based_versioning: true,
                upsert_memo: true,
                eager_workflow_start: true,
                sdk_metadata: true,
                count_group_by_execution_status: true,
                nexus: false,
                server_scaled_deployments: false,
                server_scaled_provider_cloud_run: false,
            }),
        }))
    }

    async fn register_namespace(
        &self,
        req: Request<RegisterNamespaceRequest>,
    ) -> Reply<RegisterNamespaceResponse> {
        self.engine
            .register_namespace(req.into_inner())
            .await
            .map_err(to_status)?;
        crate::cluster::propagate_namespaces(&self.cluster).await?;
        Ok(Response::new(RegisterNamespaceResponse {}))
    }

    async fn describe_namespace(
        &self,
        req: Request<DescribeNamespaceRequest>,
    ) -> Reply<DescribeNamespaceResponse> {
        ok(self.engine.describe_namespace(req.into_inner()).await)
    }

    async fn list_namespaces(
        &self,
        req: Request<ListNamespacesRequest>,
    ) -> Reply<ListNamespacesResponse> {
        ok(self.engine.list_namespaces(req.into_inner()).await)
    }

    async fn update_namespace(
        &self,
        req: Request<UpdateNamespaceRequest>,
    ) -> Reply<UpdateNamespaceResponse> {
        let updated = self
            .engine
            .update_namespace(req.into_inner())
            .await
            .map_err(to_status)?;
        crate::cluster::propagate_namespaces(&self.cluster).await?;
        Ok(Response::new(updated))
    }

    async fn start_workflow_execution(
        &self,
        req: Request<StartWorkflowExecutionRequest>,
    ) -> Reply<StartWorkflowExecutionResponse> {
        ok(self.engine.start_workflow(req.into_inner()).await)
    }

    async fn signal_with_start_workflow_execution(
        &self,
        req: Request<SignalWithStartWorkflowExecutionRequest>,
    ) -> Reply<SignalWithStartWorkflowExecutionResponse> {
        let (namespace, workflow_id, request_id) = {
            let r = req.get_ref();
            (
                r.namespace.clone(),
                r.workflow_id.clone(),
                r.request_id.clone(),
            )
        };
        ok(self
            .engine
            .signal_with_start(req.into_inner())
            .await
            .map(|r| {
                let key = crate::engine::RunKey {
                    namespace,
                    workflow_id,
                    run_id: r.run_id.clone(),
                };
                SignalWithStartWorkflowExecutionResponse {
                    run_id: r.run_id,
                    started: r.started,
                    first_execution_run_id: r.first_execution_run_id,
                    signal_link: Some(crate::engine::nexus::links::signal_link(&key, &request_id)),
                }
            }))
    }

    async fn poll_workflow_task_queue(
        &self,
        req: Request<PollWorkflowTaskQueueRequest>,
    ) -> Reply<PollWorkflowTaskQueueResponse> {
        let deadline = self.poll_deadline(&req, self.engine.config.long_poll_timeout);
        let forwarded =
            self.forwarded_or_fetch(&req, || PollTemplate::Workflow(req.get_ref().clone()));
        if !forwarded {
            let r = req.get_ref();
            self.register_poller(
                &r.namespace,
                &r.deployment_options,
                &r.task_queue,
                TaskQueueType::Workflow,
            )
            .await?;
        }
        ok(self
            .engine
            .poll_workflow_task(req.into_inner(), deadline, forwarded)
            .await)
    }

    async fn respond_workflow_task_completed(
        &self,
        req: Request<RespondWorkflowTaskCompletedRequest>,
    ) -> Reply<RespondWorkflowTaskCompletedResponse> {
        ok(self.engine.complete_workflow_task(req.into_inner()).await)
    }

    async fn respond_workflow_task_failed(
        &self,
        req: Request<RespondWorkflowTaskFailedRequest>,
    ) -> Reply<RespondWorkflowTaskFailedResponse> {
        ok(self
            .engine
            .fail_workflow_task(req.into_inner())
            .await
            .map(|_| RespondWorkflowTaskFailedResponse {}))
    }

    async fn poll_activity_task_queue(
        &self,
        req: Request<PollActivityTaskQueueRequest>,
    ) -> Reply<PollActivityTaskQueueResponse> {
        let deadline = self.poll_deadline(&req, self.engine.config.long_poll_timeout);
        let forwarded =
            self.forwarded_or_fetch(&req, || PollTemplate::Activity(req.get_ref().clone()));
        if !forwarded {
            let r = req.get_ref();
            self.register_poller(
                &r.namespace,
                &r.deployment_options,
                &r.task_queue,
                TaskQueueType::Activity,
            )
            .await?;
        }
        ok(self
            .engine
            .poll_activity_task(req.into_inner(), deadline, forwarded)
            .await)
    }

    async fn record_activity_task_heartbeat(
        &self,
        req: Request<RecordActivityTaskHeartbeatRequest>,
    ) -> Reply<RecordActivityTaskHeartbeatResponse> {
        self.activity_heartbeat(req).await
    }

    async fn record_activity_task_heartbeat_by_id(
        &self,
        req: Request<RecordActivityTaskHeartbeatByIdRequest>,
    ) -> Reply<RecordActivityTaskHeartbeatByIdResponse> {
        self.activity_heartbeat_by_id(req).await
    }

    async fn respond_activity_task_completed(
        &self,
        req: Request<RespondActivityTaskCompletedRequest>,
    ) -> Reply<RespondActivityTaskCompletedResponse> {
        self.activity_completed(req).await
    }

    async fn respond_activity_task_completed_by_id(
        &self,
        req: Request<RespondActivityTaskCompletedByIdRequest>,
    ) -> Reply<RespondActivityTaskCompletedByIdResponse> {
        self.activity_completed_by_id(req).await
    }

    async fn respond_activity_task_failed(
        &self,
        req: Request<RespondActivityTaskFailedRequest>,
    ) -> Reply<RespondActivityTaskFailedResponse> {
        self.activity_failed(req).await
    }

    async fn respond_activity_task_failed_by_id(
        &self,
        req: Request<RespondActivityTaskFailedByIdRequest>,
    ) -> Reply<RespondActivityTaskFailedByIdResponse> {
        self.activity_failed_by_id(req).await
    }

    async fn respond_activity_task_canceled(
        &self,
        req: Request<RespondActivityTaskCanceledRequest>,
    ) -> Reply<RespondActivityTaskCanceledResponse> {
        self.activity_canceled(req).await
    }

    async fn respond_activity_task_canceled_by_id(
        &self,
        req: Request<RespondActivityTaskCanceledByIdRequest>,
    ) -> Reply<RespondActivityTaskCanceledByIdResponse> {
        self.activity_canceled_by_id(req).await
    }

    async fn pause_activity(
        &self,
        req: Request<PauseActivityRequest>,
    ) -> Reply<PauseActivityResponse> {
        ok(self
            .engine
            .operate_on_activities(req.into_inner().into())
            .await
            .map(|_| Default::default()))
    }

    async fn unpause_activity(
        &self,
        req: Request<UnpauseActivityRequest>,
    ) -> Reply<UnpauseActivityResponse> {
        ok(self
            .engine
            .operate_on_activities(req.into_inner().into())
            .await
            .map(|_| Default::default()))
    }

    async fn reset_activity(
        &self,
        req: Request<ResetActivityRequest>,
    ) -> Reply<ResetActivityResponse> {
        ok(self
            .engine
            .operate_on_activities(req.into_inner().into())
            .await
            .map(|_| Default::default()))
    }

    async fn update_activity_options(
        &self,
        req: Request<UpdateActivityOptionsRequest>,
    ) -> Reply<UpdateActivityOptionsResponse> {
        ok(self
            .engine
            .operate_on_activities(req.into_inner().into())
            .await
            .map(|options| UpdateActivityOptionsResponse {
                activity_options: Some(options),
            }))
    }

    async fn pause_activity_execution(
        &self,
        req: Request<PauseActivityExecutionRequest>,
    ) -> Reply<PauseActivityExecutionResponse> {
        ok(self
            .engine
            .operate_on_activities(req.into_inner().into())
            .await
            .map(|_| Default::default()))
    }

    async fn unpause_activity_execution(
        &self,
        req: Request<UnpauseActivityExecutionRequest>,
    ) -> Reply<UnpauseActivityExecutionResponse> {
        ok(self
            .engine
            .operate_on_activities(req.into_inner().into())
            .await
            .map(|_| Default::default()))
    }

    async fn reset_activity_execution(
        &self,
        req: Request<ResetActivityExecutionRequest>,
    ) -> Reply<ResetActivityExecutionResponse> {
        ok(self
            .engine
            .operate_on_activities(req.into_inner().into())
            .await
            .map(|_| Default::default()))
    }

    async fn update_activity_execution_options(
        &self,
        req: Request<UpdateActivityExecutionOptionsRequest>,
    ) -> Reply<UpdateActivityExecutionOptionsResponse> {
        ok(self
            .engine
            .operate_on_activities(req.into_inner().into())
            .await
            .map(|options| UpdateActivityExecutionOptionsResponse {
                activity_options: Some(options),
            }))
    }

    async fn start_activity_execution(
        &self,
        req: Request<StartActivityExecutionRequest>,
    ) -> Reply<StartActivityExecutionResponse> {
        ok(self.engine.start_activity_execution(req.into_inner()).await)
    }

    async fn describe_activity_execution(
        &self,
        req: Request<DescribeActivityExecutionRequest>,
    ) -> Reply<DescribeActivityExecutionResponse> {
        let deadline = self.poll_deadline(&req, self.engine.config.long_poll_timeout);
        let answer = self
            .engine
            .describe_activity_execution(req.into_inner(), deadline);
        ok(answer.await)
    }

    async fn poll_activity_execution(
        &self,
        req: Request<PollActivityExecutionRequest>,
    ) -> Reply<PollActivityExecutionResponse> {
        let deadline = self.poll_deadline(&req, self.engine.config.long_poll_timeout);
        ok(self
            .engine
            .poll_activity_execution(req.into_inner(), deadline)
            .await)
    }

    async fn request_cancel_activity_execution(
        &self,
        req: Request<RequestCancelActivityExecutionRequest>,
    ) -> Reply<RequestCancelActivityExecutionResponse> {
        let done = self
            .engine
            .request_cancel_activity_execution(req.into_inner());
        ok(done.await.map(|_| Default::default()))
    }

    async fn terminate_activity_execution(
        &self,
        req: Request<TerminateActivityExecutionRequest>,
    ) -> Reply<TerminateActivityExecutionResponse> {
        let done = self.engine.terminate_activity_execution(req.into_inner());
        ok(done.await.map(|_| Default::default()))
    }

    async fn delete_activity_execution(
        &self,
        req: Request<DeleteActivityExecutionRequest>,
    ) -> Reply<DeleteActivityExecutionResponse> {
        let done = self.engine.delete_activity_execution(req.into_inner());
        ok(done.await.map(|_| Default::default()))
    }

    async fn list_activity_executions(
        &self,
        req: Request<ListActivityExecutionsRequest>,
    ) -> Reply<ListActivityExecutionsResponse> {
        self.activities_page(req).await
    }

    async fn count_activity_executions(
        &self,
        req: Request<CountActivityExecutionsRequest>,
    ) -> Reply<CountActivityExecutionsResponse> {
        self.activities_count(req).await
    }

    async fn start_nexus_operation_execution(
        &self,
        req: Request<StartNexusOperationExecutionRequest>,
    ) -> Reply<StartNexusOperationExecutionResponse> {
        let started = self
            .engine
            .start_nexus_operation_execution(req.into_inner());
        ok(started.await)
    }

    async fn describe_nexus_operation_execution(
        &self,
        req: Request<DescribeNexusOperationExecutionRequest>,
    ) -> Reply<DescribeNexusOperationExecutionResponse> {
        let deadline = self.poll_deadline(&req, self.engine.config.long_poll_timeout);
        let answer = self
            .engine
            .describe_nexus_operation_execution(req.into_inner(), deadline);
        ok(answer.await)
    }

    async fn poll_nexus_operation_execution(
        &self,
        req: Request<PollNexusOperationExecutionRequest>,
    ) -> Reply<PollNexusOperationExecutionResponse> {
        let deadline = self.poll_deadline(&req, self.engine.config.long_poll_timeout);
        let answer = self
            .engine
            .poll_nexus_operation_execution(req.into_inner(), deadline);
        ok(answer.await)
    }

    async fn request_cancel_nexus_operation_execution(
        &self,
        req: Request<RequestCancelNexusOperationExecutionRequest>,
    ) -> Reply<RequestCancelNexusOperationExecutionResponse> {
        let done = self
            .engine
            .request_cancel_nexus_operation_execution(req.into_inner());
        ok(done.await.map(|_| Default::default()))
    }

    async fn terminate_nexus_operation_execution(
        &self,
        req: Request<TerminateNexusOperationExecutionRequest>,
    ) -> Reply<TerminateNexusOperationExecutionResponse> {
        let done = self
            .engine
            .terminate_nexus_operation_execution(req.into_inner());
        ok(done.await.map(|_| Default::default()))
    }

    async fn delete_nexus_operation_execution(
        &self,
        req: Request<DeleteNexusOperationExecutionRequest>,
    ) -> Reply<DeleteNexusOperationExecutionResponse> {
        let done = self
            .engine
            .delete_nexus_operation_execution(req.into_inner());
        ok(done.await.map(|_| Default::default()))
    }

    async fn list_nexus_operation_executions(
        &self,
        req: Request<ListNexusOperationExecutionsRequest>,
    ) -> Reply<ListNexusOperationExecutionsResponse> {
        self.nexus_operations_page(req).await
    }

    async fn count_nexus_operation_executions(
        &self,
        req: Request<CountNexusOperationExecutionsRequest>,
    ) -> Reply<CountNexusOperationExecutionsResponse> {
        self.nexus_operations_count(req).await
    }

    async fn signal_workflow_execution(
        &self,
        req: Request<SignalWorkflowExecutionRequest>,
    ) -> Reply<SignalWorkflowExecutionResponse> {
        let request_id = req.get_ref().request_id.clone();
        ok(self
            .engine
            .signal(req.into_inner())
            .await
            .map(|key| SignalWorkflowExecutionResponse {
                link: Some(crate::engine::nexus::links::signal_link(&key, &request_id)),
            }))
    }

    async fn query_workflow(
        &self,
        req: Request<QueryWorkflowRequest>,
    ) -> Reply<QueryWorkflowResponse> {
        let deadline = self.poll_deadline(&req, Duration::from_secs(60));
        ok(self.engine.query(req.into_inner(), deadline).await)
    }

    async fn respond_query_task_completed(
        &self,
        req: Request<RespondQueryTaskCompletedRequest>,
    ) -> Reply<RespondQueryTaskCompletedResponse> {
        ok(self
            .engine
            .respond_query_task(req.into_inner())
            .await
            .map(|_| Default::default()))
    }

    async fn request_cancel_workflow_execution(
        &self,
        req: Request<RequestCancelWorkflowExecutionRequest>,
    ) -> Reply<RequestCancelWorkflowExecutionResponse> {
        ok(self
            .engine
            .request_cancel(req.into_inner())
            .await
            .map(|_| Default::default()))
    }

    async fn terminate_workflow_execution(
        &self,
        req: Request<TerminateWorkflowExecutionRequest>,
    ) -> Reply<TerminateWorkflowExecutionResponse> {
        ok(self
            .engine
            .terminate(req.into_inner())
            .await
            .map(|_| Default::default()))
    }

    async fn reset_workflow_execution(
        &self,
        req: Request<ResetWorkflowExecutionRequest>,
    ) -> Reply<ResetWorkflowExecutionResponse> {
        ok(self.engine.reset_workflow(req.into_inner()).await)
    }

    async fn get_workflow_execution_history(
        &self,
        req: Request<GetWorkflowExecutionHistoryRequest>,
    ) -> Reply<GetWorkflowExecutionHistoryResponse> {
        ok(self.engine.get_history(req.into_inner()).await)
    }

    async fn get_workflow_execution_history_reverse(
        &self,
        req: Request<GetWorkflowExecutionHistoryReverseRequest>,
    ) -> Reply<GetWorkflowExecutionHistoryReverseResponse> {
        ok(self.engine.get_history_reverse(req.into_inner()).await)
    }

    async fn describe_workflow_execution(
        &self,
        req: Request<DescribeWorkflowExecutionRequest>,
    ) -> Reply<DescribeWorkflowExecutionResponse> {
        ok(self.engine.describe(req.into_inner()).await)
    }

    async fn update_workflow_execution(
        &self,
        req: Request<UpdateWorkflowExecutionRequest>,
    ) -> Reply<UpdateWorkflowExecutionResponse> {
        let deadline = self.poll_deadline(&req, UPDATE_WAIT);
        ok(self
            .engine
            .update_workflow(req.into_inner(), deadline)
            .await)
    }

    async fn poll_workflow_execution_update(
        &self,
        req: Request<PollWorkflowExecutionUpdateRequest>,
    ) -> Reply<PollWorkflowExecutionUpdateResponse> {
        let deadline = self.poll_deadline(&req, UPDATE_WAIT);
        ok(self.engine.poll_update(req.into_inner(), deadline).await)
    }

    async fn execute_multi_operation(
        &self,
        req: Request<ExecuteMultiOperationRequest>,
    ) -> Reply<ExecuteMultiOperationResponse> {
        let deadline = self.poll_deadline(&req, UPDATE_WAIT);
        super::multi_operation::execute(&self.engine, req.into_inner(), deadline).await
    }

    async fn list_open_workflow_executions(
        &self,
        req: Request<ListOpenWorkflowExecutionsRequest>,
    ) -> Reply<ListOpenWorkflowExecutionsResponse> {
        self.legacy_open_page(req).await
    }

    async fn list_closed_workflow_executions(
        &self,
        req: Request<ListClosedWorkflowExecutionsRequest>,
    ) -> Reply<ListClosedWorkflowExecutionsResponse> {
        self.legacy_closed_page(req).await
    }

    async fn list_workflow_executions(
        &self,
        req: Request<ListWorkflowExecutionsRequest>,
    ) -> Reply<ListWorkflowExecutionsResponse> {
        self.workflows_page(req).await
    }

    async fn scan_workflow_executions(
        &self,
        req: Request<ScanWorkflowExecutionsRequest>,
    ) -> Reply<ScanWorkflowExecutionsResponse> {
        self.workflows_scan(req).await
    }

    async fn count_workflow_executions(
        &self,
        req: Request<CountWorkflowExecutionsRequest>,
    ) -> Reply<CountWorkflowExecutionsResponse> {
        self.workflows_count(req).await
    }

    async fn describe_task_queue(
        &self,
        req: Request<DescribeTaskQueueRequest>,
    ) -> Reply<DescribeTaskQueueResponse> {
        ok(self.engine.describe_task_queue(req.into_inner()).await)
    }

    async fn delete_workflow_execution(
        &self,
        req: Request<DeleteWorkflowExecutionRequest>,
    ) -> Reply<DeleteWorkflowExecutionResponse> {
        ok(self
            .engine
            .delete_workflow(req.into_inner())
            .await
            .map(|_| Default::default()))
    }

    async fn get_cluster_info(
        &self,
        _req: Request<GetClusterInfoRequest>,
    ) -> Reply<GetClusterInfoResponse> {
        Ok(Response::new(GetClusterInfoResponse {
            server_version: super::TEMPORAL_VERSION.to_string(),
            cluster_id: format!("durin-{}", super::SERVER_VERSION),
            cluster_name: crate::engine::namespace::CLUSTER_NAME.into(),
            history_shard_count: 1,
            persistence_store: "durin-log".into(),
            visibility_store: "durin-memory".into(),
            ..Default::default()
        }))
    }

    async fn get_search_attributes(
        &self,
        _req: Request<GetSearchAttributesRequest>,
    ) -> Reply<GetSearchAttributesResponse> {
        let keys = crate::visibility::search_attributes::SYSTEM
            .iter()
            .chain(crate::visibility::search_attributes::DEV_DEFAULTS)
            .map(|(n, t)| (n.to_string(), *t as i32))
            .collect();
        Ok(Response::new(GetSearchAttributesResponse { keys }))
    }

    async fn shutdown_worker(
        &self,
        req: Request<ShutdownWorkerRequest>,
    ) -> Reply<ShutdownWorkerResponse> {
        let r = req.into_inner();
        if !r.task_queue.is_empty() {
            self.engine.stop_worker_polls(&r.worker_instance_key);
        }
        let done = self
            .engine
            .shutdown_worker(&r.namespace, &r.sticky_task_queue)
            .await;
        // The worker's last heartbeat (status ShuttingDown or Shutdown) updates or ends its
        // entry in the worker list.
        // A malformed one does not fail the shutdown.
        if let (Ok(()), Some(heartbeat)) = (&done, r.worker_heartbeat) {
            let last = RecordWorkerHeartbeatRequest {
                namespace: r.namespace,
                worker_heartbeat: vec![heartbeat],
                ..Default::default()
            };
            if let Err(e) = self.engine.record_worker_heartbeats(last).await {
                tracing::debug!(error = %e, "a stopping worker's last heartbeat was refused");
            }
        }
        ok(done.map(|_| Default::default()))
    }

    async fn reset_sticky_task_queue(
        &self,
        req: Request<ResetStickyTaskQueueRequest>,
    ) -> Reply<ResetStickyTaskQueueResponse> {
        let r = req.into_inner();
        let exec = r.execution.unwrap_or_default();
        let done = self
            .engine
            .reset_sticky(&r.namespace, &exec.workflow_id, &exec.run_id)
            .await;
        ok(done.map(|_| Default::default()))
    }

    async fn create_schedule(
        &self,
        req: Request<CreateScheduleRequest>,
    ) -> Reply<CreateScheduleResponse> {
        ok(self.engine.create_schedule(req.into_inner()).await)
    }

    async fn describe_schedule(
        &self,
        req: Request<DescribeScheduleRequest>,
    ) -> Reply<DescribeScheduleResponse> {
        ok(self.engine.describe_schedule(req.into_inner()).await)
    }

    async fn update_schedule(
        &self,
        req: Request<UpdateScheduleRequest>,
    ) -> Reply<UpdateScheduleResponse> {
        ok(self.engine.update_schedule(req.into_inner()).await)
    }

    async fn patch_schedule(
        &self,
        req: Request<PatchScheduleRequest>,
    ) -> Reply<PatchScheduleResponse> {
        ok(self.engine.patch_schedule(req.into_inner()).await)
    }

    async fn delete_schedule(
        &self,
        req: Request<DeleteScheduleRequest>,
    ) -> Reply<DeleteScheduleResponse> {
        ok(self.engine.delete_schedule(req.into_inner()).await)
    }

    async fn list_schedules(
        &self,
        req: Request<ListSchedulesRequest>,
    ) -> Reply<ListSchedulesResponse> {
        self.schedules_page(req).await
    }

    async fn start_batch_operation(
        &self,
        req: Request<StartBatchOperationRequest>,
    ) -> Reply<StartBatchOperationResponse> {
        ok(self
            .engine
            .start_batch(req.into_inner())
            .await
            .map(|_| Default::default()))
    }

    async fn describe_batch_operation(
        &self,
        req: Request<DescribeBatchOperationRequest>,
    ) -> Reply<DescribeBatchOperationResponse> {
        let r = req.into_inner();
        ok(self.engine.describe_batch(&r.namespace, &r.job_id).await)
    }

    async fn stop_batch_operation(
        &self,
        req: Request<StopBatchOperationRequest>,
    ) -> Reply<StopBatchOperationResponse> {
        let r = req.into_inner();
        ok(self
            .engine
            .stop_batch(&r.namespace, &r.job_id, &r.reason)
            .await
            .map(|_| Default::default()))
    }

    async fn list_batch_operations(
        &self,
        req: Request<ListBatchOperationsRequest>,
    ) -> Reply<ListBatchOperationsResponse> {
        self.batches_page(req).await
    }

    async fn count_schedules(
        &self,
        req: Request<CountSchedulesRequest>,
    ) -> Reply<CountSchedulesResponse> {
        self.schedules_count(req).await
    }

    async fn record_worker_heartbeat(
        &self,
        req: Request<RecordWorkerHeartbeatRequest>,
    ) -> Reply<RecordWorkerHeartbeatResponse> {
        self.record_heartbeats(req).await
    }

    async fn list_workers(&self, req: Request<ListWorkersRequest>) -> Reply<ListWorkersResponse> {
        self.workers_page(req).await
    }

    async fn count_workers(
        &self,
        req: Request<CountWorkersRequest>,
    ) -> Reply<CountWorkersResponse> {
        self.workers_count(req).await
    }

    async fn describe_worker(
        &self,
        req: Request<DescribeWorkerRequest>,
    ) -> Reply<DescribeWorkerResponse> {
        self.worker_described(req).await
    }

    async fn poll_nexus_task_queue(
        &self,
        req: Request<PollNexusTaskQueueRequest>,
    ) -> Reply<PollNexusTaskQueueResponse> {
        self.poll_nexus(req).await
    }

    async fn respond_nexus_task_completed(
        &self,
        req: Request<RespondNexusTaskCompletedRequest>,
    ) -> Reply<RespondNexusTaskCompletedResponse> {
        let answer = self.engine.respond_nexus_task_completed(req.into_inner());
        ok(answer.await.map(|_| RespondNexusTaskCompletedResponse {}))
    }

    async fn respond_nexus_task_failed(
        &self,
        req: Request<RespondNexusTaskFailedRequest>,
    ) -> Reply<RespondNexusTaskFailedResponse> {
        let answer = self.engine.respond_nexus_task_failed(req.into_inner());
        ok(answer.await.map(|_| RespondNexusTaskFailedResponse {}))
    }

    async fn list_schedule_matching_times(
        &self,
        req: Request<ListScheduleMatchingTimesRequest>,
    ) -> Reply<ListScheduleMatchingTimesResponse> {
        ok(self
            .engine
            .list_schedule_matching_times(req.into_inner())
            .await)
    }

    async fn update_workflow_execution_options(
        &self,
        req: Request<UpdateWorkflowExecutionOptionsRequest>,
    ) -> Reply<UpdateWorkflowExecutionOptionsResponse> {
        ok(self
            .engine
            .update_workflow_execution_options(req.into_inner())
            .await)
    }

    async fn describe_worker_deployment(
        &self,
        req: Request<DescribeWorkerDeploymentRequest>,
    ) -> Reply<DescribeWorkerDeploymentResponse> {
        ok(self
            .engine
            .describe_worker_deployment(req.into_inner())
            .await)
    }

    async fn list_worker_deployments(
        &self,
        req: Request<ListWorkerDeploymentsRequest>,
    ) -> Reply<ListWorkerDeploymentsResponse> {
        ok(self.engine.list_worker_deployments(req.into_inner()).await)
    }

    async fn describe_worker_deployment_version(
        &self,
        req: Request<DescribeWorkerDeploymentVersionRequest>,
    ) -> Reply<DescribeWorkerDeploymentVersionResponse> {
        ok(self
            .engine
            .describe_worker_deployment_version(req.into_inner())
            .await)
    }

    async fn delete_worker_deployment(
        &self,
        req: Request<DeleteWorkerDeploymentRequest>,
    ) -> Reply<DeleteWorkerDeploymentResponse> {
        let done = self.engine.delete_worker_deployment(req.into_inner()).await;
        self.deployment_changed(done.map(|_| DeleteWorkerDeploymentResponse {}))
            .await
    }

    async fn delete_worker_deployment_version(
        &self,
        req: Request<DeleteWorkerDeploymentVersionRequest>,
    ) -> Reply<DeleteWorkerDeploymentVersionResponse> {
        let done = self
            .engine
            .delete_worker_deployment_version(req.into_inner())
            .await;
        self.deployment_changed(done.map(|_| DeleteWorkerDeploymentVersionResponse {}))
            .await
    }

    async fn set_worker_deployment_current_version(
        &self,
        req: Request<SetWorkerDeploymentCurrentVersionRequest>,
    ) -> Reply<SetWorkerDeploymentCurrentVersionResponse> {
        let done = self
            .engine
            .set_worker_deployment_current_version(req.into_inner())
            .await;
        self.deployment_changed(done).await
    }

    async fn set_worker_deployment_ramping_version(
        &self,
        req: Request<SetWorkerDeploymentRampingVersionRequest>,
    ) -> Reply<SetWorkerDeploymentRampingVersionResponse> {
        let done = self
            .engine
            .set_worker_deployment_ramping_version(req.into_inner())
            .await;
        self.deployment_changed(done).await
    }

    async fn set_worker_deployment_manager(
        &self,
        req: Request<SetWorkerDeploymentManagerRequest>,
    ) -> Reply<SetWorkerDeploymentManagerResponse> {
        let done = self
            .engine
            .set_worker_deployment_manager(req.into_inner())
            .await;
        self.deployment_changed(done).await
    }

    async fn update_worker_deployment_version_metadata(
        &self,
        req: Request<UpdateWorkerDeploymentVersionMetadataRequest>,
    ) -> Reply<UpdateWorkerDeploymentVersionMetadataResponse> {
        let done = self
            .engine
            .update_worker_deployment_version_metadata(req.into_inner())
            .await;
        self.deployment_changed(done).await
    }
}

/// `message` as a call with `req`'s metadata and extensions (a legacy RPC answered by its
/// successor: forwarded-ness and credentials carry over).
fn same_call<T, U>(req: &Request<T>, message: U) -> Request<U> {
    let mut call = Request::new(message);
    *call.metadata_mut() = req.metadata().clone();
    *call.extensions_mut() = req.extensions().clone();
    call
}
