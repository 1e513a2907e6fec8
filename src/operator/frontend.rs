//! How the controllers and `durin apply` reach the engine: the same WorkflowService calls an
//! SDK makes, either in-process (the operator runs the engine) or over gRPC (`durin apply`
//! against a `durin dev` server). Going through the API keeps one set of validation rules.

use std::future::Future;
use std::sync::Arc;

use tonic::transport::Channel;
use tonic::{Request, Status};

use crate::api::workflow_service::WorkflowHandler;
use crate::engine::Engine;
use crate::proto::api::workflowservice::v1::*;
use crate::proto::workflowservice::workflow_service_client::WorkflowServiceClient;
use crate::proto::workflowservice::workflow_service_server::WorkflowService;

/// Retention given to namespaces the operator creates on first use.
const NAMESPACE_RETENTION_SECS: i64 = 3 * 24 * 3600;

pub trait Frontend: Send + Sync {
    fn start(
        &self,
        req: StartWorkflowExecutionRequest,
    ) -> impl Future<Output = Result<StartWorkflowExecutionResponse, Status>> + Send;
    fn signal(
        &self,
        req: SignalWorkflowExecutionRequest,
    ) -> impl Future<Output = Result<(), Status>> + Send;
    fn cancel(
        &self,
        req: RequestCancelWorkflowExecutionRequest,
    ) -> impl Future<Output = Result<(), Status>> + Send;
    fn terminate(
        &self,
        req: TerminateWorkflowExecutionRequest,
    ) -> impl Future<Output = Result<(), Status>> + Send;
    fn describe(
        &self,
        req: DescribeWorkflowExecutionRequest,
    ) -> impl Future<Output = Result<DescribeWorkflowExecutionResponse, Status>> + Send;
    fn history(
        &self,
        req: GetWorkflowExecutionHistoryRequest,
    ) -> impl Future<Output = Result<GetWorkflowExecutionHistoryResponse, Status>> + Send;
    fn describe_task_queue(
        &self,
        req: DescribeTaskQueueRequest,
    ) -> impl Future<Output = Result<DescribeTaskQueueResponse, Status>> + Send;
    fn register_namespace(
        &self,
        req: RegisterNamespaceRequest,
    ) -> impl Future<Output = Result<(), Status>> + Send;
    fn create_schedule(
        &self,
        req: CreateScheduleRequest,
    ) -> impl Future<Output = Result<CreateScheduleResponse, Status>> + Send;
    fn describe_schedule(
        &self,
        req: DescribeScheduleRequest,
    ) -> impl Future<Output = Result<DescribeScheduleResponse, Status>> + Send;
    fn update_schedule(
        &self,
        req: UpdateScheduleRequest,
    ) -> impl Future<Output = Result<UpdateScheduleResponse, Status>> + Send;
    fn patch_schedule(
        &self,
        req: PatchScheduleRequest,
    ) -> impl Future<Output = Result<PatchScheduleResponse, Status>> + Send;
    fn delete_schedule(
        &self,
        req: DeleteScheduleRequest,
    ) -> impl Future<Output = Result<DeleteScheduleResponse, Status>> + Send;

    /// Creates the namespace unless it exists.
    fn ensure_namespace(&self, namespace: &str) -> impl Future<Output = Result<(), Status>> + Send {
        let req = RegisterNamespaceRequest {
            namespace: namespace.to_string(),
            workflow_execution_retention_period: Some(prost_wkt_types::Duration {
                seconds: NAMESPACE_RETENTION_SECS,
                nanos: 0,
            }),
            ..Default::default()
        };
        async move {
            match self.register_namespace(req).await {
                Ok(()) => Ok(()),
                Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(()),
                Err(s) => Err(s),
            }
        }
    }
}

/// The engine in this process, called through its gRPC handler without a network hop.
#[derive(Clone)]
pub struct Local {
    handler: Arc<WorkflowHandler>,
}

impl Local {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            handler: Arc::new(WorkflowHandler::new(engine)),
        }
    }
}

