//! What a `Workflow` resource asks of the engine: start once, deliver each signal once, apply
//! the desired state once. Used by the controller and by `durin apply`, over any [`Frontend`].

use tonic::{Code, Status};

use super::crd::workflow::{DesiredState, Workflow};
use super::frontend::Frontend;
use super::translate::{self, IDENTITY, InvalidSpec};
use crate::proto::api::workflowservice::v1::{
    RequestCancelWorkflowExecutionRequest, SignalWorkflowExecutionRequest,
    TerminateWorkflowExecutionRequest,
};

/// Where a resource's execution lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub namespace: String,
    pub workflow_id: String,
}

impl Target {
    pub fn of(wf: &Workflow) -> Self {
        let k8s_ns = wf
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = wf.metadata.name.clone().unwrap_or_default();
        Self {
            namespace: wf.spec.namespace.clone().unwrap_or(k8s_ns),
            workflow_id: wf.spec.template.workflow_id.clone().unwrap_or(name),
        }
    }
}

/// Why a start did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The spec itself is wrong; retrying will not help until it changes.
    #[error("{0}")]
    Invalid(String),
    /// The engine refused the start for a reason that lasts (id in use, policy).
    #[error("{0}")]
    Rejected(String),
    /// Worth retrying (engine busy, shutting down).
    #[error(transparent)]
    Transient(Status),
}

impl From<InvalidSpec> for StartError {
    fn from(e: InvalidSpec) -> Self {
        StartError::Invalid(e.0)
    }
}

/// Starts the execution; the request id makes a repeat return the run already started.
pub async fn start<F: Frontend>(
    frontend: &F,
    target: &Target,
    request_id: &str,
    wf: &Workflow,
) -> Result<String, StartError> {
    let mut req = translate::workflow_start_request(
        &target.namespace,
        &target.workflow_id,
        request_id,
        &wf.spec,
    )?;
    req.memo = translate::with_resource_memo(req.memo, "Workflow", &wf.metadata);
    frontend
        .ensure_namespace(&target.namespace)
        .await
        .map_err(classify)?;
    match frontend.start_workflow_execution(req).await {
        Ok(resp) => Ok(resp.run_id),
        Err(s) => Err(classify(s)),
    }
}

/// What an engine refusal means for a resource: fix the spec, wait for it, or retry.
pub fn classify(s: Status) -> StartError {
    match s.code() {
        Code::InvalidArgument => StartError::Invalid(s.message().to_string()),
        Code::AlreadyExists | Code::FailedPrecondition | Code::NotFound => {
            StartError::Rejected(s.message().to_string())
        }
        _ => StartError::Transient(s),
    }
}

/// The id a signal entry is deduplicated by in the engine.
pub fn signal_request_id(uid: &str, signal_id: &str) -> String {
    format!("{uid}/signal/{signal_id}")
}

pub enum SignalOutcome {
    Delivered,
    /// The execution is closed or gone; the signal can never be delivered.
    Undeliverable(String),
}

pub async fn signal<F: Frontend>(
    frontend: &F,
    target: &Target,
    uid: &str,
    entry: &super::crd::workflow::SignalSpec,
) -> Result<SignalOutcome, Status> {
    let req = SignalWorkflowExecutionRequest {
        namespace: target.namespace.clone(),
        workflow_execution: translate::execution(&target.workflow_id, ""),
        signal_name: entry.name.clone(),
        input: translate::json_payloads(&entry.input),
        identity: IDENTITY.into(),
        request_id: signal_request_id(uid, &entry.id),
        ..Default::default()
    };
    match frontend.signal_workflow_execution(req).await {
        Ok(_) => Ok(SignalOutcome::Delivered),
        Err(s) if matches!(s.code(), Code::NotFound | Code::InvalidArgument) => {
            Ok(SignalOutcome::Undeliverable(s.message().to_string()))
        }
        Err(s) => Err(s),
    }
}

/// Requests cancellation or terminates; an execution already closed counts as done.
pub async fn apply_state<F: Frontend>(
    frontend: &F,
    target: &Target,
    uid: &str,
    state: DesiredState,
    reason: &str,
) -> Result<(), Status> {
    let result = match state {
        DesiredState::Running => return Ok(()),
        DesiredState::Canceled => frontend
            .request_cancel_workflow_execution(RequestCancelWorkflowExecutionRequest {
                namespace: target.namespace.clone(),
                workflow_execution: translate::execution(&target.workflow_id, ""),
                identity: IDENTITY.into(),
                request_id: format!("{uid}/cancel"),
                reason: reason.to_string(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        DesiredState::Terminated => frontend
            .terminate_workflow_execution(TerminateWorkflowExecutionRequest {
                namespace: target.namespace.clone(),
                workflow_execution: translate::execution(&target.workflow_id, ""),
                reason: reason.to_string(),
                identity: IDENTITY.into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
    };
    match result {
        Ok(()) => Ok(()),
        Err(s) if s.code() == Code::NotFound => Ok(()),
        Err(s) => Err(s),
    }
}
