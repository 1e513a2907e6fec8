//! Worker versioning at the front door: a versioned poller's version is registered before it
//! polls, and a change of a worker deployment is answered once every replica routes by it
//! (the engine side is `engine/deployments/`).

use temporalio_protos::temporal::api::deployment::v1::WorkerDeploymentOptions;
use temporalio_protos::temporal::api::enums::v1::TaskQueueType;
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use tonic::Response;

use super::{Reply, WorkflowHandler};
use crate::rpc::errors::to_status;

impl WorkflowHandler {
    /// Answers a change of a worker deployment once every replica routes by it.
    pub(super) async fn deployment_changed<T>(&self, done: crate::engine::Result<T>) -> Reply<T> {
        let answer = done.map_err(to_status)?;
        crate::cluster::propagate_namespaces(&self.cluster).await?;
        Ok(Response::new(answer))
    }

    /// A versioned poller's version is registered (and every replica told) before it waits.
    pub(super) async fn register_poller(
        &self,
        namespace: &str,
        options: &Option<WorkerDeploymentOptions>,
        task_queue: &Option<TaskQueue>,
        kind: TaskQueueType,
    ) -> Result<(), tonic::Status> {
        let changed = self
            .engine
            .register_poller(namespace, options, task_queue, kind)
            .await
            .map_err(to_status)?;
        if changed {
            crate::cluster::propagate_namespaces(&self.cluster).await?;
        }
        Ok(())
    }
}