impl Frontend for Local {
    async fn start(
        &self,
        req: StartWorkflowExecutionRequest,
    ) -> Result<StartWorkflowExecutionResponse, Status> {
        Ok(self
            .handler
            .start_workflow_execution(Request::new(req))
            .await?
            .into_inner())
    }
    async fn signal(&self, req: SignalWorkflowExecutionRequest) -> Result<(), Status> {
        self.handler
            .signal_workflow_execution(Request::new(req))
            .await
            .map(|_| ())
    }
    async fn cancel(&self, req: RequestCancelWorkflowExecutionRequest) -> Result<(), Status> {
        self.handler
            .request_cancel_workflow_execution(Request::new(req))
            .await
            .map(|_| ())
    }
    async fn terminate(&self, req: TerminateWorkflowExecutionRequest) -> Result<(), Status> {
        self.handler
            .terminate_workflow_execution(Request::new(req))
            .await
            .map(|_| ())
    }
    async fn describe(
        &self,
        req: DescribeWorkflowExecutionRequest,
    ) -> Result<DescribeWorkflowExecutionResponse, Status> {
        Ok(self
            .handler
            .describe_workflow_execution(Request::new(req))
            .await?
            .into_inner())
    }
    async fn history(
        &self,
        req: GetWorkflowExecutionHistoryRequest,
    ) -> Result<GetWorkflowExecutionHistoryResponse, Status> {
        Ok(self
            .handler
            .get_workflow_execution_history(Request::new(req))
            .await?
            .into_inner())
    }
    async fn describe_task_queue(
        &self,
        req: DescribeTaskQueueRequest,
    ) -> Result<DescribeTaskQueueResponse, Status> {
        Ok(self
            .handler
            .describe_task_queue(Request::new(req))
            .await?
            .into_inner())
    }
    async fn register_namespace(&self, req: RegisterNamespaceRequest) -> Result<(), Status> {
        self.handler
            .register_namespace(Request::new(req))
            .await
            .map(|_| ())
    }
    async fn create_schedule(
        &self,
        req: CreateScheduleRequest,
    ) -> Result<CreateScheduleResponse, Status> {
        Ok(self
            .handler
            .create_schedule(Request::new(req))
            .await?
            .into_inner())
    }
    async fn describe_schedule(
        &self,
        req: DescribeScheduleRequest,
    ) -> Result<DescribeScheduleResponse, Status> {
        Ok(self
            .handler
            .describe_schedule(Request::new(req))
            .await?
            .into_inner())
    }
    async fn update_schedule(
        &self,
        req: UpdateScheduleRequest,
    ) -> Result<UpdateScheduleResponse, Status> {
        Ok(self
            .handler
            .update_schedule(Request::new(req))
            .await?
            .into_inner())
    }
    async fn patch_schedule(
        &self,
        req: PatchScheduleRequest,
    ) -> Result<PatchScheduleResponse, Status> {
        Ok(self
            .handler
            .patch_schedule(Request::new(req))
            .await?
            .into_inner())
    }
    async fn delete_schedule(
        &self,
        req: DeleteScheduleRequest,
    ) -> Result<DeleteScheduleResponse, Status> {
        Ok(self
            .handler
            .delete_schedule(Request::new(req))
            .await?
            .into_inner())
    }
}

/// A Durin (or any Temporal-compatible) server over gRPC.
#[derive(Clone)]
pub struct Remote {
    client: WorkflowServiceClient<Channel>,
}

impl Remote {
    pub async fn connect(address: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let uri = if address.contains("://") {
            address.to_string()
        } else {
            format!("http://{address}")
        };
        let channel = Channel::from_shared(uri)?.connect().await?;
        Ok(Self {
            client: WorkflowServiceClient::new(channel),
        })
    }
}

impl Frontend for Remote {
    async fn start(
        &self,
        req: StartWorkflowExecutionRequest,
    ) -> Result<StartWorkflowExecutionResponse, Status> {
        Ok(self
            .client
            .clone()
            .start_workflow_execution(req)
            .await?
            .into_inner())
    }
    async fn signal(&self, req: SignalWorkflowExecutionRequest) -> Result<(), Status> {
        self.client
            .clone()
            .signal_workflow_execution(req)
            .await
            .map(|_| ())
    }
    async fn cancel(&self, req: RequestCancelWorkflowExecutionRequest) -> Result<(), Status> {
        self.client
            .clone()
            .request_cancel_workflow_execution(req)
            .await
            .map(|_| ())
    }
    async fn terminate(&self, req: TerminateWorkflowExecutionRequest) -> Result<(), Status> {
        self.client
            .clone()
            .terminate_workflow_execution(req)
            .await
            .map(|_| ())
    }
    async fn describe(
        &self,
        req: DescribeWorkflowExecutionRequest,
    ) -> Result<DescribeWorkflowExecutionResponse, Status> {
        Ok(self
            .client
            .clone()
            .describe_workflow_execution(req)
            .await?
            .into_inner())
    }
    async fn history(
        &self,
        req: GetWorkflowExecutionHistoryRequest,
    ) -> Result<GetWorkflowExecutionHistoryResponse, Status> {
        Ok(self
            .client
            .clone()
            .get_workflow_execution_history(req)
            .await?
            .into_inner())
    }
    async fn describe_task_queue(
        &self,
        req: DescribeTaskQueueRequest,
    ) -> Result<DescribeTaskQueueResponse, Status> {
        Ok(self
            .client
            .clone()
            .describe_task_queue(req)
            .await?
            .into_inner())
    }
    async fn register_namespace(&self, req: RegisterNamespaceRequest) -> Result<(), Status> {
        self.client
            .clone()
            .register_namespace(req)
            .await
            .map(|_| ())
    }
    async fn create_schedule(
        &self,
        req: CreateScheduleRequest,
    ) -> Result<CreateScheduleResponse, Status> {
        Ok(self.client.clone().create_schedule(req).await?.into_inner())
    }
    async fn describe_schedule(
        &self,
        req: DescribeScheduleRequest,
    ) -> Result<DescribeScheduleResponse, Status> {
        Ok(self
            .client
            .clone()
            .describe_schedule(req)
            .await?
            .into_inner())
    }
    async fn update_schedule(
        &self,
        req: UpdateScheduleRequest,
    ) -> Result<UpdateScheduleResponse, Status> {
        Ok(self.client.clone().update_schedule(req).await?.into_inner())
    }
    async fn patch_schedule(
        &self,
        req: PatchScheduleRequest,
    ) -> Result<PatchScheduleResponse, Status> {
        Ok(self.client.clone().patch_schedule(req).await?.into_inner())
    }
    async fn delete_schedule(
        &self,
        req: DeleteScheduleRequest,
    ) -> Result<DeleteScheduleResponse, Status> {
        Ok(self.client.clone().delete_schedule(req).await?.into_inner())
    }
}
