//! Operator-facing calls: describing a task queue's pollers and backlog, and deleting a
//! workflow execution.

// The CLI still uses DescribeTaskQueue's enhanced mode, whose fields Temporal marks deprecated.
#![allow(deprecated)]

use std::collections::HashMap;

use temporalio_protos::temporal::api::deployment::v1::WorkerDeploymentOptions;
use temporalio_protos::temporal::api::enums::v1::{
    DescribeTaskQueueMode, TaskQueueType, WorkerVersioningMode,
};
use temporalio_protos::temporal::api::taskqueue::v1::{
    PollerInfo, TaskQueueStats, TaskQueueTypeInfo, TaskQueueVersionInfo,
};
use temporalio_protos::temporal::api::workflowservice::v1::{
    DeleteWorkflowExecutionRequest, DescribeTaskQueueRequest, DescribeTaskQueueResponse,
};

use super::matching::{QueueKey, QueueKind};
use super::{Core, Engine, Result, RunKey, clock};

impl Core {
    fn queue_info(&mut self, namespace: &str, name: &str, kind: QueueKind) -> TaskQueueTypeInfo {
        let queue = QueueKey::new(namespace, name, kind);
        let now = self.now();
        let mut pollers: Vec<PollerInfo> = self
            .matching
            .recent_pollers(&queue, now)
            .into_iter()
            .map(|(identity, last, version)| PollerInfo {
                last_access_time: Some(clock::ts_from_millis(last)),
                identity,
                deployment_options: super::deployments::parse_version(&version).map(|v| {
                    WorkerDeploymentOptions {
                        deployment_name: v.deployment_name,
                        build_id: v.build_id,
                        worker_versioning_mode: WorkerVersioningMode::Versioned as i32,
                    }
                }),
                ..Default::default()
            })
            .collect();
        pollers.sort_by(|a, b| a.identity.cmp(&b.identity));
        let backlog = self.matching.backlog_len(&queue) as i64;
        TaskQueueTypeInfo {
            pollers,
            stats: Some(TaskQueueStats {
                approximate_backlog_count: backlog,
                ..Default::default()
            }),
        }
    }
}

fn kind_of(task_queue_type: i32) -> QueueKind {
    match TaskQueueType::try_from(task_queue_type) {
        Ok(TaskQueueType::Activity) => QueueKind::Activity,
        Ok(TaskQueueType::Nexus) => QueueKind::Nexus,
        _ => QueueKind::Workflow,
    }
}

impl Engine {
    /// Pollers seen in the last minutes and the backlog. The enhanced mode (what the CLI asks
    /// for) reports them per task type under the unversioned build.
    pub async fn describe_task_queue(
        &self,
        req: DescribeTaskQueueRequest,
    ) -> Result<DescribeTaskQueueResponse> {
        self.transact(|core| {
            core.check_namespace(&req.namespace)?;
            let name = super::polling::task_queue_name(&req.task_queue)?;
            if req.api_mode != DescribeTaskQueueMode::Enhanced as i32 {
                let info = core.queue_info(&req.namespace, &name, kind_of(req.task_queue_type));
                let task_queue_type = match TaskQueueType::try_from(req.task_queue_type) {
                    Ok(t @ (TaskQueueType::Activity | TaskQueueType::Nexus)) => t,
                    _ => TaskQueueType::Workflow,
                };
                return Ok(DescribeTaskQueueResponse {
                    pollers: info.pollers,
                    stats: info.stats,
                    versioning_info: core
                        .deployment_of_queue(&req.namespace, &name, task_queue_type)
                        .map(super::deployments::api::task_queue_versioning),
                    ..Default::default()
                });
            }
            let types = if req.task_queue_types.is_empty() {
                vec![
                    TaskQueueType::Workflow as i32,
                    TaskQueueType::Activity as i32,
                ]
            } else {
                req.task_queue_types.clone()
            };
            let types_info: HashMap<i32, TaskQueueTypeInfo> = types
                .into_iter()
                .map(|t| (t, core.queue_info(&req.namespace, &name, kind_of(t))))
                .collect();
            Ok(DescribeTaskQueueResponse {
                versions_info: HashMap::from([(
                    String::new(),
                    TaskQueueVersionInfo {
                        types_info,
                        task_reachability: 0,
                    },
                )]),
                ..Default::default()
            })
        })
        .await
    }

    /// Deletes a run and its history (terminating it first if it is still running).
    pub async fn delete_workflow(&self, req: DeleteWorkflowExecutionRequest) -> Result<()> {
        self.transact(|core| {
            let exec = req.workflow_execution.clone().unwrap_or_default();
            let key = core.resolve_run(&req.namespace, &exec.workflow_id, &exec.run_id)?;
            if core.run(&key)?.is_open() {
                core.terminate_run(&key, "Delete workflow execution", None, "durin")?;
            }
            core.delete_run(&key)
        })
        .await
    }
}

impl Core {
    /// Deletes a closed run: from memory, from the archive, and (by a logged record) from
    /// the store.
    pub(crate) fn delete_run(&mut self, key: &RunKey) -> Result<()> {
        self.forget_archived(key)?;
        self.forget_run(key);
        self.log_deleted(key);
        Ok(())
    }
}
