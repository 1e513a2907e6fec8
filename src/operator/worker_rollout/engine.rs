//! The engine's side of a rollout: the worker deployment as the engine describes it, and the
//! routing changes a rollout makes, through the same RPCs the `temporal` CLI uses.

use tonic::Code;

use super::plan::{EngineVersion, EngineView, GateState, Move};
use crate::operator::context::Context;
use crate::operator::crd::worker::{Rollout, RolloutStrategy};
use crate::operator::crd::worker_rollout::Gate;
use crate::operator::frontend::Frontend;
use crate::operator::reconcile::Error;
use crate::operator::translate::{IDENTITY, json_payloads};
use crate::proto::api::common::v1::{WorkflowExecution, WorkflowType};
use crate::proto::api::deployment::v1::WorkerDeploymentVersion;
use crate::proto::api::enums::v1::{WorkerDeploymentVersionStatus, WorkflowExecutionStatus};
use crate::proto::api::taskqueue::v1::TaskQueue;
use crate::proto::api::workflow::v1::VersioningOverride;
use crate::proto::api::workflow::v1::versioning_override::{
    self, PinnedOverride, PinnedOverrideBehavior,
};
use crate::proto::api::workflowservice::v1::{
    DescribeWorkerDeploymentRequest, DescribeWorkerDeploymentResponse,
    DescribeWorkflowExecutionRequest, SetWorkerDeploymentCurrentVersionRequest,
    SetWorkerDeploymentManagerRequest, SetWorkerDeploymentRampingVersionRequest,
    StartWorkflowExecutionRequest, set_worker_deployment_manager_request,
};

/// A worker deployment as last described, with the token its next change must carry.
pub struct Deployment {
    namespace: String,
    name: String,
    pub view: EngineView,
    conflict_token: Vec<u8>,
    manager: String,
    /// A worker of it polled once (the engine knows it).
    exists: bool,
}

/// A routing change made, for the Worker's events.
pub struct Moved {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Deployment {
    pub async fn describe(ctx: &Context, namespace: &str, name: &str) -> Result<Self, Error> {
        let described = ctx
            .frontend
            .describe_worker_deployment(DescribeWorkerDeploymentRequest {
                namespace: namespace.to_string(),
                deployment_name: name.to_string(),
            })
            .await;
        let mut deployment = Deployment {
            namespace: namespace.to_string(),
            name: name.to_string(),
            view: EngineView::default(),
            conflict_token: Vec::new(),
            manager: String::new(),
            exists: false,
        };
        match described {
            Ok(d) => deployment.take(d),
            Err(s) if s.code() == Code::NotFound => {}
            Err(s) => return Err(s.into()),
        }
        Ok(deployment)
    }

    fn take(&mut self, d: DescribeWorkerDeploymentResponse) {
        self.exists = true;
        self.conflict_token = d.conflict_token;
        let Some(info) = d.worker_deployment_info else {
            return;
        };
        self.manager = info.manager_identity;
        let routing = info.routing_config.unwrap_or_default();
        let build = |v: Option<crate::proto::api::deployment::v1::WorkerDeploymentVersion>| {
            v.map(|v| v.build_id).filter(|b| !b.is_empty())
        };
        self.view.current = build(routing.current_deployment_version);
        self.view.ramping = build(routing.ramping_deployment_version)
            .map(|b| (b, routing.ramping_version_percentage));
        self.view.versions = info
            .version_summaries
            .into_iter()
            .filter_map(|s| {
                let build_id = s.deployment_version?.build_id;
                let status = WorkerDeploymentVersionStatus::try_from(s.status)
                    .unwrap_or(WorkerDeploymentVersionStatus::Unspecified);
                let version = EngineVersion {
                    status: status_name(status).to_string(),
                    was_current: s.last_current_time.is_some(),
                };
                Some((build_id, version))
            })
            .collect();
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `NotRegistered`, or the engine's status of a version.
    pub fn status_of(&self, build_id: &str) -> String {
        self.view
            .versions
            .get(build_id)
            .map_or_else(|| "NotRegistered".to_string(), |v| v.status.clone())
    }

    /// The controller manages the routing (others' changes are refused) unless the strategy
    /// is Manual; it never takes over from another manager.
    pub async fn take_management(&mut self, ctx: &Context, rollout: &Rollout) -> Result<(), Error> {
        let manual = rollout.strategy == RolloutStrategy::Manual;
        let wanted = if manual { "" } else { IDENTITY };
        let ours_or_free = self.manager.is_empty() || self.manager == IDENTITY;
        if !self.exists || self.manager == wanted || !ours_or_free {
            return Ok(());
        }
        self.set_manager(ctx, wanted).await
    }

    /// Names the deployment's manager ("" for none).
    async fn set_manager(&mut self, ctx: &Context, manager: &str) -> Result<(), Error> {
        use set_worker_deployment_manager_request::NewManagerIdentity;
        let changed = ctx
            .frontend
            .set_worker_deployment_manager(SetWorkerDeploymentManagerRequest {
                namespace: self.namespace.clone(),
                deployment_name: self.name.clone(),
                conflict_token: self.conflict_token.clone(),
                identity: IDENTITY.to_string(),
                new_manager_identity: Some(NewManagerIdentity::ManagerIdentity(manager.into())),
            })
            .await?;
        self.conflict_token = changed.conflict_token;
        self.manager = manager.to_string();
        Ok(())
    }

    /// Makes a plan's routing change. The engine refusing it (another manager, a conflict)
    /// is reported, and the next pass tries again.
    pub async fn carry_out(
        &mut self,
        ctx: &Context,
        step: &Move,
        target: &str,
    ) -> Result<Option<Moved>, Error> {
        let result = match step {
            // The gate is started by the caller, which knows the task queue.
            Move::Done | Move::Hold { .. } | Move::StartGate => return Ok(None),
            Move::Promote { reason } => self.set_current(ctx, target).await.map(|()| {
                (
                    *reason,
                    format!("build {target} is now the current version"),
                )
            }),
            Move::Ramp { step, percentage } => {
                self.set_ramping(ctx, target, *percentage).await.map(|()| {
                    let message =
                        format!("build {target} ramps to {percentage}% (step {})", step + 1);
                    ("VersionRamping", message)
                })
            }
            Move::StopRamp { build_id } => self
                .set_ramping(ctx, "", 0.0)
                .await
                .map(|()| ("RampStopped", format!("build {build_id} no longer ramps"))),
        };
        match result {
            Ok((reason, message)) => Ok(Some(Moved {
                warning: false,
                reason,
                message,
            })),
            Err(s) if matches!(s.code(), Code::FailedPrecondition | Code::Aborted) => {
                Ok(Some(Moved {
                    warning: true,
                    reason: "RoutingRefused",
                    message: s.message().to_string(),
                }))
            }
            Err(s) => Err(s.into()),
        }
    }

    /// Routes everything to unversioned workers again and gives up managing the deployment
    /// (the Worker's rollout was removed).
    pub async fn release(&mut self, ctx: &Context) -> Result<(), Error> {
        if self.manager != IDENTITY && !self.manager.is_empty() {
            return Ok(());
        }
        if self.view.ramping.is_some() {
            self.set_ramping(ctx, "", 0.0).await?;
        }
        if self.view.current.is_some() {
            self.set_current(ctx, "").await?;
        }
        if self.manager == IDENTITY {
            self.set_manager(ctx, "").await?;
        }
        Ok(())
    }

    /// The gate workflow of the target version, when the rollout has a gate and the version
    /// is registered but not current (the only time it matters).
    pub async fn gate_state(
        &self,
        ctx: &Context,
        rollout: &Rollout,
        target: &str,
    ) -> Result<GateState, Error> {
        let waiting =
            self.view.current.as_deref() != Some(target) && self.view.versions.contains_key(target);
        if rollout.gate.is_none() || !waiting {
            return Ok(GateState::None);
        }
        let described = ctx
            .frontend
            .describe_workflow_execution(DescribeWorkflowExecutionRequest {
                namespace: self.namespace.clone(),
                execution: Some(WorkflowExecution {
                    workflow_id: self.gate_workflow_id(target),
                    run_id: String::new(),
                }),
            })
            .await;
        let status = match described {
            Ok(d) => d.workflow_execution_info.map_or(0, |i| i.status),
            Err(s) if s.code() == Code::NotFound => return Ok(GateState::NotStarted),
            Err(s) => return Err(s.into()),
        };
        Ok(match WorkflowExecutionStatus::try_from(status) {
            Ok(WorkflowExecutionStatus::Running) => GateState::Running,
            Ok(WorkflowExecutionStatus::Completed) => GateState::Passed,
            Ok(other) => GateState::Failed(format!(
                "ended {}",
                other
                    .as_str_name()
                    .trim_start_matches("WORKFLOW_EXECUTION_STATUS_")
            )),
            Err(_) => GateState::Failed("ended in an unknown state".into()),
        })
    }

    /// One gate workflow per version of a deployment.
    pub fn gate_workflow_id(&self, build_id: &str) -> String {
        format!("{}:{build_id}:gate", self.name)
    }

    /// Starts the target version's gate workflow, pinned to it. Its id is also its request id,
    /// so a start repeated by a later pass is the same start.
    pub async fn start_gate(
        &self,
        ctx: &Context,
        gate: &Gate,
        task_queue: &str,
        target: &str,
    ) -> Result<(), tonic::Status> {
        let workflow_id = self.gate_workflow_id(target);
        let pinned = PinnedOverride {
            behavior: PinnedOverrideBehavior::Pinned as i32,
            version: Some(WorkerDeploymentVersion {
                deployment_name: self.name.clone(),
                build_id: target.to_string(),
            }),
        };
        let request = StartWorkflowExecutionRequest {
            namespace: self.namespace.clone(),
            workflow_id: workflow_id.clone(),
            workflow_type: Some(WorkflowType {
                name: gate.workflow_type.clone(),
            }),
            task_queue: Some(TaskQueue {
                name: task_queue.to_string(),
                ..Default::default()
            }),
            input: json_payloads(&gate.input),
            identity: IDENTITY.to_string(),
            request_id: workflow_id,
            versioning_override: Some(VersioningOverride {
                r#override: Some(versioning_override::Override::Pinned(pinned)),
                ..Default::default()
            }),
            ..Default::default()
        };
        match ctx.frontend.start_workflow_execution(request).await {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::AlreadyExists => Ok(()),
            Err(s) => Err(s),
        }
    }

    async fn set_current(&mut self, ctx: &Context, build_id: &str) -> Result<(), tonic::Status> {
        let changed = ctx
            .frontend
            .set_worker_deployment_current_version(SetWorkerDeploymentCurrentVersionRequest {
                namespace: self.namespace.clone(),
                deployment_name: self.name.clone(),
                build_id: build_id.to_string(),
                conflict_token: self.conflict_token.clone(),
                identity: IDENTITY.to_string(),
                ..Default::default()
            })
            .await?;
        self.conflict_token = changed.conflict_token;
        Ok(())
    }

    async fn set_ramping(
        &mut self,
        ctx: &Context,
        build_id: &str,
        percentage: f32,
    ) -> Result<(), tonic::Status> {
        let changed = ctx
            .frontend
            .set_worker_deployment_ramping_version(SetWorkerDeploymentRampingVersionRequest {
                namespace: self.namespace.clone(),
                deployment_name: self.name.clone(),
                build_id: build_id.to_string(),
                percentage,
                conflict_token: self.conflict_token.clone(),
                identity: IDENTITY.to_string(),
                ..Default::default()
            })
            .await?;
        self.conflict_token = changed.conflict_token;
        Ok(())
    }
}

fn status_name(status: WorkerDeploymentVersionStatus) -> &'static str {
    match status {
        WorkerDeploymentVersionStatus::Inactive => "Inactive",
        WorkerDeploymentVersionStatus::Current => "Current",
        WorkerDeploymentVersionStatus::Ramping => "Ramping",
        WorkerDeploymentVersionStatus::Draining => "Draining",
        WorkerDeploymentVersionStatus::Drained => "Drained",
        WorkerDeploymentVersionStatus::Created => "Created",
        WorkerDeploymentVersionStatus::Unspecified => "Unknown",
    }
}
